// Per-step pointwise kernels of the CUDA recurrence. One launch per step, right
// after the step's GEMM; each thread owns elements of the B×H step tile, so the
// reset-state gradient accumulates without atomics.
#pragma once

#include <cstdint>

#include "../../cells/elman.h"

namespace rnn_fused {

constexpr int kStepThreads = 256;

// out_t [B,H]: on entry the input projection plus biases; on exit h_t.
// hh [B,H]: h_prev W_hhᵀ in the accumulation type. With a mask, writes the
// carry m·h_t + (1 − m)·reset.
template <typename scalar_t, typename acc_t, typename Cell, bool kMasked>
__global__ void __launch_bounds__(kStepThreads)
forward_step_kernel(scalar_t* __restrict__ out_t, const acc_t* __restrict__ hh,
                    scalar_t* __restrict__ carry, const scalar_t* __restrict__ mask_t,
                    const scalar_t* __restrict__ reset, int64_t batch, int64_t hidden) {
  const int64_t n = batch * hidden;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const acc_t h = Cell{}.forward(static_cast<acc_t>(out_t[i]), hh[i]);
    out_t[i] = static_cast<scalar_t>(h);
    if constexpr (kMasked) {
      const acc_t m = static_cast<acc_t>(mask_t[i / hidden]);
      carry[i] = static_cast<scalar_t>(m * h + (acc_t(1) - m) * static_cast<acc_t>(reset[i]));
    }
  }
}

// dpre_t = the cell's backward of grad_out_t + m·dcarry at h_t; dreset += (1 − m)·dcarry.
// dcarry is the next processed step's pre-activation gradient carried back
// through W_hh; the last processed step has none (kHasNext = false).
template <typename scalar_t, typename acc_t, typename Cell, bool kMasked, bool kHasNext>
__global__ void __launch_bounds__(kStepThreads)
backward_step_kernel(scalar_t* __restrict__ dpre_t, const scalar_t* __restrict__ grad_out_t,
                     const scalar_t* __restrict__ out_t, const acc_t* __restrict__ dcarry,
                     const scalar_t* __restrict__ mask_t, acc_t* __restrict__ dreset,
                     int64_t batch, int64_t hidden) {
  const int64_t n = batch * hidden;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    acc_t g = static_cast<acc_t>(grad_out_t[i]);
    if constexpr (kHasNext) {
      const acc_t m = kMasked ? static_cast<acc_t>(mask_t[i / hidden]) : acc_t(1);
      g += m * dcarry[i];
      if constexpr (kMasked) dreset[i] += (acc_t(1) - m) * dcarry[i];
    }
    dpre_t[i] = static_cast<scalar_t>(Cell{}.backward(g, static_cast<acc_t>(out_t[i])));
  }
}

}  // namespace rnn_fused
