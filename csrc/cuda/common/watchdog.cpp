#include "watchdog.h"

#include <atomic>

#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGraphsC10Utils.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

namespace rnn_fused {
namespace {

// Far above any step's wait (microseconds), and above a time slice of a GPU
// shared with other processes.
constexpr double kDefaultSeconds = 10.0;

std::atomic<double> budget_seconds{kDefaultSeconds};
std::atomic<int64_t> stall_block{-1};
std::atomic<int64_t> stall_step{-1};

// rnn_fused::set_watchdog: the budget of every wait from now on (seconds > 0);
// for tests, block stall_block of the next launches does not arrive after step
// stall_step (-1: none).
void set_watchdog(double seconds, int64_t block, int64_t step) {
  TORCH_CHECK_VALUE(seconds > 0, "rnn_fused: the watchdog's budget must be positive, got ",
                    seconds, " s");
  budget_seconds = seconds;
  stall_block = block;
  stall_step = step;
}

}  // namespace

Watchdog current_watchdog(AbortRecord* record) {
  Watchdog w{};
  w.record = record;
  w.budget_ns = static_cast<unsigned long long>(budget_seconds.load() * 1e9);
  w.stall_block = static_cast<int>(stall_block.load());
  w.stall_step = stall_step.load();
  return w;
}

void check_watchdog(const at::Tensor& record, const std::string& kernel, int64_t steps,
                    int64_t batch, int64_t hidden, at::ScalarType dtype) {
  if (c10::cuda::currentStreamCaptureStatusMayInitCtx() != c10::cuda::CaptureStatus::None) {
    return;
  }
  const at::Tensor seen = record.to(at::kCPU);
  const int64_t* r = seen.data_ptr<int64_t>();
  TORCH_CHECK(r[0] == 0, "rnn_fused: the ", kernel, " kernel (", dtype, ", T=", steps,
              ", B=", batch, ", H=", hidden, ") timed out: block ", r[2], " waited more than ",
              budget_seconds.load(), " s for the other blocks after step ", r[1],
              ", so every block left and the call's results are invalid. The CUDA context "
              "is still usable; backend='per-step' avoids this kernel. Please report it.");
}

TORCH_LIBRARY_FRAGMENT(rnn_fused, m) {
  m.def("set_watchdog(float seconds, int stall_block=-1, int stall_step=-1) -> ()",
        &set_watchdog);
}

}  // namespace rnn_fused
