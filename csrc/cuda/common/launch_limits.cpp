#include "launch_limits.h"

#include <map>
#include <mutex>
#include <set>
#include <tuple>
#include <utility>

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <cuda_runtime.h>

namespace rnn_fused {
namespace {

std::mutex& cache_mutex() {
  static std::mutex mutex;
  return mutex;
}

// Raises a kernel's dynamic shared-memory limit to the device's opt-in maximum,
// once per device: the limit then never changes under a launch. Clustered
// kernels also get the non-portable opt-in that clusters of 16 need (it only
// permits them). Caller holds the mutex.
void prepare_kernel(const void* kernel, int device, bool clustered) {
  static std::set<std::tuple<int, const void*, bool>> done;
  if (done.count({device, kernel, clustered}) != 0) return;
  const int optin = static_cast<int>(at::cuda::getDeviceProperties(device)->sharedMemPerBlockOptin);
  C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, optin));
  if (clustered) {
    C10_CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
  }
  done.insert({device, kernel, clustered});
}

}  // namespace

int resident_blocks_per_sm(const void* kernel, int threads, size_t shared) {
  const int device = at::cuda::current_device();
  if (shared > at::cuda::getDeviceProperties(device)->sharedMemPerBlockOptin) return 0;
  using Key = std::tuple<int, const void*, int, size_t>;
  static std::map<Key, int> cache;
  const std::lock_guard<std::mutex> lock(cache_mutex());
  const Key key{device, kernel, threads, shared};
  const auto found = cache.find(key);
  if (found != cache.end()) return found->second;
  prepare_kernel(kernel, device, /*clustered=*/false);
  int blocks = 0;
  C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, threads, shared));
  cache.emplace(key, blocks);
  return blocks;
}

int resident_clusters(const void* kernel, int threads, size_t shared, int cluster) {
  const int device = at::cuda::current_device();
  const cudaDeviceProp* properties = at::cuda::getDeviceProperties(device);
  if (properties->major < 9 || shared > properties->sharedMemPerBlockOptin) return 0;
  using Key = std::tuple<int, const void*, int, size_t, int>;
  static std::map<Key, int> cache;
  const std::lock_guard<std::mutex> lock(cache_mutex());
  const Key key{device, kernel, threads, shared, cluster};
  const auto found = cache.find(key);
  if (found != cache.end()) return found->second;
  prepare_kernel(kernel, device, /*clustered=*/true);
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeClusterDimension;
  attribute.val.clusterDim.x = static_cast<unsigned>(cluster);
  attribute.val.clusterDim.y = 1;
  attribute.val.clusterDim.z = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(cluster));
  config.blockDim = dim3(static_cast<unsigned>(threads));
  config.dynamicSmemBytes = shared;
  config.attrs = &attribute;
  config.numAttrs = 1;
  int clusters = 0;
  // An unsupported cluster shape is an answer (none fits), not an error; an
  // error that was pending before the query is left for its owner.
  const bool pending = cudaPeekAtLastError() != cudaSuccess;
  if (cudaOccupancyMaxActiveClusters(&clusters, kernel, &config) != cudaSuccess) {
    if (!pending) (void)cudaGetLastError();
    clusters = 0;
  }
  cache.emplace(key, clusters);
  return clusters;
}

}  // namespace rnn_fused
