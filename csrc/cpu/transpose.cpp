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
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>

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

// One panel: columns [c0, c0 + width) of the k×n matrix m(i, j) = m[i·si + j·sj]
// as [k, 16], zeros past width.
void pack_panel_scalar(const float* m, int64_t si, int64_t sj, int64_t k, int64_t c0,
                       int64_t width, float* panel) {
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t l = 0; l < kPanelWidth; ++l) {
      panel[i * kPanelWidth + l] = l < width ? m[i * si + (c0 + l) * sj] : 0.0f;
    }
  }
}

// The same for a whole panel of a matrix whose columns are contiguous (m = Wᵀ
// of a row-major W, si = 1): 16×16 blocks transposed in registers.
RNN_FUSED_AVX512 void pack_panel_avx512(const float* m, int64_t sj, int64_t k, int64_t c0,
                                        float* panel) {
  const int64_t full = k / kBlock * kBlock;
  for (int64_t i = 0; i < full; i += kBlock) {
    transpose_block16(m + c0 * sj + i, panel + i * kPanelWidth, kPanelWidth, sj);
  }
  pack_panel_scalar(m + full, 1, sj, k - full, c0, kPanelWidth, panel + full * kPanelWidth);
}

// Storage of `sizes` in the calling thread's buffer up to kThreadBufferBytes, a
// fresh tensor above.
at::Tensor thread_buffer(at::IntArrayRef sizes, const at::TensorOptions& options) {
  const int64_t bytes = c10::multiply_integers(sizes) * options.dtype().itemsize();
  if (bytes > kThreadBufferBytes) return at::empty(sizes, options);
  thread_local std::vector<Line> buffer;
  buffer.resize((bytes + sizeof(Line) - 1) / sizeof(Line));
  return at::from_blob(buffer.data(), sizes, options);
}

}  // namespace

at::Tensor pack_panels_into_thread_buffer(const at::Tensor& m, int64_t groups) {
  TORCH_INTERNAL_ASSERT(m.dim() == 2 && m.scalar_type() == at::kFloat && m.size(1) % groups == 0);
  const int64_t k = m.size(0), group_cols = m.size(1) / groups;
  const int64_t panels_per_group = panel_columns(group_cols) / kPanelWidth;
  at::Tensor packed = thread_buffer({groups * panels_per_group, k, kPanelWidth}, m.options());
  const float* source = m.data_ptr<float>();
  float* target = packed.data_ptr<float>();
  const int64_t si = m.stride(0), sj = m.stride(1);
  const bool blocks = si == 1 && has_avx512();
  // A task of at least 16K elements, as in transpose_into.
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 14) / (kPanelWidth * k));
  at::parallel_for(0, groups * panels_per_group, grain, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t first = (q % panels_per_group) * kPanelWidth;
      const int64_t c0 = (q / panels_per_group) * group_cols + first;
      const int64_t width = std::min(kPanelWidth, group_cols - first);
      float* panel = target + q * k * kPanelWidth;
      if (blocks && width == kPanelWidth) {
        pack_panel_avx512(source, sj, k, c0, panel);
      } else if (sj == 1 && width == kPanelWidth) {
        // Rows of 16 contiguous columns (the backward's W_hh).
        for (int64_t i = 0; i < k; ++i) {
          std::copy_n(source + i * si + c0, kPanelWidth, panel + i * kPanelWidth);
        }
      } else {
        pack_panel_scalar(source, si, sj, k, c0, width, panel);
      }
    }
  });
  return packed;
}

at::Tensor transpose_into_thread_buffer(const at::Tensor& w) {
  TORCH_INTERNAL_ASSERT(w.dim() == 2);
  const at::Tensor source = w.contiguous();
  const int64_t rows = w.size(0), cols = w.size(1);
  at::Tensor t = thread_buffer({cols, rows}, w.options());
  AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), "rnn_fused::transpose_into_thread_buffer", [&] {
    transpose_into(source.data_ptr<scalar_t>(), t.data_ptr<scalar_t>(), rows, cols);
  });
  return t;
}

}  // namespace rnn_fused
