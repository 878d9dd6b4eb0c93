// Event: the set flag is an atomic so that a wait on a set event costs no lock; every decision
// that must be atomic with the queue (a waiter deciding to park, a notify deciding whom to
// wake) happens under lock_.
#include "weft/sync/event.h"

#include "weft/sync/deadline.h"

namespace weft {

void Event::wait() {
  if (try_consume()) {
    lock_.wait_unlocked();  // a notify that set it may still be inside (wait_queue.h)
    return;
  }
  internal::Waiter* me = current_waiter();
  internal::WaitTicket ticket;
  lock_.lock();
  if (try_consume()) {
    lock_.unlock();
    return;
  }
  me->wq_data = &ticket;
  queue_.push_back(me);
  internal::AwaitWakerUnlock after_wake(lock_);
  park(lock_, WaitKind::kEvent, this);
}

bool Event::wait_until(Clock::time_point deadline) {
  if (try_consume()) {
    lock_.wait_unlocked();  // as in wait()
    return true;
  }
  if (Clock::now() >= deadline) return false;
  internal::Waiter* me = current_waiter();
  internal::WaitTicket ticket;
  lock_.lock();
  if (try_consume()) {
    lock_.unlock();
    return true;
  }
  me->wq_data = &ticket;
  queue_.push_back(me);
  internal::AwaitWakerUnlock after_wake(lock_);
  if (park_until(lock_, deadline, WaitKind::kEvent, this) == ParkResult::kWoken) return true;
  lock_.lock();
  if (me->wq_linked) {
    queue_.remove(me);
    lock_.unlock();
    return false;
  }
  const bool owed = ticket.delivered;
  lock_.unlock();
  if (owed) internal::consume_owed_wake(WaitKind::kEvent, this);
  return owed;
}

bool Event::wait_for(double seconds) {
  return wait_until(internal::deadline_after(seconds, "Event::wait_for"));
}

void Event::notify() {
  // Always under the lock, even when the event looks set already: a set flag read without it
  // could be older than a reset() that a waiter queued after.
  lock_.lock();
  if (autoreset_) {
    // Hand the notification to one waiter; only if nobody takes it does the event stay set.
    while (internal::Waiter* w = queue_.pop_front()) {
      if (internal::wake_dequeued(w)) {
        lock_.unlock();
        return;
      }
    }
    set_.store(true, std::memory_order_release);
  } else {
    set_.store(true, std::memory_order_release);
    while (internal::Waiter* w = queue_.pop_front()) {
      internal::wake_dequeued(w);
    }
  }
  lock_.unlock();
}

}  // namespace weft
