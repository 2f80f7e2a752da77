// The cells the engine knows, by the name the op takes (torch.nn's mode in lower
// case): each one's traits, read off its functor (elman.h, gru.h, lstm.h), and
// the dispatch from a cell picked at run time to its functor type. Adding a cell
// is its functor header and its entry here (docs/architecture.md).
#pragma once

#include <cstdint>
#include <iterator>
#include <string_view>

#include <c10/util/Exception.h>

#include "activation.h"
#include "elman.h"
#include "gate_math.h"
#include "gru.h"
#include "lstm.h"

namespace rnn_fused {

enum class Cell : uint8_t { RnnTanh, RnnRelu, RnnIdentity, Gru, Lstm };

// What the engine around a cell's pointwise step needs to know of it.
struct CellInfo {
  const char* name;
  int gates;                  // G: gate rows per hidden unit in W_ih and W_hh
  bool cell_state;            // carries c beside h (LSTM)
  int saved;                  // values saved per unit and step for the backward
  bool separate_hidden_grad;  // the hidden side's gate gradients differ (GRU)
  bool reads_prev_state;      // the backward reads the state its step read
  bool hidden_bias_apart;     // part of b_hh stays out of the projection (GRU's b_hn)
  bool elman;                 // the one-gate cell that the Elman kernels take
};

template <typename Functor>
constexpr CellInfo info_of(const char* name) {
  return {name,
          Functor::kGates,
          Functor::kHasCellState,
          Functor::kSaved,
          Functor::kSeparateHiddenGrad,
          Functor::kReadsPrevState,
          Functor::kHiddenBiasApart,
          Functor::kGates == 1};
}

// In Cell's order.
inline constexpr CellInfo kCells[] = {
    info_of<ElmanCell<TanhAct>>("rnn_tanh"),
    info_of<ElmanCell<ReluAct>>("rnn_relu"),
    info_of<ElmanCell<IdentityAct>>("rnn_identity"),
    info_of<GruCell<ExactGateMath>>("gru"),
    info_of<LstmCell<ExactGateMath>>("lstm"),
};

inline const CellInfo& info(Cell cell) { return kCells[static_cast<int>(cell)]; }

inline Cell parse_cell(std::string_view name) {
  for (int k = 0; k < static_cast<int>(std::size(kCells)); ++k) {
    if (name == kCells[k].name) return static_cast<Cell>(k);
  }
  TORCH_CHECK_VALUE(false, "rnn_fused: unknown cell '", name, "'; expected 'rnn_tanh', "
                    "'rnn_relu', 'rnn_identity', 'gru' or 'lstm'");
}

// The Elman cell's activation, the Activation that the one-launch kernels take.
inline Activation activation_of(Cell cell) {
  return cell == Cell::RnnRelu       ? Activation::Relu
         : cell == Cell::RnnIdentity ? Activation::Identity
                                     : Activation::Tanh;
}

// Calls f with the functor of `cell`, its nonlinearities evaluated by Math.
template <typename Math, typename F>
decltype(auto) dispatch_cell(Cell cell, F&& f) {
  switch (cell) {
    case Cell::RnnTanh: return f(ElmanCell<MathTanh<Math>>{});
    case Cell::RnnRelu: return f(ElmanCell<ReluAct>{});
    case Cell::RnnIdentity: return f(ElmanCell<IdentityAct>{});
    case Cell::Gru: return f(GruCell<Math>{});
    case Cell::Lstm: return f(LstmCell<Math>{});
  }
  TORCH_CHECK(false, "rnn_fused: unhandled cell");
}

}  // namespace rnn_fused
