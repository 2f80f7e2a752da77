// GCC 12's AVX-512 unpack intrinsics start from a self-initialized vector, which
// -Wuninitialized reports at every call (GCC bug 105593). Set before the first
// include, since the headers may come in through ATen.
#pragma GCC diagnostic ignored "-Wuninitialized"

#include "transpose.h"

#include <immintrin.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include "isa.h"

namespace rnn_fused {
namespace {

// 4 MB: W_hhᵀ of an LSTM up to H = 512. Larger ones take a fresh tensor, whose
// page faults are small beside the products of such a layer.
constexpr int64_t kThreadBufferBytes = int64_t(4) << 20;
constexpr int64_t kBlock = 16;

// 64-byte aligned storage, for whole-line stores and the register tiles' loads.
struct alignas(64) Line {
  char bytes[64];
};

template <typename scalar_t>
void transpose_scalar(const scalar_t* w, scalar_t* t, int64_t rows, int64_t cols, int64_t i0,
                      int64_t i1, int64_t j0, int64_t j1) {
  for (int64_t j = j0; j < j1; ++j) {
    for (int64_t i = i0; i < i1; ++i) t[j * rows + i] = w[i * cols + j];
  }
}

// One 16×16 block in registers: pairs, then quads, then 128-bit lanes twice.
RNN_FUSED_AVX512 inline void transpose_block16(const float* w, float* t, int64_t rows,
                                               int64_t cols) {
  __m512 r[16], a[16];
  for (int k = 0; k < 16; ++k) r[k] = _mm512_loadu_ps(w + k * cols);
  for (int k = 0; k < 16; k += 2) {
    a[k] = _mm512_unpacklo_ps(r[k], r[k + 1]);
    a[k + 1] = _mm512_unpackhi_ps(r[k], r[k + 1]);
  }
  for (int k = 0; k < 16; k += 4) {
    const __m512d p = _mm512_castps_pd(a[k]), q = _mm512_castps_pd(a[k + 2]);
    const __m512d u = _mm512_castps_pd(a[k + 1]), v = _mm512_castps_pd(a[k + 3]);
    r[k] = _mm512_castpd_ps(_mm512_unpacklo_pd(p, q));
    r[k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(p, q));
    r[k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(u, v));
    r[k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(u, v));
  }
  for (int k = 0; k < 16; k += 8) {
    for (int q = 0; q < 4; ++q) {
      a[k + q] = _mm512_shuffle_f32x4(r[k + q], r[k + q + 4], 0x88);
      a[k + q + 4] = _mm512_shuffle_f32x4(r[k + q], r[k + q + 4], 0xdd);
    }
  }
  for (int q = 0; q < 8; ++q) {
    _mm512_storeu_ps(t + q * rows, _mm512_shuffle_f32x4(a[q], a[q + 8], 0x88));
    _mm512_storeu_ps(t + (q + 8) * rows, _mm512_shuffle_f32x4(a[q], a[q + 8], 0xdd));
  }
}

// Rows [i0, i1) of w, whole 16×16 blocks; column blocks outermost, so that the
// rows written stay sequential.
RNN_FUSED_AVX512 void transpose_rows_avx512(const float* w, float* t, int64_t rows,
                                            int64_t cols, int64_t i0, int64_t i1) {
  const int64_t full_cols = cols / kBlock * kBlock;
  for (int64_t j = 0; j < full_cols; j += kBlock) {
    for (int64_t i = i0; i + kBlock <= i1; i += kBlock) {
      transpose_block16(w + i * cols + j, t + j * rows + i, rows, cols);
    }
  }
  transpose_scalar(w, t, rows, cols, i0 + (i1 - i0) / kBlock * kBlock, i1, 0, cols);
  transpose_scalar(w, t, rows, cols, i0, i1, full_cols, cols);
}

template <typename scalar_t>
void transpose_into(const scalar_t* w, scalar_t* t, int64_t rows, int64_t cols) {
  const int64_t row_blocks = (rows + kBlock - 1) / kBlock;
  // A task of at least 16K elements: below that a thread's start costs more.
  const int64_t grain =
      std::max<int64_t>(1, (int64_t(1) << 14) / (kBlock * std::max<int64_t>(1, cols)));
  at::parallel_for(0, row_blocks, grain, [&](int64_t b0, int64_t b1) {
    const int64_t i0 = b0 * kBlock, i1 = std::min(rows, b1 * kBlock);
    if constexpr (std::is_same_v<scalar_t, float>) {
      if (has_avx512()) return transpose_rows_avx512(w, t, rows, cols, i0, i1);
    }
    transpose_scalar(w, t, rows, cols, i0, i1, 0, cols);
  });
}

}  // namespace

at::Tensor transpose_into_thread_buffer(const at::Tensor& w) {
  TORCH_INTERNAL_ASSERT(w.dim() == 2);
  const at::Tensor source = w.contiguous();
  const int64_t rows = w.size(0), cols = w.size(1);
  at::Tensor t;
  const int64_t bytes = w.numel() * w.element_size();
  if (bytes <= kThreadBufferBytes) {
    thread_local std::vector<Line> buffer;
    buffer.resize((bytes + sizeof(Line) - 1) / sizeof(Line));
    t = at::from_blob(buffer.data(), {cols, rows}, w.options());
  } else {
    t = at::empty({cols, rows}, w.options());
  }
  AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), "rnn_fused::transpose_into_thread_buffer", [&] {
    transpose_into(source.data_ptr<scalar_t>(), t.data_ptr<scalar_t>(), rows, cols);
  });
  return t;
}

}  // namespace rnn_fused
