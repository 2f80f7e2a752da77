// Typed handles on the layer ops, for kernels that call them through the
// dispatcher (autograd, autocast), and the autograd kernels' helpers.
#pragma once

#include <array>
#include <initializer_list>
#include <tuple>
#include <vector>

#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/grad_mode.h>
#include <c10/util/Optional.h>

namespace rnn_fused {

using OptionalTensor = c10::optional<at::Tensor>;

// (output, h_n, c_n, cells, saved): h_t for every step; copies of the last
// processed h_t and c_t; c_t for every step and the cell's saved values, which
// the backward reads. Empty where the cell has no cell state or saves nothing.
using LayerOutputs = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

using LayerForwardSignature =
    LayerOutputs(const at::Tensor&, const at::Tensor&, const at::Tensor&, const OptionalTensor&,
                 const OptionalTensor&, const at::Tensor&, const OptionalTensor&,
                 const OptionalTensor&, const OptionalTensor&, const OptionalTensor&,
                 c10::string_view, bool, c10::string_view, const OptionalTensor&);

// The gradients of input, weight_ih, weight_hh, bias_ih, bias_hh, hx, cx,
// reset_h, reset_c and weight_hr.
using LayerGradients = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                                  at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

using LayerBackwardSignature = LayerGradients(
    const at::Tensor&, const OptionalTensor&, const OptionalTensor&, const OptionalTensor&,
    const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
    const OptionalTensor&, const OptionalTensor&, const OptionalTensor&, const OptionalTensor&,
    const at::Tensor&, const at::Tensor&, const at::Tensor&, c10::string_view, bool, bool,
    std::array<bool, 3>, c10::string_view, const OptionalTensor&);

inline const c10::TypedOperatorHandle<LayerForwardSignature>& layer_forward_op() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("rnn_fused::layer_forward", "")
                             .typed<LayerForwardSignature>();
  return op;
}

inline const c10::TypedOperatorHandle<LayerBackwardSignature>& layer_backward_op() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("rnn_fused::layer_backward", "")
                             .typed<LayerBackwardSignature>();
  return op;
}

// Each tensor argument's autograd edge, in schema order, from whether it was
// given: needs_input_grad counts only the tensors given, so an absent one has no
// edge (-1).
inline std::vector<int64_t> argument_edges(std::initializer_list<bool> given) {
  std::vector<int64_t> edges;
  int64_t edge = 0;
  for (const bool present : given) edges.push_back(present ? edge++ : -1);
  return edges;
}

inline bool requires_grad(const at::Tensor& t) { return t.requires_grad(); }
inline bool requires_grad(const OptionalTensor& t) { return t.has_value() && t->requires_grad(); }

// Whether autograd has a graph to record for a call on these tensor arguments:
// without one, the autograd kernel skips the node and its saved tensors.
template <typename... Tensors>
bool records_graph(const Tensors&... tensors) {
  return at::GradMode::is_enabled() && (requires_grad(tensors) || ...);
}

// Optional tensors as autograd saves them (undefined for None), and back.
inline at::Tensor value_or_undefined(const OptionalTensor& t) {
  return t.has_value() ? *t : at::Tensor();
}

inline OptionalTensor defined_or_none(const at::Tensor& t) {
  return t.defined() ? OptionalTensor(t) : c10::nullopt;
}

}  // namespace rnn_fused
