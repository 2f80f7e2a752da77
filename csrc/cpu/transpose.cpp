#include "transpose.h"

#include <algorithm>
#include <type_traits>
#include <vector>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>

#include "isa.h"
#include "simd.h"

namespace rnn_fused {
namespace {

// 4 MB: W_hhᵀ of an LSTM up to H = 512. Larger ones take a fresh tensor, whose
// page faults are small beside the products of such a layer.
constexpr int64_t kThreadBufferBytes = int64_t(4) << 20;

// 64-byte aligned storage, for whole-line stores and the register tiles' loads.
struct alignas(64) Line {
  char bytes[64];
};

template <typename scalar_t>
void transpose_scalar(const scalar_t* w, scalar_t* t, int64_t rows, int64_t cols, int64_t i0,
                      int64_t i1, int64_t j0, int64_t j1) {
  for (int64_t j = j0; j < j1; ++j) {
    for (int64_t i = i0; i < i1; ++i) t[j * rows + i] = w[i * cols + j];
  }
}

// One L×L block (L = the ISA's float lanes) in registers: w's rows lie ldw
// apart, t's ldt.
template <typename IsaT>
RNN_FUSED_ISA_KERNEL inline void transpose_block(const float* w, int64_t ldw, float* t,
                                                 int64_t ldt) {
  constexpr int kLanes = IsaT::kFloatLanes;
  FloatVec<kLanes> r[kLanes];
#pragma GCC unroll 16
  for (int k = 0; k < kLanes; ++k) r[k] = FloatVec<kLanes>::load(w + k * ldw);
  transpose_in_registers(r);
#pragma GCC unroll 16
  for (int k = 0; k < kLanes; ++k) r[k].store(t + k * ldt);
}

// Rows [i0, i1) of w, whole L×L blocks; column blocks outermost, so that the
// rows written stay sequential.
template <typename IsaT>
RNN_FUSED_ISA_KERNEL inline void transpose_rows(const float* w, float* t, int64_t rows,
                                                int64_t cols, int64_t i0, int64_t i1) {
  constexpr int64_t kBlock = IsaT::kFloatLanes;
  const int64_t full_cols = cols / kBlock * kBlock;
  for (int64_t j = 0; j < full_cols; j += kBlock) {
    for (int64_t i = i0; i + kBlock <= i1; i += kBlock) {
      transpose_block<IsaT>(w + i * cols + j, cols, t + j * rows + i, rows);
    }
  }
  transpose_scalar(w, t, rows, cols, i0 + (i1 - i0) / kBlock * kBlock, i1, 0, cols);
  transpose_scalar(w, t, rows, cols, i0, i1, full_cols, cols);
}

template <typename scalar_t>
void transpose_into(const scalar_t* w, scalar_t* t, int64_t rows, int64_t cols) {
  // Row blocks of 16, a whole number of every ISA's blocks.
  constexpr int64_t kRowBlock = 16;
  const int64_t row_blocks = (rows + kRowBlock - 1) / kRowBlock;
  // A task of at least 16K elements: below that a thread's start costs more.
  const int64_t grain =
      std::max<int64_t>(1, (int64_t(1) << 14) / (kRowBlock * std::max<int64_t>(1, cols)));
  const CpuIsa isa = cpu_isa();
  at::parallel_for(0, row_blocks, grain, [&](int64_t b0, int64_t b1) {
    const int64_t i0 = b0 * kRowBlock, i1 = std::min(rows, b1 * kRowBlock);
    if constexpr (std::is_same_v<scalar_t, float>) {
      on_cpu_isa(isa, [&](auto isa_t) RNN_FUSED_ISA_KERNEL {
        transpose_rows<decltype(isa_t)>(w, t, rows, cols, i0, i1);
      });
    } else {
      transpose_scalar(w, t, rows, cols, i0, i1, 0, cols);
    }
  });
}

// One panel: columns [c0, c0 + width) of the k×n matrix m(i, j) = m[i·si + j·sj]
// as [k, 16], zeros past width.
void pack_panel_scalar(const float* m, int64_t si, int64_t sj, int64_t k, int64_t c0,
                       int64_t width, float* panel) {
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t l = 0; l < kPanelWidth; ++l) {
      panel[i * kPanelWidth + l] = l < width ? m[i * si + (c0 + l) * sj] : 0.0f;
    }
  }
}

// The same for a whole panel of a matrix whose columns are contiguous (m = Wᵀ
// of a row-major W, si = 1): L×L blocks transposed in registers.
template <typename IsaT>
RNN_FUSED_ISA_KERNEL inline void pack_panel_in_blocks(const float* m, int64_t sj, int64_t k,
                                                      int64_t c0, float* panel) {
  constexpr int64_t kBlock = IsaT::kFloatLanes;
  const int64_t full = k / kBlock * kBlock;
  for (int64_t i = 0; i < full; i += kBlock) {
    for (int64_t l = 0; l < kPanelWidth; l += kBlock) {
      transpose_block<IsaT>(m + (c0 + l) * sj + i, sj, panel + i * kPanelWidth + l, kPanelWidth);
    }
  }
  pack_panel_scalar(m + full, 1, sj, k - full, c0, kPanelWidth, panel + full * kPanelWidth);
}

// Storage of `sizes` in the calling thread's buffer up to kThreadBufferBytes, a
// fresh tensor above.
at::Tensor thread_buffer(at::IntArrayRef sizes, const at::TensorOptions& options) {
  const int64_t bytes = c10::multiply_integers(sizes) * options.dtype().itemsize();
  if (bytes > kThreadBufferBytes) return at::empty(sizes, options);
  thread_local std::vector<Line> buffer;
  buffer.resize((bytes + sizeof(Line) - 1) / sizeof(Line));
  return at::from_blob(buffer.data(), sizes, options);
}

}  // namespace

at::Tensor pack_panels_into_thread_buffer(const at::Tensor& m, int64_t groups) {
  TORCH_INTERNAL_ASSERT(m.dim() == 2 && m.scalar_type() == at::kFloat && m.size(1) % groups == 0);
  const int64_t k = m.size(0), group_cols = m.size(1) / groups;
  const int64_t panels_per_group = panel_columns(group_cols) / kPanelWidth;
  at::Tensor packed = thread_buffer({groups * panels_per_group, k, kPanelWidth}, m.options());
  const float* source = m.data_ptr<float>();
  float* target = packed.data_ptr<float>();
  const int64_t si = m.stride(0), sj = m.stride(1);
  const CpuIsa isa = cpu_isa();
  // A task of at least 16K elements, as in transpose_into.
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 14) / (kPanelWidth * k));
  at::parallel_for(0, groups * panels_per_group, grain, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t first = (q % panels_per_group) * kPanelWidth;
      const int64_t c0 = (q / panels_per_group) * group_cols + first;
      const int64_t width = std::min(kPanelWidth, group_cols - first);
      float* panel = target + q * k * kPanelWidth;
      if (si == 1 && width == kPanelWidth) {
        on_cpu_isa(isa, [&](auto isa_t) RNN_FUSED_ISA_KERNEL {
          pack_panel_in_blocks<decltype(isa_t)>(source, sj, k, c0, panel);
        });
      } else if (sj == 1 && width == kPanelWidth) {
        // Rows of 16 contiguous columns (the backward's W_hh).
        for (int64_t i = 0; i < k; ++i) {
          std::copy_n(source + i * si + c0, kPanelWidth, panel + i * kPanelWidth);
        }
      } else {
        pack_panel_scalar(source, si, sj, k, c0, width, panel);
      }
    }
  });
  return packed;
}

at::Tensor transpose_into_thread_buffer(const at::Tensor& w) {
  TORCH_INTERNAL_ASSERT(w.dim() == 2);
  const at::Tensor source = w.contiguous();
  const int64_t rows = w.size(0), cols = w.size(1);
  at::Tensor t = thread_buffer({cols, rows}, w.options());
  AT_DISPATCH_FLOATING_TYPES(w.scalar_type(), "rnn_fused::transpose_into_thread_buffer", [&] {
    transpose_into(source.data_ptr<scalar_t>(), t.data_ptr<scalar_t>(), rows, cols);
  });
  return t;
}

}  // namespace rnn_fused
