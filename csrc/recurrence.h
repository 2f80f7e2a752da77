// The sequential part of one RNN layer in one direction: the per-device kernels.
// Everything parallel over time (the input projection, the weight gradients)
// is plain ATen code in rnn_layer.cpp, written once for any device.
//
// Shapes: T steps, B sequences, H hidden units; all tensors contiguous and of
// one dtype. "Processing order" runs t = 0..T-1, or T-1..0 when `reverse`.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

#include "activation.h"

namespace rnn_fused {

// out [T,B,H]: on entry the input projection plus both biases for every step;
// on exit h_t. Each step adds h_prev W_hhᵀ, applies the activation, and carries
// mask[t]·h_t + (1 − mask[t])·reset into the next step.
void forward_recurrence_cpu(const at::Tensor& out, const at::Tensor& w_hh,
                            const at::Tensor& hx,
                            const c10::optional<at::Tensor>& mask,
                            const c10::optional<at::Tensor>& reset,
                            Activation act, bool reverse);

// Backward through time. Writes grad_pre [T,B,H], the gradient of the
// pre-activations, and adds into grad_reset [B,H] (zeroed by the caller, in the
// accumulation type: float32 for float16/bfloat16) the gradient reaching the
// reset state over all steps; without a mask it is left untouched.
void backward_recurrence_cpu(const at::Tensor& grad_pre,
                             const at::Tensor& grad_reset,
                             const at::Tensor& grad_out, const at::Tensor& out,
                             const at::Tensor& w_hh,
                             const c10::optional<at::Tensor>& mask,
                             Activation act, bool reverse);

#ifdef WITH_CUDA
void forward_recurrence_cuda(const at::Tensor& out, const at::Tensor& w_hh,
                             const at::Tensor& hx, const c10::optional<at::Tensor>& mask,
                             const c10::optional<at::Tensor>& reset, Activation act,
                             bool reverse);

void backward_recurrence_cuda(const at::Tensor& grad_pre, const at::Tensor& grad_reset,
                              const at::Tensor& grad_out, const at::Tensor& out,
                              const at::Tensor& w_hh, const c10::optional<at::Tensor>& mask,
                              Activation act, bool reverse);
#endif

}  // namespace rnn_fused
