#include "gated_launch.cuh"

namespace rnn_fused {
RNN_FUSED_GATED_PERSISTENT_ENTRY_POINTS(, c10::Half)
}  // namespace rnn_fused
