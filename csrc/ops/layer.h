// The layer ops, rnn_layer_forward and rnn_layer_backward, for one layer in one
// direction, written once for every device: the parts that are parallel over
// time (the input projection before the loop, the weight gradients after it)
// are large products here (W_ih's through input_products.h); the sequential
// part is the device's recurrence, `Device::forward(params)` /
// `Device::backward(params)` on the path that `Device::plan` picks. Each device
// instantiates these templates and registers them for its dispatch key
// (csrc/cpu/register.cpp, csrc/cuda/register.cpp).
#pragma once

#include <array>
#include <tuple>

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/impl/LocalDispatchKeySet.h>

#include "../engine/params.h"
#include "checks.h"
#include "input_products.h"
#include "weight_grads.h"

namespace rnn_fused {

inline int64_t last_processed_step(int64_t steps, bool reverse) {
  return reverse ? 0 : steps - 1;
}

inline c10::optional<at::Tensor> contiguous(const c10::optional<at::Tensor>& t) {
  if (!t.has_value()) return c10::nullopt;
  return t->contiguous();
}

template <typename Device>
RecurrenceParams layer_params(const LayerSizes& n, const at::Tensor& input,
                              c10::string_view nonlinearity, bool reverse,
                              c10::string_view backend) {
  RecurrenceParams p;
  p.steps = n.steps;
  p.batch = n.batch;
  p.hidden = n.hidden_size;
  p.activation = parse_activation(nonlinearity);
  p.reverse = reverse;
  p.plan = runnable_plan(Device::plan, PlanQuery{n.steps, n.batch, n.hidden_size,
                                                 input.scalar_type(), parse_backend(backend)});
  return p;
}

// Returns (output, h_n): h_t for every step, and a copy of the last processed one.
template <typename Device>
std::tuple<at::Tensor, at::Tensor> layer_forward(
    const at::Tensor& input, const at::Tensor& weight_ih, const at::Tensor& weight_hh,
    const c10::optional<at::Tensor>& bias_ih, const c10::optional<at::Tensor>& bias_hh,
    const at::Tensor& hx, const c10::optional<at::Tensor>& mask,
    const c10::optional<at::Tensor>& reset_state, c10::string_view nonlinearity, bool reverse,
    c10::string_view backend) {
  const LayerSizes n = check_layer_inputs(input, weight_ih, weight_hh, bias_ih, bias_hh, hx,
                                          mask, reset_state);
  const c10::DeviceGuard device_guard(input.device());
  // The ops pick their own precision; autocast must not recast the products inside.
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  RecurrenceParams p = layer_params<Device>(n, input, nonlinearity, reverse, backend);
  const at::Tensor x2d = input.contiguous().view({n.steps * n.batch, n.input_size});
  // Both biases ride along with the input projection, so the loop adds one term.
  at::Tensor projection = at::empty({n.steps * n.batch, n.hidden_size}, input.options());
  project_input<Device>(projection, x2d, weight_ih,
                        bias_ih.has_value() ? *bias_ih + *bias_hh : at::Tensor());
  p.out = projection.view({n.steps, n.batch, n.hidden_size});
  p.w_hh = weight_hh.contiguous();
  p.hx = hx.contiguous();
  p.mask = contiguous(mask);
  if (mask.has_value()) p.reset = reset_state->contiguous();
  // An empty batch (as nn.RNN takes) runs no step: a CUDA grid of no blocks
  // cannot launch.
  if (n.batch > 0) Device::forward(p);
  return {p.out, p.out[last_processed_step(n.steps, reverse)].clone()};
}

// Returns the gradients of input, weight_ih, weight_hh, the bias (shared by
// bias_ih and bias_hh), hx and reset_state; each one that output_mask leaves
// out (and reset_state's without a mask) is an empty tensor. grad_h_n, where
// given, adds to grad_output at the last processed step.
template <typename Device>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
layer_backward(const at::Tensor& grad_output, const c10::optional<at::Tensor>& grad_h_n,
               const at::Tensor& input, const at::Tensor& weight_ih,
               const at::Tensor& weight_hh, const at::Tensor& hx,
               const c10::optional<at::Tensor>& mask,
               const c10::optional<at::Tensor>& reset_state, const at::Tensor& output,
               c10::string_view nonlinearity, bool reverse, c10::string_view backend,
               std::array<bool, 6> output_mask) {
  const LayerSizes n = check_layer_inputs(input, weight_ih, weight_hh, c10::nullopt,
                                          c10::nullopt, hx, mask, reset_state);
  const int64_t T = n.steps, B = n.batch, H = n.hidden_size;
  check_like_input(grad_output, "grad_output", input, {T, B, H});
  check_like_input(output, "output", input, {T, B, H});
  if (grad_h_n.has_value()) check_like_input(*grad_h_n, "grad_h_n", input, {B, H});
  const c10::DeviceGuard device_guard(input.device());
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);

  RecurrenceGradParams p;
  static_cast<RecurrenceParams&>(p) =
      layer_params<Device>(n, input, nonlinearity, reverse, backend);
  p.out = output.contiguous();
  p.w_hh = weight_hh.contiguous();
  p.mask = contiguous(mask);
  p.grad_out = grad_output.contiguous();
  if (grad_h_n.has_value()) {
    p.grad_last_step = p.grad_out[last_processed_step(T, reverse)] + *grad_h_n;
  }
  p.grad_pre = at::empty({T, B, H}, p.out.options());
  // Summed over all steps, so kept in float32 for float16/bfloat16.
  const auto acc_options = p.out.options().dtype(at::toOpMathType(p.out.scalar_type()));
  p.grad_reset =
      p.mask.has_value() ? at::zeros({B, H}, acc_options) : at::empty({0}, acc_options);
  if (B > 0) Device::backward(p);

  // Each product after the loop only where its gradient is wanted: the first
  // layer's input, for one, rarely needs one (T·B×H×D, a tenth of the work at D = H/2).
  // Skipped gradients are distinct empty tensors: outputs of an op must not alias.
  const auto none = [&] { return at::empty({0}, p.out.options()); };
  const at::Tensor grad_pre_2d = p.grad_pre.view({T * B, H});
  const at::Tensor grad_input =
      output_mask[0] ? at::mm(grad_pre_2d, weight_ih).view({T, B, n.input_size}) : none();
  at::Tensor grad_weight_ih = none();
  at::Tensor grad_bias = output_mask[3] ? at::empty({H}, p.out.options()) : at::Tensor();
  if (output_mask[1]) {
    // The bias's gradient comes with W_ih's, from one pass where it can.
    grad_weight_ih = at::empty({H, n.input_size}, p.out.options());
    add_input_weight_grads<Device>(grad_pre_2d, input.contiguous().view({T * B, n.input_size}),
                                   grad_weight_ih, grad_bias, /*accumulate=*/false);
  } else if (grad_bias.defined()) {
    at::sum_out(grad_bias, grad_pre_2d, 0);
  }
  if (!grad_bias.defined()) grad_bias = none();

  // The first processed step received hx; every later one the previous step's carry.
  const int64_t first = reverse ? T - 1 : 0;
  const at::Tensor grad_hx = output_mask[4] ? at::mm(p.grad_pre[first], p.w_hh) : none();
  at::Tensor grad_weight_hh = none();
  if (output_mask[2]) {
    grad_weight_hh = at::mm(p.grad_pre[first].t(), hx);
    if (T > 1) {
      add_later_steps_grad_weight_hh(grad_weight_hh, p.grad_pre, p.out, p.mask, reset_state,
                                     reverse);
    }
  }
  return {grad_input, grad_weight_ih, grad_weight_hh, grad_bias, grad_hx,
          output_mask[5] && p.mask.has_value() ? p.grad_reset.to(p.out.scalar_type()) : none()};
}

}  // namespace rnn_fused
