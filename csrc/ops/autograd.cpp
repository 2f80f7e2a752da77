// The Autograd kernel of rnn_layer_forward, in C++ so that a call spends no time
// in Python: the forward runs the device kernel below autograd, and the backward
// calls rnn_layer_backward, or, when autograd records the backward itself
// (create_graph=True), its differentiable formulation.
#include <array>
#include <string>
#include <tuple>
#include <vector>

#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include "differentiable_backward.h"
#include "layer_op.h"

namespace rnn_fused {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Forward arguments, in schema order; backward returns one gradient per argument.
enum Argument {
  kInput, kWeightIh, kWeightHh, kBiasIh, kBiasHh, kHx, kMask, kResetState,
  kNonlinearity, kReverse, kBackend, kArguments
};

class LayerFunction : public torch::autograd::Function<LayerFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& input,
                            const at::Tensor& weight_ih, const at::Tensor& weight_hh,
                            const c10::optional<at::Tensor>& bias_ih,
                            const c10::optional<at::Tensor>& bias_hh, const at::Tensor& hx,
                            const c10::optional<at::Tensor>& mask,
                            const c10::optional<at::Tensor>& reset_state,
                            c10::string_view nonlinearity, bool reverse,
                            c10::string_view backend) {
    at::Tensor output, h_n;
    {
      const at::AutoDispatchBelowADInplaceOrView below_autograd;
      std::tie(output, h_n) =
          layer_forward_op().call(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, mask,
                                  reset_state, nonlinearity, reverse, backend);
    }
    // An unused output or h_n gets no zero-filled gradient: the backward op
    // takes h_n's as optional, and zeros for the output only when it must.
    ctx->set_materialize_grads(false);
    ctx->save_for_backward({input, weight_ih, weight_hh, hx, value_or_undefined(mask),
                            value_or_undefined(reset_state), output});
    const std::vector<int64_t> edges =
        argument_edges({true, true, true, bias_ih.has_value(), bias_hh.has_value(), true,
                        mask.has_value(), reset_state.has_value()});
    ctx->saved_data["edges"] = edges;
    ctx->saved_data["nonlinearity"] = std::string(nonlinearity);
    ctx->saved_data["reverse"] = reverse;
    ctx->saved_data["backend"] = std::string(backend);
    return {output, h_n};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor &input = saved[0], &weight_ih = saved[1], &weight_hh = saved[2],
                     &hx = saved[3], &output = saved[6];
    const c10::optional<at::Tensor> mask = defined_or_none(saved[4]);
    const c10::optional<at::Tensor> reset_state = defined_or_none(saved[5]);
    const std::vector<int64_t> edges = ctx->saved_data["edges"].toIntVector();
    const auto needs = [&](Argument argument) {
      return edges[argument] >= 0 && ctx->needs_input_grad(edges[argument]);
    };
    const std::array<bool, 6> wanted = {
        needs(kInput), needs(kWeightIh), needs(kWeightHh), needs(kBiasIh) || needs(kBiasHh),
        needs(kHx), mask.has_value() && needs(kResetState)};
    const std::string nonlinearity = ctx->saved_data["nonlinearity"].toStringRef();
    const bool reverse = ctx->saved_data["reverse"].toBool();
    const at::Tensor grad_output =
        grad_outputs[0].defined() ? grad_outputs[0] : at::zeros_like(output);
    const c10::optional<at::Tensor> grad_h_n = defined_or_none(grad_outputs[1]);

    LayerGradients grads;
    if (at::GradMode::is_enabled()) {
      grads = differentiable_layer_backward(grad_output, grad_h_n, input, weight_ih, weight_hh,
                                            hx, mask, reset_state, output,
                                            parse_activation(nonlinearity), reverse, wanted);
    } else {
      const at::AutoDispatchBelowADInplaceOrView below_autograd;
      grads = layer_backward_op().call(grad_output, grad_h_n, input, weight_ih, weight_hh, hx,
                                       mask, reset_state, output, nonlinearity, reverse,
                                       ctx->saved_data["backend"].toStringRef(), wanted);
    }
    const auto& [grad_input, grad_weight_ih, grad_weight_hh, grad_bias, grad_hx, grad_reset] =
        grads;
    variable_list result(kArguments);
    const auto keep = [&](Argument argument, bool computed, const at::Tensor& grad) {
      if (computed && needs(argument)) result[argument] = grad;
    };
    keep(kInput, wanted[0], grad_input);
    keep(kWeightIh, wanted[1], grad_weight_ih);
    keep(kWeightHh, wanted[2], grad_weight_hh);
    keep(kBiasIh, wanted[3], grad_bias);
    if (wanted[3] && needs(kBiasHh)) {
      // One tensor handed to two leaves would make their .grad alias.
      result[kBiasHh] = needs(kBiasIh) ? grad_bias.clone() : grad_bias;
    }
    keep(kHx, wanted[4], grad_hx);
    keep(kResetState, wanted[5], grad_reset);
    return result;
  }
};

LayerOutputs layer_forward_autograd(
    const at::Tensor& input, const at::Tensor& weight_ih, const at::Tensor& weight_hh,
    const c10::optional<at::Tensor>& bias_ih, const c10::optional<at::Tensor>& bias_hh,
    const at::Tensor& hx, const c10::optional<at::Tensor>& mask,
    const c10::optional<at::Tensor>& reset_state, c10::string_view nonlinearity, bool reverse,
    c10::string_view backend) {
  // RL code acts one step at a time under no_grad, where the node's saved
  // tensors would be most of the cost.
  if (!records_graph(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, reset_state)) {
    const at::AutoDispatchBelowADInplaceOrView below_autograd;
    return layer_forward_op().call(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, mask,
                                   reset_state, nonlinearity, reverse, backend);
  }
  const variable_list outputs = LayerFunction::apply(
      input, weight_ih, weight_hh, bias_ih, bias_hh, hx, mask, reset_state, nonlinearity,
      reverse, backend);
  return {outputs[0], outputs[1]};
}

}  // namespace

TORCH_LIBRARY_IMPL(rnn_fused, Autograd, m) {
  m.impl("rnn_layer_forward", &layer_forward_autograd);
}

}  // namespace rnn_fused
