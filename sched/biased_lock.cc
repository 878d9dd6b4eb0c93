#include "weft/sched/biased_lock.h"

#include <sched.h>

namespace weft {

// About 1-2 us of pause instructions: longer than any critical section of a running holder.
constexpr int kSpinsBeforeYield = 256;

void BiasedLock::lock_shared() {
  std::uint64_t owner = owner_.load(std::memory_order_acquire);
  while (owner != kRevoked) {
    if (owner_.compare_exchange_weak(owner, kRevoked, std::memory_order_acq_rel)) {
      // We revoked it. The owner (if there was one) may be inside without having fenced:
      // make every thread fence, then wait for it to leave.
      if (owner != kUnowned) {
        internal::heavy_fence();
        while (busy_.load(std::memory_order_acquire)) SpinLock::pause();
      }
      revoked_done_.store(true, std::memory_order_release);
      break;
    }
  }
  while (!revoked_done_.load(std::memory_order_acquire)) SpinLock::pause();
  // Spin briefly, then give the CPU away between attempts: when the holder's thread has been
  // preempted (more runnable threads than CPUs), spinning on would only burn its time slice.
  for (int spins = 0; !spin_.try_lock(); ++spins) {
    if (spins < kSpinsBeforeYield) {
      SpinLock::pause();
    } else {
      sched_yield();
    }
  }
}

}  // namespace weft
