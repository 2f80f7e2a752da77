// KernelArgs from a layer's params, and the layout the one-gate launchers share.
// Included by persistent/one_gate_launch.cuh and cluster/one_cluster_launch.cuh.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

#include "../../engine/params.h"
#include "one_gate_kernel.cuh"

namespace rnn_fused {
namespace persistent {

template <int L>
int warps_k(int64_t hidden) {
  return static_cast<int>((hidden + 32 * L - 1) / (32 * L));
}

// The partial sums' shared memory: every k-warp's share of each tile output.
template <typename scalar_t, int J, int L>
size_t shared_bytes(int64_t batch_tile, int64_t hidden) {
  return size_t(warps_k<L>(hidden)) * batch_tile * J * sizeof(at::opmath_type<scalar_t>);
}

// Sets the warp split for lane span L and batch tiles of `batch_tile` rows;
// vector loads need whole lane spans on top of the aligned tensors.
template <typename scalar_t, int L>
void set_layout(KernelArgs<scalar_t>& a, int64_t batch_tile) {
  a.batch_tile = batch_tile;
  a.warps_k = warps_k<L>(a.hidden);
  a.warps_b = kWarps / a.warps_k;
  a.vector_loads = a.vector_loads && a.hidden % L == 0;
}

template <typename scalar_t>
KernelArgs<scalar_t> common_args(const LayerParams& p, const at::Tensor& out) {
  KernelArgs<scalar_t> a{};
  a.steps = p.steps;
  a.batch = p.batch;
  a.hidden = p.hidden;
  a.reverse = p.reverse;
  a.act = activation_of(p.cell);
  a.w_hh = p.w_hh.data_ptr<scalar_t>();
  a.out = out.data_ptr<scalar_t>();
  a.mask = p.mask.defined() ? p.mask.data_ptr<scalar_t>() : nullptr;
  return a;
}

// out: the input projection plus both biases on entry, h_t on exit.
// vector_loads holds whether the tensors the kernel reads in lane spans are
// 16-byte aligned; set_layout adds the span condition.
template <typename scalar_t>
KernelArgs<scalar_t> forward_args(const ForwardParams& p, const at::Tensor& out) {
  auto a = common_args<scalar_t>(p, out);
  a.hx = p.hx.data_ptr<scalar_t>();
  a.reset = p.mask.defined() ? p.reset_h.data_ptr<scalar_t>() : nullptr;
  a.vector_loads =
      aligned16(a.out) && aligned16(a.hx) && (a.reset == nullptr || aligned16(a.reset));
  return a;
}

// grad_out: every step's gradient of h_t, the last processed step's whole;
// grad_pre [T, B, H], written: the pre-activations' gradient; grad_reset
// [B, H] in the accumulation type, zeroed, with a mask: the reset state's.
template <typename scalar_t>
KernelArgs<scalar_t> backward_args(const BackwardParams& p, const at::Tensor& grad_out,
                                   const at::Tensor& grad_pre, const at::Tensor& grad_reset) {
  auto a = common_args<scalar_t>(p, p.output);
  a.grad_out = grad_out.data_ptr<scalar_t>();
  a.grad_pre = grad_pre.data_ptr<scalar_t>();
  a.grad_reset = p.mask.defined() ? grad_reset.data_ptr<at::opmath_type<scalar_t>>() : nullptr;
  a.vector_loads = aligned16(a.grad_pre);
  return a;
}

}  // namespace persistent
}  // namespace rnn_fused
