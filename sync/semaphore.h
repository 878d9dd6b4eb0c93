// Semaphore: Julia's Base.Semaphore, a counting semaphore of sem_size permits, with acquire,
// release and the scoped acquire(f, s).
//
// acquire() takes a permit, parking while none is free; release() returns one. Waiters are
// served first come, first served: a released permit goes straight to the oldest waiter
// (hand-off), and while anyone waits, newcomers queue behind instead of taking permits. With
// free permits and nobody waiting, acquire and release are one compare-and-swap each.
//
// Memory ordering: acquire & release on acquire/release, as in Julia.
// Errors: a size <= 0 (or above 2^31-1) throws std::invalid_argument naming it; releasing
// when no permit is in use throws TaskStateError (each release must match an acquire).
// Extensions beyond Julia: try_acquire(), and try_acquire_until / try_acquire_for with a
// deadline; a deadline racing with a release has exactly one winner, and a permit handed to a
// waiter that has just timed out goes to the next waiter (or back to the pool), never lost.
// Thread safety: every member may be called from any task or plain thread.
// Lifetime: whoever acquired may destroy the semaphore once nobody else uses it, even while the
// release that handed it the permit is still running on another thread.
#ifndef WEFT_SYNC_SEMAPHORE_H_
#define WEFT_SYNC_SEMAPHORE_H_

#include <atomic>
#include <concepts>
#include <cstdint>
#include <utility>

#include "weft/sched/park.h"
#include "weft/sched/biased_lock.h"
#include "weft/sync/scoped_call.h"
#include "weft/sync/wait_queue.h"

namespace weft {

class Semaphore {
 public:
  // Semaphore(sem_size).
  explicit Semaphore(std::int64_t sem_size);
  // A fractional size (Semaphore(1.5)) is refused when compiling, not truncated.
  template <std::floating_point D>
  explicit Semaphore(D sem_size) = delete;
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  // acquire(s): takes a permit, waiting for one if needed.
  void acquire() {
    std::uint64_t s = state_.load(std::memory_order_relaxed);
    while (free_of(s) > 0) {
      if (state_.compare_exchange_weak(s, s - 1, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        // The permit may come from a release still inside, under lock_ (wait_queue.h).
        lock_.wait_unlocked();
        return;
      }
    }
    acquire_slow(nullptr);
  }

  // Takes a permit only if one is free and nobody waits; never waits.
  bool try_acquire();
  // As acquire(), giving up at the deadline: true if a permit was taken.
  bool try_acquire_until(Clock::time_point deadline);
  bool try_acquire_for(double seconds);

  // release(s): returns a permit (to the oldest waiter if there is one).
  void release() {
    std::uint64_t s = state_.load(std::memory_order_relaxed);
    for (;;) {
      if (waiters_of(s) > 0) {
        release_slow();
        return;
      }
      if (free_of(s) >= size_) over_release();
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_release,
                                       std::memory_order_relaxed)) {
        return;
      }
    }
  }

  std::int64_t size() const { return size_; }
  // Permits taken and not yet released (a snapshot).
  std::int64_t in_use() const {
    return size_ - free_of(state_.load(std::memory_order_relaxed));
  }

 private:
  // state_: free permits in the low 32 bits, queued waiters in the high 32 (changed only under
  // lock_, and equal to queue_.size() there). Waiters queue only when no permit is free, and a
  // release with waiters hands its permit over instead of freeing it: so whenever waiters > 0,
  // free == 0.
  static constexpr std::uint64_t kOneWaiter = std::uint64_t{1} << 32;
  static std::uint32_t free_of(std::uint64_t s) { return static_cast<std::uint32_t>(s); }
  static std::uint32_t waiters_of(std::uint64_t s) { return static_cast<std::uint32_t>(s >> 32); }

  bool acquire_slow(const Clock::time_point* deadline);
  void release_slow();
  [[noreturn]] void over_release() const;

  const std::uint32_t size_;
  std::atomic<std::uint64_t> state_;
  BiasedLock lock_;
  internal::WaitQueue queue_;
};

inline void acquire(Semaphore& s) { s.acquire(); }
inline void release(Semaphore& s) { s.release(); }

// acquire(f, s): runs f() holding a permit, released when f returns or throws; returns f's
// result.
template <typename F>
decltype(auto) acquire(F&& f, Semaphore& s) {
  s.acquire();
  return internal::call_then(std::forward<F>(f), [&s] { s.release(); });
}

}  // namespace weft

#endif  // WEFT_SYNC_SEMAPHORE_H_
