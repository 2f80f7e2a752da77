#include "isa.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <iterator>
#include <string>
#include <vector>

#include <c10/util/Exception.h>
#include <c10/util/StringUtil.h>
#include <torch/library.h>

namespace rnn_fused {
namespace {

constexpr const char* kIsaVariable = "RNN_FUSED_CPU_ISA";
constexpr CpuIsa kIsas[] = {CpuIsa::kAvx512, CpuIsa::kAvx2, CpuIsa::kBaseline};

// The ISAs this CPU runs, best first.
std::vector<std::string> supported_names() {
  std::vector<std::string> names;
  for (CpuIsa isa : kIsas) {
    if (isa <= best_cpu_isa()) names.emplace_back(isa_name(isa));
  }
  return names;
}

// `name` as an ISA this CPU runs; `what` names the setting in the message.
CpuIsa parse(const std::string& name, const char* what) {
  const CpuIsa* isa = std::find_if(std::begin(kIsas), std::end(kIsas),
                                   [&](CpuIsa i) { return name == isa_name(i); });
  TORCH_CHECK_VALUE(isa != std::end(kIsas), "rnn_fused: ", what,
                    " must be 'avx512', 'avx2' or 'baseline', got '", name, "'");
  TORCH_CHECK_VALUE(*isa <= best_cpu_isa(), "rnn_fused: ", what, " asks for '", name,
                    "', which this CPU does not have; it has ", c10::Join(", ", supported_names()));
  return *isa;
}

// RNN_FUSED_CPU_ISA, read on first use only, as RNN_FUSED_BACKEND (plan.cpp).
std::atomic<int>& current() {
  static std::atomic<int> isa{[] {
    const char* raw = std::getenv(kIsaVariable);
    return static_cast<int>(raw == nullptr || *raw == '\0' ? best_cpu_isa()
                                                           : parse(raw, kIsaVariable));
  }()};
  return isa;
}

std::string cpu_isa_op() { return isa_name(cpu_isa()); }

void set_cpu_isa_op(const std::string& name) {
  current().store(static_cast<int>(parse(name, "set_cpu_isa")));
}

}  // namespace

CpuIsa best_cpu_isa() {
#if RNN_FUSED_X86
  static const CpuIsa best = [] {
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
      return CpuIsa::kAvx512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return CpuIsa::kAvx2;
    return CpuIsa::kBaseline;
  }();
  return best;
#else
  return CpuIsa::kBaseline;
#endif
}

CpuIsa cpu_isa() { return static_cast<CpuIsa>(current().load(std::memory_order_relaxed)); }

const char* isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kAvx512: return "avx512";
    case CpuIsa::kAvx2: return "avx2";
    default: return "baseline";
  }
}

TORCH_LIBRARY_FRAGMENT(rnn_fused, m) {
  // The ISA the CPU kernels run ('avx512', 'avx2' or 'baseline', which is NEON
  // on aarch64), those this CPU has (best first), and a switch to one of them.
  m.def("cpu_isa() -> str", &cpu_isa_op);
  m.def("cpu_isas() -> str[]", &supported_names);
  m.def("set_cpu_isa(str isa) -> ()", &set_cpu_isa_op);
}

}  // namespace rnn_fused
