#include "double_backward.h"

#include <vector>

#include <ATen/TensorOperators.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/linear.h>
#include <ATen/ops/stack.h>
#include <torch/csrc/autograd/autograd.h>

#include "tensor_value.h"

namespace rnn_fused {
namespace {

struct RecomputedLayer {
  at::Tensor output, h_n, c_n, cells;
};

// The layer's forward in ATen ops, one step at a time, with the kernels'
// semantics: after step t the next step reads m_t·state_t + (1 − m_t)·reset.
RecomputedLayer recomputed_forward(const LayerArguments& a, Cell cell, bool reverse) {
  return dispatch_cell<TensorGateMath>(cell, [&](auto functor) {
    using Functor = decltype(functor);
    constexpr int G = Functor::kGates;
    const int64_t T = a.input.size(0);
    const OptionalTensor bias_ih = defined_or_none(a.bias_ih);
    const OptionalTensor bias_hh = defined_or_none(a.bias_hh);
    // The step templates take x + b_ih and h W_hhᵀ + b_hh gate by gate, and
    // a GRU's b_hn apart, here inside the hidden side's product (so 0).
    const std::vector<at::Tensor> projections = at::linear(a.input, a.weight_ih, bias_ih).unbind(0);
    const std::vector<at::Tensor> masks =
        a.mask.defined() ? a.mask.unsqueeze(-1).unbind(0) : std::vector<at::Tensor>();
    std::vector<at::Tensor> output(T), cells(Functor::kHasCellState ? T : 0);
    at::Tensor h = a.hx, c = a.cx, h_t, c_t;
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = reverse ? T - 1 - s : s;
      const std::vector<at::Tensor> x_gates = projections[t].chunk(G, -1);
      const std::vector<at::Tensor> h_gates = at::linear(h, a.weight_hh, bias_hh).chunk(G, -1);
      TensorValue x[G], hidden[G], saved[4], c_new;
      for (int g = 0; g < G; ++g) {
        x[g] = x_gates[g];
        hidden[g] = h_gates[g];
      }
      const TensorValue c_prev = c.defined() ? TensorValue(c) : TensorValue(0.0);
      h_t = functor.template forward<TensorValue, TensorValue, TensorValue>(
                       x, hidden, /*stride=*/1, TensorValue(0.0), TensorValue(h), c_prev, c_new,
                       saved)
                .tensor();
      if (a.weight_hr.defined()) h_t = at::linear(h_t, a.weight_hr);
      output[t] = h_t;
      if (Functor::kHasCellState) cells[t] = c_t = c_new.tensor();
      h = h_t;
      c = c_t;
      if (a.mask.defined()) {
        const at::Tensor& m = masks[t];
        // Reset states per step [T, B, ·] reset step t's carry with their block t.
        const bool per_step = a.reset_h.dim() == 3;
        const at::Tensor reset_h = per_step ? a.reset_h[t] : a.reset_h;
        h = reset_h + m * (h_t - reset_h);
        if (Functor::kHasCellState) {
          const at::Tensor reset_c = per_step ? a.reset_c[t] : a.reset_c;
          c = reset_c + m * (c_t - reset_c);
        }
      }
    }
    return RecomputedLayer{at::stack(output), h_t, c_t,
                           Functor::kHasCellState ? at::stack(cells) : at::Tensor()};
  });
}

}  // namespace

LayerGradients differentiable_layer_backward(const LayerArguments& args, Cell cell,
                                             bool reverse,
                                             const std::array<at::Tensor, 4>& grad_outputs,
                                             const std::array<bool, 10>& wanted) {
  const RecomputedLayer layer = recomputed_forward(args, cell, reverse);
  const at::Tensor recomputed[4] = {layer.output, layer.h_n, layer.c_n, layer.cells};
  std::vector<at::Tensor> outputs, grads;
  for (int k = 0; k < 4; ++k) {
    if (grad_outputs[k].defined() && recomputed[k].defined()) {
      outputs.push_back(recomputed[k]);
      grads.push_back(grad_outputs[k]);
    }
  }
  const at::Tensor arguments[10] = {args.input,   args.weight_ih, args.weight_hh, args.bias_ih,
                                    args.bias_hh, args.hx,        args.cx,        args.reset_h,
                                    args.reset_c, args.weight_hr};
  std::vector<at::Tensor> inputs;
  std::vector<int> positions;
  for (int k = 0; k < 10; ++k) {
    if (wanted[k] && arguments[k].defined() && arguments[k].requires_grad()) {
      inputs.push_back(arguments[k]);
      positions.push_back(k);
    }
  }
  std::array<at::Tensor, 10> result;
  if (!outputs.empty() && !inputs.empty()) {
    const std::vector<at::Tensor> found =
        torch::autograd::grad(outputs, inputs, grads, /*retain_graph=*/true,
                              /*create_graph=*/true, /*allow_unused=*/true);
    for (size_t k = 0; k < found.size(); ++k) result[positions[k]] = found[k];
  }
  return {result[0], result[1], result[2], result[3], result[4],
          result[5], result[6], result[7], result[8], result[9]};
}

}  // namespace rnn_fused
