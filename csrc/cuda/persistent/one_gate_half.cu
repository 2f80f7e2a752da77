#include "one_gate_launch.cuh"

namespace rnn_fused {
RNN_FUSED_PERSISTENT_ENTRY_POINTS(, c10::Half)
}  // namespace rnn_fused
