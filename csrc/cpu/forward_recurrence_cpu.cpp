// CPU forward through time: per step one GEMM into a scratch buffer, then one
// fused pass (add projection, activate, write output, mask-reset the carry).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include "../recurrence.h"
#include "cpu_activation.h"
#include "pointwise_grain.h"
#include "small_gemm.h"

namespace rnn_fused {
namespace {

template <typename scalar_t, typename Act>
void forward_loop(const at::Tensor& out, const at::Tensor& w_hh, const at::Tensor& hx,
                  const c10::optional<at::Tensor>& mask,
                  const c10::optional<at::Tensor>& reset, bool reverse) {
  const int64_t T = out.size(0), B = out.size(1), H = out.size(2);
  const bool masked = mask.has_value();
  const at::Tensor w_hh_t = w_hh.t();
  const bool small = out.scalar_type() == at::kFloat && small_gemm_applies(B, H);
  const at::Tensor w_hh_t_rows = small ? w_hh_t.contiguous() : w_hh_t;
  at::Tensor hh = at::empty({B, H}, out.options());
  // The carried state gets its own buffer even without a mask (then it is a copy
  // of h_t): a view of out[t] per step would cost more than the copy.
  const at::Tensor carry = at::empty({B, H}, out.options());

  scalar_t* out_ptr = out.data_ptr<scalar_t>();
  const scalar_t* hh_ptr = hh.data_ptr<scalar_t>();
  scalar_t* carry_ptr = carry.data_ptr<scalar_t>();
  const scalar_t* mask_ptr = masked ? mask->data_ptr<scalar_t>() : nullptr;
  const scalar_t* reset_ptr = masked ? reset->data_ptr<scalar_t>() : nullptr;
  const int64_t grain = pointwise_row_grain(H);

  at::Tensor prev = hx;
  for (int64_t s = 0; s < T; ++s) {
    const int64_t t = reverse ? T - 1 - s : s;
    step_product(hh, prev, w_hh_t, w_hh_t_rows, small);
    scalar_t* out_t = out_ptr + t * B * H;
    at::parallel_for(0, B, grain, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        scalar_t* o = out_t + b * H;
        const scalar_t* r = hh_ptr + b * H;
        scalar_t* c = carry_ptr + b * H;
        const scalar_t m = masked ? mask_ptr[t * B + b] : scalar_t(1);
        // A kept state (m = 1, nearly every row) needs no reset read.
        if (m != scalar_t(1)) {
          const scalar_t* rs = reset_ptr + b * H;
          for (int64_t j = 0; j < H; ++j) {
            const scalar_t h = Act::apply(o[j] + r[j]);
            o[j] = h;
            c[j] = m * h + (scalar_t(1) - m) * rs[j];
          }
        } else {
          for (int64_t j = 0; j < H; ++j) c[j] = o[j] = Act::apply(o[j] + r[j]);
        }
      }
    });
    prev = carry;
  }
}

}  // namespace

void forward_recurrence_cpu(const at::Tensor& out, const at::Tensor& w_hh,
                            const at::Tensor& hx,
                            const c10::optional<at::Tensor>& mask,
                            const c10::optional<at::Tensor>& reset,
                            Activation act, bool reverse) {
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "forward_recurrence_cpu", [&] {
    dispatch_activation(act, [&](auto tag) {
      forward_loop<scalar_t, CpuActivation<decltype(tag)>>(out, w_hh, hx, mask, reset, reverse);
    });
  });
}

}  // namespace rnn_fused
