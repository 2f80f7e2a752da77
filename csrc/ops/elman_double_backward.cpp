// The Elman cells' differentiable backward, from the saved outputs (double_backward.h).
#include "double_backward.h"

#include <vector>

#include <ATen/TensorOperators.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/ones_like.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/zeros_like.h>

namespace rnn_fused {
namespace {

at::Tensor activation_grad(Activation act, const at::Tensor& h) {
  switch (act) {
    case Activation::Tanh: return 1 - h * h;
    case Activation::Relu: return (h > 0).to(h.scalar_type());
    case Activation::Identity: return at::ones_like(h);
  }
  TORCH_CHECK(false, "rnn_fused: unhandled activation");
}

}  // namespace

LayerGradients differentiable_elman_backward(
    const at::Tensor& grad_output, const OptionalTensor& grad_h_n, const at::Tensor& input,
    const at::Tensor& weight_ih, const at::Tensor& weight_hh, const at::Tensor& hx,
    const OptionalTensor& mask, const OptionalTensor& reset_state, const at::Tensor& output,
    Activation act, bool reverse, std::array<bool, 3> wanted, bool has_bias) {
  const int64_t T = output.size(0), B = output.size(1), H = output.size(2);
  const int64_t D = input.size(2);
  // [T, B, 1]: the mask applied after each step.
  const at::Tensor m = mask.has_value() ? mask->unsqueeze(-1) : at::Tensor();
  // Per-step slices through one unbind each: indexing step by step would make
  // the double backward fill a [T, B, H] gradient for every step.
  const std::vector<at::Tensor> grad_out_t = grad_output.unbind(0);
  const std::vector<at::Tensor> phi_grad_t = activation_grad(act, output).unbind(0);
  const std::vector<at::Tensor> m_t = m.defined() ? m.unbind(0) : std::vector<at::Tensor>();
  // Reset states per step [T, B, H] get a gradient per step.
  const bool per_step = reset_state.has_value() && reset_state->dim() == 3;
  std::vector<at::Tensor> grad_reset_t(per_step ? T : 0);

  // Backward through time in reverse processing order; dcarry is the gradient
  // reaching the carry that step t handed on.
  std::vector<at::Tensor> grad_pre(T);
  at::Tensor dcarry, grad_reset_sum;
  for (int64_t s = T - 1; s >= 0; --s) {
    const int64_t t = reverse ? T - 1 - s : s;
    at::Tensor dh = grad_out_t[t];
    if (s == T - 1 && grad_h_n.has_value()) dh = dh + *grad_h_n;
    if (dcarry.defined()) {
      if (m.defined()) {
        dh = dh + m_t[t] * dcarry;
        const at::Tensor to_reset = (1 - m_t[t]) * dcarry;
        if (per_step) {
          grad_reset_t[t] = to_reset;
        } else {
          grad_reset_sum = grad_reset_sum.defined() ? grad_reset_sum + to_reset : to_reset;
        }
      } else {
        dh = dh + dcarry;
      }
    }
    grad_pre[t] = dh * phi_grad_t[t];
    if (s > 0) dcarry = at::mm(grad_pre[t], weight_hh);
  }
  const at::Tensor dpre = at::stack(grad_pre);
  const at::Tensor dpre_2d = dpre.view({T * B, H});

  at::Tensor grad_input, grad_weight_ih, grad_weight_hh, grad_bias_ih, grad_bias_hh;
  if (wanted[0]) grad_input = at::mm(dpre_2d, weight_ih).view({T, B, D});
  if (wanted[1]) grad_weight_ih = at::mm(dpre_2d.t(), input.reshape({T * B, D}));
  if (has_bias) {
    grad_bias_ih = dpre_2d.sum(0);
    grad_bias_hh = dpre_2d.sum(0);
  }
  const int64_t first = reverse ? T - 1 : 0;
  const at::Tensor grad_hx = at::mm(dpre[first], weight_hh);
  if (wanted[2]) {
    grad_weight_hh = at::mm(dpre[first].t(), hx);
    if (T > 1) {
      // Step t's previous carry is at t − 1 (forward) or t + 1 (reverse).
      const int64_t first_later = reverse ? 0 : 1, first_prev = reverse ? 1 : 0;
      at::Tensor carries = output.narrow(0, first_prev, T - 1);
      if (m.defined()) {
        const at::Tensor kept = m.narrow(0, first_prev, T - 1);
        const at::Tensor reset =
            per_step ? reset_state->narrow(0, first_prev, T - 1) : *reset_state;
        carries = kept * carries + (1 - kept) * reset;
      }
      grad_weight_hh = grad_weight_hh +
                       at::mm(dpre.narrow(0, first_later, T - 1).reshape({(T - 1) * B, H}).t(),
                              carries.reshape({(T - 1) * B, H}));
    }
  }
  at::Tensor grad_reset;
  if (per_step) {
    // The last processed step's carry goes nowhere.
    for (at::Tensor& g : grad_reset_t) {
      if (!g.defined()) g = at::zeros_like(hx);
    }
    grad_reset = at::stack(grad_reset_t);
  } else if (m.defined()) {
    grad_reset = grad_reset_sum.defined() ? grad_reset_sum : at::zeros_like(hx);
  }
  return {grad_input, grad_weight_ih, grad_weight_hh, grad_bias_ih, grad_bias_hh, grad_hx,
          at::Tensor(), grad_reset, at::Tensor(), at::Tensor()};
}

}  // namespace rnn_fused
