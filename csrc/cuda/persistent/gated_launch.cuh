// Chooses the hidden units per block for the persistent GRU/LSTM kernels and
// launches them cooperatively (common/cooperative_launch.cuh). Included by the
// per-dtype .cu files.
#pragma once

#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>

#include "../../cells/registry.h"
#include "../common/launch_limits.h"
#include "../common/runtime.h"
#include "../common/cooperative_launch.cuh"
#include "one_gate_args.cuh"
#include "gated_entry_points.h"
#include "gated_kernel.cuh"

namespace rnn_fused {
namespace gated_persistent {

// Each lane holds 64 bytes of every weight row it works on, in the
// accumulation type: forward, the G·J rows of its units' gates (J·L·G·4 bytes
// in all for float32, at most 64 registers); backward, J columns over the G·H
// gate rows, with the full span whatever J is, since k is G times longer.
template <typename acc_t, int J>
constexpr int forward_lane_span() { return 64 / (J * int(sizeof(acc_t))); }
template <typename acc_t>
constexpr int backward_lane_span() { return 64 / int(sizeof(acc_t)); }

// One kernel's layout and what the GPU holds of it.
template <typename scalar_t, typename Cell, int J, bool kBackward>
struct Kernel {
  using acc_t = at::opmath_type<scalar_t>;
  static constexpr int L = kBackward ? backward_lane_span<acc_t>() : forward_lane_span<acc_t, J>();
  // Rows of the block's product: G·J gate rows forward, J units backward.
  static constexpr int kRows = kBackward ? J : Cell::kGates * J;

  static const void* address() {
    if constexpr (kBackward) {
      return reinterpret_cast<const void*>(&backward_kernel<scalar_t, Cell, J, L>);
    } else {
      return reinterpret_cast<const void*>(&forward_kernel<scalar_t, Cell, J, L>);
    }
  }
  // The product's k: H forward, the G·H gate rows backward.
  static int64_t k_extent(int64_t hidden) { return kBackward ? Cell::kGates * hidden : hidden; }
  static int warps_k(int64_t hidden) {
    return static_cast<int>((k_extent(hidden) + 32 * L - 1) / (32 * L));
  }
  static size_t shared_bytes(int64_t batch, int64_t hidden) {
    return size_t(warps_k(hidden)) * batch * kRows * sizeof(acc_t);
  }
  // Blocks beyond what the GPU holds at once: 0 where all ceil(H / J) fit.
  static int64_t blocks_short(int64_t batch, int64_t hidden) {
    const int per_sm = resident_blocks_per_sm(address(), kThreads, shared_bytes(batch, hidden));
    const int64_t resident =
        int64_t(per_sm) * current_device_properties().multiProcessorCount;
    const int64_t blocks = (hidden + J - 1) / J;
    return blocks > resident ? blocks - resident : 0;
  }
  static bool fits(int64_t batch, int64_t hidden) {
    return warps_k(hidden) <= kWarps && batch * J <= int64_t(kOutputsPerThread) * kThreads &&
           blocks_short(batch, hidden) == 0;
  }
};

template <typename scalar_t, typename Cell, int J>
bool both_fit(int64_t batch, int64_t hidden) {
  return Kernel<scalar_t, Cell, J, false>::fits(batch, hidden) &&
         Kernel<scalar_t, Cell, J, true>::fits(batch, hidden);
}

// The Elman kernel's rule as measured on an H200 (one_gate_launch.cuh): the
// fewest blocks at B <= 8, the most that fit at larger B. Not yet measured for
// the gated cells.
template <typename scalar_t, typename Cell>
int choose_units(int64_t batch, int64_t hidden) {
  if (batch <= 8 && both_fit<scalar_t, Cell, 4>(batch, hidden)) return 4;
  if (both_fit<scalar_t, Cell, 1>(batch, hidden)) return 1;
  if (both_fit<scalar_t, Cell, 2>(batch, hidden)) return 2;
  if (both_fit<scalar_t, Cell, 4>(batch, hidden)) return 4;
  return 0;
}

template <typename scalar_t, typename Cell, int J, bool kBackward>
void launch(Args<scalar_t> a) {
  using K = Kernel<scalar_t, Cell, J, kBackward>;
  a.warps_k = K::warps_k(a.hidden);
  a.warps_b = kWarps / a.warps_k;
  a.vector_loads = a.vector_loads && K::k_extent(a.hidden) % K::L == 0;
  // The plan ran on this device moments ago; checked again here (cached) so
  // that a grid which cannot be all resident raises before anything starts.
  const int64_t short_by = K::blocks_short(a.batch, a.hidden);
  TORCH_CHECK_VALUE(short_by == 0, "rnn_fused: the persistent GRU/LSTM kernel needs ",
                    (a.hidden + J - 1) / J, " blocks resident at once, ", short_by,
                    " more than this GPU holds at B=", a.batch, ", H=", a.hidden);
  const dim3 grid(static_cast<unsigned>((a.hidden + J - 1) / J));
  const size_t shared = K::shared_bytes(a.batch, a.hidden);
  constexpr bool kLstm = Cell::kHasCellState;
  if constexpr (kBackward) {
    device::launch_cooperative(backward_kernel<scalar_t, Cell, J, K::L>, grid, kThreads,
                                   shared, a,
                                   kLstm ? "LSTM persistent backward" : "GRU persistent backward");
  } else {
    device::launch_cooperative(forward_kernel<scalar_t, Cell, J, K::L>, grid, kThreads,
                                   shared, a,
                                   kLstm ? "LSTM persistent forward" : "GRU persistent forward");
  }
}

// Calls f with the functor of `cell`, which must be a gated one: the kernels
// take G > 1 gates.
template <typename F>
void with_gated_cell(Cell cell, F&& f) {
  if (cell == Cell::Gru) return f(GruCell<ExactGateMath>{});
  if (cell == Cell::Lstm) return f(LstmCell<ExactGateMath>{});
  TORCH_CHECK(false, "rnn_fused: the GRU/LSTM persistent kernel takes the gated cells only");
}

template <typename scalar_t, bool kBackward>
void launch_with_units(const Args<scalar_t>& a, Cell cell, int units) {
  if (a.batch * a.hidden == 0) return;  // nothing to compute
  with_gated_cell(cell, [&](auto c) {
    using Cell = decltype(c);
    switch (units) {
      case 1: return launch<scalar_t, Cell, 1, kBackward>(a);
      case 2: return launch<scalar_t, Cell, 2, kBackward>(a);
      case 4: return launch<scalar_t, Cell, 4, kBackward>(a);
    }
    TORCH_CHECK(false, "rnn_fused: no persistent GRU/LSTM kernel with ", units,
                " hidden units per block");
  });
}

template <typename scalar_t>
Args<scalar_t> common_args(const LayerParams& p) {
  Args<scalar_t> a{};
  a.steps = p.steps;
  a.batch = p.batch;
  a.hidden = p.hidden;
  a.reverse = p.reverse;
  a.w_hh = p.w_hh.data_ptr<scalar_t>();
  a.mask = p.mask.defined() ? p.mask.data_ptr<scalar_t>() : nullptr;
  return a;
}

template <typename scalar_t>
const scalar_t* pointer(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<scalar_t>() : nullptr;
}

template <typename scalar_t>
scalar_t* mutable_pointer(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<scalar_t>() : nullptr;
}

}  // namespace gated_persistent

template <typename scalar_t>
int gated_persistent_units(Cell cell, int64_t batch, int64_t hidden, std::string* why) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr int64_t kMaxGateRows =
      int64_t(gated_persistent::kWarps) * 32 * gated_persistent::backward_lane_span<acc_t>();
  constexpr int64_t kMaxHiddenAt4 =
      int64_t(gated_persistent::kWarps) * 32 * gated_persistent::forward_lane_span<acc_t, 4>();
  constexpr int64_t kMaxOutputs =
      int64_t(gated_persistent::kOutputsPerThread) * gated_persistent::kThreads;
  int units = 0;
  if (batch * hidden == 0) {
    units = 1;  // nothing to launch
  } else {
    gated_persistent::with_gated_cell(cell, [&](auto c) {
      units = gated_persistent::choose_units<scalar_t, decltype(c)>(batch, hidden);
    });
  }
  if (why != nullptr) {
    const int sms = current_device_properties().multiProcessorCount;
    *why = units > 0
               ? "the persistent kernel, " + std::to_string(units) + " hidden units per block: " +
                     std::to_string((hidden + units - 1) / units) + " blocks resident on " +
                     std::to_string(sms) + " multiprocessors"
               : "the persistent kernel does not fit B=" + std::to_string(batch) + ", H=" +
                     std::to_string(hidden) + " on this GPU (" + std::to_string(sms) +
                     " multiprocessors): its ceil(H / J) blocks of J = 1, 2 or 4 hidden units "
                     "must all be resident at once, with G·H <= " +
                     std::to_string(kMaxGateRows) + " gate rows (backward) and, at J = 4, H <= " +
                     std::to_string(kMaxHiddenAt4) + " (forward) in this dtype, and B·J <= " +
                     std::to_string(kMaxOutputs);
  }
  return units;
}

template <typename scalar_t>
void gated_persistent_forward(const ForwardParams& p, const GatedForwardBuffers& b, int units) {
  using gated_persistent::mutable_pointer;
  using gated_persistent::pointer;
  auto a = gated_persistent::common_args<scalar_t>(p);
  a.x_gates = pointer<scalar_t>(b.x_gates);
  a.h_bias = pointer<scalar_t>(p.h_bias);
  a.hx = pointer<scalar_t>(p.hx);
  a.cx = pointer<scalar_t>(p.cx);
  a.reset_h = pointer<scalar_t>(p.reset_h);
  a.reset_c = pointer<scalar_t>(p.reset_c);
  a.output = mutable_pointer<scalar_t>(b.output);
  a.cells = mutable_pointer<scalar_t>(b.cells);
  a.saved = mutable_pointer<scalar_t>(b.saved);
  a.carries = mutable_pointer<scalar_t>(b.carries);
  a.vector_loads = device::aligned16(a.hx) && device::aligned16(a.carries);
  gated_persistent::launch_with_units<scalar_t, false>(a, p.cell, units);
}

template <typename scalar_t>
void gated_persistent_backward(const BackwardParams& p, const GatedBackwardBuffers& b,
                               int units) {
  using acc_t = at::opmath_type<scalar_t>;
  using gated_persistent::mutable_pointer;
  using gated_persistent::pointer;
  auto a = gated_persistent::common_args<scalar_t>(p);
  a.grad_output = pointer<scalar_t>(b.grad_output);
  a.grad_last_h = pointer<scalar_t>(p.grad_last_h);
  a.grad_cells = pointer<scalar_t>(p.grad_cells);
  a.grad_last_c = pointer<scalar_t>(p.grad_last_c);
  a.saved_in = pointer<scalar_t>(p.saved);
  a.cells_in = pointer<scalar_t>(p.cells);
  a.h_read = pointer<scalar_t>(b.h_read);
  a.c_read = pointer<scalar_t>(b.c_read);
  a.grad_x_gates = mutable_pointer<scalar_t>(b.grad_x_gates);
  a.grad_h_gates = mutable_pointer<scalar_t>(b.grad_h_gates);
  a.grad_h_first = mutable_pointer<scalar_t>(b.grad_h_first);
  a.grad_c_first = mutable_pointer<scalar_t>(b.grad_c_first);
  a.grad_reset_h = mutable_pointer<acc_t>(b.grad_reset_h);
  a.grad_reset_c = mutable_pointer<acc_t>(b.grad_reset_c);
  a.vector_loads = device::aligned16(a.grad_h_gates);
  gated_persistent::launch_with_units<scalar_t, true>(a, p.cell, units);
}

}  // namespace rnn_fused
