// The current device's properties and stream, and zeroed counters for a
// launch, for the kernel units: they include no ATen context headers, which
// cost every unit about 25 s of host compile (nvcc's front end and the host
// compiler parse them once per unit).
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>
#include <cuda_runtime_api.h>

namespace rnn_fused {

const cudaDeviceProp& current_device_properties();

cudaStream_t current_stream();

// `count` 64-bit zeros on the current device.
at::Tensor zeroed_counters(int64_t count);

}  // namespace rnn_fused
