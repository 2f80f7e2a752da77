// KernelArgs from the recurrence params, and the layout both launchers share.
// Included by persistent/launch.cuh and cluster/launch.cuh.
#pragma once

#include <cstdint>
#include <utility>

#include <ATen/ATen.h>

#include "../../engine/params.h"
#include "kernel.cuh"

namespace rnn_fused {
namespace persistent {

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

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
KernelArgs<scalar_t> common_args(const RecurrenceParams& p) {
  KernelArgs<scalar_t> a{};
  a.steps = p.steps;
  a.batch = p.batch;
  a.hidden = p.hidden;
  a.reverse = p.reverse;
  a.act = p.activation;
  a.w_hh = p.w_hh.data_ptr<scalar_t>();
  a.out = p.out.data_ptr<scalar_t>();
  a.mask = p.mask.has_value() ? p.mask->data_ptr<scalar_t>() : nullptr;
  return a;
}

// vector_loads holds whether the tensors the kernel reads in lane spans are
// 16-byte aligned; set_layout adds the span condition.
template <typename scalar_t>
KernelArgs<scalar_t> forward_args(const RecurrenceParams& p) {
  auto a = common_args<scalar_t>(p);
  a.hx = p.hx.data_ptr<scalar_t>();
  a.reset = p.mask.has_value() ? p.reset->data_ptr<scalar_t>() : nullptr;
  a.vector_loads =
      aligned16(a.out) && aligned16(a.hx) && (a.reset == nullptr || aligned16(a.reset));
  return a;
}

// The kernel reads every step's gradient from one tensor: with h_n's gradient,
// a copy that holds the last processed step's combined gradient. That copy is
// returned beside the arguments and must outlive the launch call.
template <typename scalar_t>
std::pair<KernelArgs<scalar_t>, at::Tensor> backward_args(const RecurrenceGradParams& p) {
  auto a = common_args<scalar_t>(p);
  at::Tensor grad_out = p.grad_out;
  if (p.grad_last_step.has_value()) {
    grad_out = p.grad_out.clone();
    grad_out[p.reverse ? 0 : p.steps - 1].copy_(*p.grad_last_step);
  }
  a.grad_out = grad_out.data_ptr<scalar_t>();
  a.grad_pre = p.grad_pre.data_ptr<scalar_t>();
  a.grad_reset =
      p.mask.has_value() ? p.grad_reset.data_ptr<at::opmath_type<scalar_t>>() : nullptr;
  a.vector_loads = aligned16(a.grad_pre);
  return {a, grad_out};
}

}  // namespace persistent
}  // namespace rnn_fused
