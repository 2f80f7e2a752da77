// Which CUDA recurrence runs: the per-step loop (a cuBLAS GEMM and a pointwise
// kernel per step) or the persistent kernel (one launch for the whole sequence).
// RNN_FUSED_CUDA_RECURRENCE = auto (default) | per-step | persistent, read at
// every call so that tests and benchmarks can force either path.
#pragma once

#include <cstdlib>
#include <string>
#include <string_view>

#include <c10/util/Exception.h>

namespace rnn_fused {

enum class CudaRecurrence { Auto, PerStep, Persistent };

inline CudaRecurrence requested_cuda_recurrence() {
  const char* value = std::getenv("RNN_FUSED_CUDA_RECURRENCE");
  const std::string_view name = value == nullptr ? "" : value;
  if (name.empty() || name == "auto") return CudaRecurrence::Auto;
  if (name == "per-step") return CudaRecurrence::PerStep;
  if (name == "persistent") return CudaRecurrence::Persistent;
  TORCH_CHECK_VALUE(false, "rnn_fused: RNN_FUSED_CUDA_RECURRENCE must be 'auto', 'per-step' or "
                    "'persistent', got '", name, "'");
}

// Where auto picks the persistent kernel (if it fits). Every block reads the
// whole B×H step vector from L2, so its step time grows with B·H. In two H200
// runs (benchmarks/NOTES.md) it beat the per-step loop, forward and backward,
// at every measured B·H <= 65536 in float32, and at every B·H <= 32768 in
// bfloat16, where B·H = 65536 went either way.
inline bool persistent_preferred(int64_t batch, int64_t hidden, bool half_precision) {
  return batch * hidden <= (half_precision ? 32768 : 65536);
}

// Numbers in messages go through std::to_string (see rnn_checks.cpp).
// Runs the persistent kernel through `launch` (returning false when it does not
// fit) if the requested path allows it; true when it ran.
template <typename Launch>
bool ran_persistent(int64_t batch, int64_t hidden, bool half_precision, Launch&& launch) {
  switch (requested_cuda_recurrence()) {
    case CudaRecurrence::PerStep:
      return false;
    case CudaRecurrence::Persistent:
      TORCH_CHECK_VALUE(launch(), "rnn_fused: RNN_FUSED_CUDA_RECURRENCE=persistent, but the "
                        "persistent kernel does not fit B=", std::to_string(batch), ", H=",
                        std::to_string(hidden), " on this "
                        "GPU: its ceil(H / 8) blocks must all be resident at once, one per "
                        "multiprocessor, with H <= 2048 (1024 in float64) and "
                        "B·(rows per block) <= 2048");
      return true;
    case CudaRecurrence::Auto:
      return persistent_preferred(batch, hidden, half_precision) && launch();
  }
  return false;
}

}  // namespace rnn_fused
