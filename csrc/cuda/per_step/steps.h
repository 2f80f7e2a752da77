// The per-step loop's device part on CUDA (PerStepLoop's Steps,
// engine/per_step_loop.h): cuBLAS takes every product, these kernels the
// pointwise passes (forward.cu, backward.cu).
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

#include "../../engine/step.h"

namespace rnn_fused {

struct CudaSteps {
  static constexpr bool kPassTakesProduct = false;
  // cuBLAS adds the input projection's bias (addmm); the pass reads it there.
  static constexpr bool kPassAddsInputBias = false;
  // No chunks: the caching allocator reuses whole buffers, and one product per
  // weight is fastest (and accumulates in its own precision).
  static int64_t chunk_steps(int64_t steps, int64_t, int64_t) { return steps; }
  // cuBLAS takes the transposed view as a transposed operand, without a copy.
  static at::Tensor w_hh_t(const at::Tensor& weight_hh, int64_t) { return weight_hh.t(); }
  static void forward_step(const ForwardStep& s);
  static void backward_step(const BackwardStep& s);
};

}  // namespace rnn_fused
