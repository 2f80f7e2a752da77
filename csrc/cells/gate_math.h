// The gate nonlinearities of the gated cells, as a policy: ExactGateMath here
// (CUDA, and float64 on the CPU); the CPU's float32 loops pass their
// vectorizable tanh instead (csrc/cpu/cpu_gate_math.h).
#pragma once

#include <cmath>

#include <c10/macros/Macros.h>

namespace rnn_fused {

struct ExactGateMath {
  template <typename T> C10_HOST_DEVICE static T tanh(T a) { return std::tanh(a); }
  template <typename T> C10_HOST_DEVICE static T sigmoid(T a) {
    return T(1) / (T(1) + std::exp(-a));
  }
};

}  // namespace rnn_fused
