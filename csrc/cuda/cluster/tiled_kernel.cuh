// The tiled cluster recurrence, for float32 and float64 where one cluster
// cannot hold W_hh. Cluster y keeps rows [128y, 128y + 128) of W_hh (forward;
// of W_hhᵀ backward) and splits their columns over its C blocks: block x holds
// a 128 × K tile in registers (each lane 4 rows × kLaneK columns, K = 8·kLaneK)
// and reads only columns [xK, xK + K) of the step vector, not all of it. Per
// step a block
//   1. waits for the blocks that produced those columns: one flag per block in
//      global memory, released after its stores, so no barrier spans the grid;
//   2. stages the columns in shared memory (forward: the carry, blended with
//      the reset state on load as the grid kernel blends it);
//   3. multiplies them by its tile: its 128 rows' sums over its K columns;
//   4. sends each row's sum to the block of its cluster that owns the row
//      (DSMEM; block x owns G = ceil(128 / C) of the cluster's rows);
//   5. meets its cluster at the cluster barrier, adds the C sums of each of its
//      rows, runs the cell's pointwise step, stores h_t (or dpre) and releases
//      its flag.
// A block waits on blocks of other clusters, so every cluster must be
// resident at once: the launch is cooperative, after a residency check.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include <ATen/OpMathType.h>

#include "../persistent/one_gate_kernel.cuh"

namespace rnn_fused {
namespace tiled {

using persistent::KernelArgs;
using persistent::kMaxOutputsPerThread;
using persistent::kThreads;
using persistent::kWarps;

constexpr int kTileRows = 128;                     // rows of W_hh per cluster
constexpr int kWarpRows = kTileRows / kWarps;      // each warp's 16 of them
constexpr int kLaneRows = 4;                       // each lane's 4 of those
constexpr int kRowLanes = kWarpRows / kLaneRows;   // lanes with different rows: 4
constexpr int kColumnLanes = 32 / kRowLanes;       // lanes that split a row's K: 8
constexpr int kBatchGroup = 2;                     // batch rows multiplied at once
// Step-vector loads each thread has in flight while staging.
constexpr int kStageLoads = 8;

template <int kLaneK>
constexpr int tile_columns() {
  return kColumnLanes * kLaneK;
}

// The block's dynamic shared memory, in the accumulation type: the staged
// columns [B rounded up to kBatchGroup][K], then two buffers of the partial
// sums its peers send [2][C][B][G]. Step s's sums go to buffer s & 1; one
// cluster barrier per step suffices, since a block sends into a buffer only
// after every peer has passed the barrier that follows its reads of it.
template <typename acc_t, int kLaneK>
struct TiledLayout {
  __host__ __device__ static int64_t staged_rows(int64_t batch) {
    return (batch + kBatchGroup - 1) / kBatchGroup * kBatchGroup;
  }
  __host__ __device__ static int64_t received_offset(int64_t batch) {
    return staged_rows(batch) * tile_columns<kLaneK>();
  }
  __host__ __device__ static int64_t bytes(int64_t batch, int blocks, int group_rows) {
    return (received_offset(batch) + 2 * int64_t(blocks) * batch * group_rows) *
           int64_t(sizeof(acc_t));
  }
};

// The block that outputs row `row` of the step vector: its cluster's rank for
// the row's place in the cluster's 128, in grid order (cluster-major).
__device__ __forceinline__ int64_t producer(int64_t row, int blocks, int group_rows) {
  return row / kTileRows * blocks + row % kTileRows / group_rows;
}

// staged[b][k] = the linked step's vector at row b, column col0 + k (zero
// beyond B and H), kWidth consecutive columns a load and a store; kWidth > 1
// (16 bytes) needs H % kWidth == 0 and 16-byte aligned tensors. Forward, the
// step vector is the carry:
// h_0 at the first step, else m·h + (1 − m)·reset with the linked step's
// mask, reading the reset state only for rows that reset.
template <int kWidth, bool kBackward, typename scalar_t, typename acc_t, int K>
__device__ __forceinline__ void stage_columns(const KernelArgs<scalar_t>& p, acc_t* staged,
                                              int64_t staged_rows, int64_t col0, bool first_step,
                                              int64_t link) {
  using chunk = device::chunk_t<kWidth * sizeof(scalar_t)>;
  const int64_t B = p.batch, H = p.hidden;
  const int64_t chunks = staged_rows * (K / kWidth);
  for (int64_t base = threadIdx.x; base < chunks; base += int64_t(kThreads) * kStageLoads) {
    scalar_t v[kStageLoads][kWidth];
    acc_t m[kStageLoads];
#pragma unroll
    for (int u = 0; u < kStageLoads; ++u) {
      const int64_t i = base + int64_t(u) * kThreads;
      const int64_t b = i / (K / kWidth), col = col0 + i % (K / kWidth) * kWidth;
      m[u] = acc_t(1);
      if (i >= chunks || b >= B || col >= H) {
#pragma unroll
        for (int c = 0; c < kWidth; ++c) v[u][c] = scalar_t(0);
        continue;
      }
      const scalar_t* src = kBackward    ? p.grad_pre + (link * B + b) * H + col
                            : first_step ? p.hx + b * H + col
                                         : p.out + (link * B + b) * H + col;
      if constexpr (kWidth == 1) {
        v[u][0] = device::load_cg(src);
      } else {
        const chunk raw = __ldcg(reinterpret_cast<const chunk*>(src));
        memcpy(v[u], &raw, sizeof(raw));
      }
      if (!kBackward && !first_step && p.mask != nullptr) {
        m[u] = static_cast<acc_t>(device::load_cg(p.mask + link * B + b));
      }
    }
#pragma unroll
    for (int u = 0; u < kStageLoads; ++u) {
      const int64_t i = base + int64_t(u) * kThreads;
      if (i >= chunks) continue;
      const int64_t b = i / (K / kWidth), col = col0 + i % (K / kWidth) * kWidth;
      acc_t values[kWidth];
#pragma unroll
      for (int c = 0; c < kWidth; ++c) {
        values[c] = static_cast<acc_t>(v[u][c]);
        // A kept row (m = 1, the common case) reads no reset.
        if (m[u] != acc_t(1)) {
          values[c] = m[u] * values[c] +
                      (acc_t(1) - m[u]) * static_cast<acc_t>(p.reset[b * H + col + c]);
        }
      }
      // One store a chunk: kWidth separate ones would conflict in the banks.
      using staged_chunk = device::chunk_t<kWidth * sizeof(acc_t)>;
      staged_chunk packed;
      memcpy(&packed, values, sizeof(packed));
      reinterpret_cast<staged_chunk*>(staged)[i] = packed;
    }
  }
}

template <typename scalar_t, int kLaneK, bool kBackward>
__global__ void __launch_bounds__(kThreads, 1)
tiled_recurrence_kernel(const KernelArgs<scalar_t> p) {
  using acc_t = at::opmath_type<scalar_t>;
  static_assert(std::is_same_v<acc_t, scalar_t>, "the tiled kernel is for float32 and float64");
  constexpr int K = tile_columns<kLaneK>();
  // Each lane reads its columns in 16-byte loads.
  constexpr int kVector = 16 / sizeof(acc_t);
  static_assert(kLaneK % kVector == 0, "a lane's columns must be whole 16-byte loads");
  using Layout = TiledLayout<acc_t, kLaneK>;
  using vector_t = device::chunk_t<16>;
  extern __shared__ __align__(16) unsigned char shared_raw[];

  const int64_t T = p.steps, B = p.batch, H = p.hidden;
  const int blocks = gridDim.x, rank = blockIdx.x;
  const int group_rows = (kTileRows + blocks - 1) / blocks;
  const int64_t row0 = int64_t(blockIdx.y) * kTileRows;  // the cluster's first row
  const int64_t col0 = int64_t(rank) * K;                 // the block's first column
  const int64_t staged_rows = Layout::staged_rows(B);
  acc_t* staged = reinterpret_cast<acc_t*>(shared_raw);
  acc_t* received = staged + Layout::received_offset(B);
  unsigned long long* flags = p.barrier;

  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int row_lane = lane % kRowLanes, column_lane = lane / kRowLanes;
  // The lane's rows: warp_row + i, i < kLaneRows; its columns: lane_col + c.
  const int warp_row = warp * kWarpRows + row_lane * kLaneRows;
  const int lane_col = column_lane * kLaneK;
  // The row whose sum a lane ends with: fold_rows leaves it one of its four
  // (picked by lane bits 4 and 3), summed over those bits' lanes; the last
  // exchange (lane bit 2) completes the sum over all eight column lanes.
  const int summed_row = warp_row + ((lane >> 3) & 3);
  const int peer = summed_row / group_rows, peer_row = summed_row % group_rows;

  acc_t w[kLaneRows][kLaneK];
#pragma unroll
  for (int i = 0; i < kLaneRows; ++i) {
#pragma unroll
    for (int c = 0; c < kLaneK; ++c) {
      w[i][c] = device::weight_element<kBackward>(p.w_hh, H, row0 + warp_row + i,
                                                      col0 + lane_col + c);
    }
  }
  // Every peer runs before any block stores into its shared memory.
  device::cluster_barrier();

  // The flags this block waits on: one thread per producer of its columns.
  bool waits = false;
  int64_t wait_on = 0;
  if (threadIdx.x < K && col0 + threadIdx.x < H) {
    wait_on = producer(col0 + threadIdx.x, blocks, group_rows);
    waits = threadIdx.x == 0 || producer(col0 + threadIdx.x - 1, blocks, group_rows) != wait_on;
  }
  const int64_t own_flag = int64_t(blockIdx.y) * blocks + rank;
  const int64_t out0 = row0 + int64_t(rank) * group_rows;  // the first row it outputs
  const int outputs = static_cast<int>(B) * group_rows;

  for (int64_t s = 0; s < T; ++s) {
    const device::StepIndex<kBackward> step(s, T, p.reverse);
    const int64_t q = step.q, t = step.t, link = step.link;
    const bool has_link = step.has_link;
    const int buffer = static_cast<int>(s & 1);

    acc_t first[kMaxOutputsPerThread], second[kMaxOutputsPerThread];
    acc_t mask[kMaxOutputsPerThread];
#pragma unroll
    for (int e = 0; e < kMaxOutputsPerThread; ++e) {
      const int idx = threadIdx.x + e * kThreads;
      const int b = idx / group_rows, j = idx % group_rows;
      first[e] = second[e] = acc_t(0);
      mask[e] = acc_t(1);
      if (idx < outputs && rank * group_rows + j < kTileRows && out0 + j < H) {
        persistent::load_step_operands<kBackward>(p, (t * B + b) * H + out0 + j, first[e],
                                                  second[e]);
        if (kBackward && p.mask != nullptr) {
          mask[e] = static_cast<acc_t>(device::load_cg(p.mask + t * B + b));
        }
      }
    }

    if (has_link) {
      // Step s − 1's vector (s > 0) is complete once each producer has
      // released s; the acquire and the block barrier order the loads after.
      // After an abort no wait holds the block: it runs its remaining steps
      // (their values invalid), so that its cluster's barriers are all met.
      if (s > 0 && waits) {
        device::wait_at_least(flags + wait_on, static_cast<unsigned long long>(s),
                                  p.watchdog, s - 1);
      }
      __syncthreads();
      const bool first_step = !kBackward && q == 0;
      if (p.vector_loads) {
        stage_columns<kVector, kBackward, scalar_t, acc_t, K>(p, staged, staged_rows, col0,
                                                              first_step, link);
      } else {
        stage_columns<1, kBackward, scalar_t, acc_t, K>(p, staged, staged_rows, col0, first_step,
                                                        link);
      }
      __syncthreads();

      for (int64_t b0 = 0; b0 < B; b0 += kBatchGroup) {
        acc_t acc[kBatchGroup][kLaneRows];
#pragma unroll
        for (int r = 0; r < kBatchGroup; ++r) {
#pragma unroll
          for (int i = 0; i < kLaneRows; ++i) acc[r][i] = acc_t(0);
        }
#pragma unroll
        for (int c = 0; c < kLaneK; c += kVector) {
#pragma unroll
          for (int r = 0; r < kBatchGroup; ++r) {
            const vector_t raw =
                *reinterpret_cast<const vector_t*>(staged + (b0 + r) * K + lane_col + c);
            acc_t v[kVector];
            memcpy(v, &raw, sizeof(raw));
#pragma unroll
            for (int i = 0; i < kLaneRows; ++i) {
#pragma unroll
              for (int x = 0; x < kVector; ++x) acc[r][i] += w[i][c + x] * v[x];
            }
          }
        }
#pragma unroll
        for (int r = 0; r < kBatchGroup; ++r) {
          // Lane bits 4 and 3 fold the four rows to one while summing over
          // them; bit 2, the last column bit, then needs one more exchange.
          device::fold_rows<0>(acc[r], lane);
          acc[r][0] += __shfl_xor_sync(0xffffffffu, acc[r][0], kRowLanes);
          if ((lane & kRowLanes) == 0 && b0 + r < B) {
            device::store_to_peer(
                received + ((buffer * blocks + rank) * B + b0 + r) * group_rows + peer_row,
                acc[r][0], static_cast<unsigned>(peer));
          }
        }
      }
      device::cluster_barrier();
    }

#pragma unroll
    for (int e = 0; e < kMaxOutputsPerThread; ++e) {
      const int idx = threadIdx.x + e * kThreads;
      const int b = idx / group_rows, j = idx % group_rows;
      if (idx >= outputs || rank * group_rows + j >= kTileRows || out0 + j >= H) continue;
      acc_t y = acc_t(0);
      if (has_link) {
        for (int c = 0; c < blocks; ++c) {
          y += received[((buffer * blocks + c) * B + b) * group_rows + j];
        }
      }
      persistent::finish_output<kBackward>(p, (t * B + b) * H + out0 + j, b * H + out0 + j,
                                           has_link, y, first[e], second[e], mask[e]);
    }
    // The last step's vector is read by no one.
    if (s + 1 < T) {
      __syncthreads();
      if (threadIdx.x == 0 && !device::stalls(p.watchdog, s)) {
        __threadfence();
        device::store_release(flags + own_flag, static_cast<unsigned long long>(s + 1));
      }
    }
  }
}

}  // namespace tiled
}  // namespace rnn_fused
