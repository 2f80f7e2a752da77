// Chooses the rows of W_hh per block for the grid-barrier persistent kernel and
// launches it cooperatively (cooperative_launch.cuh). Included by the per-dtype
// .cu files.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>

#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>

#include "../common/cooperative_launch.cuh"
#include "../common/launch_limits.h"
#include "../common/runtime.h"
#include "one_gate_args.cuh"
#include "one_gate_entry_points.h"
#include "one_gate_kernel.cuh"

namespace rnn_fused {
namespace persistent {

// RNN_FUSED_PERSISTENT_ROWS pins the rows per block (1, 2, 4, 8) for tuning;
// unset, persistent_rows() picks them. Read once, as RNN_FUSED_BACKEND is.
inline int pinned_rows() {
  static const std::string value = [] {
    const char* raw = std::getenv("RNN_FUSED_PERSISTENT_ROWS");
    return std::string(raw == nullptr ? "" : raw);
  }();
  if (value.empty()) return 0;
  TORCH_CHECK_VALUE(value == "1" || value == "2" || value == "4" || value == "8",
                    "rnn_fused: RNN_FUSED_PERSISTENT_ROWS must be 1, 2, 4 or 8, got '", value,
                    "'");
  return std::stoi(value);
}

template <typename scalar_t, int J, bool kBackward>
const void* grid_kernel() {
  constexpr int L = lane_span<at::opmath_type<scalar_t>>();
  return reinterpret_cast<const void*>(&persistent_recurrence_kernel<scalar_t, J, L, kBackward,
                                                                     /*kClustered=*/false>);
}

// Blocks the grid needs beyond what the GPU holds at once: 0 where it fits.
template <typename scalar_t, int J, bool kBackward>
int64_t blocks_short(int64_t batch, int64_t hidden) {
  constexpr int L = lane_span<at::opmath_type<scalar_t>>();
  const size_t shared = shared_bytes<scalar_t, J, L>(batch, hidden);
  const int per_sm = resident_blocks_per_sm(grid_kernel<scalar_t, J, kBackward>(), kThreads,
                                            shared);
  const int64_t resident = int64_t(per_sm) * current_device_properties().multiProcessorCount;
  const int64_t blocks = (hidden + J - 1) / J;
  return blocks > resident ? blocks - resident : 0;
}

// Whether the kernel with J rows per block launches at these sizes: all its
// ceil(H / J) blocks resident at once on the current GPU.
template <typename scalar_t, int J, bool kBackward>
bool fits(int64_t batch, int64_t hidden) {
  if (batch * J > int64_t(kMaxOutputsPerThread) * kThreads) return false;
  return blocks_short<scalar_t, J, kBackward>(batch, hidden) == 0;
}

template <typename scalar_t, int J>
bool both_fit(int64_t batch, int64_t hidden) {
  return fits<scalar_t, J, false>(batch, hidden) && fits<scalar_t, J, true>(batch, hidden);
}

template <typename scalar_t>
int choose_rows(int64_t batch, int64_t hidden) {
  switch (pinned_rows()) {
    case 1: return both_fit<scalar_t, 1>(batch, hidden) ? 1 : 0;
    case 2: return both_fit<scalar_t, 2>(batch, hidden) ? 2 : 0;
    case 4: return both_fit<scalar_t, 4>(batch, hidden) ? 4 : 0;
    case 8: return both_fit<scalar_t, 8>(batch, hidden) ? 8 : 0;
    default:
      // Fewer rows per block means more blocks, each reading the whole step
      // vector, and a wider barrier. On an H200 the fewest blocks (8 rows) were
      // fastest at B <= 8, the most blocks that fit at larger B.
      if (batch <= 8 && both_fit<scalar_t, 8>(batch, hidden)) return 8;
      if (both_fit<scalar_t, 1>(batch, hidden)) return 1;
      if (both_fit<scalar_t, 2>(batch, hidden)) return 2;
      if (both_fit<scalar_t, 4>(batch, hidden)) return 4;
      if (both_fit<scalar_t, 8>(batch, hidden)) return 8;
      return 0;
  }
}

template <typename scalar_t, int J, bool kBackward>
void launch(KernelArgs<scalar_t> p) {
  constexpr int L = lane_span<at::opmath_type<scalar_t>>();
  set_layout<scalar_t, L>(p, p.batch);
  // The plan ran on this device moments ago; checked again here (cached) so
  // that a grid which cannot be all resident raises before anything starts.
  const int64_t short_by = blocks_short<scalar_t, J, kBackward>(p.batch, p.hidden);
  TORCH_CHECK_VALUE(short_by == 0, "rnn_fused: the persistent kernel needs ",
                    (p.hidden + J - 1) / J, " blocks resident at once, ", short_by,
                    " more than this GPU holds at B=", p.batch, ", H=", p.hidden);
  launch_cooperative(persistent_recurrence_kernel<scalar_t, J, L, kBackward, false>,
                     dim3(static_cast<unsigned>((p.hidden + J - 1) / J)), kThreads,
                     shared_bytes<scalar_t, J, L>(p.batch, p.hidden), p,
                     kBackward ? "persistent backward" : "persistent forward");
}

template <typename scalar_t, bool kBackward>
void launch_with_rows(KernelArgs<scalar_t> p, int rows) {
  if (p.batch * p.hidden == 0) return;  // nothing to compute
  switch (rows) {
    case 1: return launch<scalar_t, 1, kBackward>(p);
    case 2: return launch<scalar_t, 2, kBackward>(p);
    case 4: return launch<scalar_t, 4, kBackward>(p);
    case 8: return launch<scalar_t, 8, kBackward>(p);
  }
  TORCH_CHECK(false, "rnn_fused: no persistent kernel with ", rows, " rows per block");
}

}  // namespace persistent

template <typename scalar_t>
int persistent_rows(int64_t batch, int64_t hidden, std::string* why) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr int64_t kMaxHidden = persistent::kWarps * 32 * persistent::lane_span<acc_t>();
  constexpr int64_t kMaxOutputs = int64_t(persistent::kMaxOutputsPerThread) * persistent::kThreads;
  const int sms = current_device_properties().multiProcessorCount;
  int rows = 0;
  if (batch * hidden == 0) {
    rows = 1;  // nothing to launch
  } else if (hidden <= kMaxHidden) {
    rows = persistent::choose_rows<scalar_t>(batch, hidden);
  }
  if (why != nullptr) {
    const std::string sizes = "B=" + std::to_string(batch) + ", H=" + std::to_string(hidden);
    *why = rows > 0
               ? "the persistent kernel, " + std::to_string(rows) + " rows of W_hh per block: " +
                     std::to_string((hidden + rows - 1) / rows) + " blocks resident on " +
                     std::to_string(sms) + " multiprocessors"
               : "the persistent kernel does not fit " + sizes + " on this GPU (" +
                     std::to_string(sms) + " multiprocessors): its ceil(H / J) blocks of J = 1, "
                     "2, 4 or 8 rows must all be resident at once, one per multiprocessor, "
                     "with H <= " + std::to_string(kMaxHidden) + " in this dtype and B·J <= " +
                     std::to_string(kMaxOutputs);
  }
  return rows;
}

template <typename scalar_t>
void persistent_forward(const ForwardParams& p, const at::Tensor& out, int rows) {
  persistent::launch_with_rows<scalar_t, false>(persistent::forward_args<scalar_t>(p, out), rows);
}

template <typename scalar_t>
void persistent_backward(const BackwardParams& p, const at::Tensor& grad_out,
                         const at::Tensor& grad_pre, const at::Tensor& grad_reset, int rows) {
  persistent::launch_with_rows<scalar_t, true>(
      persistent::backward_args<scalar_t>(p, grad_out, grad_pre, grad_reset), rows);
}

}  // namespace rnn_fused
