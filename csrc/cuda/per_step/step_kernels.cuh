// The CUDA pointwise pass of one step of any cell: one thread per (b, j), the
// cell's functor (cells/registry.h) in the accumulation type. Included by
// forward.cu and backward.cu.
#pragma once

#include <cstdint>

#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>

#include "../../engine/step.h"
#include "../common/runtime.h"

namespace rnn_fused {
namespace per_step {

constexpr int kThreads = 256;

template <typename scalar_t, typename Cell>
__global__ void __launch_bounds__(kThreads)
forward_step_kernel(const ForwardStep s) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr int64_t G = Cell::kGates;
  constexpr bool kCell = Cell::kHasCellState;
  const int64_t H = s.hidden;
  const int64_t idx = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (idx >= s.batch * H) return;
  const int64_t b = idx / H, j = idx - b * H;
  const acc_t c_prev = kCell ? static_cast<acc_t>(typed<scalar_t>(s.c_prev)[idx]) : acc_t(0);
  acc_t c = acc_t(0);
  const acc_t b_hn =
      Cell::kHiddenBiasApart ? static_cast<acc_t>(typed<scalar_t>(s.h_bias)[j]) : acc_t(0);
  scalar_t* saved =
      Cell::kSaved > 0 ? typed<scalar_t>(s.saved) + b * Cell::kSaved * H + j : nullptr;
  const acc_t h = Cell{}.forward(typed<scalar_t>(s.x_gates) + b * G * H + j,
                                 typed<acc_t>(s.h_gates) + b * G * H + j, H, b_hn,
                                 static_cast<acc_t>(typed<scalar_t>(s.h_prev)[idx]), c_prev, c,
                                 saved);
  const acc_t m =
      s.mask_t != nullptr ? static_cast<acc_t>(typed<scalar_t>(s.mask_t)[b]) : acc_t(1);
  typed<scalar_t>(s.h)[idx] = static_cast<scalar_t>(h);
  typed<scalar_t>(s.carry_h)[idx] = static_cast<scalar_t>(
      m == acc_t(1) ? h
                    : m * h + (acc_t(1) - m) * static_cast<acc_t>(typed<scalar_t>(s.reset_h)[idx]));
  if constexpr (kCell) {
    typed<scalar_t>(s.c)[idx] = static_cast<scalar_t>(c);
    typed<scalar_t>(s.carry_c)[idx] = static_cast<scalar_t>(
        m == acc_t(1)
            ? c
            : m * c + (acc_t(1) - m) * static_cast<acc_t>(typed<scalar_t>(s.reset_c)[idx]));
  }
}

template <typename scalar_t, typename Cell>
__global__ void __launch_bounds__(kThreads)
backward_step_kernel(const BackwardStep s) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr int64_t G = Cell::kGates;
  constexpr bool kCell = Cell::kHasCellState;
  const int64_t H = s.hidden;
  const int64_t idx = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  if (idx >= s.batch * H) return;
  const int64_t b = idx / H, j = idx - b * H;
  const acc_t m =
      s.mask_t != nullptr ? static_cast<acc_t>(typed<scalar_t>(s.mask_t)[b]) : acc_t(1);
  acc_t carried_h = typed<acc_t>(s.carry_grad_h)[idx];
  if (Cell::kSeparateHiddenGrad && s.carry_bypass_h != nullptr) {
    carried_h += typed<acc_t>(s.carry_bypass_h)[idx];
  }
  const acc_t carried_c = kCell ? typed<acc_t>(s.carry_grad_c)[idx] : acc_t(0);
  const acc_t dh = static_cast<acc_t>(typed<scalar_t>(s.grad_h)[idx]) + m * carried_h;
  const acc_t dc =
      kCell ? m * carried_c + static_cast<acc_t>(typed<scalar_t>(s.grad_c)[idx]) : acc_t(0);
  if (s.mask_t != nullptr) {
    typed<acc_t>(s.grad_reset_h)[idx] += (acc_t(1) - m) * carried_h;
    if constexpr (kCell) typed<acc_t>(s.grad_reset_c)[idx] += (acc_t(1) - m) * carried_c;
  }
  const acc_t c = kCell ? static_cast<acc_t>(typed<scalar_t>(s.c)[idx]) : acc_t(0);
  const acc_t c_prev = kCell ? static_cast<acc_t>(typed<scalar_t>(s.c_prev)[idx]) : acc_t(0);
  const acc_t h_prev =
      Cell::kReadsPrevState ? static_cast<acc_t>(typed<scalar_t>(s.h_prev)[idx]) : acc_t(0);
  acc_t dc_prev = acc_t(0);
  const scalar_t* saved =
      Cell::kSaved > 0 ? typed<scalar_t>(s.saved) + b * Cell::kSaved * H + j : nullptr;
  scalar_t* grad_h_gates = Cell::kSeparateHiddenGrad
                               ? typed<scalar_t>(s.grad_h_gates) + b * G * H + j
                               : nullptr;
  const acc_t direct = Cell{}.backward(
      dh, dc, saved, H, static_cast<acc_t>(typed<scalar_t>(s.h)[idx]), h_prev, c_prev, c,
      typed<scalar_t>(s.grad_x_gates) + b * G * H + j, grad_h_gates, dc_prev);
  if constexpr (Cell::kSeparateHiddenGrad) typed<acc_t>(s.grad_h_prev)[idx] = direct;
  if constexpr (kCell) typed<acc_t>(s.grad_c_prev)[idx] = dc_prev;
}

inline unsigned blocks_for(const StepSizes& s) {
  return static_cast<unsigned>((s.batch * s.hidden + kThreads - 1) / kThreads);
}

}  // namespace per_step
}  // namespace rnn_fused
