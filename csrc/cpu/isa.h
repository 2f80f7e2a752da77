// The CPU's vector instruction set, chosen at run time. The extension is built
// for the baseline ISA (no -march flags, so that it loads anywhere: SSE2 on
// x86-64, NEON on aarch64). A hot loop is written once, as an `omp simd` loop
// or over FloatVec (simd.h), and on_cpu_isa compiles it once per ISA inside a
// function that carries that ISA's target attribute. The x86 twins exist on x86
// only; everything outside this header is ISA-neutral.
#pragma once

namespace rnn_fused {

#if defined(__x86_64__) || defined(__i386__)
#define RNN_FUSED_X86 1
#define RNN_FUSED_TARGET_AVX2 __attribute__((target("avx2,fma")))
// 512-bit vectors preferred: GCC otherwise vectorizes the loops 256 bits wide.
#define RNN_FUSED_TARGET_AVX512 \
  __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma,prefer-vector-width=512")))
#else
#define RNN_FUSED_X86 0
#endif

// In order: a CPU that has one has those before it.
enum class CpuIsa { kBaseline = 0, kAvx2 = 1, kAvx512 = 2 };

// The ISA the CPU kernels run: the best this CPU has, or a lower one asked for
// by RNN_FUSED_CPU_ISA (read on first use) or set_cpu_isa (tests, benchmarks).
CpuIsa cpu_isa();
// The best this CPU has.
CpuIsa best_cpu_isa();
// 'avx512', 'avx2', and 'baseline' (which is NEON on aarch64).
const char* isa_name(CpuIsa isa);

// Floats in one of the ISA's vectors, and its vector registers (x86 has 16 up
// to AVX2, AArch64 32).
constexpr int float_lanes(CpuIsa isa) {
  return isa == CpuIsa::kAvx512 ? 16 : isa == CpuIsa::kAvx2 ? 8 : 4;
}
constexpr int vector_registers(CpuIsa isa) {
  return isa == CpuIsa::kAvx512 || !RNN_FUSED_X86 ? 32 : 16;
}

// Whether the register-tile kernels (small_gemm.h, few_features.cpp) run on
// the ISA: not on x86's baseline, SSE2 with no FMA and 16 registers.
constexpr bool has_tiles(CpuIsa isa) { return isa != CpuIsa::kBaseline || !RNN_FUSED_X86; }

// A compile-time ISA.
template <CpuIsa kIsa>
struct Isa {
  static constexpr CpuIsa isa = kIsa;
  static constexpr int kFloatLanes = float_lanes(kIsa);
  static constexpr int kRegisters = vector_registers(kIsa);
};

// What on_cpu_isa's kernel, and every function it calls for the loops, must
// be: inlined into the ISA's function, rather than compiled once for the
// baseline.
#define RNN_FUSED_ISA_KERNEL __attribute__((always_inline))

// Calls kernel(Isa<isa>{}) (an RNN_FUSED_ISA_KERNEL lambda), compiled for that ISA.
template <typename Kernel>
void on_cpu_isa(CpuIsa isa, Kernel&& kernel) {
  switch (isa) {
#if RNN_FUSED_X86
    case CpuIsa::kAvx512:
      return [&]() RNN_FUSED_TARGET_AVX512 { kernel(Isa<CpuIsa::kAvx512>{}); }();
    case CpuIsa::kAvx2:
      return [&]() RNN_FUSED_TARGET_AVX2 { kernel(Isa<CpuIsa::kAvx2>{}); }();
#endif
    default:
      return kernel(Isa<CpuIsa::kBaseline>{});
  }
}

}  // namespace rnn_fused
