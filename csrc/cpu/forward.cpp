// CPU forward through time: per step one product into a scratch buffer, then one
// fused pass (the cell's step, write the output, mask-reset the carry).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include "../cells/elman.h"
#include "cpu_activation.h"
#include "isa.h"
#include "pointwise_grain.h"
#include "recurrence.h"
#include "small_gemm.h"
#include "transpose.h"

namespace rnn_fused {
namespace {

// One step's pointwise pass over rows [b0, b1): the cell's step, the output, and
// the carry (mask-reset). Always inlined, so that each wrapper below compiles
// it, fast_tanh included, for its own instruction set.
template <typename scalar_t, typename Cell>
__attribute__((always_inline)) inline void forward_rows(const Cell cell, scalar_t* out_t,
                                                        const scalar_t* hh, scalar_t* carry,
                                                        const scalar_t* mask_t,
                                                        const scalar_t* reset, int64_t b0,
                                                        int64_t b1, int64_t H) {
  for (int64_t b = b0; b < b1; ++b) {
    scalar_t* o = out_t + b * H;
    const scalar_t* r = hh + b * H;
    scalar_t* c = carry + b * H;
    const scalar_t m = mask_t != nullptr ? mask_t[b] : scalar_t(1);
    // A kept state (m = 1, nearly every row) needs no reset read.
    if (m != scalar_t(1)) {
      const scalar_t* rs = reset + b * H;
      for (int64_t j = 0; j < H; ++j) {
        const scalar_t h = cell.forward(o[j], r[j]);
        o[j] = h;
        c[j] = m * h + (scalar_t(1) - m) * rs[j];
      }
    } else {
      for (int64_t j = 0; j < H; ++j) c[j] = o[j] = cell.forward(o[j], r[j]);
    }
  }
}

template <typename scalar_t, typename Cell>
RNN_FUSED_AVX512 void forward_rows_avx512(const Cell cell, scalar_t* out_t, const scalar_t* hh,
                                          scalar_t* carry, const scalar_t* mask_t,
                                          const scalar_t* reset, int64_t b0, int64_t b1,
                                          int64_t H) {
  forward_rows(cell, out_t, hh, carry, mask_t, reset, b0, b1, H);
}

template <typename scalar_t, typename Cell>
void forward_rows_baseline(const Cell cell, scalar_t* out_t, const scalar_t* hh,
                           scalar_t* carry, const scalar_t* mask_t, const scalar_t* reset,
                           int64_t b0, int64_t b1, int64_t H) {
  forward_rows(cell, out_t, hh, carry, mask_t, reset, b0, b1, H);
}

template <typename scalar_t, typename Cell>
void forward_loop(const RecurrenceParams& p, const Cell cell) {
  const int64_t T = p.steps, B = p.batch, H = p.hidden;
  const bool masked = p.mask.has_value();
  const at::Tensor w_hh_t = p.w_hh.t();
  const at::Tensor w_hh_t_copy =
      p.plan.small_product ? transpose_into_thread_buffer(p.w_hh) : at::Tensor();
  const float* w_hh_t_rows = p.plan.small_product ? w_hh_t_copy.data_ptr<float>() : nullptr;
  at::Tensor hh = at::empty({B, H}, p.out.options());
  // The carried state gets its own buffer even without a mask (then it is a copy
  // of h_t): a view of out[t] per step would cost more than the copy.
  const at::Tensor carry = at::empty({B, H}, p.out.options());

  scalar_t* out_ptr = p.out.data_ptr<scalar_t>();
  const scalar_t* hh_ptr = hh.data_ptr<scalar_t>();
  scalar_t* carry_ptr = carry.data_ptr<scalar_t>();
  const scalar_t* mask_ptr = masked ? p.mask->data_ptr<scalar_t>() : nullptr;
  const scalar_t* reset_ptr = masked ? p.reset->data_ptr<scalar_t>() : nullptr;
  const int64_t grain = pointwise_row_grain(H);
  const bool avx512 = has_avx512();

  at::Tensor prev = p.hx;
  for (int64_t s = 0; s < T; ++s) {
    const int64_t t = p.reverse ? T - 1 - s : s;
    step_product(hh, prev, w_hh_t, w_hh_t_rows);
    scalar_t* out_t = out_ptr + t * B * H;
    const scalar_t* mask_t = masked ? mask_ptr + t * B : nullptr;
    at::parallel_for(0, B, grain, [&](int64_t b0, int64_t b1) {
      if (avx512) {
        forward_rows_avx512(cell, out_t, hh_ptr, carry_ptr, mask_t, reset_ptr, b0, b1, H);
      } else {
        forward_rows_baseline(cell, out_t, hh_ptr, carry_ptr, mask_t, reset_ptr, b0, b1, H);
      }
    });
    prev = carry;
  }
}

}  // namespace

void CpuRecurrence::forward(const RecurrenceParams& p) {
  RECORD_FUNCTION(p.plan.small_product ? "rnn_fused::cpu_forward(small product)"
                                       : "rnn_fused::cpu_forward(BLAS)",
                  std::vector<c10::IValue>());
  AT_DISPATCH_FLOATING_TYPES(p.out.scalar_type(), "rnn_fused::cpu_forward", [&] {
    dispatch_activation(p.activation, [&](auto tag) {
      forward_loop<scalar_t>(p, ElmanCell<CpuActivation<decltype(tag)>>{});
    });
  });
}

}  // namespace rnn_fused
