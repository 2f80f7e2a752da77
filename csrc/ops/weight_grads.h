#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>

namespace rnn_fused {

// grad_weight_hh += Σ over every step but the first processed one of
// grad_pre[t]ᵀ·carry_prev(t), carry_t = m_t·h_t + (1 − m_t)·r.
void add_later_steps_grad_weight_hh(at::Tensor& grad_weight_hh, const at::Tensor& grad_pre,
                                    const at::Tensor& out, const c10::optional<at::Tensor>& mask,
                                    const c10::optional<at::Tensor>& reset, bool reverse);

}  // namespace rnn_fused
