// The step product of the per-step loops, kept in the accumulation type.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/mm.h>

namespace rnn_fused {

// out = a·b. For float16/bfloat16 inputs `out` is float32: cuBLAS accumulates in
// float32 and the sum is not rounded to 8 or 11 bits before the cell's step.
inline void mm_into(at::Tensor& out, const at::Tensor& a, const at::Tensor& b) {
  if (out.scalar_type() == a.scalar_type()) {
    at::mm_out(out, a, b);
  } else {
    at::mm_out(out, a, b, out.scalar_type());
  }
}

}  // namespace rnn_fused
