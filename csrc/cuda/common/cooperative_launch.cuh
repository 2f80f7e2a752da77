// One cooperative launch of a kernel whose blocks wait for each other across
// the grid: every block resident at once (the waits would deadlock
// otherwise), on the current stream, so that it can be captured in CUDA
// graphs; then the watchdog's check (../watchdog.h). Shared by the Elman and
// the gated persistent launchers and the tiled cluster launcher.
#pragma once

#include <string>
#include <type_traits>

#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>

#include "runtime.h"
#include "watchdog.h"

namespace rnn_fused {
namespace device {

constexpr int64_t kAbortRecordWords = sizeof(AbortRecord) / sizeof(int64_t);

// Launches kernel(args) on a grid of `grid` blocks of `threads`, in clusters
// of `cluster` blocks along x where cluster > 0 (a clustered kernel's
// barrier.cluster and mapa need the attribute even for clusters of 1), with
// `counters` fresh zeroed 64-bit counters at args.barrier and the watchdog at
// args.watchdog; raises where the watchdog stopped the launch, naming it
// `kernel`. The caller has checked residency.
template <typename Kernel, typename Args>
void launch_cooperative(Kernel kernel, dim3 grid, int threads, size_t shared, Args args,
                        const char* name, int64_t counters = 1, unsigned cluster = 0) {
  using scalar_t = std::remove_cv_t<std::remove_pointer_t<decltype(args.w_hh)>>;
  // Freed when this returns; the caching allocator keeps it for the kernel's
  // stream until the kernel is done.
  const at::Tensor counter = zeroed_counters(counters + kAbortRecordWords);
  args.barrier = reinterpret_cast<unsigned long long*>(counter.data_ptr<int64_t>());
  args.watchdog = current_watchdog(reinterpret_cast<AbortRecord*>(args.barrier + counters));
  cudaLaunchAttribute attributes[2]{};
  attributes[0].id = cudaLaunchAttributeCooperative;
  attributes[0].val.cooperative = 1;
  attributes[1].id = cudaLaunchAttributeClusterDimension;
  attributes[1].val.clusterDim.x = cluster;
  attributes[1].val.clusterDim.y = 1;
  attributes[1].val.clusterDim.z = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = dim3(threads);
  config.dynamicSmemBytes = shared;
  config.stream = current_stream();
  config.attrs = attributes;
  config.numAttrs = cluster > 0 ? 2 : 1;
  C10_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, args));
  check_watchdog(counter.narrow(0, counters, kAbortRecordWords), name, args.steps, args.batch,
                 args.hidden, c10::CppTypeToScalarType<scalar_t>::value);
}

}  // namespace device
}  // namespace rnn_fused
