// CUDA forward through time: the persistent kernel where recurrence_path.h
// picks it, else per step one cuBLAS GEMM, then one fused kernel (add
// projection, activate, write output, mask-reset the carry).
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

template <typename scalar_t, typename Act>
void forward_loop(const at::Tensor& out, const at::Tensor& w_hh, const at::Tensor& hx,
                  const c10::optional<at::Tensor>& mask,
                  const c10::optional<at::Tensor>& reset, bool reverse) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t T = out.size(0), B = out.size(1), H = out.size(2);
  if (B * H == 0) return;
  const bool masked = mask.has_value();
  const at::Tensor w_hh_t = w_hh.t();
  at::Tensor hh = at::empty({B, H}, out.options().dtype(c10::CppTypeToScalarType<acc_t>::value));
  const at::Tensor carry = masked ? at::empty({B, H}, out.options()) : at::Tensor();
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  const dim3 grid = step_grid(B * H);
  scalar_t* out_ptr = out.data_ptr<scalar_t>();
  const acc_t* hh_ptr = hh.data_ptr<acc_t>();
  scalar_t* carry_ptr = masked ? carry.data_ptr<scalar_t>() : nullptr;
  const scalar_t* mask_ptr = masked ? mask->data_ptr<scalar_t>() : nullptr;
  const scalar_t* reset_ptr = masked ? reset->data_ptr<scalar_t>() : nullptr;

  at::Tensor prev = hx;
  for (int64_t s = 0; s < T; ++s) {
    const int64_t t = reverse ? T - 1 - s : s;
    mm_into(hh, prev, w_hh_t);
    scalar_t* out_t = out_ptr + t * B * H;
    if (masked) {
      forward_step_kernel<scalar_t, acc_t, Act, true><<<grid, kStepThreads, 0, stream>>>(
          out_t, hh_ptr, carry_ptr, mask_ptr + t * B, reset_ptr, B, H);
    } else {
      forward_step_kernel<scalar_t, acc_t, Act, false><<<grid, kStepThreads, 0, stream>>>(
          out_t, hh_ptr, nullptr, nullptr, nullptr, B, H);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    prev = masked ? carry : out[t];
  }
}

}  // namespace

void forward_recurrence_cuda(const at::Tensor& out, const at::Tensor& w_hh,
                             const at::Tensor& hx, const c10::optional<at::Tensor>& mask,
                             const c10::optional<at::Tensor>& reset, Activation act,
                             bool reverse) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, out.scalar_type(),
                                  "forward_recurrence_cuda", [&] {
    if (ran_persistent(out.size(1), out.size(2), sizeof(scalar_t) == 2, [&] {
          return persistent_forward<scalar_t>(out, w_hh, hx, mask, reset, act, reverse);
        })) {
      return;
    }
    dispatch_activation(act, [&](auto tag) {
      forward_loop<scalar_t, decltype(tag)>(out, w_hh, hx, mask, reset, reverse);
    });
  });
}

}  // namespace rnn_fused
