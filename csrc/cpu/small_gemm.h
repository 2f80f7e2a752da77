// The step product of a small batch inside the CPU's pass, in register tiles. A
// BLAS call for 8×128×128 spends most of its 5 µs outside the arithmetic; this
// kernel keeps a tile of the output in registers and streams the weight rows
// once. Written once over FloatVec (simd.h); call it from an on_cpu_isa kernel.
#pragma once

#include <algorithm>
#include <cstdint>

#include "isa.h"
#include "simd.h"
#include "transpose.h"

namespace rnn_fused {

// c = a · m, or c += a · m with accumulate: a is rows×k, m is k×n and c is
// rows×n, row-major with leading dimensions lda, ldm and ldc (so that a thread
// can take a block of columns of a larger product). With `panels`, m is instead
// packed in blocks of 16 columns, [k, 16] each (pack_panels_into_thread_buffer,
// transpose.h), starting at a block, and ldm is unused.
struct SmallGemm {
  const float* a;
  const float* m;
  float* c;
  int64_t rows, k, n;
  int64_t lda, ldm, ldc;
  bool panels = false;
};

namespace tiles {

// A tile: kRows rows × kVectors vectors of columns, its accumulators, a row of
// weights and a broadcast within the ISA's vector registers (AVX-512 8×32
// columns, AVX2 6×16, NEON 6×16). Its columns are whole panels.
template <typename IsaT>
struct Shape {
  static constexpr int kLanes = IsaT::kFloatLanes;
  static constexpr int kVectors = kLanes >= 16 ? 2 : kPanelWidth / kLanes;
  static constexpr int kColumns = kLanes * kVectors;
  static constexpr int kRows = std::min(8, (IsaT::kRegisters - kVectors - 1) / kVectors);
  static_assert(kColumns % kPanelWidth == 0);
};

// One tile: kRows rows × up to Shape::kColumns columns from column j, over all
// k; kFull: all of its columns lie in c. Scalar, non-aliasing arguments rather
// than the SmallGemm: the B=8, H=128 Elman step ran about 10% slower with the
// struct (AVX-512).
template <typename IsaT, int kRows, bool kAccumulate, bool kPanels, bool kFull>
RNN_FUSED_ISA_KERNEL inline void tile(const float* __restrict__ a, const float* __restrict__ m,
                                      float* __restrict__ c, int64_t k, int64_t n,
                                      int64_t lda, int64_t ldm, int64_t ldc, int64_t j) {
  using S = Shape<IsaT>;
  using V = FloatVec<S::kLanes>;
  // A tile of one panel reads its zero padding rather than past it.
  constexpr bool kFullReads = kFull || (kPanels && S::kColumns == kPanelWidth);
  const int64_t stride = kPanels ? kPanelWidth : ldm;
  const float* w[S::kVectors];
  int64_t count[S::kVectors];
#pragma GCC unroll 4
  for (int v = 0; v < S::kVectors; ++v) {
    const int64_t column = j + v * S::kLanes;
    w[v] = kPanels ? m + column / kPanelWidth * kPanelWidth * k + column % kPanelWidth
                   : m + column;
    count[v] = n - column;
  }
  // Every loop over r and v is unrolled, so that acc lives in registers only:
  // with a run-time index GCC also stores all of it to the stack at every k.
  V acc[kRows][S::kVectors];
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < S::kVectors; ++v) {
      const float* out = c + r * ldc + j + v * S::kLanes;
      acc[r][v] = !kAccumulate ? V::zero() : kFull ? V::load(out) : V::load_first(out, count[v]);
    }
  }
  for (int64_t i = 0; i < k; ++i) {
    V row[S::kVectors];
#pragma GCC unroll 4
    for (int v = 0; v < S::kVectors; ++v) {
      row[v] = kFullReads ? V::load(w[v] + i * stride) : V::load_first(w[v] + i * stride, count[v]);
    }
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) {
      const V x = V::broadcast(a[r * lda + i]);
#pragma GCC unroll 4
      for (int v = 0; v < S::kVectors; ++v) acc[r][v] = acc[r][v].fma(x, row[v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < S::kVectors; ++v) {
      float* out = c + r * ldc + j + v * S::kLanes;
      if constexpr (kFull) {
        acc[r][v].store(out);
      } else {
        acc[r][v].store_first(out, count[v]);
      }
    }
  }
}

template <typename IsaT, int kRows, bool kAccumulate, bool kPanels>
RNN_FUSED_ISA_KERNEL inline void rows_block(const SmallGemm& g) {
  constexpr int64_t kColumns = Shape<IsaT>::kColumns;
  const int64_t full = g.n / kColumns * kColumns;
  for (int64_t j = 0; j < full; j += kColumns) {
    tile<IsaT, kRows, kAccumulate, kPanels, true>(g.a, g.m, g.c, g.k, g.n, g.lda, g.ldm, g.ldc, j);
  }
  if (full < g.n) {
    tile<IsaT, kRows, kAccumulate, kPanels, false>(g.a, g.m, g.c, g.k, g.n, g.lda, g.ldm, g.ldc,
                                                   full);
  }
}

// rows_block for the rows' count, from 1 to kRows.
template <typename IsaT, int kRows, bool kAccumulate, bool kPanels>
RNN_FUSED_ISA_KERNEL inline void rows_blocks(const SmallGemm& g, int64_t rows) {
  if constexpr (kRows > 1) {
    if (rows < kRows) return rows_blocks<IsaT, kRows - 1, kAccumulate, kPanels>(g, rows);
  }
  rows_block<IsaT, kRows, kAccumulate, kPanels>(g);
}

template <typename IsaT, bool kAccumulate, bool kPanels>
RNN_FUSED_ISA_KERNEL inline void run(const SmallGemm& g) {
  constexpr int64_t kRows = Shape<IsaT>::kRows;
  for (int64_t r = 0; r < g.rows; r += kRows) {
    SmallGemm block = g;
    block.a = g.a + r * g.lda;
    block.c = g.c + r * g.ldc;
    rows_blocks<IsaT, kRows, kAccumulate, kPanels>(block, std::min(kRows, g.rows - r));
  }
}

}  // namespace tiles

template <typename IsaT>
RNN_FUSED_ISA_KERNEL inline void small_gemm(const SmallGemm& g, bool accumulate = false) {
  if (accumulate) {
    g.panels ? tiles::run<IsaT, true, true>(g) : tiles::run<IsaT, true, false>(g);
  } else {
    g.panels ? tiles::run<IsaT, false, true>(g) : tiles::run<IsaT, false, false>(g);
  }
}

}  // namespace rnn_fused
