// One layer in one direction, as every kernel family takes it: built once by
// the layer op (ops/layer.cpp) from its checked arguments, then mapped to each
// kernel's own arguments by the family that runs it. Time-major; every tensor
// contiguous and of the input's dtype unless said. "Processing order" is
// t = 0..T-1, or T-1..0 when `reverse`.
#pragma once

#include <array>
#include <cstdint>

#include <ATen/core/Tensor.h>

#include "../cells/registry.h"
#include "plan.h"

namespace rnn_fused {

struct LayerSizes {
  Cell cell;
  int64_t steps, batch, input_size, hidden;
  // h's width P: the LSTM's proj_size where it projects h, else hidden.
  int64_t output_size;
  int64_t gates() const { return info(cell).gates; }
  bool projects() const { return output_size != hidden; }
};

struct LayerParams : LayerSizes {
  bool reverse;
  Plan plan;
  at::Tensor input;      // [T·B, D]
  at::Tensor weight_ih;  // [G·H, D]
  at::Tensor w_hh;       // [G·H, P]
  // [P, H] where the LSTM projects h: h_t = W_hr (o_t ⊙ tanh(c_t)); else undefined.
  at::Tensor weight_hr;
  at::Tensor hx, cx;     // [B, P] and [B, H]; cx with a cell state only
  // [T, B] or undefined: after step t the next step receives
  // mask[t]·state_t + (1 − mask[t])·reset, or reset[t] where given per step.
  at::Tensor mask;
  // [B, P] and [B, H], with a mask; or per step, [T, B, P] and [T, B, H]
  // (kResetsPerStep), indexed by the time of the step whose carry they reset.
  at::Tensor reset_h, reset_c;
  // Reset states count only with a mask; without one they are checked, not read.
  bool resets_per_step() const {
    return mask.defined() && reset_h.defined() && reset_h.dim() == 3;
  }
};

// The forward's bias terms: x_bias [G·H] rides with the input projection (both
// biases, except the GRU's b_hn); h_bias [H] is that b_hn (zeros without bias).
// Undefined where absent.
struct ForwardParams : LayerParams {
  at::Tensor x_bias, h_bias;
};

// What a forward leaves for the caller and the backward: h_t [T, B, P] and
// (with a cell state) c_t [T, B, H] for every step, and the cell's saved values
// [T, B, saved·H] (empty where the cell saves nothing).
struct ForwardResult {
  at::Tensor output, cells, saved;
};

struct BackwardParams : LayerParams {
  at::Tensor output, cells, saved;  // the forward's
  at::Tensor grad_output;           // [T, B, P]
  // [B, P] and [B, H] or undefined: where given, the whole gradient of the last
  // processed h_t and c_t (the output's there plus h_n's; c_n's plus c_t's own).
  at::Tensor grad_last_h, grad_last_c;
  at::Tensor grad_cells;  // [T, B, H] or undefined: c_t's own gradients
  bool has_bias;
  // Whether the gradients of input, weight_ih and weight_hh are wanted: each
  // is one large product, skipped where nobody needs it.
  std::array<bool, 3> wanted;
};

// The gradients: undefined where wanted leaves them out, the cell has no such
// state or there is no mask. The reset states' are in the accumulation type.
struct Gradients {
  at::Tensor input, weight_ih, weight_hh, bias_ih, bias_hh, hx, cx, reset_h, reset_c, weight_hr;
};

}  // namespace rnn_fused
