// What the one-gate (Elman) one-launch kernels leave to the host around their
// launch, for the persistent and the cluster families: the input projection
// before the forward, which the kernel turns into h_t in place; after the
// backward's pre-activation gradients, the weight gradients and h_0's.
#pragma once

#include <ATen/OpMathType.h>
#include <ATen/TensorOperators.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>
#include <c10/util/FunctionRef.h>

#include "../../engine/params.h"
#include "../../ops/input_products.h"
#include "../../ops/weight_grads.h"

namespace rnn_fused {

// launch(out): the kernel over out [T, B, H], the projection on entry.
inline ForwardResult one_gate_forward(const ForwardParams& p,
                                      c10::function_ref<void(const at::Tensor&)> launch) {
  const auto options = p.input.options();
  ForwardResult r;
  r.output = at::empty({p.steps, p.batch, p.hidden}, options);
  at::Tensor projection = r.output.view({p.steps * p.batch, p.hidden});
  project_input(projection, p.input, p.weight_ih, p.x_bias);
  if (p.batch > 0) launch(r.output);
  r.cells = at::empty({0}, options);
  r.saved = at::empty({0}, options);
  return r;
}

// launch(grad_out, grad_pre, grad_reset): the kernel; grad_out holds every
// step's gradient of h_t, the last processed step's whole.
inline void one_gate_backward(
    const BackwardParams& p, Gradients& g,
    c10::function_ref<void(const at::Tensor&, const at::Tensor&, const at::Tensor&)> launch) {
  const int64_t T = p.steps, B = p.batch, H = p.hidden;
  at::Tensor grad_out = p.grad_output;
  if (p.grad_last_h.defined()) {
    grad_out = p.grad_output.clone();
    grad_out[p.reverse ? 0 : T - 1].copy_(p.grad_last_h);
  }
  const at::Tensor grad_pre = at::empty({T, B, H}, p.output.options());
  if (B > 0) {
    launch(grad_out, grad_pre, g.reset_h.defined() ? g.reset_h : at::Tensor());
  } else {
    grad_pre.zero_();
  }
  const at::Tensor rows = grad_pre.view({T * B, H});
  add_chunk_gradients(p, g, rows, rows, 0, T, /*first=*/true, at::Tensor());
  g.hx = at::mm(grad_pre[p.reverse ? T - 1 : 0], p.w_hh);
}

}  // namespace rnn_fused
