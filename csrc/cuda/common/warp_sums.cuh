// Sums of a warp's partial products over its 32 lanes: butterflies that halve
// the values a lane carries at each of the first log2 J levels.
#pragma once


namespace rnn_fused {
namespace device {

template <int J>
constexpr int log2_rows() {
  static_assert(J == 1 || J == 2 || J == 4 || J == 8 || J == 16 || J == 32 || J == 64,
                "J must be a power of two up to 64");
  return J == 1 ? 0 : J == 2 ? 1 : J == 4 ? 2 : J == 8 ? 3 : J == 16 ? 4 : J == 32 ? 5 : 6;
}

// One butterfly level that halves the values a lane carries: lanes with the
// `16 >> kLevel` bit set keep the upper half of acc and send the lower. A
// template per level, so that every index is a constant and acc stays in
// registers (a runtime level count left J ≥ 16 accumulators in local memory).
template <int kLevel, int J, typename acc_t>
__device__ __forceinline__ void fold_rows(acc_t (&acc)[J], int lane) {
  if constexpr (kLevel < log2_rows<J>()) {
    constexpr int kOffset = 16 >> kLevel;
    constexpr int kHalf = J >> (kLevel + 1);
    const bool upper = lane & kOffset;
#pragma unroll
    for (int i = 0; i < kHalf; ++i) {
      const acc_t send = upper ? acc[i] : acc[i + kHalf];
      const acc_t keep = upper ? acc[i + kHalf] : acc[i];
      acc[i] = keep + __shfl_xor_sync(0xffffffffu, send, kOffset);
    }
    fold_rows<kLevel + 1>(acc, lane);
  }
}

// Sums acc[j] over the warp's 32 lanes. Each of the first log2(J) butterfly
// levels halves the values a lane carries, so J sums cost about J shuffles
// rather than 5·J. On return acc[0] holds row j = lane >> (5 − log2 J).
template <int J, typename acc_t>
__device__ __forceinline__ void warp_sum_rows(acc_t (&acc)[J], int lane) {
  static_assert(J <= 32, "a warp's five lane bits fold at most 32 rows");
  fold_rows<0>(acc, lane);
#pragma unroll
  for (int level = log2_rows<J>(); level < 5; ++level) {
    acc[0] += __shfl_xor_sync(0xffffffffu, acc[0], 16 >> level);
  }
}

}  // namespace device
}  // namespace rnn_fused
