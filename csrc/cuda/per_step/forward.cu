// The per-step loop's forward pass on CUDA, for every cell and dtype.
#include <ATen/Dispatch.h>

#include "steps.h"
#include "step_kernels.cuh"

namespace rnn_fused {

void CudaSteps::forward_step(const ForwardStep& s) {
  if (s.batch * s.hidden == 0) return;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, s.dtype,
                                  "rnn_fused::cuda_forward_step", [&] {
    dispatch_cell<ExactGateMath>(s.cell, [&](auto cell) {
      per_step::forward_step_kernel<scalar_t, decltype(cell)>
          <<<per_step::blocks_for(s), per_step::kThreads, 0, current_stream()>>>(s);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
}

}  // namespace rnn_fused
