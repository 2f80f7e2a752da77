// Per-step CUDA backward through time: per step (in reverse processing order)
// one cuBLAS product that carries the next step's pre-activation gradient back
// through W_hh, then one fused kernel (mask, output gradient, the cell's backward).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>

#include "recurrence.h"
#include "step_launch.cuh"

namespace rnn_fused {
namespace {

template <typename scalar_t, typename Cell, bool kMasked>
void backward_loop(const RecurrenceGradParams& p) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t T = p.steps, B = p.batch, H = p.hidden;
  if (B * H == 0) return;
  at::Tensor dcarry =
      at::empty({B, H}, p.out.options().dtype(c10::CppTypeToScalarType<acc_t>::value));
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const dim3 grid = step_grid(B * H);
  const scalar_t* mask_ptr = kMasked ? p.mask->data_ptr<scalar_t>() : nullptr;
  acc_t* dreset = kMasked ? p.grad_reset.data_ptr<acc_t>() : nullptr;
  scalar_t* dpre_ptr = p.grad_pre.data_ptr<scalar_t>();
  const scalar_t* gout_ptr = p.grad_out.data_ptr<scalar_t>();
  const scalar_t* last_ptr =
      p.grad_last_step.has_value() ? p.grad_last_step->data_ptr<scalar_t>() : nullptr;
  const scalar_t* out_ptr = p.out.data_ptr<scalar_t>();
  const acc_t* dcarry_ptr = dcarry.data_ptr<acc_t>();

  for (int64_t s = T - 1; s >= 0; --s) {
    const int64_t t = p.reverse ? T - 1 - s : s;
    const int64_t offset = t * B * H;
    scalar_t* dpre_t = dpre_ptr + offset;
    const scalar_t* gout_t = s == T - 1 && last_ptr != nullptr ? last_ptr : gout_ptr + offset;
    const scalar_t* out_t = out_ptr + offset;
    const scalar_t* mask_t = kMasked ? mask_ptr + t * B : nullptr;
    // The last step's carry feeds nothing, so its gradient is zero.
    if (s == T - 1) {
      backward_step_kernel<scalar_t, acc_t, Cell, kMasked, false>
          <<<grid, kStepThreads, 0, stream>>>(dpre_t, gout_t, out_t, nullptr, mask_t, dreset, B, H);
    } else {
      mm_into(dcarry, p.grad_pre[p.reverse ? t - 1 : t + 1], p.w_hh);
      backward_step_kernel<scalar_t, acc_t, Cell, kMasked, true>
          <<<grid, kStepThreads, 0, stream>>>(dpre_t, gout_t, out_t, dcarry_ptr, mask_t,
                                              dreset, B, H);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

}  // namespace

void per_step_backward(const RecurrenceGradParams& p) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, p.out.scalar_type(),
                                  "rnn_fused::per_step_backward", [&] {
    dispatch_activation(p.activation, [&](auto tag) {
      using Cell = ElmanCell<decltype(tag)>;
      if (p.mask.has_value()) {
        backward_loop<scalar_t, Cell, true>(p);
      } else {
        backward_loop<scalar_t, Cell, false>(p);
      }
    });
  });
}

}  // namespace rnn_fused
