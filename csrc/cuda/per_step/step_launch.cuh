// Host-side helpers shared by the per-step forward and backward loops.
#pragma once

#include <algorithm>
#include <cstdint>

#include <ATen/ATen.h>

#include "step_kernels.cuh"

namespace rnn_fused {

inline dim3 step_grid(int64_t elements) {
  // Grid-stride loops: a few waves are enough to cover any B×H tile.
  return dim3(static_cast<unsigned>(
      std::min<int64_t>((elements + kStepThreads - 1) / kStepThreads, 4096)));
}

// out = a·b. For float16/bfloat16 inputs `out` is float32: cuBLAS accumulates in
// float32 and the sum is not rounded to 8 or 11 bits before the epilogue.
inline void mm_into(at::Tensor& out, const at::Tensor& a, const at::Tensor& b) {
  if (out.scalar_type() == a.scalar_type()) {
    at::mm_out(out, a, b);
  } else {
    at::mm_out(out, a, b, out.scalar_type());
  }
}

}  // namespace rnn_fused
