// The CUDA recurrence: the plan (cuda/plan.cpp) picks the per-step loop
// (per_step/), the persistent kernel (persistent/), the cluster kernel
// (cluster/) or the tiled cluster kernel (tiled/) for each call.
#pragma once

#include <string>

#include "../engine/gated_recurrence.h"
#include "../engine/gated_step.h"
#include "../engine/params.h"

namespace rnn_fused {

struct CudaRecurrence {
  static Plan plan(const PlanQuery& query, std::string* why) { return plan_cuda(query, why); }
  static Plan plan_gated(const PlanQuery& query, GatedCell cell, std::string* why) {
    return plan_cuda_gated(query, cell, why);
  }
  static void forward(const RecurrenceParams& p);
  static void backward(const RecurrenceGradParams& p);
  // The pointwise pass of one GRU or LSTM step (the loop is csrc/ops/gated_layer.h),
  // after the loop's cuBLAS product.
  static constexpr bool kPassTakesProduct = false;
  // cuBLAS adds the input projection's bias (addmm); the pass reads it there.
  static constexpr bool kPassAddsInputBias = false;
  // cuBLAS takes every product with W_ih (ops/input_products.h).
  static constexpr bool kFewFeatureProducts = false;
  // cuBLAS takes the transposed view as a transposed operand, without a copy.
  static at::Tensor gated_w_hh_t(const at::Tensor& weight_hh, int64_t) {
    return weight_hh.t();
  }
  // No chunks: the caching allocator reuses whole buffers, and one product per
  // weight is fastest (and accumulates in its own precision).
  static int64_t gated_chunk_steps(int64_t steps, int64_t, int64_t) { return steps; }
  // As CpuRecurrence::blend_carries, in ATen ops.
  static void blend_carries(at::Tensor& target, const at::Tensor& values,
                            const at::Tensor& mask, const at::Tensor& reset);
  static void gated_forward_step(const GatedForwardStep& s);
  static void gated_backward_step(const GatedBackwardStep& s);
  // The gated layer's whole recurrence in one launch, where the plan says
  // Path::CudaPersistent (gated_persistent/).
  static constexpr bool kGatedPersistent = true;
  static void gated_persistent_forward(const GatedRecurrenceForward& p);
  static void gated_persistent_backward(const GatedRecurrenceBackward& p);
};

}  // namespace rnn_fused
