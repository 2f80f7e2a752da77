// The step product of a small batch inside the CPU's pass, register-blocked for
// AVX-512. A BLAS call for 8×128×128 spends most of its 5 µs outside the
// arithmetic; this kernel keeps an 8×32 output tile in registers and streams the
// weight rows once.
#pragma once

#include <cstdint>

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
void small_gemm(const SmallGemm& g, bool accumulate = false);

}  // namespace rnn_fused
