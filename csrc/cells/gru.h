// The GRU cell's pointwise step, with PyTorch's equations and gate order
// (r, z, n):
//   r = σ(x_r + h_r), z = σ(x_z + h_z), n = tanh(x_n + r ⊙ h_n),
//   h' = (1 − z) ⊙ n + z ⊙ h,
// where x_g is the input projection plus b_i·, and h_g = (h W_hgᵀ + b_hg): the
// hidden side keeps its own bias because r multiplies it. Per hidden unit; the
// CPU and CUDA per-step loops call it.
#pragma once

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

  template <typename T>
  C10_HOST_DEVICE T forward(const T (&x)[kGates], const T (&h)[kGates], T h_prev, T /*c_prev*/,
                            T& /*c*/, T (&saved)[kSaved]) const {
    const T r = Math::sigmoid(x[0] + h[0]);
    const T z = Math::sigmoid(x[1] + h[1]);
    const T n = Math::tanh(x[2] + r * h[2]);
    saved[0] = r;
    saved[1] = z;
    saved[2] = n;
    saved[3] = h[2];
    return n + z * (h_prev - n);
  }

  // dh: all the gradient reaching h'. Writes the gate pre-activations'
  // gradients on the input side (dx) and the hidden side (dh_gates); returns
  // the share of h's gradient that bypasses W_hh (z ⊙ dh').
  template <typename T>
  C10_HOST_DEVICE T backward(T dh, T /*dc*/, const T (&saved)[kSaved], T h_prev, T /*c_prev*/,
                             T /*c*/, T (&dx)[kGates], T (&dh_gates)[kGates],
                             T& /*dc_prev*/) const {
    const T r = saved[0], z = saved[1], n = saved[2], h_n = saved[3];
    const T dn = dh * (T(1) - z) * (T(1) - n * n);
    const T dz = dh * (h_prev - n) * z * (T(1) - z);
    const T dr = dn * h_n * r * (T(1) - r);
    dx[0] = dh_gates[0] = dr;
    dx[1] = dh_gates[1] = dz;
    dx[2] = dn;
    dh_gates[2] = dn * r;
    return dh * z;
  }
};

}  // namespace rnn_fused
