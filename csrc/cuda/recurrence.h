// The CUDA recurrence: the plan (cuda/plan.cpp) picks the per-step loop
// (per_step/) or the persistent kernel (persistent/) for each call.
#pragma once

#include <string>

#include "../engine/gated_step.h"
#include "../engine/params.h"

namespace rnn_fused {

struct CudaRecurrence {
  static Plan plan(const PlanQuery& query, std::string* why) { return plan_cuda(query, why); }
  static void forward(const RecurrenceParams& p);
  static void backward(const RecurrenceGradParams& p);
  // The pointwise pass of one GRU or LSTM step (the loop is csrc/ops/gated_layer.h),
  // after the loop's cuBLAS product.
  static bool gated_product_in_step(const GatedStepSizes&) { return false; }
  static void gated_forward_step(const GatedForwardStep& s);
  static void gated_backward_step(const GatedBackwardStep& s);
};

}  // namespace rnn_fused
