// W_hh's transpose for the step product: BLAS (MKL) multiplies by a contiguous
// W_hhᵀ up to twice as fast as by the transposed view, and the register tiles
// (small_gemm.h) need it contiguous.
#pragma once

#include <cstdint>

#include <ATen/ATen.h>

namespace rnn_fused {

// The transpose of the rows×cols row-major matrix w (float32 or float64) as a
// contiguous [cols, rows] tensor. Up to kThreadBufferElements it lives in a
// buffer that belongs to the calling thread and is overwritten by its next call:
// a fresh tensor per call costs a page fault every 4 KB, more than the
// transpose itself.
at::Tensor transpose_into_thread_buffer(const at::Tensor& w);

}  // namespace rnn_fused
