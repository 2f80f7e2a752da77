// CUDA's per-step family: the per-step loop (engine/per_step_loop.h) with one
// cuBLAS product and one pointwise kernel per step. 'auto' takes it where no
// one-launch kernel is verified for the call (engine/plan.h).
#include <string>

#include "../../engine/families.h"
#include "../../engine/per_step_loop.h"
#include "steps.h"

namespace rnn_fused {
namespace {

bool plan_per_step(const PlanQuery&, std::array<int, 4>&, std::string* why) {
  if (why != nullptr) {
    *why = "the per-step loop: per step one cuBLAS product with W_hh (float32 output for "
           "float16 and bfloat16) and one fused pointwise kernel";
  }
  return true;
}

}  // namespace

RNN_FUSED_REGISTER_FAMILY(cuda_per_step, "per-step", c10::DeviceType::CUDA, /*auto_order=*/100,
                          &plan_per_step, &PerStepLoop<CudaSteps>::forward,
                          &PerStepLoop<CudaSteps>::backward, "rnn_fused::cuda_forward(per-step)",
                          "rnn_fused::cuda_backward(per-step)")

}  // namespace rnn_fused
