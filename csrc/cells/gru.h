// The GRU cell's pointwise step, with PyTorch's equations and gate order
// (r, z, n):
//   r = σ(x_r + h_r), z = σ(x_z + h_z), n = tanh(x_n + r ⊙ h_n),
//   h' = (1 − z) ⊙ n + z ⊙ h,
// where x_g is the input projection plus b_i· (and b_hr, b_hz, which the
// loops fold in), and h_g = h W_hgᵀ, plus b_hn for n: r multiplies it. Per hidden
// unit; the per-step loops and the GRU/LSTM grid kernel call it.
//
// A unit's values for gate g sit at [g · stride] of each pointer (gate rows of
// one batch row). Pointers and scalars rather than arrays: GCC vectorizes the
// CPU's unit loop only when its body holds no local arrays.
#pragma once

#include <cstdint>

#include <c10/macros/Macros.h>

namespace rnn_fused {

template <typename Math>
struct GruCell {
  static constexpr int kGates = 3;
  // Saved per unit and step for the backward: r, z, n and h_n.
  static constexpr int kSaved = 4;
  static constexpr bool kHasCellState = false;
  // The hidden side's gate gradients differ from the input side's (in n).
  static constexpr bool kSeparateHiddenGrad = true;
  // The backward reads the state its step read (h_prev).
  static constexpr bool kReadsPrevState = true;
  // b_hn stays out of the input projection: r multiplies it.
  static constexpr bool kHiddenBiasApart = true;

  // T: the arithmetic type; S: the storage type of the pointers; P: that of
  // the hidden side's products (the accumulation type on CUDA).
  template <typename T, typename S, typename P>
  C10_HOST_DEVICE C10_ALWAYS_INLINE T forward(const S* x, const P* h, int64_t stride, T b_hn,
                                              T h_prev, T /*c_prev*/, T& /*c*/, S* saved) const {
    const T h_n = T(h[2 * stride]) + b_hn;
    const T r = Math::sigmoid(T(x[0]) + T(h[0]));
    const T z = Math::sigmoid(T(x[stride]) + T(h[stride]));
    const T n = Math::tanh(T(x[2 * stride]) + r * h_n);
    saved[0] = S(r);
    saved[stride] = S(z);
    saved[2 * stride] = S(n);
    saved[3 * stride] = S(h_n);
    return n + z * (h_prev - n);
  }

  // dh: all the gradient reaching h' (whose value h the GRU does not read).
  // Writes the gate pre-activations' gradients on the input side (dx) and the
  // hidden side (dh_gates); returns the share of h's gradient that bypasses
  // W_hh (z ⊙ dh').
  template <typename T, typename S>
  C10_HOST_DEVICE C10_ALWAYS_INLINE T backward(T dh, T /*dc*/, const S* saved, int64_t stride,
                                               T /*h*/, T h_prev, T /*c_prev*/, T /*c*/, S* dx,
                                               S* dh_gates, T& /*dc_prev*/) const {
    const T r = T(saved[0]), z = T(saved[stride]), n = T(saved[2 * stride]);
    const T h_n = T(saved[3 * stride]);
    const T dn = dh * (T(1) - z) * (T(1) - n * n);
    const T dz = dh * (h_prev - n) * z * (T(1) - z);
    const T dr = dn * h_n * r * (T(1) - r);
    dx[0] = dh_gates[0] = S(dr);
    dx[stride] = dh_gates[stride] = S(dz);
    dx[2 * stride] = S(dn);
    dh_gates[2 * stride] = S(dn * r);
    return dh * z;
  }
};

}  // namespace rnn_fused
