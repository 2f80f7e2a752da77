#include <ATen/Dispatch.h>

#include "../recurrence.h"
#include "step_kernels.cuh"

namespace rnn_fused {

void CudaRecurrence::gated_forward_step(const GatedForwardStep& s) {
  if (s.batch * s.hidden == 0) return;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, s.dtype,
                                  "rnn_fused::cuda_gated_forward_step", [&] {
    dispatch_gated_cell<ExactGateMath>(s.cell, [&](auto cell) {
      gated::forward_step_kernel<scalar_t, decltype(cell)>
          <<<gated::blocks_for(s), gated::kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(s);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
}

}  // namespace rnn_fused
