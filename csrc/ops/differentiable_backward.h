#pragma once

#include <array>

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

#include "../cells/activation.h"
#include "layer_op.h"

namespace rnn_fused {

// The layer's gradients, as rnn_layer_backward returns them (undefined where
// `wanted` leaves one out), written in differentiable ATen ops one step at a
// time: for a backward that autograd records itself (create_graph=True, for
// double backward). About ten small ops a step, so far slower than the fused
// kernel. `output` is the forward's saved h_t, through which autograd reaches
// the forward again.
LayerGradients differentiable_layer_backward(
    const at::Tensor& grad_output, const c10::optional<at::Tensor>& grad_h_n,
    const at::Tensor& input, const at::Tensor& weight_ih,
    const at::Tensor& weight_hh, const at::Tensor& hx, const c10::optional<at::Tensor>& mask,
    const c10::optional<at::Tensor>& reset_state, const at::Tensor& output, Activation act,
    bool reverse, std::array<bool, 6> wanted);

}  // namespace rnn_fused
