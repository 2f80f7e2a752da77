// The layer ops, layer_forward and layer_backward: one layer of any cell in one
// direction, on any device. They check the arguments, plan (engine/plan.h),
// build the LayerParams once and hand them to the planned kernel family
// (engine/families.h), which the device's code registered.
#include <array>
#include <tuple>

#include <ATen/TensorOperators.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <ATen/record_function.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>

#include "../engine/families.h"
#include "checks.h"
#include "layer_op.h"
#include "weight_grads.h"

namespace rnn_fused {
namespace {

at::Tensor contiguous_or_undefined(const OptionalTensor& t) {
  return t.has_value() ? t->contiguous() : at::Tensor();
}

// The parts every direction of a layer shares: sizes, plan and states.
void set_layer(LayerParams& p, const LayerSizes& n, const at::Tensor& input,
               const at::Tensor& weight_ih, const at::Tensor& weight_hh, const at::Tensor& hx,
               const OptionalTensor& cx, const OptionalTensor& mask,
               const OptionalTensor& reset_h, const OptionalTensor& reset_c,
               const OptionalTensor& weight_hr, bool reverse, c10::string_view backend) {
  static_cast<LayerSizes&>(p) = n;
  p.reverse = reverse;
  p.input = input.contiguous().view({n.steps * n.batch, n.input_size});
  p.weight_ih = weight_ih;
  p.w_hh = weight_hh.contiguous();
  p.weight_hr = contiguous_or_undefined(weight_hr);
  p.hx = hx.contiguous();
  p.cx = contiguous_or_undefined(cx);
  p.mask = contiguous_or_undefined(mask);
  p.reset_h = contiguous_or_undefined(reset_h);
  p.reset_c = contiguous_or_undefined(reset_c);
  p.plan = runnable_plan(PlanQuery{n.cell, n.steps, n.batch, n.hidden, input.scalar_type(),
                                   backend,
                                   (p.projects() ? kProjection : 0u) |
                                       (p.resets_per_step() ? kResetsPerStep : 0u)},
                         input.device().type());
}

int64_t last_processed_step(const LayerSizes& n, bool reverse) {
  return reverse ? 0 : n.steps - 1;
}

LayerOutputs layer_forward(const at::Tensor& input, const at::Tensor& weight_ih,
                           const at::Tensor& weight_hh, const OptionalTensor& bias_ih,
                           const OptionalTensor& bias_hh, const at::Tensor& hx,
                           const OptionalTensor& cx, const OptionalTensor& mask,
                           const OptionalTensor& reset_h, const OptionalTensor& reset_c,
                           c10::string_view cell_name, bool reverse, c10::string_view backend,
                           const OptionalTensor& weight_hr) {
  const Cell cell = parse_cell(cell_name);
  const LayerSizes n = check_layer_inputs(cell, input, weight_ih, weight_hh, bias_ih, bias_hh,
                                          hx, cx, mask, reset_h, reset_c, weight_hr);
  // The families ask the input's GPU what fits; the ops pick their own
  // precision, and autocast must not recast the products inside.
  const c10::DeviceGuard device_guard(input.device());
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  ForwardParams p;
  set_layer(p, n, input, weight_ih, weight_hh, hx, cx, mask, reset_h, reset_c, weight_hr, reverse,
            backend);
  // The biases ride with the input projection, so the loops add one term;
  // except the GRU's b_hn, which r multiplies.
  if (bias_ih.has_value()) {
    p.x_bias = *bias_ih + *bias_hh;
    if (info(cell).hidden_bias_apart) {
      const int64_t apart = 2 * n.hidden;
      p.x_bias.narrow(0, apart, n.hidden).copy_(bias_ih->narrow(0, apart, n.hidden));
      p.h_bias = bias_hh->narrow(0, apart, n.hidden).contiguous();
    }
  } else if (info(cell).hidden_bias_apart) {
    p.h_bias = at::zeros({n.hidden}, input.options());
  }
  ForwardResult r;
  {
    RECORD_FUNCTION(p.plan.family->forward_scope, std::vector<c10::IValue>());
    r = p.plan.family->forward(p);
  }
  const int64_t last = last_processed_step(n, reverse);
  return {r.output, r.output[last].clone(),
          info(cell).cell_state ? r.cells[last].clone() : at::empty({0}, input.options()),
          r.cells, r.saved};
}

LayerGradients layer_backward(const at::Tensor& grad_output, const OptionalTensor& grad_h_n,
                              const OptionalTensor& grad_c_n, const OptionalTensor& grad_cells,
                              const at::Tensor& input, const at::Tensor& weight_ih,
                              const at::Tensor& weight_hh, const at::Tensor& hx,
                              const OptionalTensor& cx, const OptionalTensor& mask,
                              const OptionalTensor& reset_h, const OptionalTensor& reset_c,
                              const at::Tensor& output, const at::Tensor& cells,
                              const at::Tensor& saved, c10::string_view cell_name, bool reverse,
                              bool has_bias, std::array<bool, 3> output_mask,
                              c10::string_view backend, const OptionalTensor& weight_hr) {
  const Cell cell = parse_cell(cell_name);
  const CellInfo& c = info(cell);
  const LayerSizes n = check_layer_inputs(cell, input, weight_ih, weight_hh, c10::nullopt,
                                          c10::nullopt, hx, cx, mask, reset_h, reset_c, weight_hr);
  const int64_t T = n.steps, B = n.batch, H = n.hidden, P = n.output_size;
  check_like_input(grad_output, "grad_output", input, {T, B, P});
  check_like_input(output, "output", input, {T, B, P});
  if (c.saved > 0) check_like_input(saved, "saved", input, {T, B, c.saved * H});
  if (c.cell_state) check_like_input(cells, "cells", input, {T, B, H});
  if (grad_h_n.has_value()) check_like_input(*grad_h_n, "grad_h_n", input, {B, P});
  TORCH_CHECK_VALUE(c.cell_state || (!grad_c_n.has_value() && !grad_cells.has_value()),
                    "rnn_fused: the ", c.name, " cell has no cell state to take a gradient of");
  if (grad_c_n.has_value()) check_like_input(*grad_c_n, "grad_c_n", input, {B, H});
  if (grad_cells.has_value()) check_like_input(*grad_cells, "grad_cells", input, {T, B, H});
  const c10::DeviceGuard device_guard(input.device());
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);

  BackwardParams p;
  set_layer(p, n, input, weight_ih, weight_hh, hx, cx, mask, reset_h, reset_c, weight_hr, reverse,
            backend);
  p.output = output.contiguous();
  p.cells = cells.contiguous();
  p.saved = saved.contiguous();
  p.grad_output = grad_output.contiguous();
  p.grad_cells = contiguous_or_undefined(grad_cells);
  const int64_t last = last_processed_step(n, reverse);
  if (grad_h_n.has_value()) p.grad_last_h = p.grad_output[last] + *grad_h_n;
  if (grad_c_n.has_value()) {
    p.grad_last_c =
        p.grad_cells.defined() ? p.grad_cells[last] + *grad_c_n : grad_c_n->contiguous();
  }
  p.has_bias = has_bias;
  p.wanted = output_mask;
  Gradients g = allocate_gradients(p);
  {
    RECORD_FUNCTION(p.plan.family->backward_scope, std::vector<c10::IValue>());
    p.plan.family->backward(p, g);
  }
  // Skipped gradients are distinct empty tensors: outputs of an op must not alias.
  const auto or_none = [&](const at::Tensor& t) {
    return t.defined() ? t : at::empty({0}, input.options());
  };
  const auto in_dtype = [&](const at::Tensor& t) {
    return t.defined() ? t.to(input.scalar_type()) : at::empty({0}, input.options());
  };
  // The cells whose two biases share one gradient hand b_hh a copy.
  const at::Tensor grad_bias_hh =
      g.bias_hh.defined() ? g.bias_hh : (has_bias ? g.bias_ih.clone() : at::Tensor());
  return {or_none(g.input), or_none(g.weight_ih), or_none(g.weight_hh), or_none(g.bias_ih),
          or_none(grad_bias_hh), or_none(g.hx), or_none(g.cx), in_dtype(g.reset_h),
          in_dtype(g.reset_c), or_none(g.weight_hr)};
}

}  // namespace

TORCH_LIBRARY_IMPL(rnn_fused, CPU, m) {
  m.impl("layer_forward", &layer_forward);
  m.impl("layer_backward", &layer_backward);
}

#ifdef WITH_CUDA
TORCH_LIBRARY_IMPL(rnn_fused, CUDA, m) {
  m.impl("layer_forward", &layer_forward);
  m.impl("layer_backward", &layer_backward);
}
#endif

}  // namespace rnn_fused
