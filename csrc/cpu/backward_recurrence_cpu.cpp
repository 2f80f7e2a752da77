// CPU backward through time: per step (in reverse processing order) one GEMM
// that carries the next step's pre-activation gradient back through W_hh, then
// one fused pass that routes it through the mask, adds the output gradient and
// applies the activation's derivative.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include "../recurrence.h"
#include "pointwise_grain.h"
#include "small_gemm.h"

namespace rnn_fused {
namespace {

template <typename scalar_t, typename Act>
void backward_loop(const at::Tensor& grad_pre, const at::Tensor& grad_reset,
                   const at::Tensor& grad_out, const at::Tensor& out,
                   const at::Tensor& w_hh, const c10::optional<at::Tensor>& mask,
                   bool reverse) {
  const int64_t T = out.size(0), B = out.size(1), H = out.size(2);
  const bool masked = mask.has_value();
  at::Tensor dcarry = at::empty({B, H}, out.options());
  // A copy of the step's grad_pre that the next GEMM reads: cheaper than a view
  // of grad_pre[t] per step.
  const at::Tensor dnext = at::empty({B, H}, out.options());

  scalar_t* dpre_ptr = grad_pre.data_ptr<scalar_t>();
  scalar_t* dreset_ptr = grad_reset.data_ptr<scalar_t>();
  const scalar_t* gout_ptr = grad_out.data_ptr<scalar_t>();
  const scalar_t* out_ptr = out.data_ptr<scalar_t>();
  const scalar_t* dcarry_ptr = dcarry.data_ptr<scalar_t>();
  scalar_t* dnext_ptr = dnext.data_ptr<scalar_t>();
  const scalar_t* mask_ptr = masked ? mask->data_ptr<scalar_t>() : nullptr;
  const int64_t grain = pointwise_row_grain(H);
  const bool small = out.scalar_type() == at::kFloat && small_gemm_applies(B, H);

  for (int64_t s = T - 1; s >= 0; --s) {
    const int64_t t = reverse ? T - 1 - s : s;
    // The last step's carry feeds nothing, so its gradient is zero.
    const bool has_next = s < T - 1;
    if (has_next) step_product(dcarry, dnext, w_hh, w_hh, small);
    const int64_t offset = t * B * H;
    at::parallel_for(0, B, grain, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const int64_t row = offset + b * H;
        const scalar_t* go = gout_ptr + row;
        const scalar_t* o = out_ptr + row;
        scalar_t* dpre = dpre_ptr + row;
        scalar_t* dn = dnext_ptr + b * H;
        if (!has_next) {
          for (int64_t j = 0; j < H; ++j) dn[j] = dpre[j] = go[j] * Act::grad_from_output(o[j]);
          continue;
        }
        const scalar_t* dc = dcarry_ptr + b * H;
        const scalar_t m = masked ? mask_ptr[t * B + b] : scalar_t(1);
        // A kept state (m = 1, nearly every row) leaves the reset gradient alone.
        if (m != scalar_t(1)) {
          scalar_t* dr = dreset_ptr + b * H;
          for (int64_t j = 0; j < H; ++j) {
            dn[j] = dpre[j] = (go[j] + m * dc[j]) * Act::grad_from_output(o[j]);
            dr[j] += (scalar_t(1) - m) * dc[j];
          }
        } else {
          for (int64_t j = 0; j < H; ++j) {
            dn[j] = dpre[j] = (go[j] + dc[j]) * Act::grad_from_output(o[j]);
          }
        }
      }
    });
  }
}

}  // namespace

void backward_recurrence_cpu(const at::Tensor& grad_pre,
                             const at::Tensor& grad_reset,
                             const at::Tensor& grad_out, const at::Tensor& out,
                             const at::Tensor& w_hh,
                             const c10::optional<at::Tensor>& mask,
                             Activation act, bool reverse) {
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "backward_recurrence_cpu", [&] {
    dispatch_activation(act, [&](auto tag) {
      backward_loop<scalar_t, decltype(tag)>(grad_pre, grad_reset, grad_out, out,
                                             w_hh, mask, reverse);
    });
  });
}

}  // namespace rnn_fused
