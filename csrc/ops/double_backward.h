// The Elman cells' gradients written in differentiable ATen ops, one step at a
// time: the backward that autograd records itself (create_graph=True, for double
// backward). About ten small ops a step, so far slower than the fused kernel.
#pragma once

#include <array>

#include <ATen/core/Tensor.h>

#include "../cells/activation.h"
#include "layer_op.h"

namespace rnn_fused {

// As layer_backward returns them (its 9 gradients; cx's and reset_c's empty),
// undefined where `wanted` (input, weight_ih, weight_hh) leaves one out.
// `output` is the forward's saved h_t, through which autograd reaches the
// forward again.
LayerGradients differentiable_layer_backward(
    const at::Tensor& grad_output, const OptionalTensor& grad_h_n, const at::Tensor& input,
    const at::Tensor& weight_ih, const at::Tensor& weight_hh, const at::Tensor& hx,
    const OptionalTensor& mask, const OptionalTensor& reset_state, const at::Tensor& output,
    Activation act, bool reverse, std::array<bool, 3> wanted, bool has_bias);

}  // namespace rnn_fused
