// The CPU's own products with W_ih for a float32 input of at most 16 features,
// on AVX-512 (few_features.cpp; ops/input_products.h says where they run). All
// tensors contiguous.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace rnn_fused {

bool few_features_apply(int64_t features, at::ScalarType dtype);

// out [N, G·H] = x · W_ihᵀ (+ bias where defined).
void project_few_features(at::Tensor& out, const at::Tensor& x, const at::Tensor& weight_ih,
                          const at::Tensor& bias);

// grad_weight_ih = grad_gatesᵀ · x and, where grad_bias is defined, grad_bias =
// grad_gates' column sums, in one pass; added to them with accumulate.
void few_features_weight_grads(const at::Tensor& grad_gates, const at::Tensor& x,
                               at::Tensor& grad_weight_ih, at::Tensor& grad_bias,
                               bool accumulate);

}  // namespace rnn_fused
