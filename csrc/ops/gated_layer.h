// The gated layer ops, gated_layer_forward and gated_layer_backward (GRU and
// LSTM), for one layer in one direction, written once for every device. Per
// step: one product with W_hh (ATen, so cuBLAS or the CPU's BLAS), then the
// device's pointwise pass (Device::gated_forward_step / gated_backward_step);
// where Device::gated_product_in_step, the pass takes the product as well, a
// chunk of steps per call (Device::gated_forward_run / gated_backward_run);
// where the plan names Path::CudaPersistent, one launch runs every step
// (Device::gated_persistent_forward / gated_persistent_backward).
// Everything parallel over time (the input projection, the weight gradients) is
// one large product around the loop (W_ih's: input_products.h). Each device
// instantiates these templates and registers them (csrc/cpu/register.cpp,
// csrc/cuda/register.cpp).
#pragma once

#include <array>
#include <tuple>

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/impl/LocalDispatchKeySet.h>

#include "../engine/gated_recurrence.h"
#include "../engine/gated_step.h"
#include "../engine/plan.h"
#include "checks.h"
#include "input_products.h"
#include "product_into.h"

namespace rnn_fused {

struct GatedSizes : LayerSizes {
  GatedCell cell;
  int64_t gates;
  bool lstm() const { return cell == GatedCell::Lstm; }
};

inline GatedSizes check_gated_inputs(
    c10::string_view cell_name, const at::Tensor& input, const at::Tensor& weight_ih,
    const at::Tensor& weight_hh, const c10::optional<at::Tensor>& bias_ih,
    const c10::optional<at::Tensor>& bias_hh, const at::Tensor& hx,
    const c10::optional<at::Tensor>& cx, const c10::optional<at::Tensor>& mask,
    const c10::optional<at::Tensor>& reset_h, const c10::optional<at::Tensor>& reset_c) {
  GatedSizes n;
  n.cell = parse_gated_cell(cell_name);
  n.gates = gate_count(n.cell);
  static_cast<LayerSizes&>(n) = check_layer_inputs(input, weight_ih, weight_hh, bias_ih, bias_hh,
                                                   hx, mask, reset_h, n.gates);
  if (n.lstm()) {
    TORCH_CHECK_VALUE(cx.has_value(), "rnn_fused: an LSTM needs cx of shape [B, H]");
    check_like_input(*cx, "cx", input, {n.batch, n.hidden_size});
    TORCH_CHECK_VALUE(reset_h.has_value() == reset_c.has_value(),
                      "rnn_fused: an LSTM resets h and c together: give both reset states "
                      "or neither");
    if (reset_c.has_value()) {
      check_like_input(*reset_c, "reset_c", input, {n.batch, n.hidden_size});
    }
  } else {
    TORCH_CHECK_VALUE(!cx.has_value() && !reset_c.has_value(),
                      "rnn_fused: a GRU has no cell state: cx and reset_c must be None");
  }
  return n;
}

inline char* element(const at::Tensor& t, int64_t offset) {
  return static_cast<char*>(t.data_ptr()) + offset * t.element_size();
}

// The device's plan for a gated layer; raises ValueError where it cannot run.
template <typename Device>
Plan gated_plan(const GatedSizes& n, at::ScalarType dtype, c10::string_view backend) {
  return runnable_plan(
      [&](const PlanQuery& query, std::string* why) {
        return Device::plan_gated(query, n.cell, why);
      },
      PlanQuery{n.steps, n.batch, n.hidden_size, dtype, parse_backend(backend)});
}

// The sizes and shared pointers of a one-call recurrence (GatedRecurrence).
inline void set_recurrence(GatedRecurrence& r, const GatedSizes& n, at::ScalarType dtype,
                           const Plan& plan, bool reverse, const at::Tensor& w_hh,
                           const at::Tensor& mask) {
  r.cell = n.cell;
  r.dtype = dtype;
  r.batch = n.batch;
  r.hidden = n.hidden_size;
  r.steps = n.steps;
  r.reverse = reverse;
  r.units_per_block = plan.rows_per_block;
  r.w_hh = w_hh.data_ptr();
  r.mask = mask.defined() ? mask.data_ptr() : nullptr;
}

// The first time of the processed steps [q_begin, q_end): one contiguous range
// of times in either direction.
inline int64_t chunk_first_time(int64_t T, int64_t q_begin, int64_t q_end, bool reverse) {
  return reverse ? T - q_end : q_begin;
}

inline const void* element_or_null(const at::Tensor& t, int64_t offset) {
  return t.defined() ? element(t, offset) : nullptr;
}

// The state each step read, [T, B, H], from the states it wrote, [T, B, H]:
// `first` at the first processed step; after that the previous processed
// step's carry, mask·value + (1 − mask)·reset (Device::blend_carries).
template <typename Device>
at::Tensor states_read(const at::Tensor& values, const at::Tensor& first,
                       const c10::optional<at::Tensor>& mask,
                       const c10::optional<at::Tensor>& reset, bool reverse) {
  const int64_t T = values.size(0);
  at::Tensor read = at::empty(values.sizes(), values.options());
  const int64_t head = reverse ? T - 1 : 0;
  read[head].copy_(first);
  if (T == 1) return read;
  // Forward: read[1:] carries values[:-1]; reverse: read[:-1] carries values[1:].
  const at::Tensor source = reverse ? values.narrow(0, 1, T - 1) : values.narrow(0, 0, T - 1);
  at::Tensor target = reverse ? read.narrow(0, 0, T - 1) : read.narrow(0, 1, T - 1);
  if (!mask.has_value()) {
    target.copy_(source);
  } else {
    const at::Tensor m = reverse ? mask->narrow(0, 1, T - 1) : mask->narrow(0, 0, T - 1);
    Device::blend_carries(target, source.contiguous(), m, *reset);
  }
  return read;
}

// Returns (output, h_n, c_n, cells, saved): h_t for every step; copies of the
// last processed h_t and c_t; and for the backward, c_t for every step [T, B, H]
// and the saved gates [T, B, 4·H]. The GRU's c_n and cells are empty.
template <typename Device>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> gated_layer_forward(
    const at::Tensor& input, const at::Tensor& weight_ih, const at::Tensor& weight_hh,
    const c10::optional<at::Tensor>& bias_ih, const c10::optional<at::Tensor>& bias_hh,
    const at::Tensor& hx, const c10::optional<at::Tensor>& cx,
    const c10::optional<at::Tensor>& mask, const c10::optional<at::Tensor>& reset_h,
    const c10::optional<at::Tensor>& reset_c, c10::string_view cell, bool reverse,
    c10::string_view backend) {
  const GatedSizes n = check_gated_inputs(cell, input, weight_ih, weight_hh, bias_ih, bias_hh,
                                          hx, cx, mask, reset_h, reset_c);
  // The plan asks the input's GPU what fits.
  const c10::DeviceGuard device_guard(input.device());
  const Plan plan = gated_plan<Device>(n, input.scalar_type(), backend);
  const bool persistent = plan.path == Path::CudaPersistent;
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  const int64_t T = n.steps, B = n.batch, H = n.hidden_size, GH = n.gates * n.hidden_size;

  const auto options = input.options();
  // The biases ride with the input projection (on the CPU the pass adds them
  // to it), except the GRU's b_hn, which the pointwise step takes apart: the
  // step product is then a plain product, on a contiguous W_hhᵀ where the
  // device copies it (a BLAS call with a bias to copy in took twice as long at
  // B=8, H=128; and the pass can then take the product, gated_product_in_step).
  at::Tensor x_bias, h_bias;
  if (bias_ih.has_value()) {
    x_bias = bias_ih->clone();
    x_bias.narrow(0, 0, n.lstm() ? GH : 2 * H).add_(bias_hh->narrow(0, 0, n.lstm() ? GH : 2 * H));
    if (!n.lstm()) h_bias = bias_hh->narrow(0, 2 * H, H).contiguous();
  } else if (!n.lstm()) {
    h_bias = at::zeros({H}, options);
  }
  const at::Tensor x2d = input.contiguous().view({T * B, n.input_size});
  // The GRU projects a chunk of steps at a time into one reused buffer
  // (Device::gated_chunk_steps); the LSTM's projection becomes its saved gates,
  // so it is whole, as it is for the one-launch recurrence.
  const int64_t chunk = n.lstm() || persistent ? T : Device::gated_chunk_steps(T, B, GH);
  at::Tensor x_gates = at::empty({chunk, B, GH}, options);
  // Where the device's pass adds the bias (GatedForwardStep::x_bias), the
  // projection is a plain product.
  const bool bias_in_pass = Device::kPassAddsInputBias && !persistent && x_bias.defined();
  const auto project = [&](int64_t t0, int64_t steps) {
    at::Tensor out = x_gates.narrow(0, 0, steps).view({steps * B, GH});
    project_input<Device>(out, x2d.narrow(0, t0 * B, steps * B), weight_ih,
                          bias_in_pass ? at::Tensor() : x_bias);
  };
  at::Tensor output = at::empty({T, B, H}, options);
  at::Tensor cells = n.lstm() ? at::empty({T, B, H}, options) : at::empty({0}, options);
  // The LSTM's saved gates (4 per unit, as its pre-activations) overwrite
  // x_gates: each unit of a step reads its pre-activations before it writes its
  // gates, and nothing reads them later. That spares a [T, B, 4·H] buffer.
  at::Tensor saved = n.lstm() ? x_gates.view({T, B, kSavedPerUnit * H})
                              : at::empty({T, B, kSavedPerUnit * H}, options);
  const at::Tensor mask_c = mask.has_value() ? mask->contiguous() : at::Tensor();
  const at::Tensor reset_h_c = reset_h.has_value() ? reset_h->contiguous() : at::Tensor();
  const at::Tensor reset_c_c = reset_c.has_value() ? reset_c->contiguous() : at::Tensor();
  const at::Tensor h0 = hx.contiguous();
  const at::Tensor c0 = n.lstm() ? cx->contiguous() : at::Tensor();
  const int64_t last = reverse ? 0 : T - 1;
  const auto results = [&] {
    return std::make_tuple(output, output[last].clone(),
                           n.lstm() ? cells[last].clone() : at::empty({0}, options), cells,
                           saved);
  };

  // An empty batch (as nn.LSTM takes) runs no step: a CUDA grid of no blocks
  // cannot launch (the CPU's loops would run empty). Its weight gradients are
  // then the products' zeros.
  if constexpr (Device::kGatedPersistent) {
    if (persistent && B > 0) {
      project(0, T);
      const at::Tensor w_hh = weight_hh.contiguous();
      // The state each step's product reads, written by every block in turn.
      at::Tensor carries = at::empty({2, B, H}, options);
      GatedRecurrenceForward r;
      set_recurrence(r, n, input.scalar_type(), plan, reverse, w_hh, mask_c);
      r.x_gates = x_gates.data_ptr();
      r.h_bias = element_or_null(h_bias, 0);
      r.hx = h0.data_ptr();
      r.cx = element_or_null(c0, 0);
      r.reset_h = element_or_null(reset_h_c, 0);
      r.reset_c = element_or_null(reset_c_c, 0);
      r.output = output.data_ptr();
      r.cells = n.lstm() ? cells.data_ptr() : nullptr;
      r.saved = saved.data_ptr();
      r.carries = carries.data_ptr();
      Device::gated_persistent_forward(r);
      return results();
    }
  }

  // In the accumulation type: half types' gate pre-activations are not rounded
  // before the cell's nonlinearities, as the Elman loop's are not.
  at::Tensor h_gates = at::empty({B, GH}, options.dtype(at::toOpMathType(input.scalar_type())));
  // Two carries each, used in turn: a step never writes the state it reads.
  const at::Tensor carries_h[2] = {at::empty({B, H}, options), at::empty({B, H}, options)};
  const at::Tensor carries_c[2] = {n.lstm() ? at::empty({B, H}, options) : at::Tensor(),
                                   n.lstm() ? at::empty({B, H}, options) : at::Tensor()};

  GatedForwardStep s;
  s.cell = n.cell;
  s.dtype = input.scalar_type();
  s.batch = B;
  s.hidden = H;
  s.h_gates = h_gates.data_ptr();
  s.h_bias = h_bias.defined() ? h_bias.data_ptr() : nullptr;
  s.x_bias = bias_in_pass ? x_bias.data_ptr() : nullptr;
  s.reset_h = mask.has_value() ? reset_h_c.data_ptr() : nullptr;
  s.reset_c = mask.has_value() && n.lstm() ? reset_c_c.data_ptr() : nullptr;
  // The step product's weight: W_hhᵀ for ATen's product, or packed for the
  // pass's own where it takes it.
  bool product_in_step = false;
  at::Tensor w_hh_t;
  if constexpr (Device::kPassTakesProduct) {
    product_in_step = Device::gated_forward_product_in_step(s, T);
    if (product_in_step) w_hh_t = Device::gated_w_hh_t_panels(weight_hh);
  }
  if (!product_in_step) w_hh_t = Device::gated_w_hh_t(weight_hh, T);
  s.w_hh_t = product_in_step ? w_hh_t.data_ptr() : nullptr;
  // Step q reads the initial state, or step q − 1's carry.
  const auto h_prev_of = [&](int64_t q) -> const at::Tensor& {
    return q == 0 ? h0 : carries_h[(q - 1) % 2];
  };
  const auto fill_step = [&](int64_t q, int64_t t0, GatedForwardStep& step) {
    const int64_t t = reverse ? T - 1 - q : q;
    step.x_gates = element(x_gates, (t - t0) * B * GH);
    step.h_prev = h_prev_of(q).data_ptr();
    step.c_prev = !n.lstm() ? nullptr
                  : q == 0   ? c0.data_ptr()
                             : carries_c[(q - 1) % 2].data_ptr();
    step.h = element(output, t * B * H);
    step.c = n.lstm() ? element(cells, t * B * H) : nullptr;
    step.saved = element(saved, t * B * kSavedPerUnit * H);
    step.mask_t = element_or_null(mask_c, t * B);
    step.carry_h = carries_h[q % 2].data_ptr();
    step.carry_c = n.lstm() ? carries_c[q % 2].data_ptr() : nullptr;
  };
  // The steps [q0, q0 + steps) of one chunk, whose projection is in x_gates.
  const auto run = [&](int64_t q0, int64_t steps, int64_t t0) {
    if constexpr (Device::kPassTakesProduct) {
      if (product_in_step) {
        return Device::gated_forward_run(
            s, steps, [&](int64_t k, GatedForwardStep& step) { fill_step(q0 + k, t0, step); });
      }
    }
    for (int64_t q = q0; q < q0 + steps; ++q) {
      mm_into(h_gates, h_prev_of(q), w_hh_t);
      fill_step(q, t0, s);
      Device::gated_forward_step(s);
    }
  };
  for (int64_t q0 = 0; q0 < T; q0 += chunk) {
    const int64_t steps = std::min(chunk, T - q0);
    const int64_t t0 = chunk_first_time(T, q0, q0 + steps, reverse);
    project(t0, steps);
    if (B > 0) run(q0, steps, t0);
  }
  return results();
}

// Returns the gradients of input, weight_ih, weight_hh, bias_ih, bias_hh, hx,
// cx, reset_h and reset_c; those that do not exist (biases without bias, the
// GRU's c, resets without a mask) and those of input, weight_ih and weight_hh
// that output_mask leaves out are empty tensors.
template <typename Device>
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
           at::Tensor, at::Tensor>
gated_layer_backward(const at::Tensor& grad_output, const c10::optional<at::Tensor>& grad_h_n,
                     const c10::optional<at::Tensor>& grad_c_n,
                     const c10::optional<at::Tensor>& grad_cells, const at::Tensor& input,
                     const at::Tensor& weight_ih, const at::Tensor& weight_hh,
                     const at::Tensor& hx, const c10::optional<at::Tensor>& cx,
                     const c10::optional<at::Tensor>& mask,
                     const c10::optional<at::Tensor>& reset_h,
                     const c10::optional<at::Tensor>& reset_c, const at::Tensor& output,
                     const at::Tensor& cells, const at::Tensor& saved, c10::string_view cell,
                     bool reverse, bool has_bias, std::array<bool, 3> output_mask,
                     c10::string_view backend) {
  const GatedSizes n = check_gated_inputs(cell, input, weight_ih, weight_hh, c10::nullopt,
                                          c10::nullopt, hx, cx, mask, reset_h, reset_c);
  const c10::DeviceGuard device_guard(input.device());
  const Plan plan = gated_plan<Device>(n, input.scalar_type(), backend);
  const bool persistent = plan.path == Path::CudaPersistent;
  const int64_t T = n.steps, B = n.batch, H = n.hidden_size, GH = n.gates * n.hidden_size;
  check_like_input(grad_output, "grad_output", input, {T, B, H});
  check_like_input(output, "output", input, {T, B, H});
  check_like_input(saved, "saved", input, {T, B, kSavedPerUnit * H});
  if (n.lstm()) check_like_input(cells, "cells", input, {T, B, H});
  if (grad_h_n.has_value()) check_like_input(*grad_h_n, "grad_h_n", input, {B, H});
  if (grad_c_n.has_value() || grad_cells.has_value()) {
    TORCH_CHECK_VALUE(n.lstm(), "rnn_fused: a GRU has no cell state to take a gradient of");
  }
  if (grad_c_n.has_value()) check_like_input(*grad_c_n, "grad_c_n", input, {B, H});
  if (grad_cells.has_value()) check_like_input(*grad_cells, "grad_cells", input, {T, B, H});
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  const auto options = input.options();
  const auto acc_options = options.dtype(at::toOpMathType(input.scalar_type()));

  const at::Tensor mask_c = mask.has_value() ? mask->contiguous() : at::Tensor();
  const at::Tensor h_read = states_read<Device>(output, hx, mask, reset_h, reverse);
  const at::Tensor c_read =
      n.lstm() ? states_read<Device>(cells, *cx, mask, reset_c, reverse) : at::Tensor();
  const at::Tensor grad_out = grad_output.contiguous();
  const at::Tensor saved_c = saved.contiguous();
  const at::Tensor cells_c = cells.contiguous();
  const int64_t last = reverse ? 0 : T - 1;
  const at::Tensor grad_last =
      grad_h_n.has_value() ? grad_out[last] + *grad_h_n : at::Tensor();
  const at::Tensor grad_cells_c = grad_cells.has_value() ? grad_cells->contiguous() : at::Tensor();
  // The step kernels read c_t's own gradient at every step: zeros where none
  // is given (the one-launch kernel takes none as zeros).
  const at::Tensor no_grad_c = n.lstm() && !grad_cells.has_value() && !persistent
                                   ? at::zeros({B, H}, options)
                                   : at::Tensor();
  at::Tensor grad_c_last;
  if (grad_c_n.has_value()) {
    grad_c_last = grad_cells.has_value() ? grad_cells_c[last] + *grad_c_n : grad_c_n->contiguous();
  }

  const auto none = [&] { return at::empty({0}, options); };
  // The gate gradients a chunk of steps at a time (Device::gated_chunk_steps):
  // grad_input and the weight and bias gradients take each chunk's share.
  const int64_t chunk = persistent ? T : Device::gated_chunk_steps(T, B, GH);
  at::Tensor grad_x_gates = at::empty({chunk, B, GH}, options);
  at::Tensor grad_h_gates = n.lstm() ? grad_x_gates : at::empty({chunk, B, GH}, options);
  const at::Tensor x2d =
      output_mask[1] ? input.contiguous().view({T * B, n.input_size}) : at::Tensor();
  const at::Tensor h_read_2d = h_read.view({T * B, H});
  at::Tensor grad_input = output_mask[0] ? at::empty({T, B, n.input_size}, options) : none();
  at::Tensor grad_weight_ih = output_mask[1] ? at::empty({GH, n.input_size}, options) : none();
  at::Tensor grad_weight_hh = output_mask[2] ? at::empty({GH, H}, options) : none();
  at::Tensor grad_bias_ih = has_bias ? at::empty({GH}, options) : none();
  at::Tensor grad_bias_hh = has_bias && !n.lstm() ? at::empty({GH}, options) : none();
  at::Tensor no_bias;
  // The first chunk processed writes the sums, the others add to them.
  const auto add_chunk_gradients = [&](int64_t t0, int64_t steps, bool first) {
    const at::Tensor gx = grad_x_gates.narrow(0, 0, steps).view({steps * B, GH});
    const at::Tensor gh = grad_h_gates.narrow(0, 0, steps).view({steps * B, GH});
    const auto product_into = [&](at::Tensor& sum, const at::Tensor& a, const at::Tensor& b) {
      if (first) {
        at::mm_out(sum, a, b);
      } else {
        sum.addmm_(a, b);
      }
    };
    const auto rows_into = [&](at::Tensor& sum, const at::Tensor& g) {
      if (first) {
        at::sum_out(sum, g, 0);
      } else {
        sum.add_(g.sum(0));
      }
    };
    if (output_mask[0]) {
      at::Tensor rows = grad_input.view({T * B, n.input_size}).narrow(0, t0 * B, steps * B);
      at::mm_out(rows, gx, weight_ih);
    }
    if (output_mask[1]) {
      // The input's bias gradient comes with W_ih's, from one pass where it can.
      add_input_weight_grads<Device>(gx, x2d.narrow(0, t0 * B, steps * B), grad_weight_ih,
                                     has_bias ? grad_bias_ih : no_bias, !first);
    } else if (has_bias) {
      rows_into(grad_bias_ih, gx);
    }
    if (output_mask[2]) {
      product_into(grad_weight_hh, gh.t(), h_read_2d.narrow(0, t0 * B, steps * B));
    }
    if (has_bias && !n.lstm()) rows_into(grad_bias_hh, gh);
  };
  at::Tensor grad_reset_h = mask.has_value() ? at::zeros({B, H}, acc_options) : at::Tensor();
  at::Tensor grad_reset_c =
      mask.has_value() && n.lstm() ? at::zeros({B, H}, acc_options) : at::Tensor();
  const auto results = [&](const at::Tensor& grad_hx, const at::Tensor& grad_cx) {
    return std::make_tuple(
        grad_input, grad_weight_ih, grad_weight_hh, grad_bias_ih,
        // The LSTM's two biases have one gradient.
        has_bias && n.lstm() ? grad_bias_ih.clone() : grad_bias_hh, grad_hx,
        n.lstm() ? grad_cx : none(),
        mask.has_value() ? grad_reset_h.to(input.scalar_type()) : none(),
        mask.has_value() && n.lstm() ? grad_reset_c.to(input.scalar_type()) : none());
  };

  if constexpr (Device::kGatedPersistent) {
    if (persistent && B > 0) {
      const at::Tensor w_hh = weight_hh.contiguous();
      at::Tensor grad_h_first = at::empty({B, H}, options);
      at::Tensor grad_c_first = n.lstm() ? at::empty({B, H}, options) : at::Tensor();
      GatedRecurrenceBackward r;
      set_recurrence(r, n, input.scalar_type(), plan, reverse, w_hh, mask_c);
      r.grad_output = grad_out.data_ptr();
      r.grad_last_h = element_or_null(grad_last, 0);
      r.grad_cells = element_or_null(grad_cells_c, 0);
      r.grad_last_c = element_or_null(grad_c_last, 0);
      r.saved = saved_c.data_ptr();
      r.cells = n.lstm() ? cells_c.data_ptr() : nullptr;
      r.h_read = h_read.data_ptr();
      r.c_read = element_or_null(c_read, 0);
      r.grad_x_gates = grad_x_gates.data_ptr();
      r.grad_h_gates = grad_h_gates.data_ptr();
      r.grad_h_first = grad_h_first.data_ptr();
      r.grad_c_first = n.lstm() ? grad_c_first.data_ptr() : nullptr;
      r.grad_reset_h = mask.has_value() ? grad_reset_h.data_ptr() : nullptr;
      r.grad_reset_c = mask.has_value() && n.lstm() ? grad_reset_c.data_ptr() : nullptr;
      Device::gated_persistent_backward(r);
      add_chunk_gradients(0, T, /*first=*/true);
      // h_0's gradient: through W_hh from the first processed step's gates, plus
      // the share that bypassed it.
      const int64_t first = reverse ? T - 1 : 0;
      return results(at::addmm(grad_h_first, grad_h_gates[first], w_hh), grad_c_first);
    }
  }

  // The carried gradients in two buffers each, used in turn: a step reads one
  // and writes the other.
  at::Tensor carries_grad_h[2] = {at::zeros({B, H}, options), at::empty({B, H}, options)};
  const at::Tensor carries_grad_c[2] = {n.lstm() ? at::zeros({B, H}, options) : at::Tensor(),
                                        n.lstm() ? at::empty({B, H}, options) : at::Tensor()};

  GatedBackwardStep s;
  s.cell = n.cell;
  s.dtype = input.scalar_type();
  s.batch = B;
  s.hidden = H;
  s.grad_reset_h = mask.has_value() ? grad_reset_h.data_ptr() : nullptr;
  s.grad_reset_c = mask.has_value() && n.lstm() ? grad_reset_c.data_ptr() : nullptr;
  s.w_hh = nullptr;
  bool product_in_step = false;
  at::Tensor w_hh;  // holds what s.w_hh points to
  if constexpr (Device::kPassTakesProduct) {
    product_in_step = Device::gated_product_in_step(s);
    if (product_in_step) w_hh = Device::gated_w_hh_for_pass(weight_hh, T, s);
  }
  // The carried gradients of step q: it reads buffer `in` and writes `out`.
  const auto carry_in = [&](int64_t q) { return (T - 1 - q) % 2; };
  const auto fill_step = [&](int64_t q, int64_t t0, GatedBackwardStep& step) {
    const int64_t t = reverse ? T - 1 - q : q;
    step.grad_h = q == T - 1 && grad_last.defined() ? grad_last.data_ptr()
                                                    : element(grad_out, t * B * H);
    step.grad_c = q == T - 1 && grad_c_last.defined() ? grad_c_last.data_ptr()
                  : grad_cells_c.defined()               ? element(grad_cells_c, t * B * H)
                  : n.lstm()                             ? no_grad_c.data_ptr()
                                                         : nullptr;
    step.mask_t = element_or_null(mask_c, t * B);
    step.saved = element(saved_c, t * B * kSavedPerUnit * H);
    step.c = n.lstm() ? element(cells_c, t * B * H) : nullptr;
    step.h_prev = element(h_read, t * B * H);
    step.c_prev = n.lstm() ? element(c_read, t * B * H) : nullptr;
    step.grad_x_gates = element(grad_x_gates, (t - t0) * B * GH);
    step.grad_h_gates = element(grad_h_gates, (t - t0) * B * GH);
    const int64_t in = carry_in(q), out = 1 - in;
    step.carry_grad_h = carries_grad_h[in].data_ptr();
    step.grad_h_prev = carries_grad_h[out].data_ptr();
    step.carry_grad_c = n.lstm() ? carries_grad_c[in].data_ptr() : nullptr;
    step.grad_c_prev = n.lstm() ? carries_grad_c[out].data_ptr() : nullptr;
  };
  // The steps q_hi down to q_lo of one chunk, whose gate gradients go to
  // grad_x_gates and grad_h_gates from time t0 on.
  const auto run = [&](int64_t q_hi, int64_t q_lo, int64_t t0) {
    if constexpr (Device::kPassTakesProduct) {
      if (product_in_step) {
        return Device::gated_backward_run(
            s, q_hi - q_lo + 1,
            [&](int64_t k, GatedBackwardStep& step) { fill_step(q_hi - k, t0, step); });
      }
    }
    for (int64_t q = q_hi; q >= q_lo; --q) {
      const int64_t t = reverse ? T - 1 - q : q;
      fill_step(q, t0, s);
      Device::gated_backward_step(s);
      // The gradient of the state this step read: through W_hh, plus (GRU) the
      // share that bypasses it, which the pass wrote there (added in place).
      at::Tensor& grad_h_prev = carries_grad_h[1 - carry_in(q)];
      if (n.lstm()) {
        at::mm_out(grad_h_prev, grad_h_gates[t - t0], weight_hh);
      } else {
        at::addmm_out(grad_h_prev, grad_h_prev, grad_h_gates[t - t0], weight_hh);
      }
    }
  };
  // Chunks start at multiples of `chunk` in processing order, as in the forward.
  for (int64_t q_hi = T - 1; q_hi >= 0;) {
    const int64_t q_lo = q_hi - q_hi % chunk;
    const int64_t t0 = chunk_first_time(T, q_lo, q_hi + 1, reverse);
    if (B > 0) run(q_hi, q_lo, t0);
    add_chunk_gradients(t0, q_hi - q_lo + 1, /*first=*/q_hi == T - 1);
    q_hi = q_lo - 1;
  }

  return results(carries_grad_h[T % 2], carries_grad_c[T % 2]);
}

}  // namespace rnn_fused
