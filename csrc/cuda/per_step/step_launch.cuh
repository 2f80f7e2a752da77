// Host-side helpers shared by the per-step forward and backward loops.
#pragma once

#include <algorithm>
#include <cstdint>

#include <ATen/ATen.h>

#include "../../ops/product_into.h"
#include "step_kernels.cuh"

namespace rnn_fused {

inline dim3 step_grid(int64_t elements) {
  // Grid-stride loops: a few waves are enough to cover any B×H tile.
  return dim3(static_cast<unsigned>(
      std::min<int64_t>((elements + kStepThreads - 1) / kStepThreads, 4096)));
}

}  // namespace rnn_fused
