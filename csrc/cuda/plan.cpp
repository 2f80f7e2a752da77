// Which CUDA recurrence runs a layer: the per-step loop (a cuBLAS product and a
// pointwise kernel per step), the persistent kernel (one launch for the whole
// sequence, blocks meeting at a grid barrier) or a cluster kernel (the same,
// one thread-block cluster per batch tile, or W_hh tiled over several
// clusters), by the backend asked for and, under 'auto', by size. 'auto' never
// takes a cluster kernel: they have not yet been measured against the other
// two on a GPU.
#include <string>

#include <ATen/Context.h>
#include <ATen/Dispatch.h>

#include "../engine/plan.h"
#include "cluster/entry_points.h"
#include "gated_persistent/entry_points.h"
#include "persistent/entry_points.h"
#include "tiled/entry_points.h"

namespace rnn_fused {
namespace {

// B·H up to which 'auto' takes the persistent kernel. Every block reads the
// whole B×H step vector from L2, so its step time grows with B·H. In two H200
// runs (benchmarks/NOTES.md) it beat the per-step loop, forward and backward,
// at every measured B·H <= 65536 in float32, and at every B·H <= 32768 in
// bfloat16, where 65536 went either way.
constexpr int64_t kAutoPersistentElements = 65536;
constexpr int64_t kAutoPersistentElementsHalf = 32768;

// One cluster per batch tile where a cluster holds W_hh; else, in float32 and
// float64, the tiled kernel, which spreads W_hh over several clusters.
Plan plan_cluster(const PlanQuery& query, std::string* why) {
  Plan plan;
  // float32 follows the flag of the layer's cuBLAS products.
  plan.tf32 = query.dtype == at::kFloat && at::globalContext().allowTF32CuBLAS();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, query.dtype, "rnn_fused::plan_cuda",
                                  [&] {
    plan.rows_per_block = cluster_rows<scalar_t>(query.batch, query.hidden, plan.tf32, why);
  });
  if (plan.rows_per_block > 0) {
    plan.path = Path::CudaCluster;
    if (why != nullptr) *why += ", as asked for";
    return plan;
  }
  if (query.dtype != at::kFloat && query.dtype != at::kDouble) return plan;
  // The tiled kernel multiplies in FMA only.
  plan.tf32 = false;
  std::string tiled_why;
  AT_DISPATCH_FLOATING_TYPES(query.dtype, "rnn_fused::plan_cuda", [&] {
    plan.tile_columns =
        tiled_columns<scalar_t>(query.batch, query.hidden, why != nullptr ? &tiled_why : nullptr);
  });
  if (plan.tile_columns > 0) {
    plan.path = Path::CudaTiledCluster;
    if (why != nullptr) *why = tiled_why + ", as asked for (one cluster cannot hold W_hh)";
  } else if (why != nullptr) {
    *why += "; " + tiled_why;
  }
  return plan;
}

}  // namespace

Plan plan_cuda(const PlanQuery& query, std::string* why) {
  Plan plan;
  const Backend backend = resolve_backend(query.backend);
  if (backend == Backend::Cluster) return plan_cluster(query, why);
  if (backend == Backend::PerStep) {
    plan.path = Path::CudaPerStep;
    if (why != nullptr) *why = "the per-step loop, as asked for";
    return plan;
  }
  if (backend == Backend::Auto && !auto_takes("persistent")) {
    plan.path = Path::CudaPerStep;
    if (why != nullptr) {
      *why = "the per-step loop: 'auto' takes a one-launch kernel only once a device check "
             "has passed at its current code, which the persistent kernel's has not yet "
             "(docs/device-verification.md); backend='persistent' runs it";
    }
    return plan;
  }
  const bool half = query.dtype == at::kHalf || query.dtype == at::kBFloat16;
  const int64_t auto_limit = half ? kAutoPersistentElementsHalf : kAutoPersistentElements;
  const int64_t elements = query.batch * query.hidden;
  if (backend == Backend::Auto && elements > auto_limit) {
    plan.path = Path::CudaPerStep;
    if (why != nullptr) {
      *why = "the per-step loop: B·H = " + std::to_string(elements) + " is above " +
             std::to_string(auto_limit) + ", beyond which 'auto' measured the persistent " +
             "kernel no faster";
    }
    return plan;
  }
  std::string fit;
  int rows = 0;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, query.dtype, "rnn_fused::plan_cuda",
                                  [&] {
    rows = persistent_rows<scalar_t>(query.batch, query.hidden, why != nullptr ? &fit : nullptr);
  });
  if (rows > 0) {
    plan.path = Path::CudaPersistent;
    plan.rows_per_block = rows;
    if (why != nullptr) {
      *why = fit + (backend == Backend::Auto ? " (auto: B·H = " + std::to_string(elements) +
                                                   " <= " + std::to_string(auto_limit) + ")"
                                             : ", as asked for");
    }
  } else if (backend == Backend::Auto) {
    plan.path = Path::CudaPerStep;
    if (why != nullptr) *why = "the per-step loop: " + fit;
  } else if (why != nullptr) {
    *why = fit;
  }
  return plan;
}

Plan plan_cuda_gated(const PlanQuery& query, GatedCell cell, std::string* why) {
  if (query.backend != Backend::Persistent) {
    return plan_gated_loop(query,
                           "GRU and LSTM have no cluster kernel: backend must be 'auto', "
                           "'per-step' or 'persistent'",
                           why);
  }
  Plan plan;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, query.dtype,
                                  "rnn_fused::plan_cuda_gated", [&] {
    plan.rows_per_block = gated_persistent_units<scalar_t>(cell, query.batch, query.hidden, why);
  });
  if (plan.rows_per_block > 0) {
    plan.path = Path::CudaPersistent;
    if (why != nullptr) *why += ", as asked for";
  }
  return plan;
}

}  // namespace rnn_fused
