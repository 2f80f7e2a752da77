// CPU backward through time: per step (in reverse processing order) one product
// that carries the next step's pre-activation gradient back through W_hh, then
// one fused pass that routes it through the mask, adds the output gradient and
// applies the cell's backward.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include "../cells/elman.h"
#include "isa.h"
#include "pointwise_grain.h"
#include "recurrence.h"
#include "small_gemm.h"

namespace rnn_fused {
namespace {

// One step's pointwise pass over rows [b0, b1): route the next step's gradient
// through the mask, add the output's, apply the cell's backward. Always
// inlined, so that each wrapper below compiles it for its own instruction set.
// dcarry is null at the last processed step, whose carry feeds nothing.
template <typename scalar_t, typename Cell>
__attribute__((always_inline)) inline void backward_rows(
    const Cell cell, scalar_t* dpre_t, scalar_t* dnext, scalar_t* dreset,
    const scalar_t* gout_t, const scalar_t* out_t, const scalar_t* dcarry,
    const scalar_t* mask_t, int64_t b0, int64_t b1, int64_t H) {
  for (int64_t b = b0; b < b1; ++b) {
    const scalar_t* go = gout_t + b * H;
    const scalar_t* o = out_t + b * H;
    scalar_t* dpre = dpre_t + b * H;
    scalar_t* dn = dnext + b * H;
    if (dcarry == nullptr) {
      for (int64_t j = 0; j < H; ++j) dn[j] = dpre[j] = cell.backward(go[j], o[j]);
      continue;
    }
    const scalar_t* dc = dcarry + b * H;
    const scalar_t m = mask_t != nullptr ? mask_t[b] : scalar_t(1);
    // A kept state (m = 1, nearly every row) leaves the reset gradient alone.
    if (m != scalar_t(1)) {
      scalar_t* dr = dreset + b * H;
      for (int64_t j = 0; j < H; ++j) {
        dn[j] = dpre[j] = cell.backward(go[j] + m * dc[j], o[j]);
        dr[j] += (scalar_t(1) - m) * dc[j];
      }
    } else {
      for (int64_t j = 0; j < H; ++j) dn[j] = dpre[j] = cell.backward(go[j] + dc[j], o[j]);
    }
  }
}

template <typename scalar_t, typename Cell>
RNN_FUSED_AVX512 void backward_rows_avx512(const Cell cell, scalar_t* dpre_t, scalar_t* dnext,
                                           scalar_t* dreset, const scalar_t* gout_t,
                                           const scalar_t* out_t, const scalar_t* dcarry,
                                           const scalar_t* mask_t, int64_t b0, int64_t b1,
                                           int64_t H) {
  backward_rows(cell, dpre_t, dnext, dreset, gout_t, out_t, dcarry, mask_t, b0, b1, H);
}

template <typename scalar_t, typename Cell>
void backward_rows_baseline(const Cell cell, scalar_t* dpre_t, scalar_t* dnext,
                            scalar_t* dreset, const scalar_t* gout_t, const scalar_t* out_t,
                            const scalar_t* dcarry, const scalar_t* mask_t, int64_t b0,
                            int64_t b1, int64_t H) {
  backward_rows(cell, dpre_t, dnext, dreset, gout_t, out_t, dcarry, mask_t, b0, b1, H);
}

template <typename scalar_t, typename Cell>
void backward_loop(const RecurrenceGradParams& p, const Cell cell) {
  const int64_t T = p.steps, B = p.batch, H = p.hidden;
  const bool masked = p.mask.has_value();
  at::Tensor dcarry = at::empty({B, H}, p.out.options());
  // A copy of the step's grad_pre that the next product reads: cheaper than a
  // view of grad_pre[t] per step.
  const at::Tensor dnext = at::empty({B, H}, p.out.options());

  scalar_t* dpre_ptr = p.grad_pre.data_ptr<scalar_t>();
  scalar_t* dreset_ptr = p.grad_reset.data_ptr<scalar_t>();
  const scalar_t* gout_ptr = p.grad_out.data_ptr<scalar_t>();
  const scalar_t* last_ptr =
      p.grad_last_step.has_value() ? p.grad_last_step->data_ptr<scalar_t>() : nullptr;
  const scalar_t* out_ptr = p.out.data_ptr<scalar_t>();
  const scalar_t* dcarry_ptr = dcarry.data_ptr<scalar_t>();
  scalar_t* dnext_ptr = dnext.data_ptr<scalar_t>();
  const scalar_t* mask_ptr = masked ? p.mask->data_ptr<scalar_t>() : nullptr;
  const int64_t grain = pointwise_row_grain(H);
  const bool avx512 = has_avx512();
  const float* w_hh_rows = p.plan.small_product ? p.w_hh.data_ptr<float>() : nullptr;

  for (int64_t s = T - 1; s >= 0; --s) {
    const int64_t t = p.reverse ? T - 1 - s : s;
    // The last step's carry feeds nothing, so its gradient is zero.
    const bool has_next = s < T - 1;
    if (has_next) step_product(dcarry, dnext, p.w_hh, w_hh_rows);
    const int64_t offset = t * B * H;
    const scalar_t* dc = has_next ? dcarry_ptr : nullptr;
    const scalar_t* gout_t = has_next || last_ptr == nullptr ? gout_ptr + offset : last_ptr;
    const scalar_t* mask_t = masked ? mask_ptr + t * B : nullptr;
    at::parallel_for(0, B, grain, [&](int64_t b0, int64_t b1) {
      if (avx512) {
        backward_rows_avx512(cell, dpre_ptr + offset, dnext_ptr, dreset_ptr, gout_t,
                             out_ptr + offset, dc, mask_t, b0, b1, H);
      } else {
        backward_rows_baseline(cell, dpre_ptr + offset, dnext_ptr, dreset_ptr, gout_t,
                               out_ptr + offset, dc, mask_t, b0, b1, H);
      }
    });
  }
}

}  // namespace

void CpuRecurrence::backward(const RecurrenceGradParams& p) {
  RECORD_FUNCTION(p.plan.small_product ? "rnn_fused::cpu_backward(small product)"
                                       : "rnn_fused::cpu_backward(BLAS)",
                  std::vector<c10::IValue>());
  AT_DISPATCH_FLOATING_TYPES(p.out.scalar_type(), "rnn_fused::cpu_backward", [&] {
    dispatch_activation(p.activation, [&](auto tag) {
      backward_loop<scalar_t>(p, ElmanCell<decltype(tag)>{});
    });
  });
}

}  // namespace rnn_fused
