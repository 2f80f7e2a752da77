// What the current GPU can hold of a kernel at once, asked of the driver once
// per device and configuration and cached. Every call plans; asking the driver
// each time cost as much as a short layer, and cudaFuncSetAttribute on every call
// let two host threads lower the shared-memory limit under each other's launch.
// Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rnn_fused {

// The most blocks a cluster may have on Hopper (with the non-portable opt-in,
// which prepare_kernel grants every clustered kernel).
constexpr int64_t kMaxClusterBlocks = 16;

// Blocks of `kernel` (a __global__ function) resident per multiprocessor with
// `threads` threads and `shared` bytes of dynamic shared memory; 0 where
// `shared` exceeds the device's per-block opt-in limit.
int resident_blocks_per_sm(const void* kernel, int threads, size_t shared);

// Clusters of `cluster` blocks of `kernel` resident at once; 0 where none fits.
int resident_clusters(const void* kernel, int threads, size_t shared, int cluster);

}  // namespace rnn_fused
