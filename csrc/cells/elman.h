// The Elman cell's pointwise step: the one piece of arithmetic that the CPU
// loop, the per-step CUDA kernel and the persistent kernel all call, per hidden
// unit and step. The gated cells (gru.h, lstm.h) have their own loop
// (csrc/ops/gated_layer.h; docs/architecture.md).
#pragma once

#include <c10/macros/Macros.h>

#include "activation.h"

namespace rnn_fused {

template <typename Act>
struct ElmanCell {
  Act activation;

  // h = φ(x + r): x is the step's input projection plus both biases, r the
  // previous carry times W_hhᵀ.
  template <typename T>
  C10_HOST_DEVICE T forward(T x, T r) const {
    return activation.apply(x + r);
  }

  // The pre-activation gradient from dh, all the gradient reaching h (from the
  // output and from the next step), and h itself: the cell saves nothing else.
  template <typename T>
  C10_HOST_DEVICE T backward(T dh, T h) const {
    return dh * activation.grad_from_output(h);
  }
};

}  // namespace rnn_fused
