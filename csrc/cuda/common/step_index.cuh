// Where step s of a one-launch kernel's loop sits in time.
#pragma once

#include <cstdint>

namespace rnn_fused {
namespace device {

// Step s of a kernel's loop: q, its position in processing order; t, its time
// index; link, the step whose vector it multiplies (forward: the previous
// processed step; backward: the next one), where has_link.
template <bool kBackward>
struct StepIndex {
  int64_t q, t, link;
  bool has_link;
  __device__ __forceinline__ StepIndex(int64_t s, int64_t steps, bool reverse) {
    q = kBackward ? steps - 1 - s : s;
    t = reverse ? steps - 1 - q : q;
    has_link = kBackward ? q < steps - 1 : true;
    link = kBackward ? (reverse ? t - 1 : t + 1) : (reverse ? t + 1 : t - 1);
  }
};

}  // namespace device
}  // namespace rnn_fused
