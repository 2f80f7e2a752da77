// Code paths for the CPU's instruction set, chosen at run time: the extension is
// built for the baseline ISA (no -march flags, so that it loads anywhere), and
// the hot loops carry an AVX-512 twin.
#pragma once

namespace rnn_fused {

// For functions compiled for AVX-512, with 512-bit vectors preferred: GCC
// otherwise vectorizes the pointwise loops 256 bits wide.
#define RNN_FUSED_AVX512 \
  __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma,prefer-vector-width=512")))

inline bool has_avx512() {
  static const bool supported = __builtin_cpu_supports("avx512f") &&
                                __builtin_cpu_supports("avx512dq") &&
                                __builtin_cpu_supports("avx512bw") &&
                                __builtin_cpu_supports("avx512vl");
  return supported;
}

}  // namespace rnn_fused
