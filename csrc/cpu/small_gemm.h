// The per-step product of a small batch on the CPU, register-blocked for
// AVX-512. A BLAS call for 8×128×128 spends most of its 5 µs outside the
// arithmetic; this kernel keeps an 8×32 output tile in registers and streams the
// weight rows once.
#pragma once

#include <cstdint>

#include <ATen/ATen.h>

namespace rnn_fused {

// Whether small_gemm takes a float32 product of `rows` rows and an n×n weight
// here: the CPU has AVX-512, and the product is small enough (B <= 8, H <= 192)
// that one thread beats the BLAS call.
bool small_gemm_applies(int64_t rows, int64_t n);

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
void small_gemm(const SmallGemm& g, bool accumulate = false);

// The same, for contiguous a, m and c.
inline void small_gemm(const float* a, const float* m, float* c, int64_t rows, int64_t k,
                       int64_t n) {
  small_gemm(SmallGemm{a, m, c, rows, k, n, k, n, n});
}

// out = a · m for a recurrence step: through small_gemm reading `m_rows`, m as a
// row-major float array, where it is given; otherwise through BLAS.
inline void step_product(at::Tensor out, const at::Tensor& a, const at::Tensor& m,
                         const float* m_rows) {
  if (m_rows != nullptr) {
    small_gemm(a.data_ptr<float>(), m_rows, out.data_ptr<float>(), a.size(0), a.size(1),
               m.size(1));
  } else {
    at::mm_out(out, a, m);
  }
}

}  // namespace rnn_fused
