// The Elman cell, h' = φ(x + h W_hhᵀ), a one-gate cell: its scalar step, which
// the one-launch CUDA kernels call per output, and the unit step that the
// per-step loops call for every cell (gru.h, lstm.h; registry.h).
#pragma once

#include <cstdint>

#include <c10/macros/Macros.h>

#include "activation.h"

namespace rnn_fused {

template <typename Act>
struct ElmanCell {
  static constexpr int kGates = 1;
  // The backward needs only the step's output h: it saves nothing.
  static constexpr int kSaved = 0;
  static constexpr bool kHasCellState = false;
  static constexpr bool kSeparateHiddenGrad = false;
  static constexpr bool kReadsPrevState = false;
  static constexpr bool kHiddenBiasApart = false;

  Act activation;

  // h = φ(x + r): x is the step's input projection plus both biases, r the
  // previous carry times W_hhᵀ.
  template <typename T>
  C10_HOST_DEVICE T forward(T x, T r) const {
    return activation.apply(x + r);
  }

  // The pre-activation gradient from dh, all the gradient reaching h (from the
  // output and from the next step), and h itself.
  template <typename T>
  C10_HOST_DEVICE T backward(T dh, T h) const {
    return dh * activation.grad_from_output(h);
  }

  // The unit step, in the gated cells' form (gru.h): x and h point at the
  // unit's projection and W_hh product.
  template <typename T, typename S, typename P>
  C10_HOST_DEVICE C10_ALWAYS_INLINE T forward(const S* x, const P* h, int64_t /*stride*/,
                                              T /*b_hn*/, T /*h_prev*/, T /*c_prev*/,
                                              T& /*c*/, S* /*saved*/) const {
    return forward(T(x[0]), T(h[0]));
  }

  // Writes the pre-activation's gradient (both sides' one gradient); returns
  // 0, since h reaches h' only through W_hh.
  template <typename T, typename S>
  C10_HOST_DEVICE C10_ALWAYS_INLINE T backward(T dh, T /*dc*/, const S* /*saved*/,
                                               int64_t /*stride*/, T h, T /*h_prev*/,
                                               T /*c_prev*/, T /*c*/, S* dx, S* /*dh_gates*/,
                                               T& /*dc_prev*/) const {
    dx[0] = S(backward(dh, h));
    return T(0);
  }
};

}  // namespace rnn_fused
