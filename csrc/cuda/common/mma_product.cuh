// The cluster kernel's step product on tensor cores, for float16 and bfloat16:
// mma.sync m16n8k16 with float32 accumulation. A warp takes its k-slice of the
// block's J rows of W_hh (or columns, backward) as A fragments (16 rows per
// tile, J = 8 leaving half of one tile zero) and the step vector from the
// block's own exchange buffer as B fragments, 8 batch rows at a time. No
// butterfly: each lane's accumulators are whole (row, batch) sums over the
// warp's k, written to the same partial sums as the FMA product.
//
// Up to J = 32 the A fragments live in registers (H <= 512). At J = 64 a
// block's tile of W_hh (up to 128 KB) is too large for them; it lives in
// shared memory, each fragment's 32 lanes' 16 bytes side by side, so that a
// warp reads a fragment in one conflict-free 512-byte load. Clusters of 16
// such blocks hold W_hh up to H = 1024.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "weight_element.cuh"

namespace rnn_fused {
namespace device {

// Rows of W_hh per block at which the half types' weights move to shared memory.
constexpr int kSharedWeightRows = 64;

template <typename scalar_t, int J>
constexpr bool weights_in_shared() {
  return sizeof(scalar_t) == 2 && J == kSharedWeightRows;
}

// Fragment layout (PTX ISA, "Matrix Fragments for mma.m16n8k16"): g = lane / 4,
// c = lane % 4. A (16 × 16): register 0 holds row g, k 2c and 2c + 1; register 1
// row g + 8; registers 2 and 3 the same rows at k + 8. B (16 × 8): register 0
// holds k 2c, 2c + 1 of column g; register 1 k + 8. D (16 × 8): d0, d1 at row g,
// columns 2c, 2c + 1; d2, d3 at row g + 8.
template <typename scalar_t, int J, int kLaneSpan, bool kBackward>
struct MmaProduct {
  static_assert(sizeof(scalar_t) == 2, "tensor cores take float16 or bfloat16");
  static constexpr int kRowTiles = (J + 15) / 16;
  static constexpr int kKTiles = 32 * kLaneSpan / 16;  // a warp's k-slice in tiles of 16
  static constexpr bool kShared = weights_in_shared<scalar_t, J>();
  // 16-byte slots a warp's fragments fill: one per lane and fragment.
  static constexpr int kSlotsPerWarp = kRowTiles * kKTiles * 32;
  struct InRegisters {
    uint4 a[kRowTiles][kKTiles];
  };
  struct InShared {
    const uint4* a;  // this warp's fragments, fragment-major, then lane
  };
  std::conditional_t<kShared, InShared, InRegisters> weights;

  // Two consecutive k of W_hh's row j (forward; backward its column j), packed
  // low element first; zero beyond J or H.
  __device__ static unsigned weight_pair(const scalar_t* w_hh, int64_t hidden, int64_t j0, int j,
                                         int k) {
    scalar_t pair[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      pair[i] = j < J ? weight_element<kBackward>(w_hh, hidden, j0 + j, k + i) : scalar_t(0);
    }
    unsigned bits;
    memcpy(&bits, pair, 4);
    return bits;
  }

  // Lane `lane`'s A fragment for row tile m and k tile kt of the k-slice that
  // starts at k_first, from W_hh in global memory.
  __device__ static uint4 gather(const scalar_t* w_hh, int64_t hidden, int64_t j0, int k_first,
                                int m, int kt, int lane) {
    const int row = m * 16 + (lane >> 2), k = k_first + kt * 16 + 2 * (lane & 3);
    return make_uint4(weight_pair(w_hh, hidden, j0, row, k),
                      weight_pair(w_hh, hidden, j0, row + 8, k),
                      weight_pair(w_hh, hidden, j0, row, k + 8),
                      weight_pair(w_hh, hidden, j0, row + 8, k + 8));
  }

  // Registers: each warp loads its own fragments. Shared memory: the block
  // fills every k-warp's fragments into `shared` (which the caller has sized
  // for warps_k of them), to be read after the next block barrier.
  __device__ void load(const scalar_t* w_hh, int64_t hidden, int64_t j0, int warps_k,
                       int warp_k, int lane, uint4* shared) {
    if constexpr (kShared) {
      for (int i = threadIdx.x; i < warps_k * kSlotsPerWarp; i += blockDim.x) {
        const int owner = i / kSlotsPerWarp, f = i % kSlotsPerWarp / 32;
        shared[i] = gather(w_hh, hidden, j0, owner * 32 * kLaneSpan, f / kKTiles, f % kKTiles,
                           i % 32);
      }
      weights.a = shared + warp_k * kSlotsPerWarp;
    } else {
#pragma unroll
      for (int m = 0; m < kRowTiles; ++m) {
#pragma unroll
        for (int kt = 0; kt < kKTiles; ++kt) {
          weights.a[m][kt] = gather(w_hh, hidden, j0, warp_k * 32 * kLaneSpan, m, kt, lane);
        }
      }
    }
  }

  __device__ uint4 fragment(int m, int kt, int lane) const {
    if constexpr (kShared) {
      return weights.a[(m * kKTiles + kt) * 32 + lane];
    } else {
      return weights.a[m][kt];
    }
  }

  __device__ static void mma(float (&d)[4], uint4 a, unsigned b0, unsigned b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    __trap();  // unreachable: only the cluster kernel (compute capability 9.0) takes it
#else
    if constexpr (std::is_same_v<scalar_t, c10::BFloat16>) {
      asm(
          "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
          "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
          : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
          : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "r"(b0), "r"(b1));
    } else {
      asm(
          "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
          "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
          : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
          : "r"(a.x), "r"(a.y), "r"(a.z), "r"(a.w), "r"(b0), "r"(b1));
    }
#endif
  }

  // partial[(warp_k · rows + b) · J + j] = Σ over the warp's k of
  // weight(j, k) · vector[b][k], for the warp's groups of 8 batch rows.
  // `vector`: the exchange buffer the step reads, rows `row_stride` apart;
  // rows >= `rows` are not read.
  __device__ void product(const scalar_t* vector, int row_stride, int rows, int k_first,
                          int warp_b, int warps_b, int warp_k, int lane, float* partial) const {
    const int g = lane >> 2, c = lane & 3;
    for (int base = warp_b * 8; base < rows; base += warps_b * 8) {
      unsigned b[kKTiles][2];
      const bool row_in = base + g < rows;
      const unsigned* row =
          reinterpret_cast<const unsigned*>(vector + (base + g) * row_stride + k_first + 2 * c);
#pragma unroll
      for (int kt = 0; kt < kKTiles; ++kt) {
        b[kt][0] = row_in ? row[kt * 8] : 0u;
        b[kt][1] = row_in ? row[kt * 8 + 4] : 0u;
      }
#pragma unroll
      for (int m = 0; m < kRowTiles; ++m) {
        float d[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
        for (int kt = 0; kt < kKTiles; ++kt) mma(d, fragment(m, kt, lane), b[kt][0], b[kt][1]);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int j = m * 16 + g + (i >= 2 ? 8 : 0), batch_row = base + 2 * c + (i & 1);
          if (j < J && batch_row < rows) partial[(warp_k * rows + batch_row) * J + j] = d[i];
        }
      }
    }
  }
};

}  // namespace device
}  // namespace rnn_fused
