#include "gated_launch.cuh"

namespace rnn_fused {
RNN_FUSED_GATED_PERSISTENT_ENTRY_POINTS(, double)
}  // namespace rnn_fused
