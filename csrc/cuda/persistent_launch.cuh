// Chooses a persistent configuration (rows of W_hh per block) and launches it
// cooperatively, which guarantees that every block is resident at once (the
// grid barrier would deadlock otherwise) and can be captured in a CUDA graph.
// Included by the per-dtype .cu files.
#pragma once

#include <cstdint>
#include <cstdlib>

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>

#include "persistent_kernel.cuh"
#include "persistent_recurrence.h"

namespace rnn_fused {
namespace persistent {

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// RNN_FUSED_PERSISTENT_ROWS pins the rows per block (1, 2, 4, 8) for tuning;
// unset, launch() picks them.
inline int pinned_rows() {
  const char* value = std::getenv("RNN_FUSED_PERSISTENT_ROWS");
  if (value == nullptr || *value == '\0') return 0;
  const int rows = std::atoi(value);
  TORCH_CHECK_VALUE(rows == 1 || rows == 2 || rows == 4 || rows == 8,
                    "rnn_fused: RNN_FUSED_PERSISTENT_ROWS must be 1, 2, 4 or 8, got '", value,
                    "'");
  return rows;
}

template <typename scalar_t, int J, bool kBackward>
bool try_launch(Params<scalar_t> p) {
  using acc_t = at::opmath_type<scalar_t>;
  // A lane holds J·lane_span weights in the accumulation type: at most 64 registers.
  if constexpr (J * lane_span<acc_t>() * sizeof(acc_t) > 64 * 4) {
    return false;
  } else {
    const int64_t blocks = (p.hidden + J - 1) / J;
    if (p.batch * J > int64_t(kMaxOutputsPerThread) * kThreads) return false;
    const size_t shared = size_t(p.warps_k) * p.batch * J * sizeof(acc_t);
    const cudaDeviceProp* device = at::cuda::getCurrentDeviceProperties();
    if (shared > device->sharedMemPerBlockOptin) return false;
    auto kernel = persistent_recurrence_kernel<scalar_t, J, kBackward>;
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(shared)));
    int per_sm = 0;
    C10_CUDA_CHECK(
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, shared));
    if (blocks > int64_t(per_sm) * device->multiProcessorCount) return false;
    // Freed when this returns; the caching allocator keeps it for the kernel's
    // stream until the kernel is done.
    const at::Tensor counter = at::zeros(
        {1}, at::TensorOptions().device(at::kCUDA, at::cuda::current_device()).dtype(at::kInt));
    p.barrier = reinterpret_cast<unsigned*>(counter.data_ptr<int>());
    cudaLaunchAttribute cooperative{};
    cooperative.id = cudaLaunchAttributeCooperative;
    cooperative.val.cooperative = 1;
    cudaLaunchConfig_t config{};
    config.gridDim = dim3(static_cast<unsigned>(blocks));
    config.blockDim = dim3(kThreads);
    config.dynamicSmemBytes = shared;
    config.stream = at::cuda::getCurrentCUDAStream();
    config.attrs = &cooperative;
    config.numAttrs = 1;
    C10_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, p));
    return true;
  }
}

template <typename scalar_t, bool kBackward>
bool launch(Params<scalar_t> p) {
  constexpr int64_t kWarpSpan = warp_span<at::opmath_type<scalar_t>>();
  if (p.batch * p.hidden == 0) return true;  // nothing to compute
  if (p.hidden > kWarps * kWarpSpan) return false;
  p.warps_k = static_cast<int>((p.hidden + kWarpSpan - 1) / kWarpSpan);
  p.warps_b = kWarps / p.warps_k;
  switch (pinned_rows()) {
    case 1: return try_launch<scalar_t, 1, kBackward>(p);
    case 2: return try_launch<scalar_t, 2, kBackward>(p);
    case 4: return try_launch<scalar_t, 4, kBackward>(p);
    case 8: return try_launch<scalar_t, 8, kBackward>(p);
    default:
      // Fewer rows per block means more blocks, each reading the whole step
      // vector, and a wider barrier. On an H200 the fewest blocks (8 rows) were
      // fastest at B <= 8, the most blocks that fit at larger B.
      if (p.batch <= 8 && try_launch<scalar_t, 8, kBackward>(p)) return true;
      return try_launch<scalar_t, 1, kBackward>(p) || try_launch<scalar_t, 2, kBackward>(p) ||
             try_launch<scalar_t, 4, kBackward>(p) || try_launch<scalar_t, 8, kBackward>(p);
  }
}

template <typename scalar_t>
Params<scalar_t> common_params(const at::Tensor& out, const at::Tensor& w_hh,
                               const c10::optional<at::Tensor>& mask, Activation act,
                               bool reverse) {
  Params<scalar_t> p{};
  p.steps = out.size(0);
  p.batch = out.size(1);
  p.hidden = out.size(2);
  p.reverse = reverse;
  p.act = act;
  p.w_hh = w_hh.data_ptr<scalar_t>();
  p.out = out.data_ptr<scalar_t>();
  p.mask = mask.has_value() ? mask->data_ptr<scalar_t>() : nullptr;
  return p;
}

}  // namespace persistent

template <typename scalar_t>
bool persistent_forward(const at::Tensor& out, const at::Tensor& w_hh, const at::Tensor& hx,
                        const c10::optional<at::Tensor>& mask,
                        const c10::optional<at::Tensor>& reset, Activation act, bool reverse) {
  auto p = persistent::common_params<scalar_t>(out, w_hh, mask, act, reverse);
  p.hx = hx.data_ptr<scalar_t>();
  p.reset = mask.has_value() ? reset->data_ptr<scalar_t>() : nullptr;
  p.vector_loads = p.hidden % persistent::lane_span<at::opmath_type<scalar_t>>() == 0 &&
                   persistent::aligned16(p.out) &&
                   persistent::aligned16(p.hx) &&
                   (p.reset == nullptr || persistent::aligned16(p.reset));
  return persistent::launch<scalar_t, false>(p);
}

template <typename scalar_t>
bool persistent_backward(const at::Tensor& grad_pre, const at::Tensor& grad_reset,
                         const at::Tensor& grad_out, const at::Tensor& out,
                         const at::Tensor& w_hh, const c10::optional<at::Tensor>& mask,
                         Activation act, bool reverse) {
  auto p = persistent::common_params<scalar_t>(out, w_hh, mask, act, reverse);
  p.grad_out = grad_out.data_ptr<scalar_t>();
  p.grad_pre = grad_pre.data_ptr<scalar_t>();
  p.grad_reset = mask.has_value() ? grad_reset.data_ptr<at::opmath_type<scalar_t>>() : nullptr;
  p.vector_loads = p.hidden % persistent::lane_span<at::opmath_type<scalar_t>>() == 0 &&
                   persistent::aligned16(p.grad_pre);
  return persistent::launch<scalar_t, true>(p);
}

}  // namespace rnn_fused
