// Which path runs a layer's recurrence, and why. The backend is an argument of
// every op (saved for the backward, so that the backward follows the forward);
// each device answers with a Plan. The same function answers rnn_fused.plan()
// and picks the kernels, so the query cannot disagree with what runs.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include <c10/core/ScalarType.h>
#include <c10/util/Exception.h>

#include "gated_step.h"

namespace rnn_fused {

enum class Backend { Auto, PerStep, Persistent, Cluster };

// The one-launch CUDA kernels ('persistent', 'gated-persistent', 'cluster',
// 'tiled') that 'auto' may take: only those whose current code has passed
// scripts/device_check.sh on a GPU, as a committed summary shows
// (tests/test_device_verified.py holds this list to the summaries; the
// rnn_fused::auto_kernels op returns it). None yet: on CUDA 'auto' runs the
// per-step loop for every cell, and the others run only when asked for.
inline constexpr std::array<std::string_view, 0> kAutoKernels{};

constexpr bool auto_takes(std::string_view kernel) {
  for (const std::string_view name : kAutoKernels) {
    if (name == kernel) return true;
  }
  return false;
}

// ValueError naming the choices for anything else.
Backend parse_backend(std::string_view name);

// `requested`, except that RNN_FUSED_BACKEND (read once per process, for
// debugging and for running a whole test suite on one path) replaces Auto.
Backend resolve_backend(Backend requested);

// GatedLoop: the GRU's and LSTM's per-step loop (csrc/ops/gated_layer.h), any
// device; CudaPersistent also names their persistent kernel. The backend
// 'cluster' takes CudaCluster where one cluster holds W_hh, else
// CudaTiledCluster (float32 and float64).
enum class Path {
  Unavailable,
  CpuLoop,
  CudaPerStep,
  CudaPersistent,
  CudaCluster,
  CudaTiledCluster,
  GatedLoop
};

struct PlanQuery {
  int64_t steps, batch, hidden;
  at::ScalarType dtype;
  Backend backend;
};

struct Plan {
  Path path = Path::Unavailable;
  // CPU: the step product in AVX-512 register tiles instead of a BLAS call.
  bool small_product = false;
  // CUDA persistent and cluster: rows of W_hh that each block keeps in registers
  // (the GRU's and LSTM's persistent kernel: hidden units, G rows each).
  int rows_per_block = 0;
  // CUDA cluster, float32: the step product on TF32 tensor cores, as
  // torch.backends.cuda.matmul.allow_tf32 allowed when planned.
  bool tf32 = false;
  // CUDA tiled cluster kernel: columns of W_hh per block (64 or 128).
  int tile_columns = 0;
};

// Each device's planner. `why`, when given, receives the reason in words; a
// plan whose path is Unavailable names there what does not fit.
Plan plan_cpu(const PlanQuery& query, std::string* why);
#ifdef WITH_CUDA
Plan plan_cuda(const PlanQuery& query, std::string* why);  // for the current device
#endif

// The GRU's and LSTM's planners. 'auto' and 'per-step' take the per-step loop
// on every device (RNN_FUSED_BACKEND, which replaces 'auto' to put the Elman ops
// on one path, leaves them alone); CUDA also has a persistent kernel, which
// only 'persistent' takes until it has been measured on a GPU.
Plan plan_cpu_gated(const PlanQuery& query, std::string* why);
#ifdef WITH_CUDA
Plan plan_cuda_gated(const PlanQuery& query, GatedCell cell, std::string* why);
#endif
// The per-step loop where the backend is 'auto' or 'per-step'; otherwise
// Unavailable, with `refusal` as the reason.
Plan plan_gated_loop(const PlanQuery& query, const char* refusal, std::string* why);

// Raises ValueError with the planner's reason where the plan cannot run.
template <typename Planner>
Plan runnable_plan(Planner&& planner, const PlanQuery& query) {
  const Plan plan = planner(query, nullptr);
  if (plan.path != Path::Unavailable) return plan;
  std::string why;
  planner(query, &why);
  TORCH_CHECK_VALUE(false, "rnn_fused: ", why);
}

}  // namespace rnn_fused
