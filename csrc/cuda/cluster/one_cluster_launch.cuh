// The cluster recurrence: the persistent kernel with the cluster barrier. Each
// batch tile is one thread-block cluster of ceil(H / J) <= 16 blocks that holds
// all of W_hh (J rows per block: in registers, each lane J × L of them, or at
// J = 64 in the half types' shared memory), so no barrier spans the grid and
// tiles need not be resident together; the step vector travels between the
// blocks' shared memories. Included by the per-dtype .cu files.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>

#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>

#include "../common/launch_limits.h"
#include "../common/runtime.h"
#include "../persistent/one_gate_args.cuh"
#include "../persistent/one_gate_kernel.cuh"
#include "entry_points.h"

namespace rnn_fused {
namespace cluster {

using persistent::KernelArgs;
using persistent::kMaxOutputsPerThread;
using persistent::kThreads;
using persistent::kWarps;

// gridDim.y, which counts the tiles.
constexpr int64_t kMaxTiles = 65535;

template <typename scalar_t, int J>
constexpr int lane_span() {
  return persistent::cluster_lane_span<scalar_t, J>();
}

// Calls f(std::bool_constant<kTf32>{}) with kTf32 = tf32, which only float32
// takes: its product on TF32 tensor cores (the plan's, cluster/family.cpp).
template <typename scalar_t, typename F>
decltype(auto) with_tf32(bool tf32, F&& f) {
  if constexpr (std::is_same_v<scalar_t, float>) {
    if (tf32) return f(std::true_type{});
  } else {
    TORCH_CHECK(!tf32, "rnn_fused: TF32 is for float32 only");
  }
  return f(std::false_type{});
}

template <typename scalar_t, int J, bool kBackward, bool kTf32>
const void* kernel() {
  return reinterpret_cast<const void*>(
      &persistent::persistent_recurrence_kernel<scalar_t, J, lane_span<scalar_t, J>(), kBackward,
                                                /*kClustered=*/true, kTf32>);
}

template <typename scalar_t, int J>
using Exchange = device::ExchangeLayout<scalar_t, J, lane_span<scalar_t, J>()>;

template <typename scalar_t, int J>
size_t shared_bytes(int64_t batch_tile, int64_t hidden) {
  return static_cast<size_t>(
      Exchange<scalar_t, J>::bytes(persistent::warps_k<lane_span<scalar_t, J>()>(hidden),
                                   batch_tile));
}

// The most batch rows a tile holds: what its threads' outputs and the shared
// memory (the weights at J = 64, then per row partial sums and two copies of
// its step vector) allow.
template <typename scalar_t, int J>
int64_t max_tile_rows(int64_t hidden) {
  const int warps_k = persistent::warps_k<lane_span<scalar_t, J>()>(hidden);
  const int64_t by_outputs = int64_t(kMaxOutputsPerThread) * kThreads / J;
  const int64_t limit = current_device_properties().sharedMemPerBlockOptin;
  return std::min(by_outputs, (limit - Exchange<scalar_t, J>::weights_bytes(warps_k)) /
                                  Exchange<scalar_t, J>::row_bytes(warps_k));
}

// Batch rows per cluster with J rows of W_hh per block, or 0 where the cluster
// does not fit. As many tiles as clusters are resident at once, so that every
// multiprocessor they can use works; more where a tile would hold more rows
// than its threads' outputs or its shared memory allow (those tiles run in
// later waves).
template <typename scalar_t, int J, bool kBackward, bool kTf32>
int64_t batch_tile(int64_t batch, int64_t hidden) {
  constexpr int L = lane_span<scalar_t, J>();
  const int64_t blocks = (hidden + J - 1) / J;
  if (hidden > int64_t(kWarps) * 32 * L || blocks > kMaxClusterBlocks) return 0;
  const int64_t max_tile = max_tile_rows<scalar_t, J>(hidden);
  if (max_tile < 1) return 0;
  const int64_t widest = std::min(batch, max_tile);
  const int clusters =
      resident_clusters(kernel<scalar_t, J, kBackward, kTf32>(), kThreads,
                        shared_bytes<scalar_t, J>(widest, hidden), static_cast<int>(blocks));
  if (clusters == 0) return 0;
  const int64_t tiles =
      std::max((batch + max_tile - 1) / max_tile, std::min<int64_t>(batch, clusters));
  const int64_t tile = (batch + tiles - 1) / tiles;
  return (batch + tile - 1) / tile <= kMaxTiles ? tile : 0;
}

template <typename scalar_t, int J, bool kTf32>
bool both_fit(int64_t batch, int64_t hidden) {
  return batch_tile<scalar_t, J, false, kTf32>(batch, hidden) > 0 &&
         batch_tile<scalar_t, J, true, kTf32>(batch, hidden) > 0;
}

// The fewest rows per block, i.e. the most blocks per cluster (up to 16).
template <typename scalar_t, bool kTf32>
int choose_rows(int64_t batch, int64_t hidden) {
  if (both_fit<scalar_t, 8, kTf32>(batch, hidden)) return 8;
  if (both_fit<scalar_t, 16, kTf32>(batch, hidden)) return 16;
  if (both_fit<scalar_t, 32, kTf32>(batch, hidden)) return 32;
  if constexpr (device::weights_in_shared<scalar_t, device::kSharedWeightRows>()) {
    if (both_fit<scalar_t, device::kSharedWeightRows, kTf32>(batch, hidden)) {
      return device::kSharedWeightRows;
    }
  }
  return 0;
}

// The most rows per block, and so the largest H, of this dtype.
template <typename scalar_t>
constexpr int max_rows() {
  return device::weights_in_shared<scalar_t, device::kSharedWeightRows>()
             ? device::kSharedWeightRows
             : 32;
}

template <typename scalar_t, int J, bool kBackward, bool kTf32>
void launch(KernelArgs<scalar_t> p) {
  constexpr int L = lane_span<scalar_t, J>();
  const int64_t tile = batch_tile<scalar_t, J, kBackward, kTf32>(p.batch, p.hidden);
  TORCH_CHECK_VALUE(tile > 0, "rnn_fused: the cluster kernel with ", J,
                    " rows of W_hh per block does not fit B=", p.batch, ", H=", p.hidden,
                    " on this GPU");
  persistent::set_layout<scalar_t, L>(p, tile);
  const unsigned blocks = static_cast<unsigned>((p.hidden + J - 1) / J);
  cudaLaunchAttribute cluster{};
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim.x = blocks;
  cluster.val.clusterDim.y = 1;
  cluster.val.clusterDim.z = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(blocks, static_cast<unsigned>((p.batch + tile - 1) / tile));
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = shared_bytes<scalar_t, J>(tile, p.hidden);
  config.stream = current_stream();
  config.attrs = &cluster;
  config.numAttrs = 1;
  C10_CUDA_CHECK(cudaLaunchKernelEx(
      &config, persistent::persistent_recurrence_kernel<scalar_t, J, L, kBackward, true, kTf32>,
      p));
}

// Calls f(std::integral_constant<int, J>{}) with J = rows where this dtype has
// a cluster kernel with J rows per block; false where it has none.
template <typename scalar_t, typename F>
bool with_rows(int rows, F&& f) {
  switch (rows) {
    case 8: f(std::integral_constant<int, 8>{}); return true;
    case 16: f(std::integral_constant<int, 16>{}); return true;
    case 32: f(std::integral_constant<int, 32>{}); return true;
    case device::kSharedWeightRows:
      if constexpr (max_rows<scalar_t>() == device::kSharedWeightRows) {
        f(std::integral_constant<int, device::kSharedWeightRows>{});
        return true;
      }
  }
  return false;
}

template <typename scalar_t, bool kBackward>
void launch_with_rows(KernelArgs<scalar_t> p, int rows, bool tf32_allowed) {
  if (p.batch * p.hidden == 0) return;  // nothing to compute
  const bool launched = with_rows<scalar_t>(rows, [&](auto J) {
    with_tf32<scalar_t>(tf32_allowed, [&](auto tf32) {
      launch<scalar_t, decltype(J)::value, kBackward, decltype(tf32)::value>(p);
    });
  });
  TORCH_CHECK(launched, "rnn_fused: no cluster kernel with ", rows, " rows per block");
}

// What plan() says of the cluster kernel with `rows` rows per block (0: none
// fits).
template <typename scalar_t, bool kTf32>
std::string reason(int64_t batch, int64_t hidden, int rows) {
  constexpr int kMostRows = max_rows<scalar_t>();
  constexpr bool kHalf = kMostRows == device::kSharedWeightRows;
  if (rows > 0) {
    int64_t tile = 0;
    with_rows<scalar_t>(rows, [&](auto J) {
      tile = batch_tile<scalar_t, decltype(J)::value, false, kTf32>(batch, hidden);
    });
    return "the cluster kernel, " + std::to_string(rows) + " rows of W_hh per block" +
           (kHalf && rows == kMostRows ? " in shared memory" : "") +
           (kTf32 ? ", on TF32 tensor cores (torch.backends.cuda.matmul.allow_tf32)" : "") +
           ": clusters of " + std::to_string((hidden + rows - 1) / rows) +
           " blocks, one per forward batch tile of up to " + std::to_string(tile) + " rows";
  }
  const cudaDeviceProp* device = &current_device_properties();
  const int64_t max_hidden =
      std::min<int64_t>(kMaxClusterBlocks * kMostRows,
                        int64_t(kWarps) * 32 * lane_span<scalar_t, kMostRows>());
  return "the cluster kernel does not fit B=" + std::to_string(batch) + ", H=" +
         std::to_string(hidden) + " on this GPU (compute capability " +
         std::to_string(device->major) + "." + std::to_string(device->minor) +
         "): it needs compute capability 9.0 or newer, H <= " + std::to_string(max_hidden) +
         " in this dtype, so that clusters of at most 16 blocks hold all of W_hh (in registers" +
         (kHalf ? ", in shared memory above H=512" : "") +
         "), shared memory for two copies of a batch row's step vector" +
         (kHalf ? " (and, above H=512, for the weights)" : "") +
         ", and one such cluster resident";
}

}  // namespace cluster

template <typename scalar_t>
int cluster_rows(int64_t batch, int64_t hidden, bool tf32, std::string* why) {
  if (batch * hidden == 0) {
    if (why != nullptr) *why = "the cluster kernel (nothing to launch at B·H = 0)";
    return 8;
  }
  return cluster::with_tf32<scalar_t>(tf32, [&](auto on) {
    constexpr bool kTf32 = decltype(on)::value;
    const int rows = cluster::choose_rows<scalar_t, kTf32>(batch, hidden);
    if (why != nullptr) *why = cluster::reason<scalar_t, kTf32>(batch, hidden, rows);
    return rows;
  });
}

template <typename scalar_t>
void cluster_forward(const ForwardParams& p, const at::Tensor& out, int rows, bool tf32) {
  cluster::launch_with_rows<scalar_t, false>(persistent::forward_args<scalar_t>(p, out), rows,
                                             tf32);
}

template <typename scalar_t>
void cluster_backward(const BackwardParams& p, const at::Tensor& grad_out,
                      const at::Tensor& grad_pre, const at::Tensor& grad_reset, int rows,
                      bool tf32) {
  cluster::launch_with_rows<scalar_t, true>(
      persistent::backward_args<scalar_t>(p, grad_out, grad_pre, grad_reset), rows, tf32);
}

}  // namespace rnn_fused
