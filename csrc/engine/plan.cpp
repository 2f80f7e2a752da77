#include "plan.h"

#include <cstdlib>
#include <optional>
#include <tuple>
#include <vector>

#include <c10/core/Device.h>
#include <c10/core/DeviceGuard.h>
#include <torch/library.h>

namespace rnn_fused {
namespace {

constexpr const char* kBackendVariable = "RNN_FUSED_BACKEND";

std::optional<Backend> backend_named(std::string_view name) {
  if (name == "auto") return Backend::Auto;
  if (name == "per-step") return Backend::PerStep;
  if (name == "persistent") return Backend::Persistent;
  if (name == "cluster") return Backend::Cluster;
  return std::nullopt;
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

const char* path_name(Path path) {
  switch (path) {
    case Path::CpuLoop:
    case Path::CudaPerStep: return "per-step";
    case Path::GatedLoop: return "per-step";
    case Path::CudaPersistent: return "persistent";
    case Path::CudaCluster:
    case Path::CudaTiledCluster: return "cluster";
    case Path::Unavailable: return "";
  }
  return "";
}

// rnn_fused::plan: the path a layer call of `cell` with these sizes would take,
// and why.
std::tuple<std::string, std::string> plan_op(int64_t steps, int64_t batch, int64_t hidden,
                                             at::ScalarType dtype, at::Device device,
                                             c10::string_view backend, c10::string_view cell) {
  const PlanQuery query{steps, batch, hidden, dtype, parse_backend(backend)};
  std::string why;
  Plan plan;
  TORCH_CHECK_VALUE(cell == "rnn" || cell == "gru" || cell == "lstm",
                    "rnn_fused: cell must be 'rnn', 'gru' or 'lstm', got '", cell, "'");
  if (device.is_cpu()) {
    plan = cell == "rnn" ? plan_cpu(query, &why) : plan_cpu_gated(query, &why);
#ifdef WITH_CUDA
  } else if (device.is_cuda()) {
    const c10::DeviceGuard guard(device);
    plan = cell == "rnn" ? plan_cuda(query, &why)
                         : plan_cuda_gated(query, parse_gated_cell(cell), &why);
#endif
  } else {
    TORCH_CHECK_VALUE(false, "rnn_fused: no kernels for device ", device.str(),
                      " in this build");
  }
  return {path_name(plan.path), why};
}

std::vector<std::string> auto_kernels() {
  return std::vector<std::string>(kAutoKernels.begin(), kAutoKernels.end());
}

}  // namespace

Backend parse_backend(std::string_view name) {
  const std::optional<Backend> backend = backend_named(name);
  TORCH_CHECK_VALUE(backend.has_value(), "rnn_fused: backend must be 'auto', 'per-step', "
                    "'persistent' or 'cluster', got '", name, "'");
  return *backend;
}

Plan plan_gated_loop(const PlanQuery& query, const char* refusal, std::string* why) {
  Plan plan;
  if (query.backend == Backend::Auto || query.backend == Backend::PerStep) {
    plan.path = Path::GatedLoop;
    if (why != nullptr) {
      *why = "the per-step loop: one product with W_hh and one fused pointwise pass per step";
    }
  } else if (why != nullptr) {
    *why = refusal;
  }
  return plan;
}

Backend resolve_backend(Backend requested) {
  const std::string& variable = backend_variable();
  if (requested != Backend::Auto || variable.empty()) return requested;
  const std::optional<Backend> backend = backend_named(variable);
  TORCH_CHECK_VALUE(backend.has_value(), "rnn_fused: ", kBackendVariable, " must be 'auto', "
                    "'per-step', 'persistent' or 'cluster', got '", variable, "'");
  return *backend;
}

TORCH_LIBRARY_IMPL(rnn_fused, CompositeImplicitAutograd, m) {
  m.impl("plan", &plan_op);
  m.impl("auto_kernels", &auto_kernels);
}

}  // namespace rnn_fused
