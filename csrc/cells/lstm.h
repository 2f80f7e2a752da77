// The LSTM cell's pointwise step, with PyTorch's equations and gate order
// (i, f, g, o):
//   i = σ(·), f = σ(·), g = tanh(·), o = σ(·) of x_gate + h_gate,
//   c' = f ⊙ c + i ⊙ g,  h' = o ⊙ tanh(c'),
// where x_gate is the input projection plus b_i· and h_gate = h W_h·ᵀ + b_h·.
// Per hidden unit; the CPU and CUDA per-step loops call it.
#pragma once

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

  template <typename T>
  C10_HOST_DEVICE T forward(const T (&x)[kGates], const T (&h)[kGates], T /*h_prev*/, T c_prev,
                            T& c, T (&saved)[kSaved]) const {
    const T i = Math::sigmoid(x[0] + h[0]);
    const T f = Math::sigmoid(x[1] + h[1]);
    const T g = Math::tanh(x[2] + h[2]);
    const T o = Math::sigmoid(x[3] + h[3]);
    c = f * c_prev + i * g;
    saved[0] = i;
    saved[1] = f;
    saved[2] = g;
    saved[3] = o;
    return o * Math::tanh(c);
  }

  // dh, dc: all the gradient reaching h' and c'. Writes the gate
  // pre-activations' gradients (dx; dh_gates is the same) and c's gradient;
  // returns 0, since h reaches h' only through W_hh.
  template <typename T>
  C10_HOST_DEVICE T backward(T dh, T dc, const T (&saved)[kSaved], T /*h_prev*/, T c_prev, T c,
                             T (&dx)[kGates], T (&dh_gates)[kGates], T& dc_prev) const {
    const T i = saved[0], f = saved[1], g = saved[2], o = saved[3];
    const T tc = Math::tanh(c);
    const T dc_total = dc + dh * o * (T(1) - tc * tc);
    dx[0] = dc_total * g * i * (T(1) - i);
    dx[1] = dc_total * c_prev * f * (T(1) - f);
    dx[2] = dc_total * i * (T(1) - g * g);
    dx[3] = dh * tc * o * (T(1) - o);
    for (int k = 0; k < kGates; ++k) dh_gates[k] = dx[k];
    dc_prev = dc_total * f;
    return T(0);
  }
};

}  // namespace rnn_fused
