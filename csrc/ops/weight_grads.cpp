#include "weight_grads.h"

#include <algorithm>

#include <ATen/ATen.h>
#include <ATen/record_function.h>

namespace rnn_fused {
namespace {

// The CPU takes the correction path below when at most 1/8 of the carries reset
// or blend. A set bound, not a measured break-even: each corrected row costs
// three gathers, where the chunked path costs one lerp for every row.
constexpr int64_t kFewResetsDivisor = 8;
// Elements of the chunk buffer for rebuilt carries (4 MB in float32): small
// enough to stay in cache between the lerp and the product, where a [T, B, H]
// temporary would cost more in fresh pages than the lerp itself.
constexpr int64_t kChunkElements = int64_t(1) << 20;

}  // namespace

void add_later_steps_grad_weight_hh(at::Tensor& grad_weight_hh, const at::Tensor& grad_pre,
                                    const at::Tensor& out, const c10::optional<at::Tensor>& mask,
                                    const c10::optional<at::Tensor>& reset, bool reverse) {
  const int64_t T = out.size(0), B = out.size(1), H = out.size(2);
  // Step t's previous carry is at t − 1 (forward) or t + 1 (reverse).
  const int64_t first_later = reverse ? 0 : 1, first_prev = reverse ? 1 : 0;
  const at::Tensor later = grad_pre.narrow(0, first_later, T - 1).view({(T - 1) * B, H});
  const at::Tensor prev = out.narrow(0, first_prev, T - 1).view({(T - 1) * B, H});
  if (!mask.has_value()) {
    grad_weight_hh.addmm_(later.t(), prev);
    return;
  }
  if (out.is_cpu()) {
    // carry = h + (1 − m)·(r − h): the product with the outputs, as without a
    // mask, plus one over the rows whose carry was reset or blended. Episode
    // ends are rare, so that second product is small. (Finding those rows
    // synchronizes a GPU and cannot be captured in a CUDA graph: CPU only.)
    const at::Tensor kept = mask->narrow(0, first_prev, T - 1).reshape({(T - 1) * B});
    const at::Tensor rows = at::nonzero(kept != 1).squeeze(1);
    if (rows.numel() <= (T - 1) * B / kFewResetsDivisor) {
      RECORD_FUNCTION("rnn_fused::grad_weight_hh(few resets)", std::vector<c10::IValue>());
      grad_weight_hh.addmm_(later.t(), prev);
      if (rows.numel() == 0) return;
      const at::Tensor reset_rows = reset->index_select(0, rows.remainder(B));
      const at::Tensor correction = (1 - kept.index_select(0, rows)).unsqueeze(1) *
                                    (reset_rows - prev.index_select(0, rows));
      grad_weight_hh.addmm_(later.index_select(0, rows).t(), correction);
      return;
    }
  }
  RECORD_FUNCTION("rnn_fused::grad_weight_hh(carry chunks)", std::vector<c10::IValue>());
  const int64_t chunk =
      std::min(T - 1, std::max<int64_t>(1, kChunkElements / std::max<int64_t>(1, B * H)));
  at::Tensor carries = at::empty({chunk, B, H}, out.options());
  for (int64_t s = 0; s < T - 1; s += chunk) {
    const int64_t n = std::min(chunk, T - 1 - s);
    at::Tensor carry = carries.narrow(0, 0, n);
    const at::Tensor h = out.narrow(0, first_prev + s, n);
    const at::Tensor m = mask->narrow(0, first_prev + s, n).unsqueeze(-1);
    // lerp is exact at m = 0 and 1, where it equals m·h + (1 − m)·r; but a kept
    // row never reads the reset state, which may be infinite there (inf − inf).
    at::lerp_out(carry, *reset, h, m);
    at::where_out(carry, m == 1, h, carry);
    grad_weight_hh.addmm_(grad_pre.narrow(0, first_later + s, n).view({n * B, H}).t(),
                          carry.view({n * B, H}));
  }
}

}  // namespace rnn_fused
