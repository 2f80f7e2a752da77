#include "small_gemm.h"

#include <immintrin.h>

#include <algorithm>

#include "isa.h"
#include "transpose.h"

namespace rnn_fused {
namespace {

constexpr int64_t kMaxRows = 8;  // rows of one output tile
constexpr int64_t kTileColumns = 32;  // two 16-float vectors

// One tile: kRows rows × up to 32 columns starting at column j, over all k;
// kAccumulate adds the product to c instead of overwriting it, kPanels reads m
// in panels (SmallGemm::panels). Scalar, non-aliasing arguments rather than the
// SmallGemm: the B=8, H=128 Elman step ran about 10% slower with the struct.
template <int kRows, bool kAccumulate, bool kPanels>
RNN_FUSED_AVX512 void tile(const float* __restrict__ a, const float* __restrict__ m,
                           float* __restrict__ c, int64_t k, int64_t n, int64_t lda,
                           int64_t ldm, int64_t ldc, int64_t j) {
  const int64_t width = std::min(kTileColumns, n - j);
  const __mmask16 low = width >= 16 ? 0xffff : static_cast<__mmask16>((1u << width) - 1);
  const __mmask16 high =
      width <= 16 ? 0 : width >= 32 ? 0xffff : static_cast<__mmask16>((1u << (width - 16)) - 1);
  // Every loop over r is unrolled, so that acc lives in registers only: with a
  // run-time index GCC also stores all of it to the stack at every k.
  __m512 acc[kRows][2];
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) {
    acc[r][0] = kAccumulate ? _mm512_maskz_loadu_ps(low, c + r * ldc + j) : _mm512_setzero_ps();
    acc[r][1] =
        kAccumulate ? _mm512_maskz_loadu_ps(high, c + r * ldc + j + 16) : _mm512_setzero_ps();
  }
  // Panels: the tile's two halves are consecutive panels, [k, 16] each.
  const float* panel = m + j * k;
  for (int64_t i = 0; i < k; ++i) {
    const float* row = kPanels ? panel + i * kPanelWidth : m + i * ldm + j;
    const __m512 w0 = _mm512_maskz_loadu_ps(low, row);
    const __m512 w1 = _mm512_maskz_loadu_ps(high, kPanels ? row + kPanelWidth * k : row + 16);
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) {
      const __m512 x = _mm512_set1_ps(a[r * lda + i]);
      acc[r][0] = _mm512_fmadd_ps(x, w0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(x, w1, acc[r][1]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) {
    _mm512_mask_storeu_ps(c + r * ldc + j, low, acc[r][0]);
    _mm512_mask_storeu_ps(c + r * ldc + j + 16, high, acc[r][1]);
  }
}

template <int kRows, bool kPanels>
void rows_block(const SmallGemm& g, bool accumulate) {
  for (int64_t j = 0; j < g.n; j += kTileColumns) {
    if (accumulate) {
      tile<kRows, true, kPanels>(g.a, g.m, g.c, g.k, g.n, g.lda, g.ldm, g.ldc, j);
    } else {
      tile<kRows, false, kPanels>(g.a, g.m, g.c, g.k, g.n, g.lda, g.ldm, g.ldc, j);
    }
  }
}

template <int kRows>
void rows_block(const SmallGemm& g, bool accumulate) {
  if (g.panels) {
    rows_block<kRows, true>(g, accumulate);
  } else {
    rows_block<kRows, false>(g, accumulate);
  }
}

}  // namespace

void small_gemm(const SmallGemm& g, bool accumulate) {
  for (int64_t r = 0; r < g.rows; r += kMaxRows) {
    SmallGemm block = g;
    block.a = g.a + r * g.lda;
    block.c = g.c + r * g.ldc;
    switch (std::min(kMaxRows, g.rows - r)) {
      case 1: rows_block<1>(block, accumulate); break;
      case 2: rows_block<2>(block, accumulate); break;
      case 3: rows_block<3>(block, accumulate); break;
      case 4: rows_block<4>(block, accumulate); break;
      case 5: rows_block<5>(block, accumulate); break;
      case 6: rows_block<6>(block, accumulate); break;
      case 7: rows_block<7>(block, accumulate); break;
      default: rows_block<8>(block, accumulate); break;
    }
  }
}

}  // namespace rnn_fused
