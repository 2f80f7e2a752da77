// Argument checks of the layer ops: every violation becomes a Python
// exception that names the argument and the expected shape, dtype or device.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

namespace rnn_fused {

struct LayerSizes {
  int64_t steps, batch, input_size, hidden_size;
};

// `gates` rows per hidden unit in the weights and biases: 1 (Elman), 3 (GRU),
// 4 (LSTM).
LayerSizes check_layer_inputs(const at::Tensor& input, const at::Tensor& weight_ih,
                              const at::Tensor& weight_hh,
                              const c10::optional<at::Tensor>& bias_ih,
                              const c10::optional<at::Tensor>& bias_hh,
                              const at::Tensor& hx,
                              const c10::optional<at::Tensor>& mask,
                              const c10::optional<at::Tensor>& reset_state,
                              int64_t gates = 1);

// `name` must match input's device, dtype and `sizes`.
void check_like_input(const at::Tensor& t, const char* name, const at::Tensor& input,
                      at::IntArrayRef sizes);

}  // namespace rnn_fused
