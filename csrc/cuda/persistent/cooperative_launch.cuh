// One cooperative launch of a grid-barrier kernel: every block resident at
// once (the barrier would deadlock otherwise), on the current stream, so that
// it can be captured in CUDA graphs. Shared by the Elman and the gated
// persistent launchers.
#pragma once

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>

namespace rnn_fused {
namespace persistent {

// Launches kernel(args) on `blocks` blocks of `threads`, with a fresh zeroed
// barrier counter in args.barrier. The caller has checked residency.
template <typename Kernel, typename Args>
void launch_cooperative(Kernel kernel, int64_t blocks, int threads, size_t shared, Args args) {
  // Freed when this returns; the caching allocator keeps it for the kernel's
  // stream until the kernel is done.
  const at::Tensor counter = at::zeros(
      {1}, at::TensorOptions().device(at::kCUDA, at::cuda::current_device()).dtype(at::kLong));
  args.barrier = reinterpret_cast<unsigned long long*>(counter.data_ptr<int64_t>());
  cudaLaunchAttribute cooperative{};
  cooperative.id = cudaLaunchAttributeCooperative;
  cooperative.val.cooperative = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(blocks));
  config.blockDim = dim3(threads);
  config.dynamicSmemBytes = shared;
  config.stream = at::cuda::getCurrentCUDAStream();
  config.attrs = &cooperative;
  config.numAttrs = 1;
  C10_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, args));
}

}  // namespace persistent
}  // namespace rnn_fused
