// Chooses the rows of W_hh per block for the persistent kernel and launches it
// cooperatively, which guarantees that every block is resident at once (the
// grid barrier would deadlock otherwise) and can be captured in a CUDA graph.
// Included by the per-dtype .cu files.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>

#include "entry_points.h"
#include "kernel.cuh"

namespace rnn_fused {
namespace persistent {

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// RNN_FUSED_PERSISTENT_ROWS pins the rows per block (1, 2, 4, 8) for tuning;
// unset, persistent_rows() picks them. Read once, as RNN_FUSED_BACKEND is.
inline int pinned_rows() {
  static const std::string value = [] {
    const char* raw = std::getenv("RNN_FUSED_PERSISTENT_ROWS");
    return std::string(raw == nullptr ? "" : raw);
  }();
  if (value.empty()) return 0;
  TORCH_CHECK_VALUE(value == "1" || value == "2" || value == "4" || value == "8",
                    "rnn_fused: RNN_FUSED_PERSISTENT_ROWS must be 1, 2, 4 or 8, got '", value,
                    "'");
  return std::stoi(value);
}

template <typename scalar_t>
int warps_k(int64_t hidden) {
  constexpr int64_t kWarpSpan = warp_span<at::opmath_type<scalar_t>>();
  return static_cast<int>((hidden + kWarpSpan - 1) / kWarpSpan);
}

template <typename scalar_t, int J>
size_t shared_bytes(int64_t batch, int64_t hidden) {
  return size_t(warps_k<scalar_t>(hidden)) * batch * J * sizeof(at::opmath_type<scalar_t>);
}

// Whether the kernel with J rows per block launches at these sizes: all its
// ceil(H / J) blocks resident at once on the current GPU.
template <typename scalar_t, int J, bool kBackward>
bool fits(int64_t batch, int64_t hidden) {
  using acc_t = at::opmath_type<scalar_t>;
  // A lane holds J·lane_span weights in the accumulation type: at most 64 registers.
  if constexpr (J * lane_span<acc_t>() * sizeof(acc_t) > 64 * 4) {
    return false;
  } else {
    if (batch * J > int64_t(kMaxOutputsPerThread) * kThreads) return false;
    const size_t shared = shared_bytes<scalar_t, J>(batch, hidden);
    const cudaDeviceProp* device = at::cuda::getCurrentDeviceProperties();
    if (shared > device->sharedMemPerBlockOptin) return false;
    auto kernel = persistent_recurrence_kernel<scalar_t, J, kBackward>;
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(shared)));
    int per_sm = 0;
    C10_CUDA_CHECK(
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, shared));
    const int64_t blocks = (hidden + J - 1) / J;
    return blocks <= int64_t(per_sm) * device->multiProcessorCount;
  }
}

template <typename scalar_t, int J>
bool both_fit(int64_t batch, int64_t hidden) {
  return fits<scalar_t, J, false>(batch, hidden) && fits<scalar_t, J, true>(batch, hidden);
}

template <typename scalar_t>
int choose_rows(int64_t batch, int64_t hidden) {
  switch (pinned_rows()) {
    case 1: return both_fit<scalar_t, 1>(batch, hidden) ? 1 : 0;
    case 2: return both_fit<scalar_t, 2>(batch, hidden) ? 2 : 0;
    case 4: return both_fit<scalar_t, 4>(batch, hidden) ? 4 : 0;
    case 8: return both_fit<scalar_t, 8>(batch, hidden) ? 8 : 0;
    default:
      // Fewer rows per block means more blocks, each reading the whole step
      // vector, and a wider barrier. On an H200 the fewest blocks (8 rows) were
      // fastest at B <= 8, the most blocks that fit at larger B.
      if (batch <= 8 && both_fit<scalar_t, 8>(batch, hidden)) return 8;
      if (both_fit<scalar_t, 1>(batch, hidden)) return 1;
      if (both_fit<scalar_t, 2>(batch, hidden)) return 2;
      if (both_fit<scalar_t, 4>(batch, hidden)) return 4;
      if (both_fit<scalar_t, 8>(batch, hidden)) return 8;
      return 0;
  }
}

template <typename scalar_t, int J, bool kBackward>
void launch(KernelArgs<scalar_t> p) {
  const size_t shared = shared_bytes<scalar_t, J>(p.batch, p.hidden);
  auto kernel = persistent_recurrence_kernel<scalar_t, J, kBackward>;
  C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      static_cast<int>(shared)));
  // Freed when this returns; the caching allocator keeps it for the kernel's
  // stream until the kernel is done.
  const at::Tensor counter = at::zeros(
      {1}, at::TensorOptions().device(at::kCUDA, at::cuda::current_device()).dtype(at::kInt));
  p.barrier = reinterpret_cast<unsigned*>(counter.data_ptr<int>());
  cudaLaunchAttribute cooperative{};
  cooperative.id = cudaLaunchAttributeCooperative;
  cooperative.val.cooperative = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>((p.hidden + J - 1) / J));
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = shared;
  config.stream = at::cuda::getCurrentCUDAStream();
  config.attrs = &cooperative;
  config.numAttrs = 1;
  C10_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, p));
}

template <typename scalar_t, bool kBackward>
void launch_with_rows(KernelArgs<scalar_t> p, int rows) {
  if (p.batch * p.hidden == 0) return;  // nothing to compute
  p.warps_k = warps_k<scalar_t>(p.hidden);
  p.warps_b = kWarps / p.warps_k;
  switch (rows) {
    case 1: return launch<scalar_t, 1, kBackward>(p);
    case 2: return launch<scalar_t, 2, kBackward>(p);
    case 4: return launch<scalar_t, 4, kBackward>(p);
    case 8: return launch<scalar_t, 8, kBackward>(p);
  }
  TORCH_CHECK(false, "rnn_fused: no persistent kernel with ", rows, " rows per block");
}

template <typename scalar_t>
KernelArgs<scalar_t> common_args(const RecurrenceParams& p) {
  KernelArgs<scalar_t> a{};
  a.steps = p.steps;
  a.batch = p.batch;
  a.hidden = p.hidden;
  a.reverse = p.reverse;
  a.act = p.activation;
  a.w_hh = p.w_hh.data_ptr<scalar_t>();
  a.out = p.out.data_ptr<scalar_t>();
  a.mask = p.mask.has_value() ? p.mask->data_ptr<scalar_t>() : nullptr;
  return a;
}

}  // namespace persistent

template <typename scalar_t>
int persistent_rows(int64_t batch, int64_t hidden, std::string* why) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr int64_t kMaxHidden = persistent::kWarps * persistent::warp_span<acc_t>();
  constexpr int64_t kMaxOutputs = int64_t(persistent::kMaxOutputsPerThread) * persistent::kThreads;
  const int sms = at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  int rows = 0;
  if (batch * hidden == 0) {
    rows = 1;  // nothing to launch
  } else if (hidden <= kMaxHidden) {
    rows = persistent::choose_rows<scalar_t>(batch, hidden);
  }
  if (why != nullptr) {
    const std::string sizes = "B=" + std::to_string(batch) + ", H=" + std::to_string(hidden);
    *why = rows > 0
               ? "the persistent kernel, " + std::to_string(rows) + " rows of W_hh per block: " +
                     std::to_string((hidden + rows - 1) / rows) + " blocks resident on " +
                     std::to_string(sms) + " multiprocessors"
               : "the persistent kernel does not fit " + sizes + " on this GPU (" +
                     std::to_string(sms) + " multiprocessors): its ceil(H / J) blocks of J = 1, "
                     "2, 4 or 8 rows must all be resident at once, one per multiprocessor, "
                     "with H <= " + std::to_string(kMaxHidden) + " in this dtype and B·J <= " +
                     std::to_string(kMaxOutputs);
  }
  return rows;
}

template <typename scalar_t>
void persistent_forward(const RecurrenceParams& p) {
  auto a = persistent::common_args<scalar_t>(p);
  a.hx = p.hx.data_ptr<scalar_t>();
  a.reset = p.mask.has_value() ? p.reset->data_ptr<scalar_t>() : nullptr;
  a.vector_loads = a.hidden % persistent::lane_span<at::opmath_type<scalar_t>>() == 0 &&
                   persistent::aligned16(a.out) && persistent::aligned16(a.hx) &&
                   (a.reset == nullptr || persistent::aligned16(a.reset));
  persistent::launch_with_rows<scalar_t, false>(a, p.plan.rows_per_block);
}

template <typename scalar_t>
void persistent_backward(const RecurrenceGradParams& p) {
  auto a = persistent::common_args<scalar_t>(p);
  // The kernel reads every step's gradient from one tensor: with h_n's gradient,
  // a copy that holds the last processed step's combined gradient.
  at::Tensor grad_out = p.grad_out;
  if (p.grad_last_step.has_value()) {
    grad_out = p.grad_out.clone();
    grad_out[p.reverse ? 0 : p.steps - 1].copy_(*p.grad_last_step);
  }
  a.grad_out = grad_out.data_ptr<scalar_t>();
  a.grad_pre = p.grad_pre.data_ptr<scalar_t>();
  a.grad_reset =
      p.mask.has_value() ? p.grad_reset.data_ptr<at::opmath_type<scalar_t>>() : nullptr;
  a.vector_loads = a.hidden % persistent::lane_span<at::opmath_type<scalar_t>>() == 0 &&
                   persistent::aligned16(a.grad_pre);
  persistent::launch_with_rows<scalar_t, true>(a, p.plan.rows_per_block);
}

}  // namespace rnn_fused
