// The products with the input weight W_ih [N_out, D] where the input has few
// features, as RL observations often do (D = 2-16). MKL runs
// [T·B, 2] · [2, 256] at about 7 GFLOP/s (55 µs on two threads at T·B = 624),
// many times what writing the output takes; these kernels stream each row once
// with the weights held in registers.
#include <algorithm>
#include <type_traits>

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/record_function.h>

#include "few_features.h"
#include "isa.h"
#include "pointwise_grain.h"
#include "simd.h"


namespace rnn_fused {
namespace {

constexpr int64_t kMaxFeatures = 16;

// The features a kernel takes on the ISA: kD + 1 accumulators, a row of
// gradients and a broadcast in its vector registers (13 on AVX2's 16).
int64_t max_features(CpuIsa isa) {
  return std::min<int64_t>(kMaxFeatures, vector_registers(isa) - 3);
}

// Rows [r0, r1) of out = x · w_t (+ bias), w_t [kD, n]: each row's features
// broadcast once, each output vector written once.
template <typename IsaT, int kD>
RNN_FUSED_ISA_KERNEL inline void project_rows(const float* __restrict__ x,
                                              const float* __restrict__ w_t,
                                              const float* __restrict__ bias,
                                              float* __restrict__ out, int64_t r0, int64_t r1,
                                              int64_t n) {
  constexpr int kLanes = IsaT::kFloatLanes;
  using V = FloatVec<kLanes>;
  for (int64_t r = r0; r < r1; ++r) {
    V features[kD];
#pragma GCC unroll 16
    for (int k = 0; k < kD; ++k) features[k] = V::broadcast(x[r * kD + k]);
    for (int64_t j = 0; j < n; j += kLanes) {
      V acc = bias != nullptr ? V::load_first(bias + j, n - j) : V::zero();
#pragma GCC unroll 16
      for (int k = 0; k < kD; ++k) {
        acc = acc.fma(features[k], V::load_first(w_t + k * n + j, n - j));
      }
      acc.store_first(out + r * n + j, n - j);
    }
  }
}

// Vectors of columns per weight_grads_block: the features' broadcasts serve
// them all, and kD + 1 accumulators each fit in the vector registers.
constexpr int grad_blocks(CpuIsa isa, int features) {
  return vector_registers(isa) == 32 ? (features <= 5 ? 4 : features <= 9 ? 2 : 1)
                                     : (features <= 5 ? 2 : 1);
}
constexpr int64_t kRowsAhead = 16;
// Rows one register pass sums: longer inputs are split into segments whose
// partial sums ATen adds up, so that every thread takes part even where the
// columns make few blocks, and float32 running sums stay short.
constexpr int64_t kSegmentRows = 1024;

// Columns [j, j + lanes·grad_blocks) of both gradients, summed over `rows` rows
// (one segment) in registers.
template <typename IsaT, int kD>
RNN_FUSED_ISA_KERNEL inline void weight_grads_block(const float* __restrict__ g,
                                                    const float* __restrict__ x,
                                                    float* __restrict__ grad_w,
                                                    float* __restrict__ grad_b, int64_t rows,
                                                    int64_t n, int64_t j, bool accumulate) {
  constexpr int kLanes = IsaT::kFloatLanes;
  constexpr int kBlocks = grad_blocks(IsaT::isa, kD);
  using V = FloatVec<kLanes>;
  V acc[kBlocks][kD], acc_b[kBlocks];
#pragma GCC unroll 4
  for (int v = 0; v < kBlocks; ++v) {
    acc_b[v] = V::zero();
#pragma GCC unroll 16
    for (int k = 0; k < kD; ++k) acc[v][k] = V::zero();
  }
  for (int64_t r = 0; r < rows; ++r) {
    // Rows are n floats apart: without this prefetch, D = 16 took 1.6x as long
    // at 4096 rows of 512 (AVX-512).
    const float* ahead = g + std::min(r + kRowsAhead, rows - 1) * n + j;
#pragma GCC unroll 4
    for (int v = 0; v < kBlocks; ++v) __builtin_prefetch(ahead + v * kLanes, 0, 3);
    V gv[kBlocks];
#pragma GCC unroll 4
    for (int v = 0; v < kBlocks; ++v) {
      gv[v] = V::load_first(g + r * n + j + v * kLanes, n - j - v * kLanes);
      acc_b[v] = acc_b[v] + gv[v];
    }
#pragma GCC unroll 16
    for (int k = 0; k < kD; ++k) {
      const V feature = V::broadcast(x[r * kD + k]);
#pragma GCC unroll 4
      for (int v = 0; v < kBlocks; ++v) acc[v][k] = acc[v][k].fma(feature, gv[v]);
    }
  }
  // grad_w is [n, kD]: column c of the product is its row c.
  alignas(64) float lanes[kD][kLanes];
#pragma GCC unroll 4
  for (int v = 0; v < kBlocks; ++v) {
    const int64_t j0 = j + v * kLanes;
    if (j0 >= n) break;
#pragma GCC unroll 16
    for (int k = 0; k < kD; ++k) acc[v][k].store(lanes[k]);
    const int64_t width = std::min<int64_t>(kLanes, n - j0);
    for (int64_t i = 0; i < width; ++i) {
      float* row = grad_w + (j0 + i) * kD;
      for (int k = 0; k < kD; ++k) row[k] = (accumulate ? row[k] : 0.f) + lanes[k][i];
    }
    if (grad_b != nullptr) {
      const V sum = accumulate ? V::load_first(grad_b + j0, width) + acc_b[v] : acc_b[v];
      sum.store_first(grad_b + j0, width);
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
  const CpuIsa isa = cpu_isa();
  return dtype == at::kFloat && features >= 1 && features <= max_features(isa) && has_tiles(isa);
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
  const CpuIsa isa = cpu_isa();
  with_features(x.size(1), [&](auto features) {
    at::parallel_for(0, rows, pointwise_row_grain(n), [&](int64_t r0, int64_t r1) {
      on_cpu_isa(isa, [&](auto isa_t) RNN_FUSED_ISA_KERNEL {
        project_rows<decltype(isa_t), decltype(features)::value>(x_p, w_p, bias_p, out_p, r0,
                                                                  r1, n);
      });
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
  const CpuIsa isa = cpu_isa();
  with_features(features, [&](auto d) {
    constexpr int kD = decltype(d)::value;
    const int64_t columns = float_lanes(isa) * grad_blocks(isa, kD);
    const int64_t blocks = (n + columns - 1) / columns;
    // A task is one block of columns over one segment of rows.
    at::parallel_for(0, blocks * segments, pointwise_row_grain(kSegmentRows * columns),
                     [&](int64_t t0, int64_t t1) {
      on_cpu_isa(isa, [&](auto isa_t) RNN_FUSED_ISA_KERNEL {
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t segment = t / blocks, first_row = segment * kSegmentRows;
          float* w = segments > 1 ? partial.data_ptr<float>() + segment * partial_size
                                  : grad_weight_ih.data_ptr<float>();
          float* b = !with_bias      ? nullptr
                     : segments > 1 ? w + n * kD
                                    : grad_bias.data_ptr<float>();
          weight_grads_block<decltype(isa_t), kD>(
              g + first_row * n, x_p + first_row * kD, w, b,
              std::min(kSegmentRows, rows - first_row), n, (t % blocks) * columns,
              accumulate && segments == 1);
        }
      });
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
