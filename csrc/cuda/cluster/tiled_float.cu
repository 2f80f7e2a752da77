#include "tiled_launch.cuh"

namespace rnn_fused {
RNN_FUSED_TILED_ENTRY_POINTS(, float)
}  // namespace rnn_fused
