// The recurrence of one layer in one direction, as every device and path takes
// it: each one is an entry point run(params). Everything parallel over time (the
// input projection, the weight gradients) happens around it in csrc/ops/layer.h.
//
// Time-major; every tensor contiguous and of the input's dtype except
// grad_reset. "Processing order" is t = 0..T-1, or T-1..0 when `reverse`.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

#include "../cells/activation.h"
#include "plan.h"

namespace rnn_fused {

struct RecurrenceParams {
  int64_t steps, batch, hidden;
  Activation activation;
  bool reverse;
  Plan plan;
  // [T, B, H]. Forward: the input projection plus both biases on entry, h_t on
  // exit. Backward: h_t.
  at::Tensor out;
  at::Tensor w_hh;  // [H, H]
  at::Tensor hx;    // [B, H]; forward only
  // [T, B]: after step t the next step receives mask[t]·h_t + (1 − mask[t])·reset.
  c10::optional<at::Tensor> mask;
  c10::optional<at::Tensor> reset;  // [B, H]; forward only, with a mask
};

struct RecurrenceGradParams : RecurrenceParams {
  at::Tensor grad_out;  // [T, B, H]
  // [B, H]: where given, the gradient reaching the last processed step's h_t
  // (grad_out there plus h_n's), read instead of grad_out at that step.
  c10::optional<at::Tensor> grad_last_step;
  at::Tensor grad_pre;  // [T, B, H], written: the pre-activations' gradient
  // [B, H] in the accumulation type (float32 for half types), zeroed by the
  // caller: the reset state's gradient, summed over the steps. Mask only.
  at::Tensor grad_reset;
};

}  // namespace rnn_fused
