// The products with the input weight W_ih [N_out, D] where the input has few
// features, as RL observations often do (D = 2-16). MKL runs
// [T·B, 2] · [2, 256] at about 7 GFLOP/s (55 µs on two threads at T·B = 624),
// many times what writing the output takes; these kernels stream each row once
// with the weights held in registers.
#include <immintrin.h>

#include <algorithm>
#include <type_traits>

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/record_function.h>

#include "isa.h"
#include "pointwise_grain.h"
#include "few_features.h"

namespace rnn_fused {
namespace {

constexpr int64_t kMaxFeatures = 16;
constexpr int64_t kWidth = 16;  // floats in a vector

inline __mmask16 columns_from(int64_t j, int64_t n) {
  const int64_t width = std::min(kWidth, n - j);
  return width >= kWidth ? 0xffff : static_cast<__mmask16>((1u << width) - 1);
}

// Rows [r0, r1) of out = x · w_t (+ bias), w_t [kD, n]: each row's features
// broadcast once, each output vector written once.
template <int kD>
RNN_FUSED_AVX512 void project_rows(const float* __restrict__ x, const float* __restrict__ w_t,
                                   const float* __restrict__ bias, float* __restrict__ out,
                                   int64_t r0, int64_t r1, int64_t n) {
  for (int64_t r = r0; r < r1; ++r) {
    __m512 features[kD];
#pragma GCC unroll 16
    for (int k = 0; k < kD; ++k) features[k] = _mm512_set1_ps(x[r * kD + k]);
    for (int64_t j = 0; j < n; j += kWidth) {
      const __mmask16 columns = columns_from(j, n);
      __m512 acc =
          bias != nullptr ? _mm512_maskz_loadu_ps(columns, bias + j) : _mm512_setzero_ps();
#pragma GCC unroll 16
      for (int k = 0; k < kD; ++k) {
        acc = _mm512_fmadd_ps(features[k], _mm512_maskz_loadu_ps(columns, w_t + k * n + j), acc);
      }
      _mm512_mask_storeu_ps(out + r * n + j, columns, acc);
    }
  }
}

// Vectors of columns per weight_grads_block: the features' broadcasts serve
// them all, and kD + 1 accumulators each fit in the 32 vector registers.
template <int kD>
constexpr int kGradBlocks = kD <= 5 ? 4 : kD <= 9 ? 2 : 1;
constexpr int64_t kRowsAhead = 16;
// Rows one register pass sums: longer inputs are split into segments whose
// partial sums ATen adds up, so that every thread takes part even where the
// columns make few blocks, and float32 running sums stay short.
constexpr int64_t kSegmentRows = 1024;

// Columns [j, j + 16·kGradBlocks) of both gradients, summed over `rows` rows (one
// segment) in registers.
template <int kD>
RNN_FUSED_AVX512 void weight_grads_block(const float* __restrict__ g, const float* __restrict__ x,
                                         float* __restrict__ grad_w, float* __restrict__ grad_b,
                                         int64_t rows, int64_t n, int64_t j, bool accumulate) {
  constexpr int kBlocks = kGradBlocks<kD>;
  __mmask16 columns[kBlocks];
  __m512 acc[kBlocks][kD], acc_b[kBlocks];
#pragma GCC unroll 4
  for (int v = 0; v < kBlocks; ++v) {
    columns[v] = j + v * kWidth < n ? columns_from(j + v * kWidth, n) : 0;
    acc_b[v] = _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int k = 0; k < kD; ++k) acc[v][k] = _mm512_setzero_ps();
  }
  for (int64_t r = 0; r < rows; ++r) {
    // Rows are n floats apart: without this prefetch, D = 16 took 1.6x as long
    // at 4096 rows of 512.
    const float* ahead = g + std::min(r + kRowsAhead, rows - 1) * n + j;
#pragma GCC unroll 4
    for (int v = 0; v < kBlocks; ++v) {
      _mm_prefetch(reinterpret_cast<const char*>(ahead + v * kWidth), _MM_HINT_T0);
    }
    __m512 gv[kBlocks];
#pragma GCC unroll 4
    for (int v = 0; v < kBlocks; ++v) {
      gv[v] = _mm512_maskz_loadu_ps(columns[v], g + r * n + j + v * kWidth);
      acc_b[v] = _mm512_add_ps(acc_b[v], gv[v]);
    }
#pragma GCC unroll 16
    for (int k = 0; k < kD; ++k) {
      const __m512 feature = _mm512_set1_ps(x[r * kD + k]);
#pragma GCC unroll 4
      for (int v = 0; v < kBlocks; ++v) acc[v][k] = _mm512_fmadd_ps(feature, gv[v], acc[v][k]);
    }
  }
  // grad_w is [n, kD]: column c of the product is its row c.
  alignas(64) float lanes[kD][kWidth];
#pragma GCC unroll 4
  for (int v = 0; v < kBlocks; ++v) {
    const int64_t j0 = j + v * kWidth;
    if (j0 >= n) break;
#pragma GCC unroll 16
    for (int k = 0; k < kD; ++k) _mm512_store_ps(lanes[k], acc[v][k]);
    const int64_t width = std::min(kWidth, n - j0);
    for (int64_t i = 0; i < width; ++i) {
      float* row = grad_w + (j0 + i) * kD;
      for (int k = 0; k < kD; ++k) row[k] = (accumulate ? row[k] : 0.f) + lanes[k][i];
    }
    if (grad_b != nullptr) {
      const __m512 sum =
          accumulate ? _mm512_add_ps(_mm512_maskz_loadu_ps(columns[v], grad_b + j0), acc_b[v])
                     : acc_b[v];
      _mm512_mask_storeu_ps(grad_b + j0, columns[v], sum);
    }
  }
}

// Calls f(std::integral_constant<int, D>{}) for the run-time D in
// 1..kMaxFeatures, so that each feature count gets its own register allocation.
template <typename F>
void with_features(int64_t features, F&& f) {
  TORCH_INTERNAL_ASSERT(features >= 1 && features <= kMaxFeatures);
  switch (features) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 4: return f(std::integral_constant<int, 4>{});
    case 5: return f(std::integral_constant<int, 5>{});
    case 6: return f(std::integral_constant<int, 6>{});
    case 7: return f(std::integral_constant<int, 7>{});
    case 8: return f(std::integral_constant<int, 8>{});
    case 9: return f(std::integral_constant<int, 9>{});
    case 10: return f(std::integral_constant<int, 10>{});
    case 11: return f(std::integral_constant<int, 11>{});
    case 12: return f(std::integral_constant<int, 12>{});
    case 13: return f(std::integral_constant<int, 13>{});
    case 14: return f(std::integral_constant<int, 14>{});
    case 15: return f(std::integral_constant<int, 15>{});
    default: return f(std::integral_constant<int, 16>{});
  }
}

}  // namespace

bool few_features_apply(int64_t features, at::ScalarType dtype) {
  return dtype == at::kFloat && features >= 1 && features <= kMaxFeatures && has_avx512();
}

void project_few_features(at::Tensor& out, const at::Tensor& x, const at::Tensor& weight_ih,
                          const at::Tensor& bias) {
  RECORD_FUNCTION("rnn_fused::project_few_features", std::vector<c10::IValue>());
  TORCH_INTERNAL_ASSERT(x.is_contiguous() && out.is_contiguous() &&
                        (!bias.defined() || bias.is_contiguous()));
  const int64_t rows = x.size(0), n = weight_ih.size(0);
  const at::Tensor w_t = weight_ih.t().contiguous();
  const float* x_p = x.data_ptr<float>();
  const float* w_p = w_t.data_ptr<float>();
  const float* bias_p = bias.defined() ? bias.data_ptr<float>() : nullptr;
  float* out_p = out.data_ptr<float>();
  with_features(x.size(1), [&](auto features) {
    at::parallel_for(0, rows, pointwise_row_grain(n), [&](int64_t r0, int64_t r1) {
      project_rows<decltype(features)::value>(x_p, w_p, bias_p, out_p, r0, r1, n);
    });
  });
}

void few_features_weight_grads(const at::Tensor& grad_gates, const at::Tensor& x,
                               at::Tensor& grad_weight_ih, at::Tensor& grad_bias,
                               bool accumulate) {
  RECORD_FUNCTION("rnn_fused::few_features_weight_grads", std::vector<c10::IValue>());
  TORCH_INTERNAL_ASSERT(grad_gates.is_contiguous() && x.is_contiguous() &&
                        grad_weight_ih.is_contiguous() &&
                        (!grad_bias.defined() || grad_bias.is_contiguous()));
  const int64_t rows = grad_gates.size(0), n = grad_gates.size(1), features = x.size(1);
  // Partial sums of each segment of rows, [segments, n·D + n], where there is
  // more than one segment; the last n are the bias's.
  const int64_t segments = std::max<int64_t>(1, (rows + kSegmentRows - 1) / kSegmentRows);
  const int64_t partial_size = n * features + n;
  at::Tensor partial;
  if (segments > 1) partial = at::empty({segments, partial_size}, grad_gates.options());
  const float* g = grad_gates.data_ptr<float>();
  const float* x_p = x.data_ptr<float>();
  const bool with_bias = grad_bias.defined();
  with_features(features, [&](auto d) {
    constexpr int kD = decltype(d)::value;
    constexpr int64_t kColumns = kWidth * kGradBlocks<kD>;
    const int64_t blocks = (n + kColumns - 1) / kColumns;
    // A task is one block of columns over one segment of rows.
    at::parallel_for(
        0, blocks * segments, pointwise_row_grain(kSegmentRows * kColumns),
        [&](int64_t t0, int64_t t1) {
          for (int64_t t = t0; t < t1; ++t) {
            const int64_t segment = t / blocks, first_row = segment * kSegmentRows;
            float* w = segments > 1 ? partial.data_ptr<float>() + segment * partial_size
                                    : grad_weight_ih.data_ptr<float>();
            float* b = !with_bias      ? nullptr
                       : segments > 1 ? w + n * kD
                                      : grad_bias.data_ptr<float>();
            weight_grads_block<kD>(g + first_row * n, x_p + first_row * kD, w, b,
                                   std::min(kSegmentRows, rows - first_row), n,
                                   (t % blocks) * kColumns, accumulate && segments == 1);
          }
        });
  });
  if (segments == 1) return;
  const at::Tensor sums = partial.sum(0);
  const at::Tensor sums_w = sums.narrow(0, 0, n * features).view_as(grad_weight_ih);
  if (accumulate) {
    grad_weight_ih.add_(sums_w);
    if (with_bias) grad_bias.add_(sums.narrow(0, n * features, n));
  } else {
    grad_weight_ih.copy_(sums_w);
    if (with_bias) grad_bias.copy_(sums.narrow(0, n * features, n));
  }
}

}  // namespace rnn_fused
