// Host entry points of the persistent GRU/LSTM recurrence (gated_kernel.cuh,
// gated_launch.cuh), one instantiation per dtype in gated_<dtype>.cu so that
// the dtypes compile in parallel.
#pragma once

#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "../../engine/params.h"

namespace rnn_fused {

// What the forward writes beside its arguments: h_t and c_t [T, B, H], the
// saved gates [T, B, 4·H] (the LSTM's overwrite x_gates, its projection), and
// scratch [2, B, H] for the carried state every block reads at the next step.
struct GatedForwardBuffers {
  at::Tensor x_gates, output, cells, saved, carries;
};

// The backward's: the states each step read [T, B, H] (h for the GRU, c for
// the LSTM), and, written, the gate gradients [T, B, G·H] (input side and
// hidden side: one tensor for the LSTM), h_0's share that bypasses W_hh and
// c_0's gradient [B, H], and the reset states' [B, H] in the accumulation type.
struct GatedBackwardBuffers {
  at::Tensor grad_output, h_read, c_read, grad_x_gates, grad_h_gates, grad_h_first,
      grad_c_first, grad_reset_h, grad_reset_c;
};

// The hidden units per block (1, 2 or 4) that both the forward and the backward
// kernel of `cell` (GRU or LSTM) launch with at these sizes on the current GPU,
// or 0 where no count fits; `why`, when given, receives the reason either way.
template <typename scalar_t>
int gated_persistent_units(Cell cell, int64_t batch, int64_t hidden, std::string* why);

// With `units`, a count gated_persistent_units returned.
template <typename scalar_t>
void gated_persistent_forward(const ForwardParams& p, const GatedForwardBuffers& b, int units);
template <typename scalar_t>
void gated_persistent_backward(const BackwardParams& p, const GatedBackwardBuffers& b,
                               int units);

// The three entry points for dtype T, as `extern` declarations here (prefix
// extern) and as explicit instantiations in gated_<dtype>.cu (no prefix).
#define RNN_FUSED_GATED_PERSISTENT_ENTRY_POINTS(prefix, T)                                   \
  prefix template int gated_persistent_units<T>(Cell, int64_t, int64_t, std::string*);       \
  prefix template void gated_persistent_forward<T>(const ForwardParams&,                     \
                                                   const GatedForwardBuffers&, int);         \
  prefix template void gated_persistent_backward<T>(const BackwardParams&,                   \
                                                    const GatedBackwardBuffers&, int);
RNN_FUSED_GATED_PERSISTENT_ENTRY_POINTS(extern, float)
RNN_FUSED_GATED_PERSISTENT_ENTRY_POINTS(extern, double)
RNN_FUSED_GATED_PERSISTENT_ENTRY_POINTS(extern, c10::Half)
RNN_FUSED_GATED_PERSISTENT_ENTRY_POINTS(extern, c10::BFloat16)

}  // namespace rnn_fused
