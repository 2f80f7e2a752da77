// FloatVec<kLanes>: kLanes floats in one vector register, over the vector
// extensions of GCC and Clang, so that one kernel compiles to SSE2 or NEON (4
// lanes), AVX2 (8) or AVX-512 (16) inside on_cpu_isa's functions (isa.h). No
// intrinsics: GCC inlines an always_inline callee into a kernel's own body
// before the kernel into an ISA's function, so a callee with a target of its
// own (AVX-512's masked moves) fails to compile there.
#pragma once

#include <cstdint>
#include <cstring>
#include <utility>

#include "isa.h"

namespace rnn_fused {

template <int kLanes>
struct FloatVec {
  typedef float Raw __attribute__((vector_size(4 * kLanes)));
  Raw raw;

  static RNN_FUSED_ISA_KERNEL FloatVec zero() { return {Raw{}}; }
  // x − 0 is x for every x, so the subtraction folds away; x + 0 is not (x = −0),
  // and would cost an add at every broadcast.
  static RNN_FUSED_ISA_KERNEL FloatVec broadcast(float x) { return {x - Raw{}}; }
  static RNN_FUSED_ISA_KERNEL FloatVec load(const float* p) {
    FloatVec v;
    std::memcpy(&v.raw, p, sizeof(Raw));
    return v;
  }
  RNN_FUSED_ISA_KERNEL void store(float* p) const { std::memcpy(p, &raw, sizeof(Raw)); }
  // this + a·b, as one fused multiply-add where the ISA has one (GCC and Clang
  // contract the expression).
  RNN_FUSED_ISA_KERNEL FloatVec fma(FloatVec a, FloatVec b) const { return {raw + a.raw * b.raw}; }
  RNN_FUSED_ISA_KERNEL FloatVec operator+(FloatVec b) const { return {raw + b.raw}; }

  // The lanes of the low (kHigh false) or high halves of a and b, interleaved:
  // a0 b0 a1 b1 ... (GCC from 12 and Clang have __builtin_shufflevector).
  template <bool kHigh, int... I>
  static RNN_FUSED_ISA_KERNEL FloatVec zip(FloatVec a, FloatVec b,
                                           std::integer_sequence<int, I...>) {
    constexpr int kFirst = kHigh ? kLanes / 2 : 0;
    return {__builtin_shufflevector(a.raw, b.raw, (kFirst + I / 2 + I % 2 * kLanes)...)};
  }

  // Lanes [0, count) of p, zeros past them; count may lie outside [0, kLanes].
  // Nothing past the lanes is read: a partial vector passes through the stack,
  // which only the edges of a matrix pay.
  static RNN_FUSED_ISA_KERNEL FloatVec load_first(const float* p, int64_t count) {
    if (count >= kLanes) return load(p);
    float lanes[kLanes] = {};
    if (count > 0) std::memcpy(lanes, p, count * sizeof(float));
    return load(lanes);
  }
  RNN_FUSED_ISA_KERNEL void store_first(float* p, int64_t count) const {
    if (count >= kLanes) return store(p);
    float lanes[kLanes];
    store(lanes);
    if (count > 0) std::memcpy(p, lanes, count * sizeof(float));
  }
};

// The kLanes × kLanes block whose row k is r[k], transposed in registers:
// log2(kLanes) rounds of interleaving row k with row k + kLanes/2.
template <int kLanes>
RNN_FUSED_ISA_KERNEL inline void transpose_in_registers(FloatVec<kLanes> (&r)[kLanes]) {
  using V = FloatVec<kLanes>;
  constexpr auto lanes = std::make_integer_sequence<int, kLanes>{};
#pragma GCC unroll 4
  for (int round = 1; round < kLanes; round *= 2) {
    V next[kLanes];
#pragma GCC unroll 16
    for (int k = 0; k < kLanes / 2; ++k) {
      next[2 * k] = V::template zip<false>(r[k], r[k + kLanes / 2], lanes);
      next[2 * k + 1] = V::template zip<true>(r[k], r[k + kLanes / 2], lanes);
    }
#pragma GCC unroll 16
    for (int k = 0; k < kLanes; ++k) r[k] = next[k];
  }
}

}  // namespace rnn_fused
