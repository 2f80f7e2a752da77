// Host entry points of the cluster recurrences, one instantiation per dtype:
// the one-cluster kernel (one_cluster_launch.cuh over persistent/one_gate_kernel.cuh,
// one_cluster_<dtype>.cu) and, for float32 and float64, the tiled cluster
// kernel (tiled_launch.cuh over tiled_kernel.cuh, tiled_<dtype>.cu).
#pragma once

#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "../../engine/params.h"

namespace rnn_fused {

// The rows of W_hh per block (8, 16 or 32; 64 for float16 and bfloat16) with
// which both the forward and the backward cluster kernel launch at these sizes
// on the current GPU, or 0 where none does; `why`, when given, receives the
// reason either way. tf32: float32's product on TF32 tensor cores.
template <typename scalar_t>
int cluster_rows(int64_t batch, int64_t hidden, bool tf32, std::string* why);

// The columns of W_hh per block (64 or 128) with which both the forward and
// the backward tiled kernel launch at these sizes on the current GPU, or 0
// where no width fits both; `why`, when given, receives the reason either
// way. B·H > 0: the cluster kernel takes B·H = 0.
template <typename scalar_t>
int tiled_columns(int64_t batch, int64_t hidden, std::string* why);

// With `rows` (and tf32) that cluster_rows returned, or `columns` that
// tiled_columns did; out, grad_out, grad_pre and grad_reset as the persistent
// kernel's (persistent/one_gate_args.cuh).
template <typename scalar_t>
void cluster_forward(const ForwardParams& p, const at::Tensor& out, int rows, bool tf32);
template <typename scalar_t>
void cluster_backward(const BackwardParams& p, const at::Tensor& grad_out,
                      const at::Tensor& grad_pre, const at::Tensor& grad_reset, int rows,
                      bool tf32);
template <typename scalar_t>
void tiled_forward(const ForwardParams& p, const at::Tensor& out, int columns);
template <typename scalar_t>
void tiled_backward(const BackwardParams& p, const at::Tensor& grad_out,
                    const at::Tensor& grad_pre, const at::Tensor& grad_reset, int columns);

#define RNN_FUSED_CLUSTER_ENTRY_POINTS(prefix, T)                                            \
  prefix template int cluster_rows<T>(int64_t, int64_t, bool, std::string*);                 \
  prefix template void cluster_forward<T>(const ForwardParams&, const at::Tensor&, int, bool); \
  prefix template void cluster_backward<T>(const BackwardParams&, const at::Tensor&,         \
                                           const at::Tensor&, const at::Tensor&, int, bool);
RNN_FUSED_CLUSTER_ENTRY_POINTS(extern, float)
RNN_FUSED_CLUSTER_ENTRY_POINTS(extern, double)
RNN_FUSED_CLUSTER_ENTRY_POINTS(extern, c10::Half)
RNN_FUSED_CLUSTER_ENTRY_POINTS(extern, c10::BFloat16)

#define RNN_FUSED_TILED_ENTRY_POINTS(prefix, T)                                         \
  prefix template int tiled_columns<T>(int64_t, int64_t, std::string*);                 \
  prefix template void tiled_forward<T>(const ForwardParams&, const at::Tensor&, int);  \
  prefix template void tiled_backward<T>(const BackwardParams&, const at::Tensor&,      \
                                         const at::Tensor&, const at::Tensor&, int);
RNN_FUSED_TILED_ENTRY_POINTS(extern, float)
RNN_FUSED_TILED_ENTRY_POINTS(extern, double)

}  // namespace rnn_fused
