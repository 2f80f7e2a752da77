// Per-step CUDA forward through time: per step one cuBLAS product, then one
// fused kernel (the cell's step, write the output, mask-reset the carry).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>

#include "recurrence.h"
#include "step_launch.cuh"

namespace rnn_fused {
namespace {

template <typename scalar_t, typename Cell>
void forward_loop(const RecurrenceParams& p) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t T = p.steps, B = p.batch, H = p.hidden;
  if (B * H == 0) return;
  const bool masked = p.mask.has_value();
  const at::Tensor w_hh_t = p.w_hh.t();
  at::Tensor hh = at::empty({B, H}, p.out.options().dtype(c10::CppTypeToScalarType<acc_t>::value));
  const at::Tensor carry = masked ? at::empty({B, H}, p.out.options()) : at::Tensor();
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const dim3 grid = step_grid(B * H);
  scalar_t* out_ptr = p.out.data_ptr<scalar_t>();
  const acc_t* hh_ptr = hh.data_ptr<acc_t>();
  scalar_t* carry_ptr = masked ? carry.data_ptr<scalar_t>() : nullptr;
  const scalar_t* mask_ptr = masked ? p.mask->data_ptr<scalar_t>() : nullptr;
  const scalar_t* reset_ptr = masked ? p.reset->data_ptr<scalar_t>() : nullptr;

  at::Tensor prev = p.hx;
  for (int64_t s = 0; s < T; ++s) {
    const int64_t t = p.reverse ? T - 1 - s : s;
    mm_into(hh, prev, w_hh_t);
    scalar_t* out_t = out_ptr + t * B * H;
    if (masked) {
      forward_step_kernel<scalar_t, acc_t, Cell, true><<<grid, kStepThreads, 0, stream>>>(
          out_t, hh_ptr, carry_ptr, mask_ptr + t * B, reset_ptr, B, H);
    } else {
      forward_step_kernel<scalar_t, acc_t, Cell, false><<<grid, kStepThreads, 0, stream>>>(
          out_t, hh_ptr, nullptr, nullptr, nullptr, B, H);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    prev = masked ? carry : p.out[t];
  }
}

}  // namespace

void per_step_forward(const RecurrenceParams& p) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.out.scalar_type(),
                                  "rnn_fused::per_step_forward", [&] {
    dispatch_activation(p.activation, [&](auto tag) {
      forward_loop<scalar_t, ElmanCell<decltype(tag)>>(p);
    });
  });
}

}  // namespace rnn_fused
