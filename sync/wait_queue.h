// The ticket a sync/ waker leaves for a waiter it dequeued from a WaitQueue
// (weft/sched/wait_queue.h, the intrusive FIFO every primitive keeps). Internal to sync/.
//
// Why tickets: a timed waiter whose deadline fired may race with a waker that has just dequeued
// it. Wakers in sync/ call wake() while still holding the queue lock and record in the waiter's
// ticket (Waiter::wq_data) whether the wake was delivered. A timed-out waiter then takes the same
// lock: still linked means it really timed out (it unlinks itself); dequeued means a waker got
// there first, and the ticket says whether a wake is owed to it (it must consume it with
// consume_owed_wake(), or it would surface later as a spurious wake-up) and what it carries.
#ifndef WEFT_SYNC_WAIT_QUEUE_H_
#define WEFT_SYNC_WAIT_QUEUE_H_

#include <cstddef>
#include <cstdint>

#include "weft/sched/biased_lock.h"
#include "weft/sched/park.h"
#include "weft/sched/wait_queue.h"
#include "weft/task/waiter.h"

namespace weft::internal {

// Left by a waker in the waiter it dequeued (through Waiter::wq_data), under the queue lock.
struct WaitTicket {
  bool delivered = false;  // the waker's wake() succeeded: the waiter owes one park()
  bool granted = false;    // primitive-specific: the waker handed over the resource itself
  std::uint32_t losses = 0;           // ReentrantLock: times woken and beaten to the lock
  Clock::time_point since{};          // ReentrantLock: when the waiter first queued
  std::uint64_t owner = 0;            // ReentrantLock: the waiter's owner token, for a hand-off
};

inline WaitTicket* ticket_of(const Waiter* w) { return static_cast<WaitTicket*>(w->wq_data); }

// The queue itself is the one every primitive shares (weft/sched/wait_queue.h).
using WaitQueue = ::weft::WaitQueue;

// Wakes `w`, which the caller dequeued and whose queue lock it still holds, and records in the
// ticket whether the wake was delivered. `wake_fn(w)` is internal::wake_dequeued_waiter (park.h):
// unlike wake(), it reports a waiter whose timed park already ended as timed out even when a
// schedule() marked it meanwhile (scheduling.h), which wake() would throw for.
// The ticket is written BEFORE the wake: once a wake lands, the waiter may run, return, and
// take its ticket (on its stack) with it, so nothing may touch the ticket after a delivered wake.
// A failed wake means the waiter timed out; it reads the ticket only under the queue lock.
template <typename WakeFn>
bool wake_dequeued(Waiter* w, WakeFn&& wake_fn) {
  WaitTicket* ticket = ticket_of(w);
  ticket->delivered = true;
  if (wake_fn(w)) return true;
  ticket->delivered = false;
  return false;
}
// The same for a wake without a payload.
inline bool wake_dequeued(Waiter* w) {
  return wake_dequeued(w, [](Waiter* x) { return wake_dequeued_waiter(x, nullptr, nullptr); });
}

// Keeps a woken waiter from returning before its waker has let go of the primitive. Wakers in
// sync/ wake (and publish state) under the primitive's lock and unlock after -- notify may wake
// several -- while the waiter they released may return at once and destroy the primitive: a
// stack-local Event that a task notifies to release the thread that owns it is the usual way
// to wait for work. Made just before the park; its destructor, on return or on a raised
// wake-up, waits for the lock to be free (BiasedLock::wait_unlocked), which orders the return
// after the waker's unlock, its last touch of the primitive: two loads when it already is. A
// wait that returns without parking, on state a waker published under the lock (a set Event,
// a permit), calls wait_unlocked() itself.
class AwaitWakerUnlock {
 public:
  explicit AwaitWakerUnlock(const BiasedLock& lock) : lock_(lock) {}
  AwaitWakerUnlock(const AwaitWakerUnlock&) = delete;
  AwaitWakerUnlock& operator=(const AwaitWakerUnlock&) = delete;
  ~AwaitWakerUnlock() { lock_.wait_unlocked(); }

 private:
  const BiasedLock& lock_;
};

// A dequeued waiter whose ticket says a wake was delivered parks once more to consume it: its
// state is already "notified", so the park returns at once (a task passes through the run queue).
inline void consume_owed_wake(WaitKind kind, const void* object) { park(kind, object); }

}  // namespace weft::internal

#endif  // WEFT_SYNC_WAIT_QUEUE_H_
