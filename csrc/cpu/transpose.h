// W_hh's transpose for the step product: the register tiles (small_gemm.h) read
// W_hhᵀ as contiguous rows, and MKL's single-threaded product by a contiguous
// W_hhᵀ is up to twice as fast as by the transposed view.
#pragma once

#include <cstdint>

#include <ATen/ATen.h>

namespace rnn_fused {

// The transpose of the rows×cols row-major matrix w (float32 or float64) as a
// contiguous [cols, rows] tensor. Up to 4 MB it lives in a buffer that belongs
// to the calling thread and is overwritten by its next call: a fresh tensor per
// call costs a page fault every 4 KB, more than the transpose itself.
at::Tensor transpose_into_thread_buffer(const at::Tensor& w);

}  // namespace rnn_fused
