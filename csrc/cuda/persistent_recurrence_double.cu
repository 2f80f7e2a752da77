// The persistent recurrence for double, in its own translation unit so that the
// dtypes compile in parallel.
#include "persistent_launch.cuh"

namespace rnn_fused {
RNN_FUSED_PERSISTENT_ENTRY_POINTS(, double)
}  // namespace rnn_fused
