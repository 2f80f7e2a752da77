// The rnn_fused ops for one layer in one direction. The parts that are parallel
// over time (the input projection before the loop, the weight gradients after
// it) are large matrix products done here once per call; the sequential part is
// the device's recurrence kernel.
#include <algorithm>
#include <array>

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>

#include "recurrence.h"
#include "rnn_checks.h"

namespace rnn_fused {
namespace {

c10::optional<at::Tensor> contiguous(const c10::optional<at::Tensor>& t) {
  if (!t.has_value()) return c10::nullopt;
  return t->contiguous();
}

void forward_recurrence(const at::Tensor& out, const at::Tensor& w_hh, const at::Tensor& hx,
                        const c10::optional<at::Tensor>& mask,
                        const c10::optional<at::Tensor>& reset, Activation act, bool reverse) {
#ifdef WITH_CUDA
  if (out.is_cuda()) return forward_recurrence_cuda(out, w_hh, hx, mask, reset, act, reverse);
#endif
  forward_recurrence_cpu(out, w_hh, hx, mask, reset, act, reverse);
}

void backward_recurrence(const at::Tensor& grad_pre, const at::Tensor& grad_reset,
                         const at::Tensor& grad_out, const at::Tensor& out,
                         const at::Tensor& w_hh, const c10::optional<at::Tensor>& mask,
                         Activation act, bool reverse) {
#ifdef WITH_CUDA
  if (out.is_cuda()) {
    return backward_recurrence_cuda(grad_pre, grad_reset, grad_out, out, w_hh, mask, act,
                                    reverse);
  }
#endif
  backward_recurrence_cpu(grad_pre, grad_reset, grad_out, out, w_hh, mask, act, reverse);
}

// grad_weight_hh += Σ over every step but the first processed one of
// grad_pre[t]ᵀ·carry_prev(t), carry_t = m_t·h_t + (1 − m_t)·r.
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
    if (rows.numel() <= (T - 1) * B / 8) {
      grad_weight_hh.addmm_(later.t(), prev);
      if (rows.numel() == 0) return;
      const at::Tensor reset_rows = reset->index_select(0, rows.remainder(B));
      const at::Tensor correction = (1 - kept.index_select(0, rows)).unsqueeze(1) *
                                    (reset_rows - prev.index_select(0, rows));
      grad_weight_hh.addmm_(later.index_select(0, rows).t(), correction);
      return;
    }
  }
  // Carries are rebuilt in chunks of steps into one small buffer: a [T,B,H]
  // temporary would cost more in fresh pages than the lerp itself.
  constexpr int64_t kChunkElements = int64_t(1) << 20;
  const int64_t chunk =
      std::min(T - 1, std::max<int64_t>(1, kChunkElements / std::max<int64_t>(1, B * H)));
  at::Tensor carries = at::empty({chunk, B, H}, out.options());
  for (int64_t s = 0; s < T - 1; s += chunk) {
    const int64_t n = std::min(chunk, T - 1 - s);
    at::Tensor carry = carries.narrow(0, 0, n);
    // lerp is exact at m = 0 and 1, where it equals m·h + (1 − m)·r.
    at::lerp_out(carry, *reset, out.narrow(0, first_prev + s, n),
                 mask->narrow(0, first_prev + s, n).unsqueeze(-1));
    grad_weight_hh.addmm_(grad_pre.narrow(0, first_later + s, n).view({n * B, H}).t(),
                          carry.view({n * B, H}));
  }
}

at::Tensor rnn_layer_forward(const at::Tensor& input, const at::Tensor& weight_ih,
                             const at::Tensor& weight_hh,
                             const c10::optional<at::Tensor>& bias_ih,
                             const c10::optional<at::Tensor>& bias_hh, const at::Tensor& hx,
                             const c10::optional<at::Tensor>& mask,
                             const c10::optional<at::Tensor>& reset_state,
                             c10::string_view nonlinearity, bool reverse) {
  const Activation act = parse_activation(nonlinearity);
  const LayerSizes n = check_layer_inputs(input, weight_ih, weight_hh, bias_ih, bias_hh, hx,
                                          mask, reset_state);
  const c10::DeviceGuard device_guard(input.device());
  // The ops pick their own precision; autocast must not recast the products inside.
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  const at::Tensor x2d = input.contiguous().view({n.steps * n.batch, n.input_size});
  // Both biases ride along with the input projection, so the loop adds one term.
  const at::Tensor projection =
      bias_ih.has_value() ? at::addmm(*bias_ih + *bias_hh, x2d, weight_ih.t())
                          : at::mm(x2d, weight_ih.t());
  const at::Tensor out = projection.view({n.steps, n.batch, n.hidden_size});
  forward_recurrence(out, weight_hh.contiguous(), hx.contiguous(), contiguous(mask),
                     contiguous(reset_state), act, reverse);
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
rnn_layer_backward(const at::Tensor& grad_output, const at::Tensor& input,
                   const at::Tensor& weight_ih, const at::Tensor& weight_hh,
                   const at::Tensor& hx, const c10::optional<at::Tensor>& mask,
                   const c10::optional<at::Tensor>& reset_state, const at::Tensor& output,
                   c10::string_view nonlinearity, bool reverse,
                   std::array<bool, 6> output_mask) {
  const Activation act = parse_activation(nonlinearity);
  const LayerSizes n = check_layer_inputs(input, weight_ih, weight_hh, c10::nullopt,
                                          c10::nullopt, hx, mask, reset_state);
  const int64_t T = n.steps, B = n.batch, H = n.hidden_size;
  check_like_input(grad_output, "grad_output", input, {T, B, H});
  check_like_input(output, "output", input, {T, B, H});
  const c10::DeviceGuard device_guard(input.device());
  // The ops pick their own precision; autocast must not recast the products inside.
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);

  const at::Tensor out = output.contiguous();
  const at::Tensor w_hh = weight_hh.contiguous();
  const auto mask_c = contiguous(mask);
  const at::Tensor grad_pre = at::empty({T, B, H}, out.options());
  // Summed over all steps, so kept in float32 for float16/bfloat16.
  const auto acc_options = out.options().dtype(at::toOpMathType(out.scalar_type()));
  const at::Tensor grad_reset =
      mask_c.has_value() ? at::zeros({B, H}, acc_options) : at::empty({0}, acc_options);
  backward_recurrence(grad_pre, grad_reset, grad_output.contiguous(), out, w_hh, mask_c, act,
                      reverse);

  // Each product after the loop only where its gradient is wanted: the first
  // layer's input, for one, rarely needs one (T·B×H×D, a tenth of the work at D = H/2).
  // Skipped gradients are distinct empty tensors: outputs of an op must not alias.
  const auto none = [&] { return at::empty({0}, out.options()); };
  const at::Tensor grad_pre_2d = grad_pre.view({T * B, H});
  const at::Tensor grad_input =
      output_mask[0] ? at::mm(grad_pre_2d, weight_ih).view({T, B, n.input_size}) : none();
  const at::Tensor grad_weight_ih =
      output_mask[1] ? at::mm(grad_pre_2d.t(), input.contiguous().view({T * B, n.input_size}))
                     : none();
  const at::Tensor grad_bias = output_mask[3] ? grad_pre_2d.sum(0) : none();

  // The first processed step received hx; every later one the previous step's carry.
  const int64_t first = reverse ? T - 1 : 0;
  const at::Tensor grad_hx = output_mask[4] ? at::mm(grad_pre[first], w_hh) : none();
  at::Tensor grad_weight_hh = none();
  if (output_mask[2]) {
    grad_weight_hh = at::mm(grad_pre[first].t(), hx);
    if (T > 1) {
      add_later_steps_grad_weight_hh(grad_weight_hh, grad_pre, out, mask_c, reset_state,
                                     reverse);
    }
  }
  return {grad_input, grad_weight_ih, grad_weight_hh, grad_bias, grad_hx,
          output_mask[5] && mask_c.has_value() ? grad_reset.to(out.scalar_type()) : none()};
}

}  // namespace

TORCH_LIBRARY_IMPL(rnn_fused, CPU, m) {
  m.impl("rnn_layer_forward", &rnn_layer_forward);
  m.impl("rnn_layer_backward", &rnn_layer_backward);
}

#ifdef WITH_CUDA
TORCH_LIBRARY_IMPL(rnn_fused, CUDA, m) {
  m.impl("rnn_layer_forward", &rnn_layer_forward);
  m.impl("rnn_layer_backward", &rnn_layer_backward);
}
#endif

}  // namespace rnn_fused
