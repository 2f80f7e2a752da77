#include "one_gate_launch.cuh"

namespace rnn_fused {
RNN_FUSED_PERSISTENT_ENTRY_POINTS(, c10::BFloat16)
}  // namespace rnn_fused
