// The LSTM cell's pointwise step, with PyTorch's equations and gate order
// (i, f, g, o):
//   i = σ(·), f = σ(·), g = tanh(·), o = σ(·) of x_gate + h_gate,
//   c' = f ⊙ c + i ⊙ g,  h' = o ⊙ tanh(c'),
// where x_gate is the input projection plus b_i· and b_h· (the loops fold both
// biases into it), and h_gate = h W_h·ᵀ.
// Per hidden unit, gate values at [g · stride], as in gru.h.
#pragma once

#include <cstdint>

#include <c10/macros/Macros.h>

namespace rnn_fused {

template <typename Math>
struct LstmCell {
  static constexpr int kGates = 4;
  // Saved per unit and step for the backward: i, f, g, o (c' is saved apart).
  static constexpr int kSaved = 4;
  static constexpr bool kHasCellState = true;
  // Both sides of every gate see the same pre-activation gradient.
  static constexpr bool kSeparateHiddenGrad = false;
  // The backward reads c_prev, its cell state, not the h its step read.
  static constexpr bool kReadsPrevState = false;
  static constexpr bool kHiddenBiasApart = false;

  // T: the arithmetic type; S: the storage type of the pointers; P: that of
  // the hidden side's products (the accumulation type on CUDA). Reads all of x
  // before it writes saved: the loops pass the same buffer for both.
  template <typename T, typename S, typename P>
  C10_HOST_DEVICE C10_ALWAYS_INLINE T forward(const S* x, const P* h, int64_t stride,
                                              T /*b_hn*/, T /*h_prev*/, T c_prev, T& c,
                                              S* saved) const {
    const T i = Math::sigmoid(T(x[0]) + T(h[0]));
    const T f = Math::sigmoid(T(x[stride]) + T(h[stride]));
    const T g = Math::tanh(T(x[2 * stride]) + T(h[2 * stride]));
    const T o = Math::sigmoid(T(x[3 * stride]) + T(h[3 * stride]));
    c = f * c_prev + i * g;
    saved[0] = S(i);
    saved[stride] = S(f);
    saved[2 * stride] = S(g);
    saved[3 * stride] = S(o);
    return o * Math::tanh(c);
  }

  // dh, dc: all the gradient reaching h' and c'. Writes the gate
  // pre-activations' gradients (dx; the hidden side's are the same, so
  // dh_gates is unused) and c's gradient; returns 0, since h reaches h' only
  // through W_hh.
  template <typename T, typename S>
  C10_HOST_DEVICE C10_ALWAYS_INLINE T backward(T dh, T dc, const S* saved, int64_t stride,
                                               T /*h*/, T /*h_prev*/, T c_prev, T c, S* dx,
                                               S* /*dh_gates*/, T& dc_prev) const {
    const T i = T(saved[0]), f = T(saved[stride]), g = T(saved[2 * stride]);
    const T o = T(saved[3 * stride]);
    const T tc = Math::tanh(c);
    const T dc_total = dc + dh * o * (T(1) - tc * tc);
    dx[0] = S(dc_total * g * i * (T(1) - i));
    dx[stride] = S(dc_total * c_prev * f * (T(1) - f));
    dx[2 * stride] = S(dc_total * i * (T(1) - g * g));
    dx[3 * stride] = S(dh * tc * o * (T(1) - o));
    dc_prev = dc_total * f;
    return T(0);
  }
};

}  // namespace rnn_fused
