// Host entry points of the cluster recurrence (cluster/launch.cuh over
// persistent/kernel.cuh), one instantiation per dtype in <dtype>.cu.
#pragma once

#include <cstdint>
#include <string>

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "../../engine/params.h"

namespace rnn_fused {

// The rows of W_hh per block (8, 16 or 32; 64 for float16 and bfloat16) with
// which both the forward and the backward cluster kernel launch at these sizes
// on the current GPU, or 0 where none does; `why`, when given, receives the
// reason either way. tf32: float32's product on TF32 tensor cores.
template <typename scalar_t>
int cluster_rows(int64_t batch, int64_t hidden, bool tf32, std::string* why);

// Run with p.plan.rows_per_block, a count cluster_rows returned, and
// p.plan.tf32.
template <typename scalar_t>
void cluster_forward(const RecurrenceParams& p);
template <typename scalar_t>
void cluster_backward(const RecurrenceGradParams& p);

#define RNN_FUSED_CLUSTER_ENTRY_POINTS(prefix, T)                         \
  prefix template int cluster_rows<T>(int64_t, int64_t, bool, std::string*); \
  prefix template void cluster_forward<T>(const RecurrenceParams&);       \
  prefix template void cluster_backward<T>(const RecurrenceGradParams&);
RNN_FUSED_CLUSTER_ENTRY_POINTS(extern, float)
RNN_FUSED_CLUSTER_ENTRY_POINTS(extern, double)
RNN_FUSED_CLUSTER_ENTRY_POINTS(extern, c10::Half)
RNN_FUSED_CLUSTER_ENTRY_POINTS(extern, c10::BFloat16)

}  // namespace rnn_fused
