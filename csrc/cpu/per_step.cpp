// The CPU's per-step loop (engine/per_step_loop.h) for every cell, and the pass
// of one step, forward and backward, in one of two ways:
// - after the loop's BLAS product, split by rows of the batch (large steps);
// - taking the product too (float32 steps up to B=64, H=256, where a BLAS call
//   and a parallel region per step cost more than the arithmetic): each thread
//   computes its slice's gate columns in register tiles (small_gemm.h), then its
//   pointwise step, a run of steps in one parallel region. The threads split
//   the rows where each gets at least 4, and need no barrier then; else they
//   split the units and meet once a step.
// The units of a row run in one vectorized loop (`omp simd`: no unit reads
// another's values); the pass and the tiles are compiled for every ISA
// (on_cpu_isa, isa.h).
#include <omp.h>

#include <algorithm>
#include <string>

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include "../engine/families.h"
#include "../engine/per_step_loop.h"
#include "blend_carries.h"
#include "cpu_gate_math.h"
#include "isa.h"
#include "pointwise_grain.h"
#include "small_gemm.h"
#include "transpose.h"

namespace rnn_fused {
namespace {

// The product goes into the pass up to these sizes: the register tiles re-read
// the weights for every 8 rows, so a thread's share of W_hh (H × G·H, all of it
// where the threads split the rows) must stay in its L2 (benchmarks/NOTES.md).
constexpr int64_t kProductInStepMaxBatch = 64;
constexpr int64_t kProductInStepMaxHidden = 256;

// Whether the pass takes the step product: gated_product_in_step, and the
// W_hhᵀ copy rule that serves it.
bool tiles_take_product(at::ScalarType dtype, int64_t batch, int64_t hidden) {
  return dtype == at::kFloat && has_tiles(cpu_isa()) && batch <= kProductInStepMaxBatch &&
         hidden <= kProductInStepMaxHidden;
}

// Whether the backward pass reads W_hh in panels (gated_w_hh_for_pass): its rows
// lie H·4 bytes apart, which cost the tiles 5-8% at H=256 and nothing at H=128
// (single-thread microbenchmark, benchmarks/NOTES.md). The packing pays over
// enough rows of steps: at H=256 it cost 3-26% of the forward+backward at
// T·B <= 256 (T = 1 and 4) and saved up to 5% at T·B = 1024 (T=16, B=64); 512
// lies between, unmeasured.
bool backward_reads_panels(int64_t hidden, int64_t rows) {
  constexpr int64_t kMinRows = 512;
  return hidden > 128 && rows >= kMinRows;
}

// A thread's units: whole 16-float vectors (and whole panels of W_hhᵀ).
constexpr int64_t kUnitQuantum = kPanelWidth;
// The threads split the batch from this many rows each (half a register tile):
// with fewer, each thread's reads of all of W_hh cost more than the split by
// units' barrier (LSTM, T=64, B=4, H=256: 4.7-4.8 ms split by units, 5.1 ms with
// 2 rows each; B=8, T=512, H=128: 21-25 ms by units, 19-20 ms with 4 rows each).
constexpr int64_t kMinRowsPerThread = 4;

// A thread's part of a step: rows [b0, b1) × units [j0, j1). With enough rows
// each, the threads split the batch: each then reads only the states its own
// rows wrote, so its steps need no barrier. Smaller batches split the units,
// and the threads meet once a step.
struct StepSlice {
  int64_t b0, b1, j0, j1;
  bool empty() const { return b0 >= b1 || j0 >= j1; }
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// How a run splits its steps, decided before its parallel region.
struct StepSplit {
  bool by_rows;
  int threads;
};

StepSplit step_split(int64_t batch, int64_t hidden) {
  const int64_t threads = at::get_num_threads();
  const bool by_rows = batch >= kMinRowsPerThread * threads;
  const int64_t parts = by_rows ? batch : ceil_div(hidden, kUnitQuantum);
  return {by_rows, static_cast<int>(std::min(threads, parts))};
}

// The profiler's name of a run of steps with the product in the pass: the pass,
// the split and the backward's W_hh layout, which the tests assert.
const char* run_scope(bool backward, const StepSplit& split, bool w_hh_panels) {
  // [backward][by rows][W_hh in panels]
  static constexpr const char* kNames[2][2][2] = {
      {{"rnn_fused::cpu_steps(forward, product in the pass, split by units)", nullptr},
       {"rnn_fused::cpu_steps(forward, product in the pass, split by rows)", nullptr}},
      {{"rnn_fused::cpu_steps(backward, product in the pass, split by units)",
        "rnn_fused::cpu_steps(backward, product in the pass, split by units, W_hh in panels)"},
       {"rnn_fused::cpu_steps(backward, product in the pass, split by rows)",
        "rnn_fused::cpu_steps(backward, product in the pass, split by rows, W_hh in panels)"}}};
  return kNames[backward][split.by_rows][backward && w_hh_panels];
}

// This thread's slice, inside the run's parallel region.
StepSlice step_slice(const StepSplit& split, int64_t batch, int64_t hidden) {
  const int64_t threads = omp_get_num_threads(), thread = omp_get_thread_num();
  if (split.by_rows) {
    const int64_t per_thread = ceil_div(batch, threads);
    const int64_t b0 = std::min(batch, thread * per_thread);
    return {b0, std::min(batch, b0 + per_thread), 0, hidden};
  }
  const int64_t per_thread = ceil_div(ceil_div(hidden, kUnitQuantum), threads) * kUnitQuantum;
  const int64_t j0 = std::min(hidden, thread * per_thread);
  return {0, batch, j0, std::min(hidden, j0 + per_thread)};
}

// Row b, units [j0, j1) of a forward step. kBlend: the row's mask is not 1, so
// the carry blends in the reset state. Always inlined into on_cpu_isa's kernels.
template <typename scalar_t, typename Cell, bool kBlend>
__attribute__((always_inline)) inline void forward_row(const Cell cell, const ForwardStep& s,
                                                       int64_t b, int64_t j0, int64_t j1) {
  constexpr int64_t G = Cell::kGates;
  constexpr bool kCell = Cell::kHasCellState;
  const int64_t H = s.hidden;
  scalar_t* x_gates = typed<scalar_t>(s.x_gates) + b * G * H;
  const at::opmath_type<scalar_t>* h_gates =
      typed<at::opmath_type<scalar_t>>(s.h_gates) + b * G * H;
  const scalar_t* h_prev = typed<scalar_t>(s.h_prev) + b * H;
  const scalar_t* c_prev = kCell ? typed<scalar_t>(s.c_prev) + b * H : nullptr;
  const scalar_t* h_bias = Cell::kHiddenBiasApart ? typed<scalar_t>(s.h_bias) : nullptr;
  scalar_t* h = typed<scalar_t>(s.h) + b * H;
  scalar_t* c = kCell ? typed<scalar_t>(s.c) + b * H : nullptr;
  scalar_t* saved = Cell::kSaved > 0 ? typed<scalar_t>(s.saved) + b * Cell::kSaved * H : nullptr;
  scalar_t* carry_h = typed<scalar_t>(s.carry_h) + b * H;
  scalar_t* carry_c = kCell ? typed<scalar_t>(s.carry_c) + b * H : nullptr;
  const scalar_t m = kBlend ? typed<scalar_t>(s.mask_t)[b] : scalar_t(1);
  const scalar_t* reset_h = kBlend ? typed<scalar_t>(s.reset_h) + b * H : nullptr;
  const scalar_t* reset_c = kBlend && kCell ? typed<scalar_t>(s.reset_c) + b * H : nullptr;
  if (s.x_bias != nullptr) {
    // Here, while the row is in cache: an addmm's bias would cost a pass over
    // the whole [T·B, G·H] projection (20-50 µs of an LSTM's 0.7-1.8 ms at T=16).
    const scalar_t* x_bias = typed<scalar_t>(s.x_bias);
    for (int64_t g = 0; g < G; ++g) {
#pragma omp simd
      for (int64_t j = j0; j < j1; ++j) x_gates[g * H + j] += x_bias[g * H + j];
    }
  }
#pragma omp simd
  for (int64_t j = j0; j < j1; ++j) {
    scalar_t c_new = scalar_t(0);
    const scalar_t h_new = cell.forward(
        x_gates + j, h_gates + j, H, Cell::kHiddenBiasApart ? h_bias[j] : scalar_t(0), h_prev[j],
        kCell ? c_prev[j] : scalar_t(0), c_new, Cell::kSaved > 0 ? saved + j : nullptr);
    h[j] = h_new;
    carry_h[j] = kBlend ? m * h_new + (scalar_t(1) - m) * reset_h[j] : h_new;
    if constexpr (kCell) {
      c[j] = c_new;
      carry_c[j] = kBlend ? m * c_new + (scalar_t(1) - m) * reset_c[j] : c_new;
    }
  }
}

template <typename scalar_t, typename Cell>
__attribute__((always_inline)) inline void forward_block(const Cell cell, const ForwardStep& s,
                                                         int64_t b0, int64_t b1, int64_t j0,
                                                         int64_t j1) {
  const scalar_t* mask = typed<scalar_t>(s.mask_t);
  for (int64_t b = b0; b < b1; ++b) {
    // A kept state (m = 1, nearly every row) needs no reset read.
    if (mask != nullptr && mask[b] != scalar_t(1)) {
      forward_row<scalar_t, Cell, true>(cell, s, b, j0, j1);
    } else {
      forward_row<scalar_t, Cell, false>(cell, s, b, j0, j1);
    }
  }
}

// kBypass: the carried gradient comes in two buffers (the GRU's, where the
// product is not in the pass), fixed at compile time so that the unit loop
// holds no branch: with one, the GRU's backward pass took 4.9 ms where it now
// takes 3.0 (one thread, B=16, T=256, H=128, baseline ISA).
template <typename scalar_t, bool kBypass, typename Cell>
__attribute__((always_inline)) inline void backward_block(const Cell cell,
                                                          const BackwardStep& s, int64_t b0,
                                                          int64_t b1, int64_t j0, int64_t j1) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr int64_t G = Cell::kGates;
  constexpr bool kCell = Cell::kHasCellState;
  const int64_t H = s.hidden;
  const scalar_t* mask = typed<scalar_t>(s.mask_t);
  for (int64_t b = b0; b < b1; ++b) {
    const scalar_t m = mask != nullptr ? mask[b] : scalar_t(1);
    const scalar_t* grad_h = typed<scalar_t>(s.grad_h) + b * H;
    const scalar_t* grad_c = kCell ? typed<scalar_t>(s.grad_c) + b * H : nullptr;
    const acc_t* carry_grad_h = typed<acc_t>(s.carry_grad_h) + b * H;
    const acc_t* bypass = kBypass ? typed<acc_t>(s.carry_bypass_h) + b * H : nullptr;
    const acc_t* carry_grad_c = kCell ? typed<acc_t>(s.carry_grad_c) + b * H : nullptr;
    const scalar_t* saved =
        Cell::kSaved > 0 ? typed<scalar_t>(s.saved) + b * Cell::kSaved * H : nullptr;
    const scalar_t* h = typed<scalar_t>(s.h) + b * H;
    const scalar_t* h_prev = Cell::kReadsPrevState ? typed<scalar_t>(s.h_prev) + b * H : nullptr;
    const scalar_t* c = kCell ? typed<scalar_t>(s.c) + b * H : nullptr;
    const scalar_t* c_prev = kCell ? typed<scalar_t>(s.c_prev) + b * H : nullptr;
    scalar_t* grad_x = typed<scalar_t>(s.grad_x_gates) + b * G * H;
    scalar_t* grad_hg =
        Cell::kSeparateHiddenGrad ? typed<scalar_t>(s.grad_h_gates) + b * G * H : nullptr;
    acc_t* grad_h_prev = Cell::kSeparateHiddenGrad ? typed<acc_t>(s.grad_h_prev) + b * H : nullptr;
    acc_t* grad_c_prev = kCell ? typed<acc_t>(s.grad_c_prev) + b * H : nullptr;
    if (mask != nullptr) {
      // The reset states' gradients: what the carry passes on where it resets.
      acc_t* reset_h = typed<acc_t>(s.grad_reset_h) + b * H;
      if constexpr (kBypass) {
#pragma omp simd
        for (int64_t j = j0; j < j1; ++j) {
          reset_h[j] += (scalar_t(1) - m) * (carry_grad_h[j] + bypass[j]);
        }
      } else {
#pragma omp simd
        for (int64_t j = j0; j < j1; ++j) reset_h[j] += (scalar_t(1) - m) * carry_grad_h[j];
      }
      if constexpr (kCell) {
        acc_t* reset_c = typed<acc_t>(s.grad_reset_c) + b * H;
#pragma omp simd
        for (int64_t j = j0; j < j1; ++j) reset_c[j] += (scalar_t(1) - m) * carry_grad_c[j];
      }
    }
#pragma omp simd
    for (int64_t j = j0; j < j1; ++j) {
      const acc_t carried = kBypass ? carry_grad_h[j] + bypass[j] : carry_grad_h[j];
      const acc_t dh = grad_h[j] + m * carried;
      const acc_t dc = kCell ? m * carry_grad_c[j] + grad_c[j] : acc_t(0);
      acc_t dc_prev = acc_t(0);
      const acc_t direct = cell.backward(
          dh, dc, Cell::kSaved > 0 ? saved + j : nullptr, H, acc_t(h[j]),
          Cell::kReadsPrevState ? acc_t(h_prev[j]) : acc_t(0), kCell ? acc_t(c_prev[j]) : acc_t(0),
          kCell ? acc_t(c[j]) : acc_t(0), grad_x + j,
          Cell::kSeparateHiddenGrad ? grad_hg + j : nullptr, dc_prev);
      if constexpr (Cell::kSeparateHiddenGrad) grad_h_prev[j] = direct;
      if constexpr (kCell) grad_c_prev[j] = dc_prev;
    }
  }
}

// A run of forward steps in one parallel region (a region per step cost about a
// fifth of a GRU profile at B=16, H=128 in libgomp). Per step, each thread
// computes h_gates[b, g·H + j] = h_prev[b] · W_hhᵀ[:, g·H + j] for its slice,
// from W_hhᵀ in panels (the gates' columns each padded to whole panels), then
// their pointwise step; split by units, the barrier after it is the only one,
// since the next step's product reads every unit's state and nothing else
// crosses threads.
template <typename Cell>
void forward_run_with_product(const Cell cell, const ForwardStep& first, int64_t steps,
                              ForwardStepAt step_at, CpuIsa isa) {
  const int64_t B = first.batch, H = first.hidden, GH = Cell::kGates * H;
  const int64_t gate_panels = panel_columns(H) * H;
  const StepSplit split = step_split(B, H);
#pragma omp parallel num_threads(split.threads)
  {
    ForwardStep s = first;
    const StepSlice x = step_slice(split, B, H);
    for (int64_t k = 0; k < steps; ++k) {
      step_at(k, s);
      if (!x.empty()) {
        on_cpu_isa(isa, [&](auto isa_t) RNN_FUSED_ISA_KERNEL {
          for (int64_t g = 0; g < Cell::kGates; ++g) {
            SmallGemm product{typed<float>(s.h_prev) + x.b0 * H,
                              typed<float>(s.w_hh_t) + g * gate_panels + x.j0 * H,
                              typed<float>(s.h_gates) + x.b0 * GH + g * H + x.j0,
                              x.b1 - x.b0, H, x.j1 - x.j0, H, 0, GH};
            product.panels = true;
            small_gemm<decltype(isa_t)>(product);
          }
          forward_block<float>(cell, s, x.b0, x.b1, x.j0, x.j1);
        });
      }
      if (!split.by_rows) {
#pragma omp barrier
      }
    }
  }
}

// A run of backward steps in one parallel region. Per step, each thread writes
// its slice's gate gradients, then grad_h_prev[b, j] = (GRU: +=)
// grad_h_gates[b] · W_hh[:, j] for its slice (W_hh in panels where
// gated_w_hh_for_pass packed it).
// Split by units, that product waits for every unit's gate gradients (the
// barrier), and the next step reads only the thread's own units of it, so it
// needs no other barrier.
template <typename Cell>
void backward_run_with_product(const Cell cell, const BackwardStep& first, int64_t steps,
                               BackwardStepAt step_at, CpuIsa isa) {
  const int64_t B = first.batch, H = first.hidden, GH = Cell::kGates * H;
  const bool panels = first.w_hh_panels;
  const StepSplit split = step_split(B, H);
#pragma omp parallel num_threads(split.threads)
  {
    BackwardStep s = first;
    const StepSlice x = step_slice(split, B, H);
    for (int64_t k = 0; k < steps; ++k) {
      step_at(k, s);
      if (!x.empty()) {
        on_cpu_isa(isa, [&](auto) RNN_FUSED_ISA_KERNEL {
          backward_block<float, /*kBypass=*/false>(cell, s, x.b0, x.b1, x.j0, x.j1);
        });
      }
      if (!split.by_rows) {
#pragma omp barrier
      }
      if (!x.empty()) {
        // The LSTM's two sides share one gradient, which the pass writes as grad_x_gates.
        const float* grad_gates =
            typed<float>(Cell::kSeparateHiddenGrad ? s.grad_h_gates : s.grad_x_gates);
        SmallGemm product{grad_gates + x.b0 * GH,
                          typed<float>(s.w_hh) + (panels ? x.j0 * GH : x.j0),
                          typed<float>(s.grad_h_prev) + x.b0 * H + x.j0, x.b1 - x.b0, GH,
                          x.j1 - x.j0, GH, H, H};
        product.panels = panels;
        on_cpu_isa(isa, [&](auto isa_t) RNN_FUSED_ISA_KERNEL {
          small_gemm<decltype(isa_t)>(product, /*accumulate=*/Cell::kSeparateHiddenGrad);
        });
      }
    }
  }
}

// The per-step loop's device part on the CPU (PerStepLoop's Steps).
struct CpuSteps {
  static constexpr bool kPassTakesProduct = true;
  // The forward pass adds the input projection's bias (ForwardStep::x_bias).
  static constexpr bool kPassAddsInputBias = true;

  // Steps per chunk of the loop's [steps, B, G·H] buffers. Fresh buffers of
  // that size cost a page fault every 4 KB on every call (the allocator gives
  // large blocks back to the system); a chunk's buffer is reused and stays in
  // L2. A chunk's products need enough rows to run at BLAS speed.
  static int64_t chunk_steps(int64_t steps, int64_t batch, int64_t gate_width) {
    constexpr int64_t kChunkElements = int64_t(1) << 18;
    constexpr int64_t kMinChunkRows = 256;
    const int64_t by_size = kChunkElements / std::max<int64_t>(1, batch * gate_width);
    const int64_t by_rows = (kMinChunkRows + batch - 1) / std::max<int64_t>(1, batch);
    return std::clamp<int64_t>(std::max(by_size, by_rows), 1, std::max<int64_t>(1, steps));
  }

  // W_hhᵀ [H, G·H] for ATen's step products: a contiguous copy in the calling
  // thread's buffer (transpose.h) from H·G·H / 2048 steps on, where it pays; at
  // B=1, T=16 it cost more than it saved (benchmarks/NOTES.md).
  static at::Tensor w_hh_t(const at::Tensor& weight_hh, int64_t steps) {
    const int64_t H = weight_hh.size(1), GH = weight_hh.size(0);
    return steps * 2048 >= H * GH ? transpose_into_thread_buffer(weight_hh) : weight_hh.t();
  }

  // W_hhᵀ for the pass's product: each gate's columns in panels of 16, in the
  // calling thread's buffer.
  static at::Tensor w_hh_t_panels(const at::Tensor& weight_hh) {
    const int64_t gates = weight_hh.size(0) / weight_hh.size(1);
    return pack_panels_into_thread_buffer(weight_hh.t(), gates);
  }

  // W_hh [G·H, H] for the backward pass's product over `steps` steps of s's
  // batch: in panels of 16 columns where that pays, else contiguous. Points
  // s.w_hh at it, sets s.w_hh_panels, and returns the tensor that holds it.
  static at::Tensor w_hh_for_pass(const at::Tensor& weight_hh, int64_t steps, BackwardStep& s) {
    s.w_hh_panels = backward_reads_panels(s.hidden, steps * s.batch);
    at::Tensor w_hh =
        s.w_hh_panels ? pack_panels_into_thread_buffer(weight_hh, 1) : weight_hh.contiguous();
    s.w_hh = w_hh.data_ptr();
    return w_hh;
  }

  static bool backward_product_in_step(const StepSizes& n) {
    return tiles_take_product(n.dtype, n.batch, n.hidden);
  }

  // The packing pays from H·G·H / elements_per_step steps on: from B = 8 and
  // T = 8 on the tiles gain enough to repay it sooner (no_grad, T=16, B=16: LSTM
  // at H=128 0.81x → 0.93x nn.LSTM, GRU at H=256 1.40x → 1.60x nn.GRU; at T=1,
  // B=16, H=64 the GRU lost 1.16x → 0.87–0.98x); at B=1, T=16 it cost more than
  // it saved (benchmarks/NOTES.md).
  static bool forward_product_in_step(const StepSizes& n, int64_t steps) {
    const int64_t elements_per_step = steps >= 8 && n.batch >= 8 ? 16384 : 2048;
    return tiles_take_product(n.dtype, n.batch, n.hidden) &&
           steps * elements_per_step >= n.hidden * info(n.cell).gates * n.hidden;
  }

  static void forward_run(const ForwardStep& first, int64_t steps, ForwardStepAt step_at) {
    RECORD_FUNCTION(run_scope(/*backward=*/false, step_split(first.batch, first.hidden), false),
                    std::vector<c10::IValue>());
    dispatch_cell<CpuGateMath>(first.cell, [&](auto cell) {
      forward_run_with_product(cell, first, steps, step_at, cpu_isa());
    });
  }

  static void backward_run(const BackwardStep& first, int64_t steps, BackwardStepAt step_at) {
    RECORD_FUNCTION(run_scope(/*backward=*/true, step_split(first.batch, first.hidden),
                              first.w_hh_panels),
                    std::vector<c10::IValue>());
    dispatch_cell<CpuGateMath>(first.cell, [&](auto cell) {
      backward_run_with_product(cell, first, steps, step_at, cpu_isa());
    });
  }

  static void forward_step(const ForwardStep& s) {
    const CpuIsa isa = cpu_isa();
    AT_DISPATCH_FLOATING_TYPES(s.dtype, "rnn_fused::cpu_forward_step", [&] {
      dispatch_cell<CpuGateMath>(s.cell, [&](auto cell) {
        at::parallel_for(0, s.batch, step_row_grain(decltype(cell)::kGates, s.hidden),
                         [&](int64_t b0, int64_t b1) {
          on_cpu_isa(isa, [&](auto) RNN_FUSED_ISA_KERNEL {
            forward_block<scalar_t>(cell, s, b0, b1, 0, s.hidden);
          });
        });
      });
    });
  }

  static void backward_step(const BackwardStep& s) {
    const CpuIsa isa = cpu_isa();
    AT_DISPATCH_FLOATING_TYPES(s.dtype, "rnn_fused::cpu_backward_step", [&] {
      dispatch_cell<CpuGateMath>(s.cell, [&](auto cell) {
        at::parallel_for(0, s.batch, step_row_grain(decltype(cell)::kGates, s.hidden),
                         [&](int64_t b0, int64_t b1) {
          on_cpu_isa(isa, [&](auto) RNN_FUSED_ISA_KERNEL {
            if constexpr (decltype(cell)::kSeparateHiddenGrad) {
              if (s.carry_bypass_h != nullptr) {
                return backward_block<scalar_t, true>(cell, s, b0, b1, 0, s.hidden);
              }
            }
            backward_block<scalar_t, false>(cell, s, b0, b1, 0, s.hidden);
          });
        });
      });
    });
  }
};

bool plan_per_step(const PlanQuery& query, std::array<int, 4>&, std::string* why) {
  if (why != nullptr) {
    const StepSizes sizes{query.cell, query.dtype, query.batch, query.hidden};
    const bool projects = query.features & kProjection;
    *why = std::string("the per-step loop: per step one product with W_hh ") +
           (projects ? "through BLAS, then the projection through BLAS"
            : CpuSteps::forward_product_in_step(sizes, query.steps)
                ? "in register tiles inside the pass (float32, B <= 64, H <= 256, "
                  "T >= G·H²/16384 from B = 8 and T = 8 on, else G·H²/2048)"
                : "through BLAS") +
           " and one fused pointwise pass, compiled for " + isa_name(cpu_isa());
  }
  return true;
}

}  // namespace

RNN_FUSED_REGISTER_FAMILY(cpu_per_step, "per-step", c10::DeviceType::CPU, /*auto_order=*/100,
                          &plan_per_step, &PerStepLoop<CpuSteps>::forward,
                          &PerStepLoop<CpuSteps>::backward, "rnn_fused::cpu_forward(per-step)",
                          "rnn_fused::cpu_backward(per-step)",
                          /*features=*/kProjection | kResetsPerStep)

}  // namespace rnn_fused
