// The CPU has one recurrence, the per-step loop; the plan says how its step
// product runs. The gated cells have their loop (csrc/ops/gated_layer.h).
#include <string>

#include "../engine/plan.h"
#include "isa.h"
#include "small_gemm.h"

namespace rnn_fused {
namespace {

// The forward's small product reads W_hhᵀ, which it first transposes: that
// costs about as much as the product saves over H²/2048 steps (measured at
// B = 1 and 8, H = 64-192). Shorter sequences take the BLAS call.
constexpr int64_t kTransposeElementsPerStep = 2048;

}  // namespace

Plan plan_cpu(const PlanQuery& query, std::string* why) {
  Plan plan;
  const Backend backend = resolve_backend(query.backend);
  if (backend == Backend::Persistent || backend == Backend::Cluster) {
    if (why != nullptr) {
      *why = std::string("the '") + (backend == Backend::Persistent ? "persistent" : "cluster") +
             "' backend is a CUDA kernel; on the CPU, 'auto' and 'per-step' both run the "
             "per-step loop";
    }
    return plan;
  }
  plan.path = Path::CpuLoop;
  plan.small_product = query.dtype == at::kFloat &&
                       small_gemm_applies(query.batch, query.hidden) &&
                       query.steps * kTransposeElementsPerStep >= query.hidden * query.hidden;
  if (why != nullptr) {
    *why = std::string("CPU per-step loop; the step product ") +
           (plan.small_product
                ? "in AVX-512 register tiles (float32, B <= 8, H <= 192, T >= H²/2048)"
                : "through BLAS (AVX-512 register tiles need float32, B <= 8, H <= 192 and "
                  "T >= H²/2048)") +
           "; the pointwise pass " + (has_avx512() ? "in AVX-512" : "in baseline vectors");
  }
  return plan;
}

Plan plan_cpu_gated(const PlanQuery& query, std::string* why) {
  return plan_gated_loop(query,
                         "on the CPU, GRU and LSTM run the per-step loop only: backend must be "
                         "'auto' or 'per-step'",
                         why);
}

}  // namespace rnn_fused
