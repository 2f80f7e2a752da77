// W_hh's layouts for the step product: the register tiles (small_gemm.h) read
// W_hhᵀ as contiguous rows or in panels, and MKL's single-threaded product by a
// contiguous W_hhᵀ is up to twice as fast as by the transposed view.
#pragma once

#include <cstdint>

#include <ATen/core/Tensor.h>

namespace rnn_fused {

// The transpose of the rows×cols row-major matrix w (float32 or float64) as a
// contiguous [cols, rows] tensor. Up to 4 MB it lives in a buffer that belongs
// to the calling thread and is overwritten by its next call: a fresh tensor per
// call costs a page fault every 4 KB, more than the transpose itself.
at::Tensor transpose_into_thread_buffer(const at::Tensor& w);

// Columns of a panel: one 16-float vector.
constexpr int64_t kPanelWidth = 16;

// The columns of n laid out in panels: n rounded up to whole panels.
inline int64_t panel_columns(int64_t n) {
  return (n + kPanelWidth - 1) / kPanelWidth * kPanelWidth;
}

// The float32 k×n matrix m (any strides) in panels, for the register tiles
// (SmallGemm::panels): each of its `groups` equal column groups is cut into
// blocks of 16 columns (the last zero-padded), and each block is stored as
// [k, 16], so that a tile streams its weights from consecutive lines. Returns
// the blocks, [groups · panel_columns(n / groups) / 16, k, 16], in the calling
// thread's buffer as above.
at::Tensor pack_panels_into_thread_buffer(const at::Tensor& m, int64_t groups);

}  // namespace rnn_fused
