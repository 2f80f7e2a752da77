// A gated layer's whole recurrence (GRU, LSTM; one layer, one direction) as a
// device takes it in one call: CUDA's persistent kernel runs every step in one
// launch (csrc/cuda/gated_persistent/). Raw pointers into the layer's tensors,
// as in gated_step.h; time-major, contiguous, of the input's dtype except the
// reset gradients. The loop in csrc/ops/gated_layer.h does everything around
// it: the input projection before, and after the backward, h_0's product with
// W_hh and the weight gradients.
#pragma once

#include <cstdint>

#include "gated_step.h"

namespace rnn_fused {

struct GatedRecurrence : GatedStepSizes {
  int64_t steps;
  bool reverse;
  int units_per_block;  // Plan::rows_per_block: hidden units per block
  const void* w_hh;     // [G·H, H]
  const void* mask;     // [T, B], or null: nothing resets
};

struct GatedRecurrenceForward : GatedRecurrence {
  // [T, B, G·H]: the input projection plus the biases that ride with it (as in
  // GatedForwardStep). The LSTM's saved gates overwrite it (saved == x_gates).
  const void* x_gates;
  const void* h_bias;  // [H], GRU only: b_hn
  const void* hx;      // [B, H]
  const void* cx;      // [B, H], LSTM only
  const void* reset_h;  // [B, H], with a mask
  const void* reset_c;
  // Written: h_t and c_t [T, B, H], the saved gates [T, B, 4·H], and scratch
  // [2, B, H] for the carried state that every block reads at the next step.
  void* output;
  void* cells;
  void* saved;
  void* carries;
};

struct GatedRecurrenceBackward : GatedRecurrence {
  const void* grad_output;  // [T, B, H]
  // [B, H] or null: where given, the whole gradient of the last processed h_t
  // (grad_output there plus h_n's), read instead of grad_output at that step.
  const void* grad_last_h;
  // LSTM: c_t's own gradients [T, B, H] or null (none), and as grad_last_h,
  // the last processed c_t's whole gradient [B, H] or null.
  const void* grad_cells;
  const void* grad_last_c;
  const void* saved;   // [T, B, 4·H]
  const void* cells;   // [T, B, H], LSTM only
  const void* h_read;  // [T, B, H]: the state each step read
  const void* c_read;
  // Written: the gate pre-activations' gradients [T, B, G·H], input side and
  // hidden side (the LSTM's are one: grad_h_gates == grad_x_gates).
  void* grad_x_gates;
  void* grad_h_gates;
  // Written, [B, H]: at the first processed step, the share of h_0's gradient
  // that bypasses W_hh (GRU; zeros for the LSTM) and c_0's whole gradient.
  void* grad_h_first;
  void* grad_c_first;
  // Written with a mask, [B, H] in the accumulation type: Σ_t (1 − mask_t)·the
  // gradient carried into step t + 1.
  void* grad_reset_h;
  void* grad_reset_c;
};

}  // namespace rnn_fused
