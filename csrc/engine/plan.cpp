#include "plan.h"

#include <algorithm>
#include <cstdlib>
#include <tuple>
#include <vector>

#include <c10/core/Device.h>
#include <c10/core/DeviceGuard.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include "families.h"

namespace rnn_fused {
namespace {

constexpr const char* kBackendVariable = "RNN_FUSED_BACKEND";

// "'a', 'b' or 'c'".
std::string listed(const std::vector<std::string>& names) {
  std::string s;
  for (size_t k = 0; k < names.size(); ++k) {
    s += (k == 0 ? "" : k + 1 == names.size() ? " or " : ", ") + ("'" + names[k] + "'");
  }
  return s;
}

void check_backend(std::string_view backend, const char* what) {
  const std::vector<std::string> names = backend_names();
  TORCH_CHECK_VALUE(std::find(names.begin(), names.end(), backend) != names.end(),
                    "rnn_fused: ", what, " must be ", listed(names), ", got '", backend, "'");
}

// RNN_FUSED_BACKEND, read on first use only: C++ threads (autograd's among
// them) plan concurrently, and getenv is not safe against a concurrent setenv.
const std::string& backend_variable() {
  static const std::string value = [] {
    const char* raw = std::getenv(kBackendVariable);
    return std::string(raw == nullptr ? "" : raw);
  }();
  return value;
}

// `requested`, except that RNN_FUSED_BACKEND (for debugging and for running a
// whole test suite on one path) replaces 'auto'.
std::string_view resolve_backend(std::string_view requested) {
  check_backend(requested, "backend");
  const std::string& variable = backend_variable();
  if (requested != "auto" || variable.empty()) return requested;
  check_backend(variable, kBackendVariable);
  return variable;
}

const char* device_name(c10::DeviceType device) {
  return device == c10::DeviceType::CUDA ? "CUDA" : "the CPU";
}

// rnn_fused::plan: the family that a layer call of `cell` with these sizes
// would run on `device`, and why.
std::tuple<std::string, std::string> plan_op(int64_t steps, int64_t batch, int64_t hidden,
                                             at::ScalarType dtype, at::Device device,
                                             c10::string_view backend, c10::string_view cell,
                                             int64_t proj_size, bool resets_per_step) {
  TORCH_CHECK_VALUE(proj_size == 0 || parse_cell(cell) == Cell::Lstm,
                    "rnn_fused: proj_size is an LSTM's: it must be 0 for the '", cell, "' cell");
  const PlanQuery query{parse_cell(cell), steps, batch, hidden, dtype, backend,
                        (proj_size > 0 ? kProjection : 0u) |
                            (resets_per_step ? kResetsPerStep : 0u)};
  std::string why;
  // The families ask the device what fits.
  const c10::OptionalDeviceGuard guard(device.is_cuda() ? c10::optional<at::Device>(device)
                                                        : c10::nullopt);
  const Plan plan = plan_layer(query, device.type(), &why);
  return {plan.family == nullptr ? "" : plan.family->name, why};
}

std::vector<std::string> auto_kernels() {
  return std::vector<std::string>(kAutoKernels.begin(), kAutoKernels.end());
}

}  // namespace

Plan plan_layer(const PlanQuery& request, c10::DeviceType device, std::string* why) {
  PlanQuery query = request;
  query.backend = resolve_backend(request.backend);
  std::vector<const Family*> mine;
  for (const Family& family : families()) {
    if (family.device == device) mine.push_back(&family);
  }
  TORCH_CHECK_VALUE(!mine.empty(), "rnn_fused: no kernels for ", c10::DeviceTypeName(device),
                    " in this build");
  // A family without a feature the call asks for declines it, with one reason.
  const auto plans = [&](const Family* family, Plan& plan, std::string* reason) {
    const unsigned missing = query.features & ~family->features;
    if (missing != 0) {
      if (reason != nullptr) {
        std::vector<std::string> lacking;
        if (missing & kProjection) lacking.emplace_back("an LSTM with proj_size > 0");
        if (missing & kResetsPerStep) lacking.emplace_back("reset states given per step");
        *reason = "it does not run " + lacking[0] +
                  (lacking.size() > 1 ? " or " + lacking[1] : std::string()) +
                  " (only the CPU's per-step loop does, until CUDA's has run them on a GPU)";
      }
      return false;
    }
    return family->plan(query, plan.config, reason);
  };
  Plan plan;
  if (!query.is_auto()) {
    for (const Family* family : mine) {
      if (query.backend != family->name) continue;
      if (plans(family, plan, why)) plan.family = family;
      return plan;
    }
    if (why != nullptr) {
      std::vector<std::string> here = {"auto"};
      for (const Family* family : mine) here.emplace_back(family->name);
      *why = "the '" + std::string(query.backend) + "' backend does not run on " +
             device_name(device) + ", where the backend is " + listed(here);
    }
    return plan;
  }
  std::stable_sort(mine.begin(), mine.end(), [](const Family* a, const Family* b) {
    return a->auto_order < b->auto_order;
  });
  std::string declined;
  for (const Family* family : mine) {
    std::string reason;
    if (plans(family, plan, why != nullptr ? &reason : nullptr)) {
      plan.family = family;
      if (why != nullptr) *why = reason + declined;
      return plan;
    }
    if (why != nullptr) declined += "; not '" + std::string(family->name) + "': " + reason;
  }
  if (why != nullptr) *why = "no kernel family runs this call" + declined;
  return plan;
}

Plan runnable_plan(const PlanQuery& query, c10::DeviceType device) {
  const Plan plan = plan_layer(query, device, nullptr);
  if (plan.family != nullptr) return plan;
  std::string why;
  plan_layer(query, device, &why);
  TORCH_CHECK_VALUE(false, "rnn_fused: ", why);
}

TORCH_LIBRARY_IMPL(rnn_fused, CompositeImplicitAutograd, m) {
  m.impl("plan", &plan_op);
  m.impl("backends", &backend_names);
  m.impl("auto_kernels", &auto_kernels);
}

}  // namespace rnn_fused
