// The Autograd kernel of layer_forward, in C++ so that a call spends no time in
// Python (at T=1 a Python formula cost about 90 µs of a 250 µs
// forward+backward): the forward runs the device kernel below autograd, and the
// backward calls layer_backward. When autograd records the backward itself
// (create_graph=True), a differentiable formulation (double_backward.h) instead:
// the Elman cells' from the saved outputs, the others' by recomputation.
#include <array>
#include <string>
#include <tuple>
#include <vector>

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include "../cells/registry.h"
#include "double_backward.h"
#include "layer_op.h"

namespace rnn_fused {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Forward arguments, in schema order; backward returns one gradient per argument.
enum Argument {
  kInput, kWeightIh, kWeightHh, kBiasIh, kBiasHh, kHx, kCx, kMask, kResetH, kResetC,
  kCell, kReverse, kBackend, kWeightHr, kArguments
};

class LayerFunction : public torch::autograd::Function<LayerFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& input,
                               const at::Tensor& weight_ih, const at::Tensor& weight_hh,
                               const OptionalTensor& bias_ih, const OptionalTensor& bias_hh,
                               const at::Tensor& hx, const OptionalTensor& cx,
                               const OptionalTensor& mask, const OptionalTensor& reset_h,
                               const OptionalTensor& reset_c, c10::string_view cell,
                               bool reverse, c10::string_view backend,
                               const OptionalTensor& weight_hr) {
    at::Tensor output, h_n, c_n, cells, saved;
    {
      const at::AutoDispatchBelowADInplaceOrView below_autograd;
      std::tie(output, h_n, c_n, cells, saved) =
          layer_forward_op().call(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, cx, mask,
                                  reset_h, reset_c, cell, reverse, backend, weight_hr);
    }
    // Unused outputs get no zero-filled gradients: the backward op takes the
    // states' gradients as optional, and zeros for the output only when it must.
    ctx->set_materialize_grads(false);
    ctx->mark_non_differentiable({saved});
    ctx->save_for_backward({input, weight_ih, weight_hh, hx, value_or_undefined(cx),
                            value_or_undefined(mask), value_or_undefined(reset_h),
                            value_or_undefined(reset_c), output, cells, saved,
                            value_or_undefined(bias_ih), value_or_undefined(bias_hh),
                            value_or_undefined(weight_hr)});
    // The arguments after reset_c up to weight_hr are not tensors.
    ctx->saved_data["edges"] = argument_edges(
        {true, true, true, bias_ih.has_value(), bias_hh.has_value(), true, cx.has_value(),
         mask.has_value(), reset_h.has_value(), reset_c.has_value(), false, false, false,
         weight_hr.has_value()});
    ctx->saved_data["cell"] = std::string(cell);
    ctx->saved_data["reverse"] = reverse;
    ctx->saved_data["has_bias"] = bias_ih.has_value();
    ctx->saved_data["backend"] = std::string(backend);
    return {output, h_n, c_n, cells, saved};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list s = ctx->get_saved_variables();
    const std::vector<int64_t> edges = ctx->saved_data["edges"].toIntVector();
    const auto needs = [&](Argument argument) {
      return edges[argument] >= 0 && ctx->needs_input_grad(edges[argument]);
    };
    const std::string cell = ctx->saved_data["cell"].toStringRef();
    const bool reverse = ctx->saved_data["reverse"].toBool();
    const Cell parsed = parse_cell(cell);
    LayerGradients grads;
    if (at::GradMode::is_enabled() && info(parsed).elman) {
      grads = differentiable_elman_backward(
          grad_outputs[0].defined() ? grad_outputs[0] : at::zeros_like(s[8]),
          defined_or_none(grad_outputs[1]), s[0], s[1], s[2], s[3], defined_or_none(s[5]),
          defined_or_none(s[6]), s[8], activation_of(parsed), reverse,
          {needs(kInput), needs(kWeightIh), needs(kWeightHh)},
          ctx->saved_data["has_bias"].toBool());
    } else if (at::GradMode::is_enabled()) {
      grads = differentiable_layer_backward(
          LayerArguments{s[0], s[1], s[2], s[11], s[12], s[3], s[4], s[5], s[6], s[7], s[13]},
          parsed, reverse,
          {grad_outputs[0], grad_outputs[1], grad_outputs[2], grad_outputs[3]},
          {needs(kInput), needs(kWeightIh), needs(kWeightHh), needs(kBiasIh), needs(kBiasHh),
           needs(kHx), needs(kCx), needs(kResetH), needs(kResetC), needs(kWeightHr)});
    } else {
      const bool cell_state = info(parsed).cell_state;
      const at::Tensor& output = s[8];
      const at::Tensor grad_output =
          grad_outputs[0].defined() ? grad_outputs[0] : at::zeros_like(output);
      const at::AutoDispatchBelowADInplaceOrView below_autograd;
      // The input's and the weights' gradients are one large product each: only
      // where wanted (the first layer's input rarely is).
      grads = layer_backward_op().call(
          grad_output, defined_or_none(grad_outputs[1]),
          cell_state ? defined_or_none(grad_outputs[2]) : c10::nullopt,
          cell_state ? defined_or_none(grad_outputs[3]) : c10::nullopt, s[0], s[1], s[2], s[3],
          defined_or_none(s[4]), defined_or_none(s[5]), defined_or_none(s[6]),
          defined_or_none(s[7]), output, s[9], s[10], cell, reverse,
          ctx->saved_data["has_bias"].toBool(),
          {needs(kInput), needs(kWeightIh), needs(kWeightHh)},
          ctx->saved_data["backend"].toStringRef(), defined_or_none(s[13]));
    }
    const auto& [d_input, d_weight_ih, d_weight_hh, d_bias_ih, d_bias_hh, d_hx, d_cx, d_reset_h,
                 d_reset_c, d_weight_hr] = grads;
    variable_list result(kArguments);
    const auto keep = [&](Argument argument, const at::Tensor& grad) {
      if (needs(argument)) result[argument] = grad;
    };
    keep(kInput, d_input);
    keep(kWeightIh, d_weight_ih);
    keep(kWeightHh, d_weight_hh);
    keep(kBiasIh, d_bias_ih);
    keep(kBiasHh, d_bias_hh);
    keep(kHx, d_hx);
    keep(kCx, d_cx);
    keep(kResetH, d_reset_h);
    keep(kResetC, d_reset_c);
    keep(kWeightHr, d_weight_hr);
    return result;
  }
};

LayerOutputs layer_forward_autograd(const at::Tensor& input, const at::Tensor& weight_ih,
                                    const at::Tensor& weight_hh, const OptionalTensor& bias_ih,
                                    const OptionalTensor& bias_hh, const at::Tensor& hx,
                                    const OptionalTensor& cx, const OptionalTensor& mask,
                                    const OptionalTensor& reset_h, const OptionalTensor& reset_c,
                                    c10::string_view cell, bool reverse,
                                    c10::string_view backend, const OptionalTensor& weight_hr) {
  // RL code acts one step at a time under no_grad, where the node's saved
  // tensors would be most of the cost.
  if (!records_graph(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, cx, reset_h, reset_c,
                     weight_hr)) {
    const at::AutoDispatchBelowADInplaceOrView below_autograd;
    return layer_forward_op().call(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, cx, mask,
                                   reset_h, reset_c, cell, reverse, backend, weight_hr);
  }
  const variable_list outputs =
      LayerFunction::apply(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, cx, mask, reset_h,
                           reset_c, cell, reverse, backend, weight_hr);
  return {outputs[0], outputs[1], outputs[2], outputs[3], outputs[4]};
}

}  // namespace

TORCH_LIBRARY_IMPL(rnn_fused, Autograd, m) {
  m.impl("layer_forward", &layer_forward_autograd);
}

}  // namespace rnn_fused
