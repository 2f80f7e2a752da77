// CUDA backward through time: the persistent kernel where recurrence_path.h
// picks it, else per step (in reverse processing order) one cuBLAS
// GEMM that carries the next step's pre-activation gradient back through W_hh,
// then one fused pointwise-gradient kernel.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>

#include "../recurrence.h"
#include "persistent_recurrence.h"
#include "recurrence_path.h"
#include "step_launch.cuh"

namespace rnn_fused {
namespace {

template <typename scalar_t, typename Act, bool kMasked>
void backward_loop(const at::Tensor& grad_pre, const at::Tensor& grad_reset,
                   const at::Tensor& grad_out, const at::Tensor& out, const at::Tensor& w_hh,
                   const c10::optional<at::Tensor>& mask, bool reverse) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t T = out.size(0), B = out.size(1), H = out.size(2);
  if (B * H == 0) return;
  at::Tensor dcarry =
      at::empty({B, H}, out.options().dtype(c10::CppTypeToScalarType<acc_t>::value));
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const dim3 grid = step_grid(B * H);
  const scalar_t* mask_ptr = kMasked ? mask->data_ptr<scalar_t>() : nullptr;
  acc_t* dreset = kMasked ? grad_reset.data_ptr<acc_t>() : nullptr;
  scalar_t* dpre_ptr = grad_pre.data_ptr<scalar_t>();
  const scalar_t* gout_ptr = grad_out.data_ptr<scalar_t>();
  const scalar_t* out_ptr = out.data_ptr<scalar_t>();
  const acc_t* dcarry_ptr = dcarry.data_ptr<acc_t>();

  for (int64_t s = T - 1; s >= 0; --s) {
    const int64_t t = reverse ? T - 1 - s : s;
    const int64_t offset = t * B * H;
    scalar_t* dpre_t = dpre_ptr + offset;
    const scalar_t* gout_t = gout_ptr + offset;
    const scalar_t* out_t = out_ptr + offset;
    const scalar_t* mask_t = kMasked ? mask_ptr + t * B : nullptr;
    // The last step's carry feeds nothing, so its gradient is zero.
    if (s == T - 1) {
      backward_step_kernel<scalar_t, acc_t, Act, kMasked, false>
          <<<grid, kStepThreads, 0, stream>>>(dpre_t, gout_t, out_t, nullptr, mask_t, dreset, B, H);
    } else {
      mm_into(dcarry, grad_pre[reverse ? t - 1 : t + 1], w_hh);
      backward_step_kernel<scalar_t, acc_t, Act, kMasked, true>
          <<<grid, kStepThreads, 0, stream>>>(dpre_t, gout_t, out_t, dcarry_ptr, mask_t,
                                              dreset, B, H);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
}

}  // namespace

void backward_recurrence_cuda(const at::Tensor& grad_pre, const at::Tensor& grad_reset,
                              const at::Tensor& grad_out, const at::Tensor& out,
                              const at::Tensor& w_hh, const c10::optional<at::Tensor>& mask,
                              Activation act, bool reverse) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, out.scalar_type(),
                                  "backward_recurrence_cuda", [&] {
    if (ran_persistent(out.size(1), out.size(2), sizeof(scalar_t) == 2, [&] {
          return persistent_backward<scalar_t>(grad_pre, grad_reset, grad_out, out, w_hh, mask,
                                               act, reverse);
        })) {
      return;
    }
    dispatch_activation(act, [&](auto tag) {
      if (mask.has_value()) {
        backward_loop<scalar_t, decltype(tag), true>(grad_pre, grad_reset, grad_out, out,
                                                     w_hh, mask, reverse);
      } else {
        backward_loop<scalar_t, decltype(tag), false>(grad_pre, grad_reset, grad_out, out,
                                                      w_hh, mask, reverse);
      }
    });
  });
}

}  // namespace rnn_fused
