// The persistent GRU/LSTM kernels: one cooperative launch runs every step of
// one layer in one direction, as the Elman persistent kernel does
// (one_gate_kernel.cuh, whose loads, warp sums and grid barrier these share).
//
// Block x owns J hidden units. Forward, it keeps the G·J rows of W_hh that feed
// its units' gates in registers; per step it reads the whole carried state
// from L2, forms its units' G gate products for every batch row, applies the
// cell and writes h_t, c_t, the saved gates and the carried state. Backward, it
// keeps J columns of W_hh (G·H long) and per step reads the next step's whole
// hidden-side gate gradient. Each thread handles the same (b, unit) pairs at
// every step, so a unit's cell state, carried gradients and reset-gradient
// sums stay in its registers; only h (forward) and the gate gradients
// (backward) cross blocks.
#pragma once

#include <cstdint>

#include <ATen/OpMathType.h>

#include "../../cells/registry.h"
#include "one_gate_kernel.cuh"

namespace rnn_fused {
namespace gated_persistent {

using persistent::kThreads;
using persistent::kWarps;
// (b, unit) pairs per thread: B·J <= kOutputsPerThread·kThreads.
constexpr int kOutputsPerThread = 4;

// The kernels' arguments: the layer's params and buffers, typed, plus the layout.
template <typename scalar_t>
struct Args {
  using acc_t = at::opmath_type<scalar_t>;
  int64_t steps, batch, hidden;
  int warps_k;  // warps that split the product's k
  int warps_b;  // warps that split the batch: kWarps / warps_k
  bool reverse;
  bool vector_loads;  // the rows read in lane spans are whole spans, 16-byte aligned
  const scalar_t* w_hh;  // [G·H, H]
  const scalar_t* mask;  // [T, B] or null
  // Forward.
  const scalar_t* x_gates;
  const scalar_t* h_bias;
  const scalar_t* hx;
  const scalar_t* cx;
  const scalar_t* reset_h;
  const scalar_t* reset_c;
  scalar_t* output;
  scalar_t* cells;
  scalar_t* saved;
  scalar_t* carries;
  // Backward.
  const scalar_t* grad_output;
  const scalar_t* grad_last_h;
  const scalar_t* grad_cells;
  const scalar_t* grad_last_c;
  const scalar_t* saved_in;
  const scalar_t* cells_in;
  const scalar_t* h_read;
  const scalar_t* c_read;
  scalar_t* grad_x_gates;
  scalar_t* grad_h_gates;
  scalar_t* grad_h_first;
  scalar_t* grad_c_first;
  acc_t* grad_reset_h;
  acc_t* grad_reset_c;
  unsigned long long* barrier;  // one zeroed counter (64 bits: T·blocks cannot wrap it)
  Watchdog watchdog;  // bounds the barrier's wait (common/waits.cuh)
};

// This warp's share of the products of kGroups·J rows of weights with every
// batch row of `rows` (row b at rows + b·stride, k < K): partial[(warp_k·B + b)
// ·kGroups·J + g·J + j]. Rows are loaded in groups before any is used, so that
// L2 latency is paid once per group.
template <int kGroups, int J, int L, typename scalar_t, typename acc_t>
__device__ __forceinline__ void product_partials(const acc_t (&w)[kGroups][J][L],
                                                 const scalar_t* rows, int64_t stride, int64_t K,
                                                 int64_t B, int k0, int lane, int warp_k,
                                                 int warp_b, int warps_b, bool vector_loads,
                                                 acc_t* partial) {
  constexpr int kLog2 = device::log2_rows<J>();
  constexpr int kRowGroup = L * sizeof(acc_t) <= 16 ? 8 : 4;
  for (int64_t b_first = warp_b; b_first < B; b_first += int64_t(kRowGroup) * warps_b) {
    acc_t v[kRowGroup][L];
#pragma unroll
    for (int r = 0; r < kRowGroup; ++r) {
      const int64_t b = b_first + int64_t(r) * warps_b;
      if (b < B) device::load_lane(v[r], rows + b * stride, k0, K, vector_loads);
    }
#pragma unroll
    for (int r = 0; r < kRowGroup; ++r) {
      const int64_t b = b_first + int64_t(r) * warps_b;
      if (b >= B) continue;
#pragma unroll
      for (int g = 0; g < kGroups; ++g) {
        acc_t acc[J];
#pragma unroll
        for (int j = 0; j < J; ++j) {
          acc[j] = acc_t(0);
#pragma unroll
          for (int i = 0; i < L; ++i) acc[j] += w[g][j][i] * v[r][i];
        }
        device::warp_sum_rows<J>(acc, lane);
        if ((lane & ((32 >> kLog2) - 1)) == 0) {
          partial[((warp_k * B + b) * kGroups + g) * J + (lane >> (5 - kLog2))] = acc[0];
        }
      }
    }
  }
}

// Forward, per processed step t: gates = x_gates[t] + carry·W_hhᵀ (the GRU's
// n gate adds b_hn to its hidden side, inside r ⊙ ·); h_t, c_t by the cell;
// carry = m·h_t + (1 − m)·reset with this step's mask, rounded to the storage
// type as the per-step loop stores it.
template <typename scalar_t, typename Cell, int J, int L>
__global__ void __launch_bounds__(kThreads, 1) forward_kernel(const Args<scalar_t> p) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr int G = Cell::kGates;
  constexpr bool kCell = Cell::kHasCellState;
  constexpr int kLog2 = device::log2_rows<J>();
  extern __shared__ __align__(16) unsigned char shared_raw[];
  acc_t* partial = reinterpret_cast<acc_t*>(shared_raw);

  const int64_t T = p.steps, B = p.batch, H = p.hidden, GH = G * H;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warp_k = warp % p.warps_k, warp_b = warp / p.warps_k;
  const int k0 = (warp_k * 32 + lane) * L;
  const int64_t j0 = int64_t(blockIdx.x) * J;

  acc_t w[G][J][L];
#pragma unroll
  for (int g = 0; g < G; ++g) {
#pragma unroll
    for (int j = 0; j < J; ++j) {
#pragma unroll
      for (int i = 0; i < L; ++i) {
        const int64_t col = k0 + i;
        w[g][j][i] = j0 + j < H && col < H
                         ? static_cast<acc_t>(p.w_hh[(g * H + j0 + j) * H + col])
                         : acc_t(0);
      }
    }
  }

  const int outputs = static_cast<int>(B) * J;
  const auto valid = [&](int e) {
    const int idx = threadIdx.x + e * kThreads;
    return idx < outputs && j0 + (idx & (J - 1)) < H;
  };
  const auto batch_row = [&](int e) { return int64_t((threadIdx.x + e * kThreads) >> kLog2); };
  const auto unit = [&](int e) { return j0 + ((threadIdx.x + e * kThreads) & (J - 1)); };

  acc_t h_carry[kOutputsPerThread], c_carry[kOutputsPerThread], b_hn[kOutputsPerThread];
#pragma unroll
  for (int e = 0; e < kOutputsPerThread; ++e) {
    h_carry[e] = c_carry[e] = b_hn[e] = acc_t(0);
    if (!valid(e)) continue;
    const int64_t u = batch_row(e) * H + unit(e);
    h_carry[e] = static_cast<acc_t>(p.hx[u]);
    if constexpr (kCell) c_carry[e] = static_cast<acc_t>(p.cx[u]);
    if (p.h_bias != nullptr) b_hn[e] = static_cast<acc_t>(p.h_bias[unit(e)]);
  }

  for (int64_t q = 0; q < T; ++q) {
    const int64_t t = p.reverse ? T - 1 - q : q;
    // This step's own operands: loaded first, so that their latency overlaps the product.
    acc_t x[kOutputsPerThread][G], m[kOutputsPerThread];
#pragma unroll
    for (int e = 0; e < kOutputsPerThread; ++e) {
      m[e] = acc_t(1);
#pragma unroll
      for (int g = 0; g < G; ++g) x[e][g] = acc_t(0);
      if (!valid(e)) continue;
      const int64_t b = batch_row(e);
#pragma unroll
      for (int g = 0; g < G; ++g) {
        x[e][g] = static_cast<acc_t>(device::load_cg(p.x_gates + (t * B + b) * GH + g * H +
                                                         unit(e)));
      }
      if (p.mask != nullptr) m[e] = static_cast<acc_t>(device::load_cg(p.mask + t * B + b));
    }

    const scalar_t* carried = q == 0 ? p.hx : p.carries + ((q - 1) & 1) * B * H;
    if (warp_b < p.warps_b) {
      product_partials<G, J, L>(w, carried, H, H, B, k0, lane, warp_k, warp_b, p.warps_b,
                                p.vector_loads, partial);
    }
    __syncthreads();

#pragma unroll
    for (int e = 0; e < kOutputsPerThread; ++e) {
      if (!valid(e)) continue;
      const int64_t b = batch_row(e);
      const int j = static_cast<int>(unit(e) - j0);
      acc_t h_gates[G];
#pragma unroll
      for (int g = 0; g < G; ++g) {
        h_gates[g] = acc_t(0);
        for (int k = 0; k < p.warps_k; ++k) h_gates[g] += partial[((k * B + b) * G + g) * J + j];
      }
      acc_t c = acc_t(0), saved[Cell::kSaved];
      const acc_t h = Cell{}.forward(x[e], h_gates, int64_t(1), b_hn[e], h_carry[e], c_carry[e],
                                     c, saved);
      const int64_t u = (t * B + b) * H + unit(e);
      p.output[u] = static_cast<scalar_t>(h);
      if constexpr (kCell) p.cells[u] = static_cast<scalar_t>(c);
      scalar_t* saved_out = p.saved + (t * B + b) * Cell::kSaved * H + unit(e);
#pragma unroll
      for (int g = 0; g < Cell::kSaved; ++g) saved_out[g * H] = static_cast<scalar_t>(saved[g]);
      const int64_t r = b * H + unit(e);
      acc_t h_next = h, c_next = c;
      if (m[e] != acc_t(1)) {
        h_next = m[e] * h + (acc_t(1) - m[e]) * static_cast<acc_t>(p.reset_h[r]);
        if constexpr (kCell) {
          c_next = m[e] * c + (acc_t(1) - m[e]) * static_cast<acc_t>(p.reset_c[r]);
        }
      }
      const scalar_t h_stored = static_cast<scalar_t>(h_next);
      p.carries[(q & 1) * B * H + r] = h_stored;
      h_carry[e] = static_cast<acc_t>(h_stored);
      c_carry[e] = static_cast<acc_t>(static_cast<scalar_t>(c_next));
    }
    if (q + 1 < T && !device::grid_barrier(p.barrier,
                                               static_cast<unsigned long long>(q + 1) * gridDim.x,
                                               p.watchdog, q)) {
      return;
    }
  }
}

// Backward, per step in reverse processing order: the gradient carried into
// this step's state, dcarry = (next step's hidden gate gradients)·W_hh plus
// the share that bypassed W_hh (GRU: z ⊙ dh); dh = grad_h + m·dcarry, dc =
// grad_c + m·dcarry_c; the cell's backward gives the gate gradients;
// Σ (1 − m)·dcarry is the reset state's gradient.
template <typename scalar_t, typename Cell, int J, int L>
__global__ void __launch_bounds__(kThreads, 1) backward_kernel(const Args<scalar_t> p) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr int G = Cell::kGates;
  constexpr bool kCell = Cell::kHasCellState;
  constexpr int kLog2 = device::log2_rows<J>();
  extern __shared__ __align__(16) unsigned char shared_raw[];
  acc_t* partial = reinterpret_cast<acc_t*>(shared_raw);

  const int64_t T = p.steps, B = p.batch, H = p.hidden, GH = G * H;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warp_k = warp % p.warps_k, warp_b = warp / p.warps_k;
  const int k0 = (warp_k * 32 + lane) * L;
  const int64_t j0 = int64_t(blockIdx.x) * J;

  // Column j0 + j of W_hh, k = gate rows.
  acc_t w[1][J][L];
#pragma unroll
  for (int j = 0; j < J; ++j) {
#pragma unroll
    for (int i = 0; i < L; ++i) {
      const int64_t row = k0 + i;
      w[0][j][i] = j0 + j < H && row < GH ? static_cast<acc_t>(p.w_hh[row * H + j0 + j])
                                          : acc_t(0);
    }
  }

  const int outputs = static_cast<int>(B) * J;
  const auto valid = [&](int e) {
    const int idx = threadIdx.x + e * kThreads;
    return idx < outputs && j0 + (idx & (J - 1)) < H;
  };
  const auto batch_row = [&](int e) { return int64_t((threadIdx.x + e * kThreads) >> kLog2); };
  const auto unit = [&](int e) { return j0 + ((threadIdx.x + e * kThreads) & (J - 1)); };

  // Carried from the step processed just before (the next in time order).
  acc_t direct[kOutputsPerThread], dc_next[kOutputsPerThread];
  acc_t reset_h_sum[kOutputsPerThread], reset_c_sum[kOutputsPerThread];
#pragma unroll
  for (int e = 0; e < kOutputsPerThread; ++e) {
    direct[e] = dc_next[e] = reset_h_sum[e] = reset_c_sum[e] = acc_t(0);
  }

  for (int64_t s = 0; s < T; ++s) {
    const int64_t q = T - 1 - s;
    const int64_t t = p.reverse ? T - 1 - q : q;
    const bool has_link = s > 0;
    const int64_t link = p.reverse ? t - 1 : t + 1;

    acc_t grad_h[kOutputsPerThread], grad_c[kOutputsPerThread], m[kOutputsPerThread];
#pragma unroll
    for (int e = 0; e < kOutputsPerThread; ++e) {
      grad_h[e] = grad_c[e] = acc_t(0);
      m[e] = acc_t(1);
      if (!valid(e)) continue;
      const int64_t b = batch_row(e), r = b * H + unit(e), u = t * B * H + r;
      grad_h[e] = static_cast<acc_t>(s == 0 && p.grad_last_h != nullptr ? p.grad_last_h[r]
                                                                        : p.grad_output[u]);
      if constexpr (kCell) {
        if (s == 0 && p.grad_last_c != nullptr) {
          grad_c[e] = static_cast<acc_t>(p.grad_last_c[r]);
        } else if (p.grad_cells != nullptr) {
          grad_c[e] = static_cast<acc_t>(p.grad_cells[u]);
        }
      }
      if (p.mask != nullptr) m[e] = static_cast<acc_t>(p.mask[t * B + b]);
    }

    if (has_link && warp_b < p.warps_b) {
      product_partials<1, J, L>(w, p.grad_h_gates + link * B * GH, GH, GH, B, k0, lane, warp_k,
                                warp_b, p.warps_b, p.vector_loads, partial);
    }
    __syncthreads();

#pragma unroll
    for (int e = 0; e < kOutputsPerThread; ++e) {
      if (!valid(e)) continue;
      const int64_t b = batch_row(e);
      const int j = static_cast<int>(unit(e) - j0);
      acc_t carried_h = acc_t(0), carried_c = acc_t(0);
      if (has_link) {
        carried_h = direct[e];
        for (int k = 0; k < p.warps_k; ++k) carried_h += partial[(k * B + b) * J + j];
        carried_c = dc_next[e];
      }
      const acc_t dh = grad_h[e] + m[e] * carried_h;
      const acc_t dc = grad_c[e] + m[e] * carried_c;
      reset_h_sum[e] += (acc_t(1) - m[e]) * carried_h;
      reset_c_sum[e] += (acc_t(1) - m[e]) * carried_c;
      const int64_t u = (t * B + b) * H + unit(e);
      const scalar_t* saved_row = p.saved_in + (t * B + b) * Cell::kSaved * H + unit(e);
      acc_t saved[Cell::kSaved];
#pragma unroll
      for (int g = 0; g < Cell::kSaved; ++g) saved[g] = static_cast<acc_t>(saved_row[g * H]);
      const acc_t c = kCell ? static_cast<acc_t>(p.cells_in[u]) : acc_t(0);
      const acc_t c_prev = kCell ? static_cast<acc_t>(p.c_read[u]) : acc_t(0);
      acc_t dx[G], dh_gates[G], dc_prev = acc_t(0);
      // The GRU's backward reads the state its step read; the LSTM's does not.
      const acc_t h_prev = kCell ? acc_t(0) : static_cast<acc_t>(p.h_read[u]);
      direct[e] = Cell{}.backward(dh, dc, saved, int64_t(1), acc_t(0), h_prev, c_prev, c, dx,
                                  dh_gates, dc_prev);
      dc_next[e] = dc_prev;
      const int64_t gates = (t * B + b) * GH + unit(e);
#pragma unroll
      for (int g = 0; g < G; ++g) {
        p.grad_x_gates[gates + g * H] = static_cast<scalar_t>(dx[g]);
        if constexpr (Cell::kSeparateHiddenGrad) {
          p.grad_h_gates[gates + g * H] = static_cast<scalar_t>(dh_gates[g]);
        }
      }
    }
    if (s + 1 < T && !device::grid_barrier(p.barrier,
                                               static_cast<unsigned long long>(s + 1) * gridDim.x,
                                               p.watchdog, s)) {
      return;
    }
  }

#pragma unroll
  for (int e = 0; e < kOutputsPerThread; ++e) {
    if (!valid(e)) continue;
    const int64_t r = batch_row(e) * H + unit(e);
    p.grad_h_first[r] = static_cast<scalar_t>(direct[e]);
    if constexpr (kCell) p.grad_c_first[r] = static_cast<scalar_t>(dc_next[e]);
    if (p.mask != nullptr) {
      p.grad_reset_h[r] = reset_h_sum[e];
      if constexpr (kCell) p.grad_reset_c[r] = reset_c_sum[e];
    }
  }
}

}  // namespace gated_persistent
}  // namespace rnn_fused
