// WaitQueue: the intrusive FIFO of parked waiters that every sync/ primitive keeps, and the
// ticket a waker leaves for a waiter it dequeued (internal to sync/).
//
// Links go through the Waiter's own wq_next / wq_prev / wq_linked (weft/task/waiter.h), so
// queueing never allocates; removal from the middle is O(1), which timed waits need. Not
// synchronized: the owning primitive guards it with its lock (see weft/sched/park.h).
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

#include "weft/sched/park.h"
#include "weft/task/waiter.h"

namespace weft::internal {

// Left by a waker in the waiter it dequeued (through Waiter::wq_data), under the queue lock.
struct WaitTicket {
  bool delivered = false;  // the waker's wake() succeeded: the waiter owes one park()
  bool granted = false;    // primitive-specific: the waker handed over the resource itself
  std::uint32_t losses = 0;           // ReentrantLock: times woken and beaten to the lock
  Clock::time_point since{};          // ReentrantLock: when the waiter first queued
};

inline WaitTicket* ticket_of(const Waiter* w) { return static_cast<WaitTicket*>(w->wq_data); }

class WaitQueue {
 public:
  bool empty() const { return head_ == nullptr; }
  Waiter* front() const { return head_; }
  std::size_t size() const { return size_; }

  void push_back(Waiter* w) {
    w->wq_next = nullptr;
    w->wq_prev = tail_;
    if (tail_ == nullptr) {
      head_ = w;
    } else {
      tail_->wq_next = w;
    }
    tail_ = w;
    w->wq_linked = true;
    ++size_;
  }

  void push_front(Waiter* w) {
    w->wq_prev = nullptr;
    w->wq_next = head_;
    if (head_ == nullptr) {
      tail_ = w;
    } else {
      head_->wq_prev = w;
    }
    head_ = w;
    w->wq_linked = true;
    ++size_;
  }

  // nullptr when empty.
  Waiter* pop_front() {
    Waiter* w = head_;
    if (w != nullptr) remove(w);
    return w;
  }

  // w must be linked in this queue.
  void remove(Waiter* w) {
    if (w->wq_prev == nullptr) {
      head_ = w->wq_next;
    } else {
      w->wq_prev->wq_next = w->wq_next;
    }
    if (w->wq_next == nullptr) {
      tail_ = w->wq_prev;
    } else {
      w->wq_next->wq_prev = w->wq_prev;
    }
    w->wq_next = nullptr;
    w->wq_prev = nullptr;
    w->wq_linked = false;
    --size_;
  }

 private:
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
  std::size_t size_ = 0;
};

// Wakes `w`, which the caller dequeued and whose queue lock it still holds, and records in the
// ticket whether the wake was delivered. `wake_fn(w)` is wake(w), wake(w, value) or wake_error.
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

// A dequeued waiter whose ticket says a wake was delivered parks once more to consume it: its
// state is already "notified", so the park returns at once (a task passes through the run queue).
inline void consume_owed_wake(WaitKind kind, const void* object) { park(kind, object); }

}  // namespace weft::internal

#endif  // WEFT_SYNC_WAIT_QUEUE_H_
