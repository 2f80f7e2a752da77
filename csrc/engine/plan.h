// Which kernel family runs a layer's recurrence, and why. The backend is an
// argument of every layer op ('auto' or a family's name; saved for the
// backward, so that the backward follows the forward); the families of the
// input's device answer with a Plan (families.h). The same function answers
// rnn_fused.plan() and picks the kernels, so the query cannot disagree with
// what runs.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

#include "../cells/registry.h"

namespace rnn_fused {

struct Family;

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

// What a layer call may ask beyond the plain recurrence. A family runs a call
// only if it has every feature the call asks for (Family::features).
enum LayerFeature : unsigned {
  kProjection = 1u << 0,     // an LSTM that projects h (weight_hr, proj_size)
  kResetsPerStep = 1u << 1,  // reset states [T, B, ·], one per step
};

struct PlanQuery {
  Cell cell;
  int64_t steps, batch, hidden;
  at::ScalarType dtype;
  // 'auto' or a family's name; RNN_FUSED_BACKEND has already replaced 'auto'.
  std::string_view backend;
  unsigned features = 0;  // LayerFeature bits
  bool is_auto() const { return backend == "auto"; }
};

struct Plan {
  const Family* family = nullptr;  // null: the call cannot run
  // The family's own configuration, which it names (e.g. the persistent
  // kernel's rows of W_hh per block).
  std::array<int, 4> config{};
};

// The plan for `query` on a device of type `device` (the current one, for
// CUDA's residency); `why`, when given, receives the reason in words. A plan
// without a family names there what does not fit. ValueError for a backend no
// family of this build is named.
Plan plan_layer(const PlanQuery& query, c10::DeviceType device, std::string* why);

// plan_layer, raising ValueError with its reason where the plan cannot run.
Plan runnable_plan(const PlanQuery& query, c10::DeviceType device);

}  // namespace rnn_fused
