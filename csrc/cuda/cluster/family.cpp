// The cluster family (Hopper): the one-gate kernel with one thread-block cluster
// per batch tile, where one cluster holds W_hh (one_cluster_launch.cuh); else,
// in float32 and float64, the tiled kernel, which spreads W_hh over several
// clusters (tiled_kernel.cuh). The Elman cells only. 'auto' takes them only
// where a device check has verified them (engine/plan.h).
#include <string>

#include <ATen/Context.h>
#include <ATen/Dispatch.h>
#include <ATen/record_function.h>

#include "../../engine/families.h"
#include "../common/one_gate_layer.h"
#include "entry_points.h"

namespace rnn_fused {
namespace {

// Config: the one-cluster kernel's rows of W_hh per block and whether it
// multiplies on TF32 tensor cores, or (rows 0) the tiled kernel's columns.
constexpr int kRows = 0, kTf32 = 1, kColumns = 2;

bool plan_cluster(const PlanQuery& q, std::array<int, 4>& config, std::string* why) {
  if (!info(q.cell).elman) {
    if (why != nullptr) {
      *why = "the cluster kernels take the Elman cells only: for GRU and LSTM the backend is "
             "'auto', 'per-step' or 'persistent'";
    }
    return false;
  }
  if (q.is_auto() && !auto_takes("cluster") && !auto_takes("tiled")) {
    if (why != nullptr) {
      *why = "'auto' takes a one-launch kernel only once a device check has passed at its "
             "current code, which the cluster kernels' has not (docs/device-verification.md); "
             "backend='cluster' runs them";
    }
    return false;
  }
  // float32 follows the flag of the layer's cuBLAS products.
  const bool tf32 = q.dtype == at::kFloat && at::globalContext().allowTF32CuBLAS();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, q.dtype, "rnn_fused::plan_cluster",
                                  [&] {
    config[kRows] = cluster_rows<scalar_t>(q.batch, q.hidden, tf32, why);
  });
  if (config[kRows] > 0) {
    config[kTf32] = tf32;
    if (why != nullptr) *why += ", as asked for";
    return !q.is_auto() || auto_takes("cluster");
  }
  if (q.dtype != at::kFloat && q.dtype != at::kDouble) return false;
  // The tiled kernel multiplies in FMA only.
  std::string tiled_why;
  AT_DISPATCH_FLOATING_TYPES(q.dtype, "rnn_fused::plan_cluster", [&] {
    config[kColumns] =
        tiled_columns<scalar_t>(q.batch, q.hidden, why != nullptr ? &tiled_why : nullptr);
  });
  if (config[kColumns] > 0) {
    if (why != nullptr) *why = tiled_why + ", as asked for (one cluster cannot hold W_hh)";
    return !q.is_auto() || auto_takes("tiled");
  }
  if (why != nullptr) *why += "; " + tiled_why;
  return false;
}

// Inside the family's scopes: the tiled kernel, where one cluster cannot hold W_hh.
constexpr const char* kTiledScope = "rnn_fused::cuda_steps(tiled cluster)";

ForwardResult forward(const ForwardParams& p) {
  const auto& c = p.plan.config;
  return one_gate_forward(p, [&](const at::Tensor& out) {
    if (c[kColumns] > 0) {
      RECORD_FUNCTION(kTiledScope, std::vector<c10::IValue>());
      AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "rnn_fused::tiled_forward",
                                 [&] { tiled_forward<scalar_t>(p, out, c[kColumns]); });
    } else {
      AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, out.scalar_type(),
                                      "rnn_fused::cluster_forward", [&] {
        cluster_forward<scalar_t>(p, out, c[kRows], c[kTf32] != 0);
      });
    }
  });
}

void backward(const BackwardParams& p, Gradients& g) {
  const auto& c = p.plan.config;
  const auto dtype = p.output.scalar_type();
  one_gate_backward(
      p, g, [&](const at::Tensor& grad_out, const at::Tensor& grad_pre, const at::Tensor& reset) {
        if (c[kColumns] > 0) {
          RECORD_FUNCTION(kTiledScope, std::vector<c10::IValue>());
          AT_DISPATCH_FLOATING_TYPES(dtype, "rnn_fused::tiled_backward", [&] {
            tiled_backward<scalar_t>(p, grad_out, grad_pre, reset, c[kColumns]);
          });
        } else {
          AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dtype,
                                          "rnn_fused::cluster_backward", [&] {
            cluster_backward<scalar_t>(p, grad_out, grad_pre, reset, c[kRows], c[kTf32] != 0);
          });
        }
      });
}

}  // namespace

RNN_FUSED_REGISTER_FAMILY(cuda_cluster, "cluster", c10::DeviceType::CUDA, /*auto_order=*/10,
                          &plan_cluster, &forward, &backward, "rnn_fused::cuda_forward(cluster)",
                          "rnn_fused::cuda_backward(cluster)")

}  // namespace rnn_fused
