#include "one_gate_launch.cuh"

namespace rnn_fused {
RNN_FUSED_PERSISTENT_ENTRY_POINTS(, float)
}  // namespace rnn_fused
