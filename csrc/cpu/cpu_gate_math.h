// The gate nonlinearities as the CPU loops evaluate them: float32 through the
// vectorizable fast_tanh, with σ(a) = (1 + tanh(a/2))/2 (a libm exp would keep
// the loops scalar, FACTS.md's tanh trap); float64 exact.
#pragma once

#include "../cells/gate_math.h"
#include "fast_tanh.h"

namespace rnn_fused {

// Always inlined, so that the cells' unit loops vectorize.
struct CpuGateMath {
  C10_ALWAYS_INLINE static float tanh(float a) { return fast_tanh(a); }
  C10_ALWAYS_INLINE static float sigmoid(float a) { return 0.5f + 0.5f * fast_tanh(0.5f * a); }
  static double tanh(double a) { return ExactGateMath::tanh(a); }
  static double sigmoid(double a) { return ExactGateMath::sigmoid(a); }
};

}  // namespace rnn_fused
