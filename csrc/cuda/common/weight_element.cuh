// The element of W_hh that a block's row j and lane's column k stand for: the
// forward multiplies by W_hh, the backward by W_hhᵀ. Shared by the FMA, the
// half-precision and the TF32 products' weight loads.
#pragma once

#include <cstdint>

namespace rnn_fused {
namespace device {

// W_hh[j][k] forward, W_hh[k][j] backward; zero beyond H, so that padded rows
// and columns add nothing.
template <bool kBackward, typename scalar_t>
__device__ __forceinline__ scalar_t weight_element(const scalar_t* w_hh, int64_t hidden,
                                                   int64_t j, int64_t k) {
  if (j >= hidden || k >= hidden) return scalar_t(0);
  return kBackward ? w_hh[k * hidden + j] : w_hh[j * hidden + k];
}

}  // namespace device
}  // namespace rnn_fused
