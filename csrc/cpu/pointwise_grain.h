#pragma once

#include <algorithm>
#include <cstdint>

namespace rnn_fused {

// Rows of B×H per-step pointwise work handed to one thread. A step's pointwise
// pass is tiny next to its GEMM, so it only goes parallel when a chunk is large
// enough to repay waking the thread pool.
inline int64_t pointwise_row_grain(int64_t hidden) {
  constexpr int64_t kElementsPerTask = 32768;
  return std::max<int64_t>(1, kElementsPerTask / std::max<int64_t>(1, hidden));
}

// The same for one step's pass of a cell with `gates` gates. A GRU's or LSTM's
// units cost several activations each: counting one as 16 elements (tasks from
// 2048 units) was 1.1-1.2x faster at B=64, H=64 to 512 (benchmarks/NOTES.md).
// An Elman unit costs one.
inline int64_t step_row_grain(int gates, int64_t hidden) {
  constexpr int64_t kElementsPerGatedUnit = 16;
  return pointwise_row_grain((gates == 1 ? 1 : kElementsPerGatedUnit) * hidden);
}

}  // namespace rnn_fused
