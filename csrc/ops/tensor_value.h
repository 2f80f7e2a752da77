// A value type through which the cells' own step templates (cells/*.h) run on
// whole tensors in ATen ops, so that autograd records them: the differentiable
// formulation (double_backward.cpp) takes each cell's equations from the one
// place the kernels take them, not from a second copy. A value is a tensor, or
// a plain number where a cell writes a constant (T(1), a GRU's absent b_hn).
#pragma once

#include <utility>

#include <ATen/TensorOperators.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/relu.h>
#include <ATen/ops/rsub.h>
#include <ATen/ops/sigmoid.h>
#include <ATen/ops/tanh.h>

#include "../cells/activation.h"

namespace rnn_fused {

class TensorValue {
 public:
  TensorValue() = default;
  TensorValue(double number) : number_(number) {}  // NOLINT: cells write T(1)
  TensorValue(at::Tensor tensor) : tensor_(std::move(tensor)) {}  // NOLINT

  bool is_tensor() const { return tensor_.defined(); }
  const at::Tensor& tensor() const { return tensor_; }

  // Adding a constant zero (a GRU's absent b_hn) records no op: the graph that
  // create_graph differentiates would otherwise carry one more node per step.
  friend TensorValue operator+(const TensorValue& a, const TensorValue& b) {
    if (!a.is_tensor()) {
      return b.is_tensor() ? b.plus(a.number_) : TensorValue(a.number_ + b.number_);
    }
    return b.is_tensor() ? TensorValue(a.tensor_ + b.tensor_) : a.plus(b.number_);
  }
  friend TensorValue operator-(const TensorValue& a, const TensorValue& b) {
    if (!a.is_tensor()) return b.is_tensor() ? TensorValue(at::rsub(b.tensor_, a.number_))
                                             : TensorValue(a.number_ - b.number_);
    return b.is_tensor() ? TensorValue(a.tensor_ - b.tensor_) : TensorValue(a.tensor_ - b.number_);
  }
  friend TensorValue operator*(const TensorValue& a, const TensorValue& b) {
    if (!a.is_tensor()) return b.is_tensor() ? TensorValue(b.tensor_ * a.number_)
                                             : TensorValue(a.number_ * b.number_);
    return b.is_tensor() ? TensorValue(a.tensor_ * b.tensor_) : TensorValue(a.tensor_ * b.number_);
  }

 private:
  TensorValue plus(double number) const {
    return number == 0 ? *this : TensorValue(tensor_ + number);
  }

  at::Tensor tensor_;
  double number_ = 0;
};

// The gate nonlinearities on tensors, as a gate-math policy (gate_math.h).
struct TensorGateMath {
  static TensorValue tanh(const TensorValue& a) { return at::tanh(a.tensor()); }
  static TensorValue sigmoid(const TensorValue& a) { return at::sigmoid(a.tensor()); }
};

// ReLU's scalar form branches on its argument; on tensors it is one op.
template <>
inline TensorValue ReluAct::apply<TensorValue>(TensorValue a) {
  return at::relu(a.tensor());
}

}  // namespace rnn_fused
