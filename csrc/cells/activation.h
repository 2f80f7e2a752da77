// The recurrent nonlinearities. Each exposes apply() and the derivative
// expressed through the activation's own output, so backward needs only the
// saved outputs h_t, never the pre-activations.
#pragma once

#include <cmath>
#include <string_view>

#include <c10/macros/Macros.h>
#include <c10/util/Exception.h>

namespace rnn_fused {

enum class Activation { Tanh, Relu, Identity };

inline Activation parse_activation(std::string_view name) {
  if (name == "tanh") return Activation::Tanh;
  if (name == "relu") return Activation::Relu;
  if (name == "identity") return Activation::Identity;
  TORCH_CHECK_VALUE(false, "rnn_fused: unknown nonlinearity '", name,
                    "'; expected 'tanh', 'relu' or 'identity'");
}

struct TanhAct {
  template <typename T> C10_HOST_DEVICE static T apply(T a) { return std::tanh(a); }
  template <typename T> C10_HOST_DEVICE static T grad_from_output(T h) { return T(1) - h * h; }
};

struct ReluAct {
  template <typename T> C10_HOST_DEVICE static T apply(T a) { return a > T(0) ? a : T(0); }
  template <typename T> C10_HOST_DEVICE static T grad_from_output(T h) { return h > T(0) ? T(1) : T(0); }
};

struct IdentityAct {
  template <typename T> C10_HOST_DEVICE static T apply(T a) { return a; }
  template <typename T> C10_HOST_DEVICE static T grad_from_output(T) { return T(1); }
};

// tanh as a gate-math policy evaluates it (gate_math.h): the CPU's
// vectorizable fast_tanh in float32, std::tanh elsewhere.
template <typename Math>
struct MathTanh : TanhAct {
  template <typename T> C10_HOST_DEVICE static T apply(T a) { return Math::tanh(a); }
};

// The activation picked at run time, for a kernel that would otherwise be
// compiled once per activation (the persistent kernel: 4 dtypes × 4 row counts
// × 2 directions already).
struct RuntimeAct {
  Activation kind;
  template <typename T> C10_HOST_DEVICE T apply(T a) const {
    switch (kind) {
      case Activation::Tanh: return TanhAct::apply(a);
      case Activation::Relu: return ReluAct::apply(a);
      default: return IdentityAct::apply(a);
    }
  }
  template <typename T> C10_HOST_DEVICE T grad_from_output(T h) const {
    switch (kind) {
      case Activation::Tanh: return TanhAct::grad_from_output(h);
      case Activation::Relu: return ReluAct::grad_from_output(h);
      default: return IdentityAct::grad_from_output(h);
    }
  }
};

// Calls f with the functor type of `act` as a value, e.g.
// dispatch_activation(act, [&](auto tag) { using Act = decltype(tag); ... });
template <typename F>
decltype(auto) dispatch_activation(Activation act, F&& f) {
  switch (act) {
    case Activation::Tanh: return f(TanhAct{});
    case Activation::Relu: return f(ReluAct{});
    case Activation::Identity: return f(IdentityAct{});
  }
  TORCH_CHECK(false, "rnn_fused: unhandled activation");
}

}  // namespace rnn_fused
