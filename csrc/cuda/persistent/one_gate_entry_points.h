// Host entry points of the persistent (grid-barrier) one-gate recurrence
// (one_gate_kernel.cuh, one_gate_launch.cuh), one instantiation per dtype in one_gate_<dtype>.cu
// so that the dtypes compile in parallel.
#pragma once

#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include "../../engine/params.h"

namespace rnn_fused {

// The rows of W_hh per block that both the forward and the backward kernel
// launch with at these sizes on the current GPU, or 0 where no count fits;
// `why`, when given, receives the reason either way.
template <typename scalar_t>
int persistent_rows(int64_t batch, int64_t hidden, std::string* why);

// With `rows` rows per block, a count persistent_rows returned. The forward
// turns `out`, the projection, into h_t; the backward writes grad_pre and
// adds to grad_reset (one_gate_args.cuh).
template <typename scalar_t>
void persistent_forward(const ForwardParams& p, const at::Tensor& out, int rows);
template <typename scalar_t>
void persistent_backward(const BackwardParams& p, const at::Tensor& grad_out,
                         const at::Tensor& grad_pre, const at::Tensor& grad_reset, int rows);

// The three entry points for dtype T, as `extern` declarations here (prefix
// extern) and as explicit instantiations in one_gate_<dtype>.cu (no prefix).
#define RNN_FUSED_PERSISTENT_ENTRY_POINTS(prefix, T)                                        \
  prefix template int persistent_rows<T>(int64_t, int64_t, std::string*);                   \
  prefix template void persistent_forward<T>(const ForwardParams&, const at::Tensor&, int); \
  prefix template void persistent_backward<T>(const BackwardParams&, const at::Tensor&,     \
                                              const at::Tensor&, const at::Tensor&, int);
RNN_FUSED_PERSISTENT_ENTRY_POINTS(extern, float)
RNN_FUSED_PERSISTENT_ENTRY_POINTS(extern, double)
RNN_FUSED_PERSISTENT_ENTRY_POINTS(extern, c10::Half)
RNN_FUSED_PERSISTENT_ENTRY_POINTS(extern, c10::BFloat16)

}  // namespace rnn_fused
