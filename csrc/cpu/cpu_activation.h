// The activations as the CPU kernels evaluate them: float tanh goes through the
// vectorizable fast_tanh; everything else is the shared definition.
#pragma once

#include <cmath>

#include "../cells/activation.h"
#include "fast_tanh.h"

namespace rnn_fused {

template <typename Act>
struct CpuActivation : Act {};

template <>
struct CpuActivation<TanhAct> : TanhAct {
  static float apply(float a) { return fast_tanh(a); }
  static double apply(double a) { return std::tanh(a); }
};

}  // namespace rnn_fused
