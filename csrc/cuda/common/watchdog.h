// The one-launch kernels' watchdog, host side (the device side is
// common/waits.cuh): the budget of every wait, the tests' stall knob
// (rnn_fused::set_watchdog), and the check of a launch's abort record.
#pragma once

#include <cstdint>
#include <string>

#include <ATen/core/Tensor.h>

namespace rnn_fused {

// Zero, or what the first block to time out saw.
struct AbortRecord {
  unsigned long long aborted, step, block;
};

struct Watchdog {
  AbortRecord* record;
  unsigned long long budget_ns;
  // For tests: block stall_block does not arrive after step stall_step; -1: none.
  int stall_block;
  long long stall_step;
};

// The watchdog a launch gets, its abort record at `record` (zeroed).
Watchdog current_watchdog(AbortRecord* record);

// Raises RuntimeError naming `kernel`, the sizes and the step where `record`
// (the launch's abort record, on the device) says that the launch aborted.
// Waits for the launch. Skipped while the stream is captured into a CUDA graph,
// which cannot read anything back.
void check_watchdog(const at::Tensor& record, const std::string& kernel, int64_t steps,
                    int64_t batch, int64_t hidden, at::ScalarType dtype);

}  // namespace rnn_fused
