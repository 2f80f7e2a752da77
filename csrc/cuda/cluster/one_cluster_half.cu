#include "one_cluster_launch.cuh"

namespace rnn_fused {
RNN_FUSED_CLUSTER_ENTRY_POINTS(, c10::Half)
}  // namespace rnn_fused
