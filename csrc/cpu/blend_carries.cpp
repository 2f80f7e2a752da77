// The states a masked recurrence's steps read, rebuilt for the backward in one
// pass: most rows keep their state (m = 1) and are copied; only resetting rows
// blend. The ATen formulation took six passes over [T, B, H] and its temporaries.
#include <cstring>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include "blend_carries.h"
#include "pointwise_grain.h"

namespace rnn_fused {

void blend_carries_cpu(at::Tensor& target, const at::Tensor& values, const at::Tensor& mask,
                       const at::Tensor& reset) {
  const bool per_row = reset.dim() == 3;
  const int64_t B = per_row ? reset.size(1) : reset.size(0), H = reset.size(-1);
  const int64_t rows = mask.numel();
  const at::Tensor mask_c = mask.contiguous();
  const at::Tensor reset_c = reset.contiguous();
  AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "rnn_fused::cpu_blend_carries", [&] {
    const scalar_t* m = mask_c.data_ptr<scalar_t>();
    const scalar_t* v = values.data_ptr<scalar_t>();
    const scalar_t* r = reset_c.data_ptr<scalar_t>();
    scalar_t* out = target.data_ptr<scalar_t>();
    at::parallel_for(0, rows, pointwise_row_grain(H), [&](int64_t r0, int64_t r1) {
      for (int64_t row = r0; row < r1; ++row) {
        const scalar_t* value = v + row * H;
        scalar_t* carry = out + row * H;
        const scalar_t keep = m[row];
        if (keep == scalar_t(1)) {
          std::memcpy(carry, value, H * sizeof(scalar_t));
          continue;
        }
        // The kernels' own formula.
        const scalar_t* reset_row = r + (per_row ? row : row % B) * H;
        for (int64_t j = 0; j < H; ++j) {
          carry[j] = keep * value[j] + (scalar_t(1) - keep) * reset_row[j];
        }
      }
    });
  });
}

}  // namespace rnn_fused
