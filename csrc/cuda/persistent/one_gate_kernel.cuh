// The persistent recurrence kernel: one launch runs every step of one layer in
// one direction. Block x keeps J rows of W_hh (forward) or J columns of it, i.e.
// rows of W_hhᵀ (backward), in registers (the cluster kernel's half types at
// J = 64: in shared memory) for the whole sequence; per step it
// reads its batch tile's whole vector of the previous step from L2, writes its
// tile×J slice of the next one, and meets the other blocks of the tile at a
// barrier. Per-step cost is then a barrier and an L2 round trip instead of a
// GEMM launch plus a pointwise launch.
//
// Two ways to meet (kClustered):
// - grid: one tile, the whole batch; a cooperative launch makes every block
//   resident, and they meet at a counter in global memory;
// - cluster: each batch tile is one thread-block cluster of ceil(H / J) <= 16
//   blocks, which the hardware co-schedules; blocks meet at the cluster barrier
//   (sm_90) and tiles never wait for each other, so they may run in waves.
//   The step vector does not go through L2: each block stores its slice into
//   every peer's shared memory (DSMEM), and a step reads it from its own.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include <ATen/OpMathType.h>

#include "../../cells/elman.h"
#include "../common/exchange.cuh"
#include "../common/loads.cuh"
#include "../common/mma_product.cuh"
#include "../common/step_index.cuh"
#include "../common/tf32_product.cuh"
#include "../common/waits.cuh"
#include "../common/warp_sums.cuh"
#include "../common/weight_element.cuh"

namespace rnn_fused {
namespace persistent {

// The shared device primitives (csrc/cuda/common), by their plain names.
using namespace device;

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
// Each lane holds L consecutive k of its warp's 32·L slice for each of its J
// rows. The grid kernel takes L = lane_span: 32 bytes of weights per row in the
// accumulation type (8 floats, 4 doubles). The cluster kernel trades L for J so
// that a cluster of at most 16 blocks holds all of W_hh (cluster_lane_span);
// with the weights in shared memory (J = 64, half types), L = 4 lets 8 warps
// span H = 1024.
template <typename acc_t>
constexpr int lane_span() { return 32 / sizeof(acc_t); }
template <typename scalar_t, int J>
constexpr int cluster_lane_span() {
  return weights_in_shared<scalar_t, J>() ? 4
                                          : 256 / (J * int(sizeof(at::opmath_type<scalar_t>)));
}
// (b, j) outputs per thread per step, prefetched into registers.
constexpr int kMaxOutputsPerThread = 8;
// Rows of the B×H step vector each warp loads before using any, so that L2
// latency is paid once per group, not once per row: 8 where the registers allow.
template <int J, int L, typename acc_t>
constexpr int row_group() {
  return (J + 8) * L * sizeof(acc_t) <= 96 * sizeof(float) ? 8 : 4;
}

// The kernel's arguments: a layer's params as raw pointers (one_gate_args.cuh), plus its layout.
template <typename scalar_t>
struct KernelArgs {
  using acc_t = at::opmath_type<scalar_t>;
  int64_t steps, batch, hidden;
  int64_t batch_tile;  // batch rows per tile: blockIdx.y's rows start at y·batch_tile
  int warps_k;         // warps that split k: ceil(H / (32·L))
  int warps_b;         // warps that split the batch: kWarps / warps_k
  bool reverse;
  bool vector_loads;  // H % L == 0 and every tensor 16-byte aligned
  Activation act;
  const scalar_t* w_hh;   // [H, H]
  scalar_t* out;          // [T, B, H] forward: projection in, h_t out; backward: h_t
  const scalar_t* hx;     // [B, H] forward
  const scalar_t* mask;   // [T, B] or null
  const scalar_t* reset;  // [B, H] forward, with a mask
  const scalar_t* grad_out;  // [T, B, H] backward
  scalar_t* grad_pre;        // [T, B, H] backward
  acc_t* grad_reset;         // [B, H] backward, with a mask
  // Grid kernel: one zeroed counter; 64 bits, so that T·blocks cannot wrap it.
  // Tiled kernel (cluster/tiled_kernel.cuh): one zeroed flag per block, its steps done.
  unsigned long long* barrier;
  Watchdog watchdog;  // bounds those waits (waits.cuh)
};

// A processed step's own operands at output g = (t·B + b)·H + j, which do not
// depend on other blocks: forward, the projection (first); backward,
// grad_out (first) and h_t (second).
template <bool kBackward, typename scalar_t, typename acc_t>
__device__ __forceinline__ void load_step_operands(const KernelArgs<scalar_t>& p, int64_t g,
                                                   acc_t& first, acc_t& second) {
  if constexpr (kBackward) {
    first = static_cast<acc_t>(load_cg(p.grad_out + g));
    second = static_cast<acc_t>(load_cg(p.out + g));
  } else {
    first = static_cast<acc_t>(load_cg(p.out + g));
  }
}

// The cell's pointwise step at output g, unit = b·H + j, given y, the W_hh
// product of the linked step (none where !has_link), and the step's mask m of
// row b (backward; unread forward, where the carry's blend is the reader's).
// Forward: h = φ(projection + y). Backward: dpre = φ'(h)·(grad_out + m·y),
// dreset += (1 − m)·y. Stores h or dpre at g and returns it.
template <bool kBackward, typename scalar_t, typename acc_t>
__device__ __forceinline__ scalar_t finish_output(const KernelArgs<scalar_t>& p, int64_t g,
                                                  int64_t unit, bool has_link, acc_t y,
                                                  acc_t first, acc_t second, acc_t m) {
  const ElmanCell<RuntimeAct> cell{RuntimeAct{p.act}};
  if constexpr (kBackward) {
    acc_t grad = first;
    if (has_link) {
      grad += m * y;
      if (p.mask != nullptr) p.grad_reset[unit] += (acc_t(1) - m) * y;
    }
    const scalar_t value = static_cast<scalar_t>(cell.backward(grad, second));
    p.grad_pre[g] = value;
    return value;
  } else {
    const scalar_t value = static_cast<scalar_t>(cell.forward(first, y));
    p.out[g] = value;
    return value;
  }
}

// Forward, per processed step: h = the cell's step of the projection and
// carry_prev · W_hhᵀ; the carry is m·h + (1 − m)·reset with the previous
// step's mask, blended on load (grid) or by its producer before it sends it
// (cluster). Backward, per step in reverse processing order:
// dcarry = dpre_next · W_hh, dpre = the cell's backward of grad_out + m·dcarry,
// dreset += (1 − m)·dcarry.
// kTf32: the float32 cluster kernel's product on TF32 tensor cores.
template <typename scalar_t, int J, int kLaneSpan, bool kBackward, bool kClustered,
          bool kTf32 = false>
__global__ void __launch_bounds__(kThreads, 1)
persistent_recurrence_kernel(const KernelArgs<scalar_t> p) {
  using acc_t = at::opmath_type<scalar_t>;
  static_assert(!kTf32 || (kClustered && std::is_same_v<scalar_t, float>),
                "TF32 is for the float32 cluster kernel");
  // The cluster kernel's half types multiply on tensor cores, since their step
  // vector is in shared memory in the storage type, as fragments want it; so
  // does float32 where TF32 is allowed.
  constexpr bool kTensorCores = kClustered && (sizeof(scalar_t) == 2 || kTf32);
  struct NoMma {};
  std::conditional_t<
      kTf32, Tf32Product<J, kLaneSpan, kBackward>,
      std::conditional_t<kTensorCores, MmaProduct<scalar_t, J, kLaneSpan, kBackward>, NoMma>>
      mma_weights;
  using Exchange = ExchangeLayout<scalar_t, J, kLaneSpan>;
  constexpr int kLog2 = log2_rows<J>();
  constexpr int kRowGroup = row_group<J, kLaneSpan, acc_t>();
  extern __shared__ __align__(16) unsigned char shared_raw[];
  // partial[warp_k][b][j]: each k-warp's share of every output of this block.
  acc_t* partial = reinterpret_cast<acc_t*>(shared_raw);

  const int64_t T = p.steps, B = p.batch, H = p.hidden;
  // This block's batch tile: global rows b_base + b for b < Bt.
  const int64_t b_base = int64_t(blockIdx.y) * p.batch_tile;
  const int64_t Bt = B - b_base < p.batch_tile ? B - b_base : p.batch_tile;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warp_k = warp % p.warps_k, warp_b = warp / p.warps_k;
  const int k0 = warp_k * 32 * kLaneSpan + lane * kLaneSpan;
  const int64_t j0 = int64_t(blockIdx.x) * J;

  acc_t w[kTensorCores ? 1 : J][kTensorCores ? 1 : kLaneSpan];  // unused on tensor cores
  if constexpr (kTensorCores) {
    mma_weights.load(p.w_hh, H, j0, p.warps_k, warp_k, lane,
                     reinterpret_cast<uint4*>(shared_raw +
                                              Exchange::weights_offset(p.warps_k, p.batch_tile)));
  } else {
#pragma unroll
    for (int j = 0; j < J; ++j) {
#pragma unroll
      for (int i = 0; i < kLaneSpan; ++i) {
        w[j][i] = static_cast<acc_t>(weight_element<kBackward>(p.w_hh, H, j0 + j, k0 + i));
      }
    }
  }

  // Cluster kernel: the two step-vector buffers. The one the first step reads
  // starts as the tile's h_0 (forward); the pad beyond H stays zero. The
  // barrier also makes sure that every peer runs before any block stores into
  // its shared memory, and that the weights in shared memory are in place.
  const int row_stride = static_cast<int>(Exchange::row_stride(p.warps_k));
  const int tile_rows = static_cast<int>(p.batch_tile);
  scalar_t* exchange = nullptr;
  if constexpr (kClustered) {
    exchange =
        reinterpret_cast<scalar_t*>(shared_raw + Exchange::buffers_offset(p.warps_k, p.batch_tile));
    for (int i = threadIdx.x; i < 2 * tile_rows * row_stride; i += kThreads) {
      const int b = i / row_stride - tile_rows, k = i % row_stride;
      exchange[i] = !kBackward && b >= 0 && b < Bt && k < H ? p.hx[(b_base + b) * H + k]
                                                           : scalar_t(0);
    }
    cluster_barrier();
  }

  const int outputs = static_cast<int>(Bt) * J;
  for (int64_t s = 0; s < T; ++s) {
    const StepIndex<kBackward> step(s, T, p.reverse);
    const int64_t q = step.q, t = step.t, link = step.link;
    const bool has_link = step.has_link;

    // This step's own operands do not depend on other blocks: load them first,
    // so that their latency overlaps the matrix-vector product.
    acc_t first[kMaxOutputsPerThread], second[kMaxOutputsPerThread];
    acc_t mask[kMaxOutputsPerThread];
#pragma unroll
    for (int e = 0; e < kMaxOutputsPerThread; ++e) {
      const int idx = threadIdx.x + e * kThreads;
      const int b = idx >> kLog2, j = idx & (J - 1);
      first[e] = second[e] = acc_t(0);
      mask[e] = acc_t(1);  // the grid forward blends on load and keeps it at 1
      if (idx < outputs && j0 + j < H) {
        load_step_operands<kBackward>(p, (t * B + b_base + b) * H + j0 + j, first[e], second[e]);
        if ((kBackward || kClustered) && p.mask != nullptr) {
          mask[e] = static_cast<acc_t>(load_cg(p.mask + t * B + b_base + b));
        }
      }
    }

    if constexpr (kTensorCores) {
      if (has_link && warp_b < p.warps_b) {
        mma_weights.product(exchange + int((s + 1) & 1) * tile_rows * row_stride, row_stride,
                            static_cast<int>(Bt), warp_k * 32 * kLaneSpan, warp_b, p.warps_b,
                            warp_k, lane, partial);
      }
    } else if (has_link && warp_b < p.warps_b) {
      for (int64_t b_first = warp_b; b_first < Bt; b_first += int64_t(kRowGroup) * p.warps_b) {
        // The cluster kernel's producers blend the carry before they send it.
        const bool blend = !kBackward && !kClustered && q > 0 && p.mask != nullptr;
        acc_t m[kRowGroup];
        if (blend) {
#pragma unroll
          for (int r = 0; r < kRowGroup; ++r) {
            const int64_t b = b_first + int64_t(r) * p.warps_b;
            m[r] = b < Bt ? static_cast<acc_t>(load_cg(p.mask + link * B + b_base + b)) : acc_t(1);
          }
        }
        acc_t v[kRowGroup][kLaneSpan];
#pragma unroll
        for (int r = 0; r < kRowGroup; ++r) {
          const int64_t b = b_first + int64_t(r) * p.warps_b;
          if (b >= Bt) continue;
          const int64_t row_b = b_base + b;
          if constexpr (kClustered) {
            // Exchange rows are padded to whole lane spans: no bounds.
            load_span</*kGlobal=*/false>(
                v[r], exchange + (int((s + 1) & 1) * tile_rows + b) * row_stride + k0);
            continue;
          }
          const scalar_t* row = kBackward ? p.grad_pre + (link * B + row_b) * H
                                : q == 0  ? p.hx + row_b * H
                                          : p.out + (link * B + row_b) * H;
          load_lane(v[r], row, k0, H, p.vector_loads);
        }
        if (blend) {
#pragma unroll
          for (int r = 0; r < kRowGroup; ++r) {
            const int64_t b = b_first + int64_t(r) * p.warps_b;
            // Rows that keep their state (m = 1, the common case) read no reset.
            if (b >= Bt || m[r] == acc_t(1)) continue;
            acc_t reset[kLaneSpan];
            load_lane(reset, p.reset + (b_base + b) * H, k0, H, p.vector_loads);
#pragma unroll
            for (int i = 0; i < kLaneSpan; ++i) {
              v[r][i] = m[r] * v[r][i] + (acc_t(1) - m[r]) * reset[i];
            }
          }
        }
#pragma unroll
        for (int r = 0; r < kRowGroup; ++r) {
          const int64_t b = b_first + int64_t(r) * p.warps_b;
          if (b >= Bt) continue;
          acc_t acc[J];
#pragma unroll
          for (int j = 0; j < J; ++j) {
            acc[j] = acc_t(0);
#pragma unroll
            for (int i = 0; i < kLaneSpan; ++i) acc[j] += w[j][i] * v[r][i];
          }
          warp_sum_rows<J>(acc, lane);
          if ((lane & ((32 >> kLog2) - 1)) == 0) {
            partial[(warp_k * Bt + b) * J + (lane >> (5 - kLog2))] = acc[0];
          }
        }
      }
    }
    __syncthreads();

#pragma unroll
    for (int e = 0; e < kMaxOutputsPerThread; ++e) {
      const int idx = threadIdx.x + e * kThreads;
      const int b = idx >> kLog2, j = idx & (J - 1);
      if (idx >= outputs || j0 + j >= H) continue;
      acc_t y = acc_t(0);
      if (has_link) {
        for (int k = 0; k < p.warps_k; ++k) y += partial[(k * Bt + b) * J + j];
      }
      const scalar_t value = finish_output<kBackward>(
          p, (t * B + b_base + b) * H + j0 + j, (b_base + b) * H + j0 + j, has_link, y, first[e],
          second[e], mask[e]);
      // The last step's vector is read by no one, and a peer may have exited.
      // The cluster's blocks are its x dimension, so the rank is blockIdx.x.
      if constexpr (kClustered) {
        if (s + 1 < T) {
          scalar_t sent = value;
          // The forward sends the carry, blended as the grid kernel blends on
          // load; a kept row (m = 1) reads no reset.
          if (!kBackward && mask[e] != acc_t(1)) {
            const acc_t r = static_cast<acc_t>(p.reset[(b_base + b) * H + j0 + j]);
            sent = static_cast<scalar_t>(mask[e] * static_cast<acc_t>(value) +
                                         (acc_t(1) - mask[e]) * r);
          }
          store_to_cluster(exchange + (int(s & 1) * tile_rows + b) * row_stride + int(j0) + j,
                           sent, gridDim.x, blockIdx.x);
        }
      }
    }
    if (s + 1 < T) {
      if constexpr (kClustered) {
        cluster_barrier();
      } else if (!grid_barrier(p.barrier, static_cast<unsigned long long>(s + 1) * gridDim.x,
                               p.watchdog, s)) {
        return;
      }
    }
  }
}

}  // namespace persistent
}  // namespace rnn_fused
