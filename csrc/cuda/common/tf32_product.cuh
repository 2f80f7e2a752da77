// The float32 cluster kernel's step product on TF32 tensor cores, taken only
// where the user allows TF32 in matrix products: mma.sync m16n8k8 with float32
// accumulation. The operands are the other way round from MmaProduct's: W_hh
// is B (8 of the block's J rows per tile, so J = 8 fills its tiles) and the
// step vector is A (16 batch rows per tile). A warp keeps its k-slice of the
// block's rows as B fragments in registers, J·L = 64 of them like the FMA
// product's weights, and reads the step vector from the block's exchange
// buffer, rounding both to TF32 (to nearest, ties away from zero).
#pragma once

#include <cstdint>

#include "weight_element.cuh"

namespace rnn_fused {
namespace device {

// Fragment layout (PTX ISA, "Matrix Fragments for mma.m16n8k8", .tf32):
// g = lane / 4, c = lane % 4. A (16 × 8): a0 at row g, k c; a1 row g + 8; a2,
// a3 the same rows at k c + 4. B (8 × 8): b0 at k c, column g; b1 k c + 4.
// D (16 × 8): d0, d1 at row g, columns 2c, 2c + 1; d2, d3 at row g + 8.
template <int J, int kLaneSpan, bool kBackward>
struct Tf32Product {
  static_assert(J % 8 == 0, "B tiles take 8 rows of W_hh");
  static constexpr int kRowTiles = J / 8;
  static constexpr int kKTiles = 32 * kLaneSpan / 8;  // a warp's k-slice in tiles of 8
  unsigned b[kRowTiles][kKTiles][2];

  __device__ static unsigned to_tf32(float x) {
    unsigned bits;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    __trap();  // unreachable: only the cluster kernel (compute capability 9.0) takes it
#else
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(bits) : "f"(x));
#endif
    return bits;
  }

  // Each warp loads its own fragments; warps_k and `shared` are MmaProduct's
  // (weights in shared memory), unused here.
  __device__ void load(const float* w_hh, int64_t hidden, int64_t j0, int /*warps_k*/,
                       int warp_k, int lane, uint4* /*shared*/) {
    const int g = lane >> 2, c = lane & 3, k_first = warp_k * 32 * kLaneSpan;
#pragma unroll
    for (int n = 0; n < kRowTiles; ++n) {
#pragma unroll
      for (int kt = 0; kt < kKTiles; ++kt) {
        const int j = n * 8 + g, k = k_first + kt * 8 + c;
        b[n][kt][0] = to_tf32(weight_element<kBackward>(w_hh, hidden, j0 + j, k));
        b[n][kt][1] = to_tf32(weight_element<kBackward>(w_hh, hidden, j0 + j, k + 4));
      }
    }
  }

  __device__ static void mma(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    __trap();  // unreachable, as in to_tf32
#else
    asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
  }

  // partial[(warp_k · rows + b) · J + j] = Σ over the warp's k of
  // weight(j, k) · vector[b][k], for the warp's groups of 16 batch rows.
  // `vector`: the exchange buffer the step reads, rows `row_stride` apart;
  // rows >= `rows` are not read.
  __device__ void product(const float* vector, int row_stride, int rows, int k_first, int warp_b,
                          int warps_b, int warp_k, int lane, float* partial) const {
    const int g = lane >> 2, c = lane & 3;
    for (int base = warp_b * 16; base < rows; base += warps_b * 16) {
      const bool low_in = base + g < rows, high_in = base + g + 8 < rows;
      const float* low = vector + (base + g) * row_stride + k_first + c;
      const float* high = low + 8 * row_stride;
      float d[kRowTiles][4] = {};
#pragma unroll
      for (int kt = 0; kt < kKTiles; ++kt) {
        const unsigned a[4] = {low_in ? to_tf32(low[kt * 8]) : 0u,
                               high_in ? to_tf32(high[kt * 8]) : 0u,
                               low_in ? to_tf32(low[kt * 8 + 4]) : 0u,
                               high_in ? to_tf32(high[kt * 8 + 4]) : 0u};
#pragma unroll
        for (int n = 0; n < kRowTiles; ++n) mma(d[n], a, b[n][kt]);
      }
#pragma unroll
      for (int n = 0; n < kRowTiles; ++n) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const int batch_row = base + g + (i >= 2 ? 8 : 0), j = n * 8 + 2 * c + (i & 1);
          if (batch_row < rows) partial[(warp_k * rows + batch_row) * J + j] = d[n][i];
        }
      }
    }
  }
};

}  // namespace device
}  // namespace rnn_fused
