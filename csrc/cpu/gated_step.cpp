// The CPU pointwise pass of one gated-cell step, forward and backward: rows of
// the batch in parallel, the hidden units of a row in one vectorized loop
// (`omp simd`: no unit reads another's values; AVX-512 twin as in forward.cpp).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include "../cells/gated.h"
#include "cpu_gate_math.h"
#include "isa.h"
#include "pointwise_grain.h"
#include "recurrence.h"

namespace rnn_fused {
namespace {

// Row b of a forward step. kBlend: the row's mask is not 1, so the carry
// blends in the reset state. Always inlined into the ISA wrappers below.
template <typename scalar_t, typename Cell, bool kBlend>
__attribute__((always_inline)) inline void forward_row(const Cell cell, const GatedForwardStep& s,
                                                       int64_t b) {
  constexpr int64_t G = Cell::kGates;
  constexpr bool kCell = Cell::kHasCellState;
  const int64_t H = s.hidden;
  const scalar_t* x_gates = typed<scalar_t>(s.x_gates) + b * G * H;
  const scalar_t* h_gates = typed<scalar_t>(s.h_gates) + b * G * H;
  const scalar_t* h_prev = typed<scalar_t>(s.h_prev) + b * H;
  const scalar_t* c_prev = kCell ? typed<scalar_t>(s.c_prev) + b * H : nullptr;
  const scalar_t* h_bias = kCell ? nullptr : typed<scalar_t>(s.h_bias);
  scalar_t* h = typed<scalar_t>(s.h) + b * H;
  scalar_t* c = kCell ? typed<scalar_t>(s.c) + b * H : nullptr;
  scalar_t* saved = typed<scalar_t>(s.saved) + b * kSavedPerUnit * H;
  scalar_t* carry_h = typed<scalar_t>(s.carry_h) + b * H;
  scalar_t* carry_c = kCell ? typed<scalar_t>(s.carry_c) + b * H : nullptr;
  const scalar_t m = kBlend ? typed<scalar_t>(s.mask_t)[b] : scalar_t(1);
  const scalar_t* reset_h = kBlend ? typed<scalar_t>(s.reset_h) + b * H : nullptr;
  const scalar_t* reset_c = kBlend && kCell ? typed<scalar_t>(s.reset_c) + b * H : nullptr;
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    scalar_t c_new = scalar_t(0);
    const scalar_t h_new =
        cell.forward(x_gates + j, h_gates + j, H, kCell ? scalar_t(0) : h_bias[j], h_prev[j],
                     kCell ? c_prev[j] : scalar_t(0), c_new, saved + j);
    h[j] = h_new;
    carry_h[j] = kBlend ? m * h_new + (scalar_t(1) - m) * reset_h[j] : h_new;
    if constexpr (kCell) {
      c[j] = c_new;
      carry_c[j] = kBlend ? m * c_new + (scalar_t(1) - m) * reset_c[j] : c_new;
    }
  }
}

template <typename scalar_t, typename Cell>
__attribute__((always_inline)) inline void forward_rows(const Cell cell,
                                                        const GatedForwardStep& s, int64_t b0,
                                                        int64_t b1) {
  const scalar_t* mask = typed<scalar_t>(s.mask_t);
  for (int64_t b = b0; b < b1; ++b) {
    // A kept state (m = 1, nearly every row) needs no reset read.
    if (mask != nullptr && mask[b] != scalar_t(1)) {
      forward_row<scalar_t, Cell, true>(cell, s, b);
    } else {
      forward_row<scalar_t, Cell, false>(cell, s, b);
    }
  }
}

template <typename scalar_t, typename Cell>
__attribute__((always_inline)) inline void backward_rows(const Cell cell,
                                                         const GatedBackwardStep& s, int64_t b0,
                                                         int64_t b1) {
  constexpr int64_t G = Cell::kGates;
  constexpr bool kCell = Cell::kHasCellState;
  const int64_t H = s.hidden;
  const scalar_t* mask = typed<scalar_t>(s.mask_t);
  for (int64_t b = b0; b < b1; ++b) {
    const scalar_t m = mask != nullptr ? mask[b] : scalar_t(1);
    const scalar_t* grad_h = typed<scalar_t>(s.grad_h) + b * H;
    const scalar_t* grad_c = kCell ? typed<scalar_t>(s.grad_c) + b * H : nullptr;
    const scalar_t* carry_grad_h = typed<scalar_t>(s.carry_grad_h) + b * H;
    const scalar_t* carry_grad_c = kCell ? typed<scalar_t>(s.carry_grad_c) + b * H : nullptr;
    const scalar_t* saved = typed<scalar_t>(s.saved) + b * kSavedPerUnit * H;
    const scalar_t* h_prev = typed<scalar_t>(s.h_prev) + b * H;
    const scalar_t* c = kCell ? typed<scalar_t>(s.c) + b * H : nullptr;
    const scalar_t* c_prev = kCell ? typed<scalar_t>(s.c_prev) + b * H : nullptr;
    scalar_t* grad_x = typed<scalar_t>(s.grad_x_gates) + b * G * H;
    scalar_t* grad_hg =
        Cell::kSeparateHiddenGrad ? typed<scalar_t>(s.grad_h_gates) + b * G * H : nullptr;
    scalar_t* grad_h_prev =
        Cell::kSeparateHiddenGrad ? typed<scalar_t>(s.grad_h_prev) + b * H : nullptr;
    scalar_t* grad_c_prev = kCell ? typed<scalar_t>(s.grad_c_prev) + b * H : nullptr;
    if (mask != nullptr) {
      // The reset states' gradients: what the carry passes on where it resets.
      scalar_t* reset_h = typed<scalar_t>(s.grad_reset_h) + b * H;
#pragma omp simd
      for (int64_t j = 0; j < H; ++j) reset_h[j] += (scalar_t(1) - m) * carry_grad_h[j];
      if constexpr (kCell) {
        scalar_t* reset_c = typed<scalar_t>(s.grad_reset_c) + b * H;
#pragma omp simd
        for (int64_t j = 0; j < H; ++j) reset_c[j] += (scalar_t(1) - m) * carry_grad_c[j];
      }
    }
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const scalar_t dh = grad_h[j] + m * carry_grad_h[j];
      const scalar_t dc = kCell ? m * carry_grad_c[j] + grad_c[j] : scalar_t(0);
      scalar_t dc_prev = scalar_t(0);
      const scalar_t direct = cell.backward(
          dh, dc, saved + j, H, h_prev[j], kCell ? c_prev[j] : scalar_t(0),
          kCell ? c[j] : scalar_t(0), grad_x + j,
          Cell::kSeparateHiddenGrad ? grad_hg + j : nullptr, dc_prev);
      if constexpr (Cell::kSeparateHiddenGrad) grad_h_prev[j] = direct;
      if constexpr (kCell) grad_c_prev[j] = dc_prev;
    }
  }
}

template <typename scalar_t, typename Cell>
RNN_FUSED_AVX512 void forward_rows_avx512(const Cell cell, const GatedForwardStep& s, int64_t b0,
                                          int64_t b1) {
  forward_rows<scalar_t>(cell, s, b0, b1);
}

template <typename scalar_t, typename Cell>
void forward_rows_baseline(const Cell cell, const GatedForwardStep& s, int64_t b0, int64_t b1) {
  forward_rows<scalar_t>(cell, s, b0, b1);
}

template <typename scalar_t, typename Cell>
RNN_FUSED_AVX512 void backward_rows_avx512(const Cell cell, const GatedBackwardStep& s,
                                           int64_t b0, int64_t b1) {
  backward_rows<scalar_t>(cell, s, b0, b1);
}

template <typename scalar_t, typename Cell>
void backward_rows_baseline(const Cell cell, const GatedBackwardStep& s, int64_t b0,
                            int64_t b1) {
  backward_rows<scalar_t>(cell, s, b0, b1);
}

}  // namespace

void CpuRecurrence::gated_forward_step(const GatedForwardStep& s) {
  const bool avx512 = has_avx512();
  AT_DISPATCH_FLOATING_TYPES(s.dtype, "rnn_fused::cpu_gated_forward_step", [&] {
    dispatch_gated_cell<CpuGateMath>(s.cell, [&](auto cell) {
      using Cell = decltype(cell);
      at::parallel_for(0, s.batch, pointwise_row_grain(s.hidden), [&](int64_t b0, int64_t b1) {
        if (avx512) {
          forward_rows_avx512<scalar_t, Cell>(cell, s, b0, b1);
        } else {
          forward_rows_baseline<scalar_t, Cell>(cell, s, b0, b1);
        }
      });
    });
  });
}

void CpuRecurrence::gated_backward_step(const GatedBackwardStep& s) {
  const bool avx512 = has_avx512();
  AT_DISPATCH_FLOATING_TYPES(s.dtype, "rnn_fused::cpu_gated_backward_step", [&] {
    dispatch_gated_cell<CpuGateMath>(s.cell, [&](auto cell) {
      using Cell = decltype(cell);
      at::parallel_for(0, s.batch, pointwise_row_grain(s.hidden), [&](int64_t b0, int64_t b1) {
        if (avx512) {
          backward_rows_avx512<scalar_t, Cell>(cell, s, b0, b1);
        } else {
          backward_rows_baseline<scalar_t, Cell>(cell, s, b0, b1);
        }
      });
    });
  });
}

}  // namespace rnn_fused
