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
// once per device: the limit then never changes under a launch. Caller holds
// the mutex.
void allow_all_shared_memory(const void* kernel, int device) {
  static std::set<std::pair<int, const void*>> done;
  if (!done.insert({device, kernel}).second) return;
  const int optin = static_cast<int>(at::cuda::getDeviceProperties(device)->sharedMemPerBlockOptin);
  C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, optin));
  // Clusters of 16 need the non-portable opt-in; it only permits them.
  C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1));
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
  allow_all_shared_memory(kernel, device);
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
  allow_all_shared_memory(kernel, device);
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
  // An unsupported cluster shape is an answer (none fits), not an error.
  if (cudaOccupancyMaxActiveClusters(&clusters, kernel, &config) != cudaSuccess) {
    (void)cudaGetLastError();
    clusters = 0;
  }
  cache.emplace(key, clusters);
  return clusters;
}

}  // namespace rnn_fused
