// Host entry points of the persistent recurrence (persistent_kernel.cuh), one
// instantiation per dtype in persistent_recurrence_<dtype>.cu. Each returns
// false, having launched nothing, when no configuration fits the shape on this
// GPU; the caller then runs the per-step loop or reports the forced path.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Half.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Optional.h>

#include "../activation.h"

namespace rnn_fused {

// Arguments as forward_recurrence_cuda's.
template <typename scalar_t>
bool persistent_forward(const at::Tensor& out, const at::Tensor& w_hh, const at::Tensor& hx,
                        const c10::optional<at::Tensor>& mask,
                        const c10::optional<at::Tensor>& reset, Activation act, bool reverse);

// Arguments as backward_recurrence_cuda's.
template <typename scalar_t>
bool persistent_backward(const at::Tensor& grad_pre, const at::Tensor& grad_reset,
                         const at::Tensor& grad_out, const at::Tensor& out,
                         const at::Tensor& w_hh, const c10::optional<at::Tensor>& mask,
                         Activation act, bool reverse);

// Both entry points for dtype T, as `extern` declarations here (prefix extern)
// and as explicit instantiations in persistent_recurrence_<dtype>.cu (no prefix).
#define RNN_FUSED_PERSISTENT_ENTRY_POINTS(prefix, T)                                           \
  prefix template bool persistent_forward<T>(                                                  \
      const at::Tensor&, const at::Tensor&, const at::Tensor&,                                 \
      const c10::optional<at::Tensor>&, const c10::optional<at::Tensor>&, Activation, bool);   \
  prefix template bool persistent_backward<T>(                                                 \
      const at::Tensor&, const at::Tensor&, const at::Tensor&, const at::Tensor&,              \
      const at::Tensor&, const c10::optional<at::Tensor>&, Activation, bool);
RNN_FUSED_PERSISTENT_ENTRY_POINTS(extern, float)
RNN_FUSED_PERSISTENT_ENTRY_POINTS(extern, double)
RNN_FUSED_PERSISTENT_ENTRY_POINTS(extern, c10::Half)
RNN_FUSED_PERSISTENT_ENTRY_POINTS(extern, c10::BFloat16)

}  // namespace rnn_fused
