// The gated cells as the step loops pick them at run time, and the typed view
// of GatedForwardStep's / GatedBackwardStep's raw pointers; shared by the CPU
// pass (csrc/cpu/gated_step.cpp) and the CUDA kernels (csrc/cuda/gated/).
#pragma once

#include <c10/macros/Macros.h>

#include "../engine/gated_step.h"
#include "gru.h"
#include "lstm.h"

namespace rnn_fused {

// Calls f with the functor of `cell`, evaluating its gates with Math.
template <typename Math, typename F>
void dispatch_gated_cell(GatedCell cell, F&& f) {
  if (cell == GatedCell::Gru) {
    f(GruCell<Math>{});
  } else {
    f(LstmCell<Math>{});
  }
}

template <typename T>
C10_HOST_DEVICE inline const T* typed(const void* p) { return static_cast<const T*>(p); }
template <typename T>
C10_HOST_DEVICE inline T* typed(void* p) { return static_cast<T*>(p); }

}  // namespace rnn_fused
