// The per-step loop, one family on each device: per step one product with W_hh
// (ATen: cuBLAS or the CPU's BLAS) and one fused pointwise pass of the cell
// (Steps::forward_step / backward_step); where Steps::kPassTakesProduct says
// so, the pass takes the product too, a run of steps per call. Around it, the
// products that are parallel over time (the input projection, the weight
// gradients), a chunk of steps at a time (Steps::chunk_steps). Written once for
// every cell and device: each device's Steps instantiates it
// (cpu/per_step.cpp, cuda/per_step/family.cpp). An LSTM that projects h
// (weight_hr) runs here too: the pass writes the unprojected o ⊙ tanh(c), and
// the loop projects it and carries the projected h itself, by ATen ops.
#pragma once

#include <algorithm>

#include <ATen/OpMathType.h>
#include <ATen/TensorOperators.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>

#include "../ops/input_products.h"
#include "../ops/product_into.h"
#include "../ops/weight_grads.h"
#include "params.h"
#include "step.h"

namespace rnn_fused {

inline char* element(const at::Tensor& t, int64_t offset) {
  return static_cast<char*>(t.data_ptr()) + offset * t.element_size();
}

inline void* element_or_null(const at::Tensor& t, int64_t offset) {
  return t.defined() ? element(t, offset) : nullptr;
}

// The reset state (or its gradient) for the carry of time t: its one [B, ·]
// block, or block t where reset states are given per step; null without one.
inline void* reset_at(const at::Tensor& reset, bool per_step, int64_t t) {
  if (!reset.defined()) return nullptr;
  return element(reset, per_step ? t * reset.size(1) * reset.size(2) : 0);
}

// The first time of the processed steps [q_begin, q_end): one contiguous range
// of times in either direction.
inline int64_t chunk_first_time(int64_t T, int64_t q_begin, int64_t q_end, bool reverse) {
  return reverse ? T - q_end : q_begin;
}

template <typename Steps>
struct PerStepLoop {
  static ForwardResult forward(const ForwardParams& p);
  static void backward(const BackwardParams& p, Gradients& g);
};

template <typename Steps>
ForwardResult PerStepLoop<Steps>::forward(const ForwardParams& p) {
  const CellInfo& cell = info(p.cell);
  const int64_t T = p.steps, B = p.batch, H = p.hidden, GH = p.gates() * p.hidden;
  const int64_t P = p.output_size;
  const bool projects = p.projects();
  const bool per_step_resets = p.resets_per_step();
  const auto options = p.input.options();
  // A one-gate cell writes h_t over its own projection; the LSTM's saved gates
  // (4 per unit, as its pre-activations) overwrite it likewise: each unit of a
  // step reads its pre-activations before it writes. Both keep the projection
  // whole; the GRU projects a chunk of steps at a time into one reused buffer.
  const bool whole = cell.gates == 1 || cell.cell_state;
  const int64_t chunk = whole ? T : Steps::chunk_steps(T, B, GH);
  at::Tensor x_gates = at::empty({chunk, B, GH}, options);
  ForwardResult r;
  r.output = cell.gates == 1 ? x_gates : at::empty({T, B, P}, options);
  r.cells = cell.cell_state ? at::empty({T, B, H}, options) : at::empty({0}, options);
  r.saved = cell.saved == 0       ? at::empty({0}, options)
            : cell.cell_state     ? x_gates.view({T, B, cell.saved * H})
                                  : at::empty({T, B, cell.saved * H}, options);
  // Where the device's pass adds the bias, the projection is a plain product.
  const bool bias_in_pass = Steps::kPassAddsInputBias && p.x_bias.defined();
  const auto project = [&](int64_t t0, int64_t steps) {
    at::Tensor out = x_gates.narrow(0, 0, steps).view({steps * B, GH});
    project_input(out, p.input.narrow(0, t0 * B, steps * B), p.weight_ih,
                  bias_in_pass ? at::Tensor() : p.x_bias);
  };
  if (B == 0) {
    project(0, T);
    return r;
  }

  // In the accumulation type: half types' gate pre-activations are not rounded
  // before the cell's nonlinearities.
  at::Tensor h_gates = at::empty({B, GH}, options.dtype(at::toOpMathType(options.dtype().toScalarType())));
  // Two carries each, used in turn: a step never writes the state it reads.
  const at::Tensor carries_h[2] = {at::empty({B, P}, options), at::empty({B, P}, options)};
  // With a projection, the pass's h and h-carry: unprojected, H wide; the
  // carry is the loop's, so the pass's goes to a buffer nobody reads.
  const at::Tensor unprojected = projects ? at::empty({B, H}, options) : at::Tensor();
  const at::Tensor unread_carry = projects ? at::empty({B, H}, options) : at::Tensor();
  const at::Tensor carries_c[2] = {cell.cell_state ? at::empty({B, H}, options) : at::Tensor(),
                                   cell.cell_state ? at::empty({B, H}, options) : at::Tensor()};

  ForwardStep s;
  s.cell = p.cell;
  s.dtype = options.dtype().toScalarType();
  s.batch = B;
  s.hidden = H;
  s.h_gates = h_gates.data_ptr();
  s.h_bias = element_or_null(p.h_bias, 0);
  s.x_bias = bias_in_pass ? p.x_bias.data_ptr() : nullptr;
  // The step product's weight: W_hhᵀ for ATen's product, or packed for the
  // pass's own where it takes it.
  bool product_in_step = false;
  at::Tensor w_hh_t;
  if constexpr (Steps::kPassTakesProduct) {
    product_in_step = !projects && Steps::forward_product_in_step(s, T);
    if (product_in_step) w_hh_t = Steps::w_hh_t_panels(p.w_hh);
  }
  if (!product_in_step) w_hh_t = Steps::w_hh_t(p.w_hh, T);
  s.w_hh_t = product_in_step ? w_hh_t.data_ptr() : nullptr;
  // Step q reads the initial state, or step q − 1's carry.
  const auto h_prev_of = [&](int64_t q) -> const at::Tensor& {
    return q == 0 ? p.hx : carries_h[(q - 1) % 2];
  };
  const auto fill_step = [&](int64_t q, int64_t t0, ForwardStep& step) {
    const int64_t t = p.reverse ? T - 1 - q : q;
    step.x_gates = element(x_gates, (t - t0) * B * GH);
    step.c_prev = !cell.cell_state ? nullptr
                  : q == 0         ? p.cx.data_ptr()
                                   : carries_c[(q - 1) % 2].data_ptr();
    // The LSTM's pass loads h_prev without using it: H wide rows where h is P wide.
    step.h_prev = projects ? step.c_prev : h_prev_of(q).data_ptr();
    step.h = projects ? unprojected.data_ptr() : element(r.output, t * B * H);
    step.c = cell.cell_state ? element(r.cells, t * B * H) : nullptr;
    step.saved = cell.saved > 0 ? element(r.saved, t * B * cell.saved * H) : nullptr;
    step.mask_t = element_or_null(p.mask, t * B);
    // The pass blends its unread h-carry with any [B, H] rows where it projects.
    step.reset_h = reset_at(projects ? p.reset_c : p.reset_h, per_step_resets, t);
    step.reset_c = reset_at(p.reset_c, per_step_resets, t);
    step.carry_h = projects ? unread_carry.data_ptr() : carries_h[q % 2].data_ptr();
    step.carry_c = cell.cell_state ? carries_c[q % 2].data_ptr() : nullptr;
  };
  // The steps [q0, q0 + steps) of one chunk, whose projection is in x_gates.
  const auto run = [&](int64_t q0, int64_t steps, int64_t t0) {
    if constexpr (Steps::kPassTakesProduct) {
      if (product_in_step) {
        return Steps::forward_run(
            s, steps, [&](int64_t k, ForwardStep& step) { fill_step(q0 + k, t0, step); });
      }
    }
    for (int64_t q = q0; q < q0 + steps; ++q) {
      mm_into(h_gates, h_prev_of(q), w_hh_t);
      fill_step(q, t0, s);
      Steps::forward_step(s);
      if (projects) {
        const int64_t t = p.reverse ? T - 1 - q : q;
        at::Tensor h = r.output[t];
        at::mm_out(h, unprojected, p.weight_hr.t());
        if (q + 1 < T) {
          const int64_t next = p.reverse ? t - 1 : t + 1;
          carries_h[q % 2].copy_(
              states_read(r.output, p.hx, p.mask, p.reset_h, p.reverse, next, 1)[0]);
        }
      }
    }
  };
  for (int64_t q0 = 0; q0 < T; q0 += chunk) {
    const int64_t steps = std::min(chunk, T - q0);
    const int64_t t0 = chunk_first_time(T, q0, q0 + steps, p.reverse);
    project(t0, steps);
    run(q0, steps, t0);
  }
  return r;
}

template <typename Steps>
void PerStepLoop<Steps>::backward(const BackwardParams& p, Gradients& g) {
  const CellInfo& cell = info(p.cell);
  const int64_t T = p.steps, B = p.batch, H = p.hidden, GH = p.gates() * p.hidden;
  const int64_t P = p.output_size;
  const bool projects = p.projects();
  const bool per_step_resets = p.resets_per_step();
  const auto options = p.output.options();
  const auto acc_options = options.dtype(at::toOpMathType(options.dtype().toScalarType()));

  // The states the steps read, where the cell's backward reads them (the GRU's
  // h, the LSTM's c); W_hh's gradient rebuilds h's from the outputs otherwise.
  const at::Tensor h_read = cell.reads_prev_state
                                ? states_read(p.output, p.hx, p.mask, p.reset_h, p.reverse, 0, T)
                                : at::Tensor();
  const at::Tensor c_read = cell.cell_state
                                ? states_read(p.cells, p.cx, p.mask, p.reset_c, p.reverse, 0, T)
                                : at::Tensor();
  // c_t's own gradient at every step, zeros where none is given.
  const at::Tensor no_grad_c =
      cell.cell_state && !p.grad_cells.defined() ? at::zeros({B, H}, options) : at::Tensor();
  // The gate gradients a chunk of steps at a time: grad_input and the weight
  // and bias gradients take each chunk's share.
  const int64_t chunk = Steps::chunk_steps(T, B, GH);
  at::Tensor grad_x_gates = at::empty({chunk, B, GH}, options);
  at::Tensor grad_h_gates =
      cell.separate_hidden_grad ? at::empty({chunk, B, GH}, options) : grad_x_gates;

  // The gradients carried between steps, in the accumulation type, two buffers
  // each, used in turn: a step reads one and writes the other. products: the
  // next step's gates' gradient times W_hh; bypass (GRU): the share of h's
  // gradient that goes around W_hh.
  at::Tensor products[2] = {at::zeros({B, P}, acc_options), at::empty({B, P}, acc_options)};
  const at::Tensor bypass[2] = {
      cell.separate_hidden_grad ? at::zeros({B, H}, acc_options) : at::Tensor(),
      cell.separate_hidden_grad ? at::empty({B, H}, acc_options) : at::Tensor()};
  const at::Tensor grad_c_carries[2] = {
      cell.cell_state ? at::zeros({B, H}, acc_options) : at::Tensor(),
      cell.cell_state ? at::empty({B, H}, acc_options) : at::Tensor()};
  // With a projection the loop gathers the gradient reaching each step's h,
  // [T, B, P] (W_hr's gradient takes them all at the end), and hands the pass
  // its image through W_hr as the output's gradient, with nothing carried: the
  // pass's h-side carry and reset gradient are zeros and a buffer nobody reads.
  // In the input's dtype, as the pass reads grad_h: the CPU's float32 and
  // float64 accumulate in it anyway.
  const at::Tensor grad_projected = projects ? at::empty({T, B, P}, options) : at::Tensor();
  at::Tensor grad_unprojected = projects ? at::empty({B, H}, options) : at::Tensor();
  const at::Tensor no_carry = projects ? at::zeros({B, H}, acc_options) : at::Tensor();
  const at::Tensor unread_reset = projects && p.mask.defined() ? at::empty({B, H}, acc_options)
                                                              : at::Tensor();
  const at::Tensor mask_column = projects && p.mask.defined()
                                     ? p.mask.to(acc_options.dtype()).unsqueeze(-1)
                                     : at::Tensor();

  BackwardStep s;
  s.cell = p.cell;
  s.dtype = options.dtype().toScalarType();
  s.batch = B;
  s.hidden = H;
  s.w_hh = nullptr;
  bool product_in_step = false;
  at::Tensor w_hh;  // holds what s.w_hh points to
  if constexpr (Steps::kPassTakesProduct) {
    product_in_step = B > 0 && !projects && Steps::backward_product_in_step(s);
    if (product_in_step) w_hh = Steps::w_hh_for_pass(p.w_hh, T, s);
  }
  // Step q reads the carried gradients in buffer `in` and writes `out`.
  const auto carry_in = [&](int64_t q) { return (T - 1 - q) % 2; };
  const auto fill_step = [&](int64_t q, int64_t t0, BackwardStep& step) {
    const int64_t t = p.reverse ? T - 1 - q : q;
    const bool last = q == T - 1;
    step.grad_h = projects                            ? grad_unprojected.data_ptr()
                  : last && p.grad_last_h.defined()   ? p.grad_last_h.data_ptr()
                                                      : element(p.grad_output, t * B * H);
    step.grad_c = !cell.cell_state                    ? nullptr
                  : last && p.grad_last_c.defined()   ? p.grad_last_c.data_ptr()
                  : p.grad_cells.defined()            ? element(p.grad_cells, t * B * H)
                                                      : no_grad_c.data_ptr();
    step.mask_t = element_or_null(p.mask, t * B);
    step.grad_reset_h = projects ? element_or_null(unread_reset, 0)
                                 : reset_at(g.reset_h, per_step_resets, t);
    step.grad_reset_c = reset_at(g.reset_c, per_step_resets, t);
    step.saved = cell.saved > 0 ? element(p.saved, t * B * cell.saved * H) : nullptr;
    step.c = cell.cell_state ? element(p.cells, t * B * H) : nullptr;
    // The LSTM's pass loads h without using it: H wide rows where h is P wide.
    step.h = projects ? step.c : element(p.output, t * B * H);
    step.h_prev = element_or_null(h_read, t * B * H);
    step.c_prev = element_or_null(c_read, t * B * H);
    step.grad_x_gates = element(grad_x_gates, (t - t0) * B * GH);
    step.grad_h_gates = element(grad_h_gates, (t - t0) * B * GH);
    const int64_t in = carry_in(q), out = 1 - in;
    step.carry_grad_h = projects ? no_carry.data_ptr() : products[in].data_ptr();
    // The pass that takes the product adds it to the bypass in one buffer.
    step.carry_bypass_h = product_in_step ? nullptr : element_or_null(bypass[in], 0);
    step.grad_h_prev = product_in_step ? products[out].data_ptr()
                                       : element_or_null(bypass[out], 0);
    step.carry_grad_c = element_or_null(grad_c_carries[in], 0);
    step.grad_c_prev = element_or_null(grad_c_carries[out], 0);
  };
  // The steps q_hi down to q_lo of one chunk, whose gate gradients go to
  // grad_x_gates and grad_h_gates from time t0 on.
  const auto run = [&](int64_t q_hi, int64_t q_lo, int64_t t0) {
    if constexpr (Steps::kPassTakesProduct) {
      if (product_in_step) {
        return Steps::backward_run(
            s, q_hi - q_lo + 1,
            [&](int64_t k, BackwardStep& step) { fill_step(q_hi - k, t0, step); });
      }
    }
    for (int64_t q = q_hi; q >= q_lo; --q) {
      const int64_t t = p.reverse ? T - 1 - q : q;
      if (projects) {
        // h_t's gradient: the output's (h_n's too at the last step) plus what
        // the next step passed back through the carry m_t·h_t + (1 − m_t)·reset.
        at::Tensor grad_h = grad_projected[t];
        const at::Tensor& carried = products[carry_in(q)];
        grad_h.copy_(q == T - 1 && p.grad_last_h.defined() ? p.grad_last_h : p.grad_output[t]);
        if (p.mask.defined()) {
          grad_h.addcmul_(carried, mask_column[t]);
          (per_step_resets ? g.reset_h[t] : g.reset_h).addcmul_(carried, 1 - mask_column[t]);
        } else {
          grad_h.add_(carried);
        }
        mm_into(grad_unprojected, grad_h, p.weight_hr);
      }
      fill_step(q, t0, s);
      Steps::backward_step(s);
      // The gradient of the state this step read, through W_hh.
      mm_into(products[1 - carry_in(q)], grad_h_gates[t - t0], p.w_hh);
    }
  };
  // Chunks start at multiples of `chunk` in processing order, as in the forward.
  for (int64_t q_hi = T - 1; q_hi >= 0;) {
    const int64_t q_lo = q_hi - q_hi % chunk;
    const int64_t t0 = chunk_first_time(T, q_lo, q_hi + 1, p.reverse);
    const int64_t steps = q_hi - q_lo + 1;
    if (B > 0) run(q_hi, q_lo, t0);
    add_chunk_gradients(p, g, grad_x_gates.narrow(0, 0, steps).view({steps * B, GH}),
                        grad_h_gates.narrow(0, 0, steps).view({steps * B, GH}), t0, steps,
                        /*first=*/q_hi == T - 1, h_read);
    q_hi = q_lo - 1;
  }
  // h_0's and c_0's: what the first processed step passed back.
  const at::Tensor& product = products[T % 2];
  g.hx = (cell.separate_hidden_grad && !product_in_step ? product + bypass[T % 2] : product)
             .to(options.dtype());
  if (cell.cell_state) g.cx = grad_c_carries[T % 2].to(options.dtype());
  if (projects) {
    // Σ_t grad h_tᵀ · (o_t ⊙ tanh(c_t)), from the saved o gate (LstmCell's saved
    // [B, 4, H] per step) and c_t.
    const at::Tensor o = p.saved.view({T * B, 4, H}).select(1, 3);
    at::mm_out(g.weight_hr, grad_projected.view({T * B, P}).t(),
               o * p.cells.view({T * B, H}).tanh());
  }
}

}  // namespace rnn_fused
