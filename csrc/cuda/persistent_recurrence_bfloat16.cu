// The persistent recurrence for bfloat16, in its own translation unit so that the
// dtypes compile in parallel.
#include "persistent_launch.cuh"

namespace rnn_fused {
RNN_FUSED_PERSISTENT_ENTRY_POINTS(, c10::BFloat16)
}  // namespace rnn_fused
