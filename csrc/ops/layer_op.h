// Typed handles on the layer ops (Elman and gated), for kernels that call them
// through the dispatcher (autograd, autocast).
#pragma once

#include <array>
#include <initializer_list>
#include <tuple>
#include <vector>

#include <ATen/core/Tensor.h>
#include <ATen/core/grad_mode.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/util/Optional.h>

namespace rnn_fused {

// (output, h_n)
using LayerOutputs = std::tuple<at::Tensor, at::Tensor>;

using LayerForwardSignature =
    LayerOutputs(const at::Tensor&, const at::Tensor&, const at::Tensor&,
               const c10::optional<at::Tensor>&, const c10::optional<at::Tensor>&,
               const at::Tensor&, const c10::optional<at::Tensor>&,
               const c10::optional<at::Tensor>&, c10::string_view, bool, c10::string_view);

using LayerGradients =
    std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

using LayerBackwardSignature =
    LayerGradients(const at::Tensor&, const c10::optional<at::Tensor>&, const at::Tensor&,
                   const at::Tensor&, const at::Tensor&, const at::Tensor&,
                   const c10::optional<at::Tensor>&, const c10::optional<at::Tensor>&,
                   const at::Tensor&, c10::string_view, bool, c10::string_view,
                   std::array<bool, 6>);

inline const c10::TypedOperatorHandle<LayerForwardSignature>& layer_forward_op() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("rnn_fused::rnn_layer_forward", "")
                             .typed<LayerForwardSignature>();
  return op;
}

inline const c10::TypedOperatorHandle<LayerBackwardSignature>& layer_backward_op() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("rnn_fused::rnn_layer_backward", "")
                             .typed<LayerBackwardSignature>();
  return op;
}

// (output, h_n, c_n, cells, saved)
using GatedOutputs = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

using OptionalTensor = c10::optional<at::Tensor>;

using GatedForwardSignature =
    GatedOutputs(const at::Tensor&, const at::Tensor&, const at::Tensor&, const OptionalTensor&,
                 const OptionalTensor&, const at::Tensor&, const OptionalTensor&,
                 const OptionalTensor&, const OptionalTensor&, const OptionalTensor&,
                 c10::string_view, bool, c10::string_view);

using GatedGradients = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                                  at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

using GatedBackwardSignature = GatedGradients(
    const at::Tensor&, const OptionalTensor&, const OptionalTensor&, const OptionalTensor&,
    const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,
    const OptionalTensor&, const OptionalTensor&, const OptionalTensor&, const OptionalTensor&,
    const at::Tensor&, const at::Tensor&, const at::Tensor&, c10::string_view, bool, bool,
    std::array<bool, 3>, c10::string_view);

inline const c10::TypedOperatorHandle<GatedForwardSignature>& gated_forward_op() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("rnn_fused::gated_layer_forward", "")
                             .typed<GatedForwardSignature>();
  return op;
}

inline const c10::TypedOperatorHandle<GatedBackwardSignature>& gated_backward_op() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("rnn_fused::gated_layer_backward", "")
                             .typed<GatedBackwardSignature>();
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
inline bool requires_grad(const c10::optional<at::Tensor>& t) {
  return t.has_value() && t->requires_grad();
}

// Whether autograd has a graph to record for a call on these tensor arguments:
// without one, the autograd kernels skip the node and its saved tensors.
template <typename... Tensors>
bool records_graph(const Tensors&... tensors) {
  return at::GradMode::is_enabled() && (requires_grad(tensors) || ...);
}

// Optional tensors as autograd saves them (undefined for None), and back.
inline at::Tensor value_or_undefined(const c10::optional<at::Tensor>& t) {
  return t.has_value() ? *t : at::Tensor();
}

inline c10::optional<at::Tensor> defined_or_none(const at::Tensor& t) {
  return t.defined() ? c10::optional<at::Tensor>(t) : c10::nullopt;
}

}  // namespace rnn_fused
