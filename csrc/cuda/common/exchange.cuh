// The cluster kernels' exchange through distributed shared memory: the
// buffers' layout and the stores into a peer's shared memory.
#pragma once

#include <cstdint>
#include <cstring>

#include <ATen/OpMathType.h>

#include "mma_product.cuh"

namespace rnn_fused {
namespace device {

// The cluster kernel's dynamic shared memory: the partial sums; at J = 64 the
// block's W_hh fragments (mma_product.cuh); then two buffers of the tile's
// step vector in scalar_t, rows padded with zeros to whole lane spans and then
// by 16 bytes, so that the 8 rows of a tensor-core fragment (B in half
// precision, each 8-row half of A in TF32) start in different banks. Step s
// reads the buffer that step s − 1 filled while the peers fill the other; one
// cluster barrier per step then suffices, since a block writes a buffer only
// after every peer has passed the barrier that follows its last read of it.
// Every section is a multiple of 16 bytes (J·sizeof(acc_t) bytes per
// partial-sum row, J >= 8).
template <typename scalar_t, int J, int kLaneSpan>
struct ExchangeLayout {
  using acc_t = at::opmath_type<scalar_t>;
  __host__ __device__ static int64_t row_stride(int warps_k) {
    return int64_t(warps_k) * 32 * kLaneSpan + 16 / int64_t(sizeof(scalar_t));
  }
  __host__ __device__ static int64_t weights_offset(int warps_k, int64_t batch_tile) {
    return int64_t(warps_k) * batch_tile * J * int64_t(sizeof(acc_t));
  }
  // Whole 16-row tiles of the block's rows over every k-warp's slice.
  __host__ __device__ static int64_t weights_bytes(int warps_k) {
    return weights_in_shared<scalar_t, J>()
               ? int64_t(warps_k) * 32 * kLaneSpan * ((J + 15) / 16 * 16) *
                     int64_t(sizeof(scalar_t))
               : 0;
  }
  __host__ __device__ static int64_t buffers_offset(int warps_k, int64_t batch_tile) {
    return weights_offset(warps_k, batch_tile) + weights_bytes(warps_k);
  }
  // What each batch row of the tile adds: its partial sums and two buffer rows.
  __host__ __device__ static int64_t row_bytes(int warps_k) {
    return weights_offset(warps_k, 1) + 2 * row_stride(warps_k) * int64_t(sizeof(scalar_t));
  }
  __host__ __device__ static int64_t bytes(int warps_k, int64_t batch_tile) {
    return weights_bytes(warps_k) + batch_tile * row_bytes(warps_k);
  }
};

// Stores `value` at the same shared-memory offset as `local` in block `peer`
// of the cluster (DSMEM; this block too, where peer is its own rank).
template <typename scalar_t>
__device__ __forceinline__ void store_to_peer(scalar_t* local, scalar_t value, unsigned peer) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
  __trap();  // unreachable, as in cluster_barrier
#else
  const unsigned address = static_cast<unsigned>(__cvta_generic_to_shared(local));
  unsigned remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(address), "r"(peer));
  if constexpr (sizeof(scalar_t) == 2) {
    unsigned short bits;
    memcpy(&bits, &value, 2);
    asm volatile("st.shared::cluster.b16 [%0], %1;" ::"r"(remote), "h"(bits) : "memory");
  } else if constexpr (sizeof(scalar_t) == 4) {
    unsigned bits;
    memcpy(&bits, &value, 4);
    asm volatile("st.shared::cluster.b32 [%0], %1;" ::"r"(remote), "r"(bits) : "memory");
  } else {
    unsigned long long bits;
    memcpy(&bits, &value, 8);
    asm volatile("st.shared::cluster.b64 [%0], %1;" ::"r"(remote), "l"(bits) : "memory");
  }
#endif
}

// Stores `value` into each of the cluster's `blocks` blocks, this one
// included. Each block starts at its own rank so that the blocks' stores
// spread over the peers.
template <typename scalar_t>
__device__ __forceinline__ void store_to_cluster(scalar_t* local, scalar_t value,
                                                 unsigned blocks, unsigned rank) {
  for (unsigned i = 0; i < blocks; ++i) {
    store_to_peer(local, value, rank + i < blocks ? rank + i : rank + i - blocks);
  }
}

}  // namespace device
}  // namespace rnn_fused
