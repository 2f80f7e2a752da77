// The CPU pointwise pass of one gated-cell step, forward and backward: rows of
// the batch in parallel, the hidden units of a row in a loop the compiler
// vectorizes (with an AVX-512 twin, as in forward.cpp).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include "../cells/gru.h"
#include "../cells/lstm.h"
#include "cpu_gate_math.h"
#include "isa.h"
#include "pointwise_grain.h"
#include "recurrence.h"

namespace rnn_fused {
namespace {

template <typename T>
const T* typed(const void* p) { return static_cast<const T*>(p); }
template <typename T>
T* typed(void* p) { return static_cast<T*>(p); }

// Rows [b0, b1) of a forward step. kBlend: the rows' mask is not 1, so the
// carry blends in the reset state. Always inlined into the ISA wrappers below.
template <typename scalar_t, typename Cell, bool kBlend>
__attribute__((always_inline)) inline void forward_row(const Cell cell, const GatedForwardStep& s,
                                                       int64_t b) {
  constexpr int G = Cell::kGates;
  const int64_t H = s.hidden;
  const scalar_t* xg = typed<scalar_t>(s.x_gates) + b * G * H;
  const scalar_t* hg = typed<scalar_t>(s.h_gates) + b * G * H;
  const scalar_t* h_prev = typed<scalar_t>(s.h_prev) + b * H;
  scalar_t* h = typed<scalar_t>(s.h) + b * H;
  scalar_t* saved = typed<scalar_t>(s.saved) + b * kSavedPerUnit * H;
  scalar_t* carry_h = typed<scalar_t>(s.carry_h) + b * H;
  const scalar_t* c_prev = Cell::kHasCellState ? typed<scalar_t>(s.c_prev) + b * H : nullptr;
  scalar_t* c = Cell::kHasCellState ? typed<scalar_t>(s.c) + b * H : nullptr;
  scalar_t* carry_c = Cell::kHasCellState ? typed<scalar_t>(s.carry_c) + b * H : nullptr;
  const scalar_t m = kBlend ? typed<scalar_t>(s.mask_t)[b] : scalar_t(1);
  const scalar_t* reset_h = kBlend ? typed<scalar_t>(s.reset_h) + b * H : nullptr;
  const scalar_t* reset_c =
      kBlend && Cell::kHasCellState ? typed<scalar_t>(s.reset_c) + b * H : nullptr;
  for (int64_t j = 0; j < H; ++j) {
    scalar_t x[G], r[G], v[kSavedPerUnit];
    for (int g = 0; g < G; ++g) {
      x[g] = xg[g * H + j];
      r[g] = hg[g * H + j];
    }
    scalar_t c_new = scalar_t(0);
    const scalar_t h_new =
        cell.forward(x, r, h_prev[j], Cell::kHasCellState ? c_prev[j] : scalar_t(0), c_new, v);
    for (int k = 0; k < kSavedPerUnit; ++k) saved[k * H + j] = v[k];
    h[j] = h_new;
    carry_h[j] = kBlend ? m * h_new + (scalar_t(1) - m) * reset_h[j] : h_new;
    if constexpr (Cell::kHasCellState) {
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
  constexpr int G = Cell::kGates;
  const int64_t H = s.hidden;
  const scalar_t* mask = typed<scalar_t>(s.mask_t);
  for (int64_t b = b0; b < b1; ++b) {
    const scalar_t m = mask != nullptr ? mask[b] : scalar_t(1);
    const scalar_t* grad_h = typed<scalar_t>(s.grad_h) + b * H;
    const scalar_t* grad_c =
        s.grad_c != nullptr ? typed<scalar_t>(s.grad_c) + b * H : nullptr;
    const scalar_t* carry_grad_h = typed<scalar_t>(s.carry_grad_h) + b * H;
    const scalar_t* saved = typed<scalar_t>(s.saved) + b * kSavedPerUnit * H;
    const scalar_t* h_prev = typed<scalar_t>(s.h_prev) + b * H;
    scalar_t* grad_x = typed<scalar_t>(s.grad_x_gates) + b * G * H;
    scalar_t* grad_hg =
        Cell::kSeparateHiddenGrad ? typed<scalar_t>(s.grad_h_gates) + b * G * H : nullptr;
    scalar_t* grad_h_prev =
        Cell::kSeparateHiddenGrad ? typed<scalar_t>(s.grad_h_prev) + b * H : nullptr;
    scalar_t* carry_grad_c =
        Cell::kHasCellState ? typed<scalar_t>(s.carry_grad_c) + b * H : nullptr;
    const scalar_t* c = Cell::kHasCellState ? typed<scalar_t>(s.c) + b * H : nullptr;
    const scalar_t* c_prev = Cell::kHasCellState ? typed<scalar_t>(s.c_prev) + b * H : nullptr;
    scalar_t* reset_h = mask != nullptr ? typed<scalar_t>(s.grad_reset_h) + b * H : nullptr;
    scalar_t* reset_c = mask != nullptr && Cell::kHasCellState
                            ? typed<scalar_t>(s.grad_reset_c) + b * H
                            : nullptr;
    for (int64_t j = 0; j < H; ++j) {
      const scalar_t carried_h = carry_grad_h[j];
      const scalar_t carried_c = Cell::kHasCellState ? carry_grad_c[j] : scalar_t(0);
      const scalar_t dh = grad_h[j] + m * carried_h;
      scalar_t dc = m * carried_c;
      if (grad_c != nullptr) dc += grad_c[j];
      if (reset_h != nullptr) {
        reset_h[j] += (scalar_t(1) - m) * carried_h;
        if constexpr (Cell::kHasCellState) reset_c[j] += (scalar_t(1) - m) * carried_c;
      }
      scalar_t v[kSavedPerUnit], dx[G], dr[G];
      for (int k = 0; k < kSavedPerUnit; ++k) v[k] = saved[k * H + j];
      scalar_t dc_prev = scalar_t(0);
      const scalar_t direct = cell.backward(
          dh, dc, v, h_prev[j], Cell::kHasCellState ? c_prev[j] : scalar_t(0),
          Cell::kHasCellState ? c[j] : scalar_t(0), dx, dr, dc_prev);
      for (int g = 0; g < G; ++g) grad_x[g * H + j] = dx[g];
      if constexpr (Cell::kSeparateHiddenGrad) {
        for (int g = 0; g < G; ++g) grad_hg[g * H + j] = dr[g];
        grad_h_prev[j] = direct;
      }
      if constexpr (Cell::kHasCellState) carry_grad_c[j] = dc_prev;
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

// Calls f with the cell functor of `cell`, as CPU loops evaluate it.
template <typename F>
void dispatch_cell(GatedCell cell, F&& f) {
  if (cell == GatedCell::Gru) {
    f(GruCell<CpuGateMath>{});
  } else {
    f(LstmCell<CpuGateMath>{});
  }
}

}  // namespace

void CpuRecurrence::gated_forward_step(const GatedForwardStep& s) {
  const bool avx512 = has_avx512();
  AT_DISPATCH_FLOATING_TYPES(s.dtype, "rnn_fused::cpu_gated_forward_step", [&] {
    dispatch_cell(s.cell, [&](auto cell) {
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
    dispatch_cell(s.cell, [&](auto cell) {
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
