// The CUDA recurrence: the plan (cuda/plan.cpp) picks the per-step loop
// (per_step/) or the persistent kernel (persistent/) for each call.
#pragma once

#include <string>

#include "../engine/params.h"

namespace rnn_fused {

struct CudaRecurrence {
  static Plan plan(const PlanQuery& query, std::string* why) { return plan_cuda(query, why); }
  static void forward(const RecurrenceParams& p);
  static void backward(const RecurrenceGradParams& p);
};

}  // namespace rnn_fused
