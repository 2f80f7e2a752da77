#include "weight_grads.h"

#include <algorithm>

#include <ATen/OpMathType.h>
#include <ATen/TensorOperators.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/lerp.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/nonzero.h>
#include <ATen/ops/sum.h>
#include <ATen/ops/where.h>
#include <ATen/ops/zeros.h>
#include <ATen/record_function.h>

#include "../cpu/blend_carries.h"
#include "input_products.h"

namespace rnn_fused {
namespace {

// The CPU takes the correction path below when at most 1/8 of the carries reset
// or blend. A set bound, not a measured break-even: each corrected row costs
// three gathers, where the chunked path costs one lerp for every row.
constexpr int64_t kFewResetsDivisor = 8;
// Elements of the chunk buffer for rebuilt carries (4 MB in float32): small
// enough to stay in cache between the lerp and the product, where a [T, B, H]
// temporary would cost more in fresh pages than the lerp itself.
constexpr int64_t kCarryChunkElements = int64_t(1) << 20;

// sum (+)= aᵀ · b.
void product_into(at::Tensor& sum, const at::Tensor& a, const at::Tensor& b, bool write) {
  if (write) {
    at::mm_out(sum, a.t(), b);
  } else {
    sum.addmm_(a.t(), b);
  }
}

// sum (+)= rows of g summed.
void rows_into(at::Tensor& sum, const at::Tensor& g, bool write) {
  if (write) {
    at::sum_out(sum, g, 0);
  } else {
    sum.add_(g.sum(0));
  }
}

// grad (+)= gᵀ · carries, carries = mask·h + (1 − mask)·reset for the rows of
// h [N, H] (N = steps·B; mask [N]; reset [B, H], or [N, H], one per row, where
// `per_row`).
void add_carry_product(at::Tensor& grad, const at::Tensor& g, const at::Tensor& h,
                       const at::Tensor& mask, const at::Tensor& reset, int64_t B,
                       bool per_row, bool write) {
  const int64_t H = reset.size(1), rows = h.size(0);
  if (h.is_cpu()) {
    // carry = h + (1 − m)·(r − h): the product with the outputs, as without a
    // mask, plus one over the rows whose carry was reset or blended. Episode
    // ends are rare, so that second product is small. (Finding those rows
    // synchronizes a GPU and cannot be captured in a CUDA graph: CPU only.)
    const at::Tensor changed = at::nonzero(mask != 1).squeeze(1);
    if (changed.numel() <= rows / kFewResetsDivisor) {
      RECORD_FUNCTION("rnn_fused::grad_weight_hh(few resets)", std::vector<c10::IValue>());
      product_into(grad, g, h, write);
      if (changed.numel() == 0) return;
      const at::Tensor reset_rows =
          reset.index_select(0, per_row ? changed : changed.remainder(B));
      const at::Tensor correction = (1 - mask.index_select(0, changed)).unsqueeze(1) *
                                    (reset_rows - h.index_select(0, changed));
      grad.addmm_(g.index_select(0, changed).t(), correction);
      return;
    }
  }
  RECORD_FUNCTION("rnn_fused::grad_weight_hh(carry chunks)", std::vector<c10::IValue>());
  const int64_t chunk =
      std::min(rows, std::max<int64_t>(B, kCarryChunkElements / std::max<int64_t>(1, H) / B * B));
  at::Tensor carries = at::empty({chunk, H}, h.options());
  for (int64_t r = 0; r < rows; r += chunk) {
    const int64_t n = std::min(chunk, rows - r);
    at::Tensor carry = carries.narrow(0, 0, n);
    const at::Tensor h_rows = h.narrow(0, r, n);
    const at::Tensor m = mask.narrow(0, r, n).unsqueeze(-1);
    // lerp is exact at m = 0 and 1, where it equals m·h + (1 − m)·r; but a kept
    // row never reads the reset state, which may be infinite there (inf − inf).
    at::Tensor blended = carry.view({n / B, B, H});
    const at::Tensor resets = per_row ? reset.narrow(0, r, n).view({n / B, B, H}) : reset;
    at::lerp_out(blended, resets, h_rows.view({n / B, B, H}), m.view({n / B, B, 1}));
    at::where_out(carry, m == 1, h_rows, carry);
    product_into(grad, g.narrow(0, r, n), carry, write && r == 0);
  }
}

// W_hh's gradient of times [t0, t0 + steps): Σ grad_h_gates[t]ᵀ · the state
// step t read, from h_read or rebuilt from the outputs: h_0 at the first
// processed step, the predecessor's carry (m·h + (1 − m)·r) at every other.
void add_hidden_weight_grads(const BackwardParams& p, at::Tensor& grad, const at::Tensor& gh,
                             int64_t t0, int64_t steps, bool write, const at::Tensor& h_read) {
  const int64_t T = p.steps, B = p.batch, H = p.output_size;
  if (h_read.defined()) {
    return product_into(grad, gh, h_read.narrow(0, t0, steps).reshape({steps * B, H}), write);
  }
  // The step without a predecessor, and the times of those with one, [lo, hi).
  const int64_t first = p.reverse ? T - 1 : 0;
  const bool has_first = first >= t0 && first < t0 + steps;
  const int64_t lo = p.reverse ? t0 : std::max<int64_t>(t0, 1);
  const int64_t hi = p.reverse ? std::min(t0 + steps, T - 1) : t0 + steps;
  if (has_first) {
    product_into(grad, gh.narrow(0, (first - t0) * B, B), p.hx, write);
    write = false;
  }
  if (hi <= lo) return;
  // Their predecessors' times, one apart.
  const int64_t prev = p.reverse ? lo + 1 : lo - 1;
  const at::Tensor later = gh.narrow(0, (lo - t0) * B, (hi - lo) * B);
  const at::Tensor h = p.output.view({T * B, H}).narrow(0, prev * B, (hi - lo) * B);
  if (!p.mask.defined()) return product_into(grad, later, h, write);
  const at::Tensor reset = p.resets_per_step()
                               ? p.reset_h.view({T * B, H}).narrow(0, prev * B, (hi - lo) * B)
                               : p.reset_h;
  add_carry_product(grad, later, h, p.mask.view({T * B}).narrow(0, prev * B, (hi - lo) * B),
                    reset, B, p.resets_per_step(), write);
}

}  // namespace

Gradients allocate_gradients(const BackwardParams& p) {
  const auto options = p.output.options();
  const auto acc_options = options.dtype(at::toOpMathType(options.dtype().toScalarType()));
  const CellInfo& cell = info(p.cell);
  const int64_t GH = p.gates() * p.hidden;
  Gradients g;
  if (p.wanted[0]) g.input = at::empty({p.steps, p.batch, p.input_size}, options);
  if (p.wanted[1]) g.weight_ih = at::empty({GH, p.input_size}, options);
  if (p.wanted[2]) g.weight_hh = at::empty({GH, p.output_size}, options);
  if (p.projects()) g.weight_hr = at::empty({p.output_size, p.hidden}, options);
  if (p.has_bias) {
    g.bias_ih = at::empty({GH}, options);
    // The GRU's b_hh has its own; the others' two biases share one.
    if (cell.hidden_bias_apart) g.bias_hh = at::empty({GH}, options);
  }
  if (p.mask.defined()) {
    g.reset_h = at::zeros(p.reset_h.sizes(), acc_options);
    if (cell.cell_state) g.reset_c = at::zeros(p.reset_c.sizes(), acc_options);
  }
  return g;
}

at::Tensor states_read(const at::Tensor& values, const at::Tensor& first, const at::Tensor& mask,
                       const at::Tensor& reset, bool reverse, int64_t t0, int64_t steps) {
  const int64_t T = values.size(0);
  at::Tensor read = at::empty({steps, values.size(1), values.size(2)}, values.options());
  const int64_t head = reverse ? T - 1 : 0;
  // The steps with a predecessor, [lo, hi), and their predecessors' first time.
  const int64_t lo = reverse ? t0 : std::max<int64_t>(t0, 1);
  const int64_t hi = reverse ? std::min(t0 + steps, T - 1) : t0 + steps;
  if (head >= t0 && head < t0 + steps) read[head - t0].copy_(first);
  if (hi <= lo) return read;
  const int64_t prev = reverse ? lo + 1 : lo - 1;
  const at::Tensor source = values.narrow(0, prev, hi - lo);
  at::Tensor target = read.narrow(0, lo - t0, hi - lo);
  if (!mask.defined()) {
    target.copy_(source);
    return read;
  }
  // Reset states per step are those of the predecessors' times.
  const at::Tensor resets = reset.dim() == 3 ? reset.narrow(0, prev, hi - lo) : reset;
  if (target.is_cpu()) {
    blend_carries_cpu(target, source, mask.narrow(0, prev, hi - lo), resets);
  } else {
    const at::Tensor m = mask.narrow(0, prev, hi - lo).unsqueeze(-1);
    // A kept row never reads the reset state: lerp would make NaN of an infinite one.
    target.copy_(at::where(m == 1, source, m * source + (1 - m) * resets));
  }
  return read;
}

void add_chunk_gradients(const BackwardParams& p, Gradients& g, const at::Tensor& grad_x_gates,
                         const at::Tensor& grad_h_gates, int64_t t0, int64_t steps, bool first,
                         const at::Tensor& h_read) {
  const int64_t B = p.batch, D = p.input_size;
  const at::Tensor x = p.input.narrow(0, t0 * B, steps * B);
  if (p.wanted[0]) {
    at::Tensor rows = g.input.view({p.steps * B, D}).narrow(0, t0 * B, steps * B);
    at::mm_out(rows, grad_x_gates, p.weight_ih);
  }
  if (p.wanted[1]) {
    // The input's bias gradient comes with W_ih's, from one pass where it can.
    at::Tensor no_bias;
    add_input_weight_grads(grad_x_gates, x, g.weight_ih, p.has_bias ? g.bias_ih : no_bias,
                           !first);
  } else if (p.has_bias) {
    rows_into(g.bias_ih, grad_x_gates, first);
  }
  if (p.wanted[2]) add_hidden_weight_grads(p, g.weight_hh, grad_h_gates, t0, steps, first, h_read);
  if (g.bias_hh.defined()) rows_into(g.bias_hh, grad_h_gates, first);
}

}  // namespace rnn_fused
