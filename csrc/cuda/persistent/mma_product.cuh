// The cluster kernel's step product on tensor cores, for float16 and bfloat16:
// mma.sync m16n8k16 with float32 accumulation. A warp keeps its k-slice of the
// block's J rows of W_hh (or columns, backward) as A fragments in registers
// (16 rows per tile, J = 8 leaving half of one tile zero) and takes the step
// vector from the block's own exchange buffer as B fragments, 8 batch rows at
// a time. No butterfly: each lane's accumulators are whole (row, batch) sums
// over the warp's k, written to the same partial sums as the FMA product.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

namespace rnn_fused {
namespace persistent {

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
  unsigned a[kRowTiles][kKTiles][4];

  // Two consecutive k of W_hh's row j (forward; backward its column j), packed
  // low element first; zero beyond J or H.
  __device__ static unsigned weight_pair(const scalar_t* w_hh, int64_t hidden, int64_t j0, int j,
                                         int k) {
    scalar_t pair[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int64_t row = j0 + j, col = k + i;
      pair[i] = j < J && row < hidden && col < hidden
                    ? (kBackward ? w_hh[col * hidden + row] : w_hh[row * hidden + col])
                    : scalar_t(0);
    }
    unsigned bits;
    memcpy(&bits, pair, 4);
    return bits;
  }

  // k_first: the warp's first k.
  __device__ void load(const scalar_t* w_hh, int64_t hidden, int64_t j0, int k_first, int lane) {
    const int g = lane >> 2, c = lane & 3;
#pragma unroll
    for (int m = 0; m < kRowTiles; ++m) {
#pragma unroll
      for (int kt = 0; kt < kKTiles; ++kt) {
        const int row = m * 16 + g, k = k_first + kt * 16 + 2 * c;
        a[m][kt][0] = weight_pair(w_hh, hidden, j0, row, k);
        a[m][kt][1] = weight_pair(w_hh, hidden, j0, row + 8, k);
        a[m][kt][2] = weight_pair(w_hh, hidden, j0, row, k + 8);
        a[m][kt][3] = weight_pair(w_hh, hidden, j0, row + 8, k + 8);
      }
    }
  }

  __device__ static void mma(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    __trap();  // unreachable: only the cluster kernel (compute capability 9.0) takes it
#else
    if constexpr (std::is_same_v<scalar_t, c10::BFloat16>) {
      asm(
          "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
          "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
          : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    } else {
      asm(
          "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
          "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
          : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
          : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
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
        for (int kt = 0; kt < kKTiles; ++kt) mma(d, a[m][kt], b[kt][0], b[kt][1]);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int j = m * 16 + g + (i >= 2 ? 8 : 0), batch_row = base + 2 * c + (i & 1);
          if (j < J && batch_row < rows) partial[(warp_k * rows + batch_row) * J + j] = d[i];
        }
      }
    }
  }
};

}  // namespace persistent
}  // namespace rnn_fused
