// Asymmetric fences: a store-load ordering whose cost is paid entirely by the rare side, for
// primitives (sync/, channel/, BiasedLock). light_fence() is a compiler barrier on the fast
// path (an unlock); heavy_fence() is a membarrier(2) system call on the slow path (a locker
// about to park, a thread revoking a lock's bias), which makes every
// running thread of the process pass a full barrier. Together they give what a full fence on
// both sides gives (Dekker: "I publish, then look at what you published" on both sides, and at
// least one of us sees the other), with no atomic read-modify-write on the fast path.
// Where membarrier is unavailable, both are full fences (std::atomic_thread_fence(seq_cst)).
#ifndef WEFT_SCHED_ASYMMETRIC_FENCE_H_
#define WEFT_SCHED_ASYMMETRIC_FENCE_H_

#include <atomic>

namespace weft::internal {

// Whether heavy fences are membarrier(2) calls: registers the process on the first call (which
// static initialization makes before main). Settled once; never changes afterwards.
bool membarrier_ready();

// A copy of membarrier_ready() for light_fence(), set when registration succeeds. A light fence
// that reads false is a full fence, which is correct with either kind of heavy fence.
extern std::atomic<bool> g_membarrier_ready;

inline void light_fence() {
  if (g_membarrier_ready.load(std::memory_order_relaxed)) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
  } else {
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
}

void heavy_fence();

}  // namespace weft::internal

#endif  // WEFT_SCHED_ASYMMETRIC_FENCE_H_
