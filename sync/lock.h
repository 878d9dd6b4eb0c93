// ReentrantLock: Julia's ReentrantLock, with lock, unlock, trylock, islocked and lock(f, l).
//
// A task-aware recursive mutex. The owner is a Waiter (a task, or a plain thread), so a task
// keeps the lock while it migrates between workers, and a task that waits for the lock parks:
// its worker runs other tasks meanwhile. Uncontended, unlock is one plain store (no
// read-modify-write: the rare locker that is about to park pays for the ordering instead, with
// an asymmetric fence; see lock.cc), and lock is plain loads and stores too while the lock is
// biased to one thread (the first that locks it: all tasks of one worker, or one plain thread),
// as in BiasedLock; the first lock from a second thread revokes the bias for good (~1 us, once)
// and from then on lock is one compare-and-swap. Contended, a locker on a runtime with more
// than one worker spins for up to ~5 us (a holder on another worker lets go within
// nanoseconds: tasks are never preempted; parking costs far more, lock.cc), with back-off so
// as not to steal the holder's cache line, then queues and parks.
//
// Fairness: unlocking wakes the oldest waiter but does not hand it the lock: a running task may
// take it first ("barging"), which keeps the lock hot on one worker and is what makes the
// contended path fast. To bound starvation, a woken waiter that lost this race goes back to the
// head of the queue, and once it has been waiting for more than kStarvationThreshold, the next
// unlock hands the lock to it directly. So a waiter is overtaken for about a millisecond at
// most (plus a critical section per loss), never forever.
//
// Memory ordering: acquire on lock, release on unlock (Julia's guarantee).
// Errors: unlock() by a task or thread that does not hold the lock throws TaskStateError, as
// does locking more than 2^32-1 times recursively.
// Thread safety: every member may be called from any task or plain thread.
// A task or thread that ends holding the lock leaves it locked for good, as in Julia: the holder
// is known by a token no later task or thread is given (internal::current_lock_owner), so none
// is ever taken for it. Pair every lock() with an unlock(), or use lock(f, l).
#ifndef WEFT_SYNC_LOCK_H_
#define WEFT_SYNC_LOCK_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "weft/sched/asymmetric_fence.h"
#include "weft/sched/biased_lock.h"
#include "weft/sched/park.h"
#include "weft/sched/spin_lock.h"
#include "weft/sync/scoped_call.h"
#include "weft/sync/wait_queue.h"
#include "weft/task/current_task.h"

namespace weft {

namespace threads {
class Condition;
}  // namespace threads

class ReentrantLock {
 public:
  // How long a waiter may be overtaken by barging lockers before unlock hands it the lock.
  static constexpr std::chrono::microseconds kStarvationThreshold{1000};

  ReentrantLock() = default;
  ReentrantLock(const ReentrantLock&) = delete;
  ReentrantLock& operator=(const ReentrantLock&) = delete;

  // lock(l): acquires the lock, waiting (parking) while another task or thread holds it.
  // Re-locking by the holder only counts up.
  void lock() {
    const internal::LockIds me = internal::current_lock_ids();
    const std::uint64_t mine = me.owner;
    if (acquire_if_free(mine, me.thread_number)) {
      count_ = 1;
      return;
    }
    if (owner_.load(std::memory_order_relaxed) == mine) {
      relock();
      return;
    }
    lock_slow(mine);
  }

  // unlock(l): releases one level; the last one releases the lock and wakes a waiter if any.
  void unlock() {
    const std::uint64_t mine = internal::current_lock_owner();
    if (owner_.load(std::memory_order_relaxed) != mine) not_owner("unlock");
    if (--count_ != 0) return;
    if (wake_needed_.load(std::memory_order_relaxed)) {
      unlock_slow();  // waiters known: wake one (or hand the lock over) as we release it
      return;
    }
    // Released in two steps. kReleasing, which no locker takes and none parks on, while this
    // looks for a waiter to wake; then 0, this unlock's last touch of the lock: whoever takes
    // it next may unlock it and destroy it at once (the last user of an object freeing it).
    owner_.store(kReleasing, std::memory_order_release);
    // Pairs with the heavy fence of a locker that announced itself (wake_needed_) and then
    // looked at owner_: one of us sees the other.
    internal::light_fence();
    if (wake_needed_.load(std::memory_order_relaxed)) {
      wake_after_release();  // lets go of the lock (owner_ = 0) before it wakes anyone
      return;
    }
    owner_.store(0, std::memory_order_release);
  }

  // trylock(l): acquires the lock if no other task or thread holds it; never waits. When
  // islocked() was false, it succeeds unless another locker gets there at the same moment.
  bool trylock();

  // islocked(l): whether some task or thread holds the lock. Data-race-free, but only a hint
  // for synchronization (test-and-test-and-set), as in Julia.
  bool islocked() const { return owner_.load(std::memory_order_relaxed) != 0; }

  // Whether the calling task (or plain thread) holds the lock (Julia's assert_havelock check).
  bool held_by_caller() const {
    return owner_.load(std::memory_order_relaxed) == internal::current_lock_owner();
  }

  // The standard Lockable names, so std::lock_guard / std::unique_lock / std::scoped_lock work.
  bool try_lock() { return trylock(); }

  // Whether lock() is still biased to one thread (for tests and benchmarks).
  bool biased() const { return bias_.load(std::memory_order_acquire) != kRevoked; }

 private:
  static constexpr std::uint64_t kUnbiased = 0;  // nobody has locked it yet
  static constexpr std::uint64_t kRevoked = 1;   // every locker compares-and-swaps

  // owner_: 0 -> mine, or false if someone holds it. Biased to this thread: plain loads and
  // stores, with busy_ telling a revoker to wait (asymmetric Dekker: weft/sched/biased_lock.h).
  // `me`: the calling thread's number, read since the caller last switched (it may migrate).
  bool acquire_if_free(std::uint64_t mine, std::uint64_t me) {
    if (bias_.load(std::memory_order_relaxed) == me) {
      busy_.store(true, std::memory_order_relaxed);
      std::atomic_signal_fence(std::memory_order_seq_cst);
      if (bias_.load(std::memory_order_relaxed) == me) {
        const bool free = owner_.load(std::memory_order_acquire) == 0;
        if (free) owner_.store(mine, std::memory_order_relaxed);
        busy_.store(false, std::memory_order_release);
        return free;
      }
      busy_.store(false, std::memory_order_release);  // revoked meanwhile
    }
    return acquire_shared(mine, me);
  }
  bool acquire_if_free(std::uint64_t mine) {
    return acquire_if_free(mine, internal::current_thread_number());
  }
  // acquire_if_free() off the bias: takes an unclaimed bias, or revokes another thread's, or
  // compares-and-swaps.
  bool acquire_shared(std::uint64_t mine, std::uint64_t me);

  friend class threads::Condition;

  void relock();
  void lock_slow(std::uint64_t mine);
  bool spin_for_it(std::uint64_t mine);
  void unlock_slow();
  // For unlock() at kReleasing: picks a waiter to wake, sets owner_ = 0, then wakes it.
  void wake_after_release();
  void publish_wake_needed();  // under qlock_
  [[noreturn]] void not_owner(const char* op) const;
  // Out of line and cold: formatting its message inline gave relock() a large frame.
  [[noreturn, gnu::cold, gnu::noinline]] static void throw_count_overflow(std::uint32_t count);

  // For threads::Condition::wait: releases every level at once and restores them.
  std::uint32_t unlock_all();
  void relock_all(std::uint32_t count);

  // owner_ while an unlock looks for a waiter to wake, after the critical section: no owner's.
  static constexpr std::uint64_t kReleasing = 1;

  // The owner's token (internal::current_lock_owner), 0, or kReleasing. Set from 0 by
  // compare-and-swap, or by a plain store on the thread the lock is biased to (or, on a
  // hand-off, by the previous owner); cleared only by the owner.
  std::atomic<std::uint64_t> owner_{0};
  // The thread (internal::current_thread_number) that may acquire without a read-modify-write.
  std::atomic<std::uint64_t> bias_{internal::membarrier_ready() ? kUnbiased : kRevoked};
  std::atomic<bool> busy_{false};  // the bias thread is between its check and its store
  std::atomic<bool> revoked_done_{!internal::membarrier_ready()};  // the revoker saw busy_ == 0
  // Unlocks must wake someone: there are queued waiters and none is already woken and on its
  // way. Written under qlock_, read by unlocks without it.
  std::atomic<bool> wake_needed_{false};
  std::uint32_t count_ = 0;  // recursion depth; touched only by the owner
  SpinLock qlock_;
  bool woken_in_flight_ = false;  // under qlock_: a woken waiter is about to retry
  internal::WaitQueue queue_;     // under qlock_
};

// Free-function spellings of Julia's API.
inline void lock(ReentrantLock& l) { l.lock(); }
inline void unlock(ReentrantLock& l) { l.unlock(); }
inline bool trylock(ReentrantLock& l) { return l.trylock(); }
inline bool islocked(const ReentrantLock& l) { return l.islocked(); }

// lock(f, l): runs f() holding l and releases it when f returns or throws; returns f's result.
// Works with any lock that has lock() and unlock().
template <typename F, typename Lock,
          typename = std::enable_if_t<std::is_invocable_v<F&&>>>
decltype(auto) lock(F&& f, Lock& l) {
  l.lock();
  return internal::call_then(std::forward<F>(f), [&l] { l.unlock(); });
}

}  // namespace weft

#endif  // WEFT_SYNC_LOCK_H_
