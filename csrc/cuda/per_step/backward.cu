// The per-step loop's backward pass on CUDA, for every cell and dtype.
#include <ATen/Dispatch.h>

#include "steps.h"
#include "step_kernels.cuh"

namespace rnn_fused {

void CudaSteps::backward_step(const BackwardStep& s) {
  if (s.batch * s.hidden == 0) return;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, s.dtype,
                                  "rnn_fused::cuda_backward_step", [&] {
    dispatch_cell<ExactGateMath>(s.cell, [&](auto cell) {
      per_step::backward_step_kernel<scalar_t, decltype(cell)>
          <<<per_step::blocks_for(s), per_step::kThreads, 0, current_stream()>>>(s);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
}

}  // namespace rnn_fused
