// The per-step CUDA recurrence: per step one cuBLAS product with W_hh and one
// fused pointwise kernel (step_kernels.cuh).
#pragma once

#include "../../engine/params.h"

namespace rnn_fused {

void per_step_forward(const RecurrenceParams& p);
void per_step_backward(const RecurrenceGradParams& p);

}  // namespace rnn_fused
