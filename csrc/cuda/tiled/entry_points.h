// Host entry points of the tiled cluster recurrence (tiled/launch.cuh over
// tiled/kernel.cuh), for float32 and float64, one per dtype in <dtype>.cu.
#pragma once

#include <cstdint>
#include <string>

#include "../../engine/params.h"

namespace rnn_fused {

// The columns of W_hh per block (64 or 128) with which both the forward and
// the backward tiled kernel launch at these sizes on the current GPU, or 0
// where no width fits both; `why`, when given, receives the reason either
// way. B·H > 0: the cluster kernel takes B·H = 0.
template <typename scalar_t>
int tiled_columns(int64_t batch, int64_t hidden, std::string* why);

// Run with p.plan.tile_columns, a count tiled_columns returned.
template <typename scalar_t>
void tiled_forward(const RecurrenceParams& p);
template <typename scalar_t>
void tiled_backward(const RecurrenceGradParams& p);

#define RNN_FUSED_TILED_ENTRY_POINTS(prefix, T)                              \
  prefix template int tiled_columns<T>(int64_t, int64_t, std::string*);      \
  prefix template void tiled_forward<T>(const RecurrenceParams&);            \
  prefix template void tiled_backward<T>(const RecurrenceGradParams&);
RNN_FUSED_TILED_ENTRY_POINTS(extern, float)
RNN_FUSED_TILED_ENTRY_POINTS(extern, double)

}  // namespace rnn_fused
