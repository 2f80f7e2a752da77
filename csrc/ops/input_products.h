// The products with the input weight W_ih that every family takes around its
// recurrence: the input projection, and W_ih's and the bias's gradients.
// ATen's products, except where the CPU has its own kernels for an input with
// few features (cpu/few_features.h).
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/sum.h>

#include "../cpu/few_features.h"

namespace rnn_fused {

// out [N, G·H] = x [N, D] · weight_ihᵀ, plus bias where it is defined.
inline void project_input(at::Tensor& out, const at::Tensor& x, const at::Tensor& weight_ih,
                          const at::Tensor& bias) {
  if (x.is_cpu() && few_features_apply(x.size(1), x.scalar_type())) {
    return project_few_features(out, x, weight_ih, bias);
  }
  if (bias.defined()) {
    at::addmm_out(out, bias, x, weight_ih.t());
  } else {
    at::mm_out(out, x, weight_ih.t());
  }
}

// grad_weight_ih = grad_gatesᵀ · x and, where grad_bias is defined, grad_bias =
// grad_gates summed over rows; with accumulate, added to them.
inline void add_input_weight_grads(const at::Tensor& grad_gates, const at::Tensor& x,
                                   at::Tensor& grad_weight_ih, at::Tensor& grad_bias,
                                   bool accumulate) {
  if (x.is_cpu() && few_features_apply(x.size(1), x.scalar_type())) {
    return few_features_weight_grads(grad_gates, x, grad_weight_ih, grad_bias, accumulate);
  }
  if (accumulate) {
    grad_weight_ih.addmm_(grad_gates.t(), x);
    if (grad_bias.defined()) grad_bias.add_(grad_gates.sum(0));
  } else {
    at::mm_out(grad_weight_ih, grad_gates.t(), x);
    if (grad_bias.defined()) at::sum_out(grad_bias, grad_gates, 0);
  }
}

}  // namespace rnn_fused
