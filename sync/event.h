// Event: Julia's Threads.Event, a level-triggered event source, with notify, reset and wait.
//
// After notify(), the event stays set: wait() returns at once until reset() clears it, and every
// task waiting at the time of the notify is released. With autoreset, each notify() releases at
// most one waiter: it wakes the first queued waiter, or, when none waits, leaves the event set
// for the next wait() to consume (that wait clears it).
//
// Memory ordering: acquire & release on notify/wait, as in Julia: what a task wrote before
// notify() is visible to a task after its wait() returns because of it.
// Extension beyond Julia: wait_until / wait_for return false on timeout; a timeout racing with
// notify has exactly one winner (with autoreset, a notify whose waiter timed out wakes the next
// waiter or leaves the event set: the notification is never lost).
// Thread safety: every member may be called from any task or plain thread.
// Lifetime: a waiter may destroy the event as soon as its wait returns, even while the notify
// that released it is still running on another thread (a stack-local Event set by a task).
#ifndef WEFT_SYNC_EVENT_H_
#define WEFT_SYNC_EVENT_H_

#include <atomic>

#include "weft/sched/park.h"
#include "weft/sched/biased_lock.h"
#include "weft/sync/wait_queue.h"

namespace weft {

class Event {
 public:
  // Event([autoreset=false]).
  explicit Event(bool autoreset = false) : autoreset_(autoreset) {}
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  // wait(e): returns once the event is set (consuming it with autoreset).
  void wait();
  // As wait(), giving up at the deadline: true if the event was observed set.
  bool wait_until(Clock::time_point deadline);
  bool wait_for(double seconds);

  // notify(e): sets the event, releasing the waiters (one, with autoreset).
  void notify();
  // reset(e): clears the event; later waits block until the next notify.
  void reset() { set_.store(false, std::memory_order_release); }

  // True once notified; a caller that then destroys the event may: a notify still inside it
  // is waited for (wait_queue.h).
  bool isset() const {
    if (!set_.load(std::memory_order_acquire)) return false;
    lock_.wait_unlocked();
    return true;
  }
  bool autoreset() const { return autoreset_; }

 private:
  // The lock-free check both waits start with: true if the event was set (and, with
  // autoreset, was consumed by us).
  bool try_consume() {
    if (!autoreset_) return set_.load(std::memory_order_acquire);
    bool expected = true;
    return set_.load(std::memory_order_relaxed) &&
           set_.compare_exchange_strong(expected, false, std::memory_order_acq_rel);
  }

  const bool autoreset_;
  std::atomic<bool> set_{false};
  BiasedLock lock_;
  internal::WaitQueue queue_;
};

inline void wait(Event& e) { e.wait(); }
inline void notify(Event& e) { e.notify(); }
inline void reset(Event& e) { e.reset(); }

}  // namespace weft

#endif  // WEFT_SYNC_EVENT_H_
