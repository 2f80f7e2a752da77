// Loads of the step vectors that other blocks wrote: past L1, in the widest
// vectors a lane span allows, converted to the accumulation type.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace rnn_fused {
namespace device {

// The lane spans' vector loads need 16-byte-aligned tensors.
inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Loads that bypass L1: rows written by other blocks in the previous step may
// share a cache line with this block's own stale reads.
template <typename scalar_t>
__device__ __forceinline__ scalar_t load_cg(const scalar_t* p) {
  if constexpr (sizeof(scalar_t) == 2) {
    const unsigned short bits = __ldcg(reinterpret_cast<const unsigned short*>(p));
    scalar_t v;
    memcpy(&v, &bits, 2);
    return v;
  } else {
    return __ldcg(p);
  }
}

// The widest load of up to 16 bytes that `bytes` (a power of two) is made of.
template <int bytes>
using chunk_t = std::conditional_t<
    bytes >= 16, uint4,
    std::conditional_t<bytes == 8, uint2,
                       std::conditional_t<bytes == 4, unsigned, unsigned short>>>;

// v[i] = span[i] for a whole, aligned lane span, in the widest loads, in the
// accumulation type. Global memory is read past L1 (kGlobal; see load_cg), the
// cluster kernel's exchange buffer from shared memory.
template <bool kGlobal, typename scalar_t, typename acc_t, int kLaneSpan>
__device__ __forceinline__ void load_span(acc_t (&v)[kLaneSpan], const scalar_t* span) {
  using chunk = chunk_t<kLaneSpan * sizeof(scalar_t)>;
  constexpr int kChunks = kLaneSpan * sizeof(scalar_t) / sizeof(chunk);
  chunk raw[kChunks];
  const chunk* src = reinterpret_cast<const chunk*>(span);
#pragma unroll
  for (int c = 0; c < kChunks; ++c) {
    if constexpr (kGlobal) {
      raw[c] = __ldcg(src + c);
    } else {
      raw[c] = src[c];
    }
  }
  scalar_t s[kLaneSpan];
  memcpy(s, raw, sizeof(raw));
#pragma unroll
  for (int i = 0; i < kLaneSpan; ++i) v[i] = static_cast<acc_t>(s[i]);
}

// v[i] = row[k0 + i] for k0 + i < H, else 0, in the accumulation type.
template <typename scalar_t, typename acc_t, int kLaneSpan>
__device__ __forceinline__ void load_lane(acc_t (&v)[kLaneSpan], const scalar_t* row, int k0,
                                          int64_t hidden, bool vector_loads) {
  if (vector_loads) {
    if (k0 < hidden) {
      load_span</*kGlobal=*/true>(v, row + k0);
    } else {
#pragma unroll
      for (int i = 0; i < kLaneSpan; ++i) v[i] = acc_t(0);
    }
    return;
  }
#pragma unroll
  for (int i = 0; i < kLaneSpan; ++i) {
    v[i] = k0 + i < hidden ? static_cast<acc_t>(load_cg(row + k0 + i)) : acc_t(0);
  }
}

}  // namespace device
}  // namespace rnn_fused
