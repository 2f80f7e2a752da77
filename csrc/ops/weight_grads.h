// The backward's products outside the time loop, a chunk of steps at a time
// (the whole sequence for the one-launch kernels): from the chunk's gate
// gradients, the input's gradient and the gradients of W_ih, W_hh and the
// biases. Every family's backward calls it once per chunk.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

#include "../engine/params.h"

namespace rnn_fused {

// Allocates the gradients `p` asks for (Gradients' conventions; the reset
// states' zeroed, since the loops add to them).
Gradients allocate_gradients(const BackwardParams& p);

// The states the steps [t0, t0 + steps) read (times, not processing order),
// [steps, B, H]: the first processed step's `first`, every other one its
// predecessor's carry mask·values + (1 − mask)·reset, reset [B, H] or per step
// [T, B, H] (Device-independent; a row with mask 1 is its value as it is, even
// against an infinite reset).
at::Tensor states_read(const at::Tensor& values, const at::Tensor& first, const at::Tensor& mask,
                       const at::Tensor& reset, bool reverse, int64_t t0, int64_t steps);

// Adds the chunk's share: grad_x_gates and grad_h_gates are the gate gradients
// of times [t0, t0 + steps), [steps·B, G·H] (the same tensor where the cell's
// two sides share one). h_read, where defined, holds the states those steps
// read; else W_hh's gradient rebuilds them from the outputs. The first chunk
// processed writes the sums, the others add to them.
void add_chunk_gradients(const BackwardParams& p, Gradients& g, const at::Tensor& grad_x_gates,
                         const at::Tensor& grad_h_gates, int64_t t0, int64_t steps, bool first,
                         const at::Tensor& h_read);

}  // namespace rnn_fused
