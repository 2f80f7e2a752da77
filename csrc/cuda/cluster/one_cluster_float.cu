#include "one_cluster_launch.cuh"

namespace rnn_fused {
RNN_FUSED_CLUSTER_ENTRY_POINTS(, float)
}  // namespace rnn_fused
