// Argument checks of the layer ops: every violation becomes a Python
// exception that names the argument and the expected shape, dtype or device.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

#include "../engine/params.h"

namespace rnn_fused {

using OptionalTensor = c10::optional<at::Tensor>;

// The layer's sizes from its arguments, checked: weights [G·H, D] and
// [G·H, P] for the cell's G gates, biases together or not at all, states
// [B, P] and [B, H] (cx for a cell with a cell state only), a mask [T, B] with
// its reset states; P = H but for an LSTM's weight_hr [P, H].
LayerSizes check_layer_inputs(Cell cell, const at::Tensor& input, const at::Tensor& weight_ih,
                              const at::Tensor& weight_hh, const OptionalTensor& bias_ih,
                              const OptionalTensor& bias_hh, const at::Tensor& hx,
                              const OptionalTensor& cx, const OptionalTensor& mask,
                              const OptionalTensor& reset_h, const OptionalTensor& reset_c,
                              const OptionalTensor& weight_hr);

// `name` must match input's device, dtype and `sizes`.
void check_like_input(const at::Tensor& t, const char* name, const at::Tensor& input,
                      at::IntArrayRef sizes);

}  // namespace rnn_fused
