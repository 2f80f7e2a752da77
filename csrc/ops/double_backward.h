// A layer's gradients as autograd records them, for a gradient of the gradients
// (create_graph=True), written in differentiable ATen ops; slower than the
// fused backward, which runs otherwise.
#pragma once

#include <array>

#include <ATen/core/Tensor.h>

#include "../cells/activation.h"
#include "../cells/registry.h"
#include "layer_op.h"

namespace rnn_fused {

// A layer call's tensor arguments, as the forward took them (undefined where
// absent).
struct LayerArguments {
  at::Tensor input, weight_ih, weight_hh, bias_ih, bias_hh, hx, cx, mask, reset_h, reset_c,
      weight_hr;
};

// Any cell: the layer's forward recomputed one step at a time from the cell's
// own step (cells/*.h on TensorValue, tensor_value.h), then differentiated with
// create_graph.
// The gradients of the forward's output, h_n, c_n and cells (undefined where
// none reached them); `wanted`: input, weight_ih, weight_hh, bias_ih, bias_hh,
// hx, cx, reset_h, reset_c, weight_hr, in LayerGradients' order. Returns those gradients,
// undefined where not wanted or where the argument does not reach the outputs.
LayerGradients differentiable_layer_backward(const LayerArguments& args, Cell cell,
                                             bool reverse,
                                             const std::array<at::Tensor, 4>& grad_outputs,
                                             const std::array<bool, 10>& wanted);

// The Elman cells' gradients from the saved outputs alone (φ' is a function of
// h_t), about five ops a step and no second forward: 3.5x faster than the
// recomputation at T=256 (benchmarks/NOTES.md). As layer_backward returns
// them (cx's and reset_c's empty), undefined where `wanted` (input, weight_ih,
// weight_hh) leaves one out. `output` is the forward's saved h_t, through
// which autograd reaches the forward again.
LayerGradients differentiable_elman_backward(
    const at::Tensor& grad_output, const OptionalTensor& grad_h_n, const at::Tensor& input,
    const at::Tensor& weight_ih, const at::Tensor& weight_hh, const at::Tensor& hx,
    const OptionalTensor& mask, const OptionalTensor& reset_state, const at::Tensor& output,
    Activation act, bool reverse, std::array<bool, 3> wanted, bool has_bias);

}  // namespace rnn_fused
