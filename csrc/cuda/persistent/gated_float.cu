#include "gated_launch.cuh"

namespace rnn_fused {
RNN_FUSED_GATED_PERSISTENT_ENTRY_POINTS(, float)
}  // namespace rnn_fused
