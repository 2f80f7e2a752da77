// The CUDA kernels of the layer ops (Elman and gated).
#include <torch/library.h>

#include "../ops/gated_layer.h"
#include "../ops/layer.h"
#include "recurrence.h"

namespace rnn_fused {

TORCH_LIBRARY_IMPL(rnn_fused, CUDA, m) {
  m.impl("rnn_layer_forward", &layer_forward<CudaRecurrence>);
  m.impl("rnn_layer_backward", &layer_backward<CudaRecurrence>);
  m.impl("gated_layer_forward", &gated_layer_forward<CudaRecurrence>);
  m.impl("gated_layer_backward", &gated_layer_backward<CudaRecurrence>);
}

}  // namespace rnn_fused
