// Host entry points of the persistent GRU/LSTM recurrence (kernel.cuh,
// launch.cuh), one instantiation per dtype in <dtype>.cu so that the dtypes
// compile in parallel.
#pragma once

#include <cstdint>
#include <string>

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "../../engine/gated_recurrence.h"

namespace rnn_fused {

// The hidden units per block (1, 2 or 4) that both the forward and the backward
// kernel of `cell` launch with at these sizes on the current GPU, or 0 where no
// count fits; `why`, when given, receives the reason either way.
template <typename scalar_t>
int gated_persistent_units(GatedCell cell, int64_t batch, int64_t hidden, std::string* why);

// Run with p.units_per_block, a count gated_persistent_units returned.
template <typename scalar_t>
void gated_persistent_forward(const GatedRecurrenceForward& p);
template <typename scalar_t>
void gated_persistent_backward(const GatedRecurrenceBackward& p);

// The three entry points for dtype T, as `extern` declarations here (prefix
// extern) and as explicit instantiations in <dtype>.cu (no prefix).
#define RNN_FUSED_GATED_PERSISTENT_ENTRY_POINTS(prefix, T)                                  \
  prefix template int gated_persistent_units<T>(GatedCell, int64_t, int64_t, std::string*); \
  prefix template void gated_persistent_forward<T>(const GatedRecurrenceForward&);          \
  prefix template void gated_persistent_backward<T>(const GatedRecurrenceBackward&);
RNN_FUSED_GATED_PERSISTENT_ENTRY_POINTS(extern, float)
RNN_FUSED_GATED_PERSISTENT_ENTRY_POINTS(extern, double)
RNN_FUSED_GATED_PERSISTENT_ENTRY_POINTS(extern, c10::Half)
RNN_FUSED_GATED_PERSISTENT_ENTRY_POINTS(extern, c10::BFloat16)

}  // namespace rnn_fused
