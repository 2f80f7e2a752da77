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

}  // namespace rnn_fused
