#include "runtime.h"

#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/zeros.h>

namespace rnn_fused {

const cudaDeviceProp& current_device_properties() {
  return *at::cuda::getCurrentDeviceProperties();
}

cudaStream_t current_stream() { return at::cuda::getCurrentCUDAStream(); }

at::Tensor zeroed_counters(int64_t count) {
  return at::zeros({count}, at::TensorOptions()
                                .device(at::kCUDA, at::cuda::current_device())
                                .dtype(at::kLong));
}

}  // namespace rnn_fused
