// Chooses the tile of the tiled cluster recurrence (cluster/tiled_kernel.cuh) and
// launches it: a grid of ceil(H / 128) clusters of ceil(H / K) blocks, all
// resident at once, in one cooperative launch. Included by the per-dtype .cu
// files.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

#include <ATen/core/Tensor.h>

#include "../common/launch_limits.h"
#include "../common/runtime.h"
#include "../persistent/one_gate_args.cuh"
#include "../common/cooperative_launch.cuh"
#include "entry_points.h"
#include "tiled_kernel.cuh"

namespace rnn_fused {
namespace tiled {

// Columns per lane: 16 (tiles of 128 columns, 64 weights a lane) and 8 (64
// columns) in float32; float64 only 8, whose 32 weights take 64 registers.
template <typename scalar_t>
constexpr int widest_lane() {
  return sizeof(scalar_t) == 4 ? 16 : 8;
}

template <typename scalar_t, int kLaneK, bool kBackward>
const void* kernel() {
  return reinterpret_cast<const void*>(&tiled_recurrence_kernel<scalar_t, kLaneK, kBackward>);
}

// The grid at these sizes: `clusters` clusters (of 128 rows) of `blocks`
// blocks (of K columns), each block summing `group_rows` of its cluster's rows.
struct Shape {
  int64_t clusters;
  int blocks, group_rows;
  size_t shared;
};

template <typename scalar_t, int kLaneK>
Shape shape(int64_t batch, int64_t hidden) {
  Shape s{};
  s.clusters = (hidden + kTileRows - 1) / kTileRows;
  s.blocks = static_cast<int>((hidden + tile_columns<kLaneK>() - 1) / tile_columns<kLaneK>());
  s.group_rows = (kTileRows + s.blocks - 1) / s.blocks;
  s.shared = static_cast<size_t>(
      TiledLayout<at::opmath_type<scalar_t>, kLaneK>::bytes(batch, s.blocks, s.group_rows));
  return s;
}

// Whether the kernel launches at these sizes on the current GPU: clusters of
// at most 16 blocks, each thread at most kMaxOutputsPerThread outputs, and
// every cluster resident at once.
template <typename scalar_t, int kLaneK, bool kBackward>
bool fits(int64_t batch, int64_t hidden) {
  const Shape s = shape<scalar_t, kLaneK>(batch, hidden);
  if (s.blocks > kMaxClusterBlocks) return false;
  if (batch * s.group_rows > int64_t(kMaxOutputsPerThread) * kThreads) return false;
  return resident_clusters(kernel<scalar_t, kLaneK, kBackward>(), kThreads, s.shared,
                           s.blocks) >= s.clusters;
}

template <typename scalar_t, int kLaneK>
bool both_fit(int64_t batch, int64_t hidden) {
  return fits<scalar_t, kLaneK, false>(batch, hidden) && fits<scalar_t, kLaneK, true>(batch, hidden);
}

// Columns per lane, or 0 where no tile fits. Wider tiles mean fewer blocks,
// each multiplying more; as the grid kernel measured on an H200 (fewest
// blocks fastest at B <= 8, the most that fit at larger B), until this kernel
// is measured itself.
template <typename scalar_t>
int choose_lane_columns(int64_t batch, int64_t hidden) {
  constexpr int kWide = widest_lane<scalar_t>();
  if (batch <= 8 && both_fit<scalar_t, kWide>(batch, hidden)) return kWide;
  if (both_fit<scalar_t, 8>(batch, hidden)) return 8;
  if (both_fit<scalar_t, kWide>(batch, hidden)) return kWide;
  return 0;
}

// Calls f(std::integral_constant<int, kLaneK>{}) for a tile of `columns`
// columns; false where this dtype has no such tile.
template <typename scalar_t, typename F>
bool with_lane_columns(int columns, F&& f) {
  if (columns == tile_columns<8>()) {
    f(std::integral_constant<int, 8>{});
    return true;
  }
  if constexpr (widest_lane<scalar_t>() == 16) {
    if (columns == tile_columns<16>()) {
      f(std::integral_constant<int, 16>{});
      return true;
    }
  }
  return false;
}

template <typename scalar_t, int kLaneK, bool kBackward>
void launch(KernelArgs<scalar_t> p) {
  constexpr int K = tile_columns<kLaneK>();
  // The plan ran on this device moments ago; checked again (cached) so that a
  // grid which cannot be all resident raises before anything starts.
  const bool fit = fits<scalar_t, kLaneK, kBackward>(p.batch, p.hidden);
  TORCH_CHECK_VALUE(fit,
                    "rnn_fused: the tiled cluster kernel with ", K,
                    " columns of W_hh per block does not fit B=", p.batch, ", H=", p.hidden,
                    " on this GPU");
  const Shape s = shape<scalar_t, kLaneK>(p.batch, p.hidden);
  // Whole 16-byte loads of the step vector's rows.
  p.vector_loads = p.vector_loads && p.hidden % (16 / int64_t(sizeof(scalar_t))) == 0;
  device::launch_cooperative(tiled_recurrence_kernel<scalar_t, kLaneK, kBackward>,
                                 dim3(static_cast<unsigned>(s.blocks),
                                      static_cast<unsigned>(s.clusters)),
                                 kThreads, s.shared, p,
                                 kBackward ? "tiled cluster backward" : "tiled cluster forward",
                                 s.clusters * s.blocks, static_cast<unsigned>(s.blocks));
}

template <typename scalar_t, bool kBackward>
void launch_with_columns(KernelArgs<scalar_t> p, int columns) {
  if (p.batch * p.hidden == 0) return;  // nothing to compute
  const bool launched = with_lane_columns<scalar_t>(
      columns, [&](auto lane) { launch<scalar_t, decltype(lane)::value, kBackward>(p); });
  TORCH_CHECK(launched, "rnn_fused: no tiled cluster kernel with ", columns,
              " columns per block");
}

}  // namespace tiled

template <typename scalar_t>
int tiled_columns(int64_t batch, int64_t hidden, std::string* why) {
  using namespace tiled;
  TORCH_CHECK(batch * hidden > 0, "rnn_fused: the tiled kernel is planned for B·H > 0");
  const int lane = choose_lane_columns<scalar_t>(batch, hidden);
  const int columns = lane == 0 ? 0 : kColumnLanes * lane;
  if (why != nullptr) {
    if (columns > 0) {
      with_lane_columns<scalar_t>(columns, [&](auto k) {
        const Shape s = shape<scalar_t, decltype(k)::value>(batch, hidden);
        *why = "the tiled cluster kernel, W_hh in tiles of 128 rows × " +
               std::to_string(columns) + " columns, one per block in registers: " +
               std::to_string(s.clusters) + " clusters of " + std::to_string(s.blocks) +
               " blocks, all resident";
      });
    } else {
      const cudaDeviceProp* device = &current_device_properties();
      constexpr int kWidest = tile_columns<widest_lane<scalar_t>()>();
      constexpr int64_t kMostColumns = kMaxClusterBlocks * kWidest;
      *why = "the tiled cluster kernel does not fit B=" + std::to_string(batch) + ", H=" +
             std::to_string(hidden) + " on this GPU (compute capability " +
             std::to_string(device->major) + "." + std::to_string(device->minor) + ", " +
             std::to_string(device->multiProcessorCount) +
             " multiprocessors): it needs compute capability 9.0 or newer, H <= " +
             std::to_string(kMostColumns) + " in this dtype (clusters of at most 16 blocks " +
             "of " + (kWidest == tile_columns<8>() ? "64" : "64 or 128") +
             " columns), B·ceil(128 / blocks) <= " +
             std::to_string(kMaxOutputsPerThread * kThreads) +
             ", shared memory for B rows of its columns and two copies of B·128 partial " +
             "sums (about B·(K + 256) values), and all ceil(H / 128) clusters resident at once";
    }
  }
  return columns;
}

template <typename scalar_t>
void tiled_forward(const ForwardParams& p, const at::Tensor& out, int columns) {
  tiled::launch_with_columns<scalar_t, false>(persistent::forward_args<scalar_t>(p, out),
                                              columns);
}

template <typename scalar_t>
void tiled_backward(const BackwardParams& p, const at::Tensor& grad_out,
                    const at::Tensor& grad_pre, const at::Tensor& grad_reset, int columns) {
  tiled::launch_with_columns<scalar_t, true>(
      persistent::backward_args<scalar_t>(p, grad_out, grad_pre, grad_reset), columns);
}

}  // namespace rnn_fused
