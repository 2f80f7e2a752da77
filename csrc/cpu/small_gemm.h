// The per-step product of a small batch on the CPU, register-blocked for
// AVX-512. A BLAS call for 8×128×128 spends most of its 5 µs outside the
// arithmetic; this kernel keeps an 8×32 output tile in registers and streams the
// weight rows once.
#pragma once

#include <cstdint>

#include <ATen/ATen.h>

namespace rnn_fused {

// Whether small_gemm takes a float32 product of `rows` rows and an n×n weight
// here: the CPU has AVX-512, and the product is small enough (B <= 8, H <= 256)
// that one thread beats the BLAS call.
bool small_gemm_applies(int64_t rows, int64_t n);

// c[r, :] = Σ_k a[r, k] · m[k, :] for r < rows. a is rows×k, m is k×n and c is
// rows×n, all row-major and contiguous.
void small_gemm(const float* a, const float* m, float* c, int64_t rows, int64_t k, int64_t n);

// out = a · m for a recurrence step: through small_gemm when `small` (set from
// small_gemm_applies, float32 only), reading m from `m_rows`, its row-major
// contiguous copy; otherwise through BLAS.
inline void step_product(at::Tensor out, const at::Tensor& a, const at::Tensor& m,
                         const at::Tensor& m_rows, bool small) {
  if (small) {
    small_gemm(a.data_ptr<float>(), m_rows.data_ptr<float>(), out.data_ptr<float>(), a.size(0),
               a.size(1), m.size(1));
  } else {
    at::mm_out(out, a, m);
  }
}

}  // namespace rnn_fused
