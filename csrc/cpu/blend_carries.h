// The CPU's rebuild of a masked recurrence's carries for the backward.
#pragma once

#include <ATen/core/Tensor.h>

namespace rnn_fused {

// target [T', B, H] = mask·values + (1 − mask)·reset row by row (mask [T', B],
// reset [B, H], or [T', B, H] per row); a row with mask 1 is its value as it
// is, even against an infinite reset state.
void blend_carries_cpu(at::Tensor& target, const at::Tensor& values, const at::Tensor& mask,
                       const at::Tensor& reset);

}  // namespace rnn_fused
