// How the blocks of a one-launch kernel wait for each other: the grid barrier
// (grid kernels), per-block step flags (the tiled cluster kernel), and the
// hardware cluster barrier.
//
// Every spin is bounded. A block whose wait outlasts the watchdog's budget
// raises the launch's abort record; every later wait of every block then gives
// up within a few hundred polls, the blocks leave (or, in a cluster, run their
// remaining steps without waiting, so that each cluster barrier is still met),
// and the host reads the record after the launch and raises a RuntimeError
// (../watchdog.h). No __trap: the CUDA context stays usable.
#pragma once

#include <cstdint>

#include "watchdog.h"

namespace rnn_fused {
namespace device {

// Block stall_block does not arrive after step stall_step (tests).
__device__ __forceinline__ bool stalls(const Watchdog& w, int64_t step) {
  return static_cast<int>(blockIdx.x) == w.stall_block && step == w.stall_step;
}

__device__ __forceinline__ unsigned long long load_acquire(const unsigned long long* p) {
  unsigned long long v;
  asm volatile("ld.acquire.gpu.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
  return v;
}

__device__ __forceinline__ void store_release(unsigned long long* p, unsigned long long v) {
  asm volatile("st.release.gpu.global.u64 [%0], %1;" ::"l"(p), "l"(v) : "memory");
}

__device__ __forceinline__ unsigned long long nanoseconds() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Waits (one thread) until *counter >= target, with acquire, for the other
// blocks to finish step `step`. Returns false where the launch has aborted, or
// where this wait outlasted the budget: then it raises the abort record,
// naming the step and this block.
__device__ __forceinline__ bool wait_at_least_slow(const unsigned long long* counter,
                                                unsigned long long target, const Watchdog& w,
                                                int64_t step) {
  const unsigned long long start = nanoseconds();
  for (unsigned polls = 0;; ++polls) {
    // The clock and the record every 256 polls: the common wait is a few.
    if (polls % 256 == 0) {
      if (*static_cast<volatile unsigned long long*>(&w.record->aborted) != 0) return false;
      if (nanoseconds() - start > w.budget_ns) {
        if (atomicCAS(&w.record->aborted, 0ull, 1ull) == 0ull) {
          w.record->step = static_cast<unsigned long long>(step);
          w.record->block = blockIdx.x + static_cast<unsigned long long>(blockIdx.y) * gridDim.x;
          __threadfence();
        }
        return false;
      }
    }
    if (load_acquire(counter) >= target) return true;
  }
}

__device__ __forceinline__ bool wait_at_least(const unsigned long long* counter,
                                              unsigned long long target, const Watchdog& w,
                                              int64_t step) {
  return load_acquire(counter) >= target || wait_at_least_slow(counter, target, w, step);
}

// Every block arrives after step `step`, then waits for all gridDim.x arrivals
// of this round (target). The fences make each block's step output visible
// before its arrival counts. Returns false, in every thread, where the launch
// aborted: a grid kernel's blocks then leave (none reads another's shared
// memory).
__device__ __forceinline__ bool grid_barrier(unsigned long long* counter,
                                             unsigned long long target, const Watchdog& w,
                                             int64_t step) {
  __syncthreads();
  int aborted = 0;
  if (threadIdx.x == 0) {
    __threadfence();
    if (!stalls(w, step)) atomicAdd(counter, 1ull);
    aborted = !wait_at_least(counter, target, w, step);
    __threadfence();
  }
  return __syncthreads_or(aborted) == 0;
}

// Every thread of every block of the cluster arrives and waits. Release and
// acquire at cluster scope order the step's global writes before the peers'
// reads of them (and make it a block barrier too). A hardware barrier that
// every thread of the cluster reaches once per step, so it needs no bound.
__device__ __forceinline__ void cluster_barrier() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
  // Unreachable: the planner refuses the cluster kernel below compute
  // capability 9.0, and a cluster launch would fail there anyway. The branch
  // only keeps builds for older architectures compiling.
  __trap();
#else
  asm volatile(
      "barrier.cluster.arrive.release.aligned;\n\t"
      "barrier.cluster.wait.acquire.aligned;" ::: "memory");
#endif
}

}  // namespace device
}  // namespace rnn_fused
