// BiasedLock: a queue lock for primitives (sync/, channel/) that costs two plain stores on the
// one thread that uses it alone (all its tasks on one worker, or one plain thread), and is a
// SpinLock once a second thread has touched it.
//
// Why: on the machines weft targets an uncontended locked instruction costs ~5-8 ns, more than
// everything else a buffered put or a notify does. Tasks on one worker never run at the same
// time, so their primitive needs no atomic read-modify-write, as long as another thread can
// still get in safely.
//
// How (asymmetric Dekker, see weft/sched/asymmetric_fence.h):
//   owner's lock:    busy = 1; compiler fence; owner still me? -> inside (no CPU fence).
//   owner's unlock:  busy = 0 (release).
//   another thread:  owner = REVOKED (CAS); heavy_fence(), which makes every running thread
//                    pass a full barrier; wait for busy == 0; revoked_done = 1. From then on
//                    everyone, the old owner too, takes the SpinLock.
// Either the owner's busy = 1 is visible to the revoker (which waits), or the owner's re-check
// sees REVOKED (and it backs off to the SpinLock). The first thread to lock becomes the owner;
// the bias is revoked at most once per lock, for ~0.1-1 us. Without membarrier the lock is a
// plain SpinLock from the start.
//
// Like SpinLock it may be unlocked from another context of the same thread (park() releases it
// after switching away, on the same worker), which is all park() needs. Contended, it spins
// briefly and then yields the CPU between attempts. Never hold it across anything that blocks.
#ifndef WEFT_SCHED_BIASED_LOCK_H_
#define WEFT_SCHED_BIASED_LOCK_H_

#include <atomic>
#include <cstdint>

#include "weft/sched/asymmetric_fence.h"
#include "weft/sched/spin_lock.h"
#include "weft/task/current_task.h"

namespace weft {

class BiasedLock {
 public:
  BiasedLock()
      : owner_(internal::membarrier_ready() ? kUnowned : kRevoked),
        revoked_done_(owner_.load(std::memory_order_relaxed) == kRevoked) {}
  BiasedLock(const BiasedLock&) = delete;
  BiasedLock& operator=(const BiasedLock&) = delete;

  void lock() {
    const std::uint64_t me = internal::current_thread_number();
    std::uint64_t owner = owner_.load(std::memory_order_acquire);
    if (owner == kUnowned &&
        owner_.compare_exchange_strong(owner, me, std::memory_order_acq_rel)) {
      owner = me;
    }
    if (owner == me) {
      busy_.store(true, std::memory_order_relaxed);
      std::atomic_signal_fence(std::memory_order_seq_cst);
      if (owner_.load(std::memory_order_acquire) == me) {
        held_biased_ = true;
        return;
      }
      busy_.store(false, std::memory_order_release);  // revoked meanwhile: back off
    }
    lock_shared();
  }

  void unlock() {
    if (held_biased_) {
      held_biased_ = false;
      busy_.store(false, std::memory_order_release);
    } else {
      spin_.unlock();
    }
  }

  // Returns once nobody holds the lock, without taking it: for one who must not leave while
  // another is still inside the object the lock guards (a waiter its waker released, which may
  // then destroy the primitive: weft/sync/wait_queue.h). An unlock's releasing store is its last
  // touch of the lock, so once this sees it, the holder is done with the object. Read-only: it
  // revokes no bias and writes no shared line. Acquire, as a lock would.
  void wait_unlocked() const {
    int pauses = 0;
    while (busy_.load(std::memory_order_acquire) || spin_.is_locked()) {
      SpinLock::wait_step(pauses);
    }
  }

  // Whether the lock is still biased (for tests and benchmarks).
  bool biased() const { return owner_.load(std::memory_order_acquire) != kRevoked; }

 private:
  static constexpr std::uint64_t kUnowned = 0;
  static constexpr std::uint64_t kRevoked = 1;

  // The SpinLock path, revoking the bias first if nobody has yet.
  void lock_shared();

  std::atomic<std::uint64_t> owner_;
  std::atomic<bool> busy_{false};   // the owner is inside (biased)
  std::atomic<bool> revoked_done_;  // the revoker saw the owner out: the SpinLock rules
  bool held_biased_ = false;        // written and read by the holder only
  SpinLock spin_;
};

}  // namespace weft

#endif  // WEFT_SCHED_BIASED_LOCK_H_
