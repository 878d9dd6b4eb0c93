// Condition: Julia's Base.Condition, an edge-triggered event source, and the options that
// wait/notify share with threads::Condition (weft/sync/threads_condition.h).
//
// A task that waits is queued and parked until a notify() wakes it; only waiters queued at the
// time of the notify are woken (edge-triggered: keep your own state, or use Event or Channel,
// for level-triggered signalling). wait() returns the value passed to notify().
//
// Thread safety, as in Julia: a Condition is NOT meant to be shared between threads. Checking
// your state and then calling wait() is not atomic with respect to a notify() on another thread,
// so such a wake-up can be missed; use it among tasks of one worker (e.g. @async tasks), or use
// threads::Condition, whose lock makes check-then-wait atomic. (Internally a BiasedLock keeps the
// queue itself memory-safe whatever the use; used from one worker it costs no atomic. A woken
// waiter may destroy the condition as soon as its wait returns, the notify still running.)
//
// Extension beyond Julia: wait_until / wait_for give up at a deadline (nullopt); a timeout that
// races with a notify has exactly one winner: either the waiter gets the value and counts in
// notify's result, or it times out and notify wakes another waiter instead (notify with
// all=false) or does not count it.
// Errors: notify with error=true requires the value to hold a non-null std::exception_ptr
// (std::invalid_argument otherwise); each woken waiter's wait() then throws it.
#ifndef WEFT_SYNC_CONDITION_H_
#define WEFT_SYNC_CONDITION_H_

#include <any>
#include <optional>

#include "weft/sched/park.h"
#include "weft/sched/biased_lock.h"
#include "weft/sync/deadline.h"
#include "weft/sync/wait_queue.h"

namespace weft {

struct WaitOptions {
  // Julia's first=true: queue this waiter ahead of the others instead of behind them.
  bool first = false;
};

struct NotifyOptions {
  bool all = true;     // wake every waiter (Julia's default) or only the first
  bool error = false;  // raise the value (a std::exception_ptr) in the woken waiters
};

class Condition {
 public:
  Condition() = default;
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;

  // wait(c; first): parks until a notify; returns its value (empty if none was given).
  std::any wait(WaitOptions options = {});
  // As wait(), giving up at `deadline` (nullopt) or after `seconds` (negative or NaN: invalid).
  std::optional<std::any> wait_until(Clock::time_point deadline, WaitOptions options = {});
  std::optional<std::any> wait_for(double seconds, WaitOptions options = {});

  // notify(c, val; all, error): wakes the waiters (or the first); returns how many were woken.
  int notify(std::any value = {}, NotifyOptions options = {});

  // Whether tasks are waiting right now (a snapshot).
  bool has_waiters() const;

 private:
  mutable BiasedLock lock_;
  internal::WaitQueue queue_;
};

inline std::any wait(Condition& c, WaitOptions options = {}) { return c.wait(options); }
inline int notify(Condition& c, std::any value = {}, NotifyOptions options = {}) {
  return c.notify(std::move(value), options);
}

namespace internal {

// Checks notify's arguments before anything is woken: the exception to raise when
// options.error is set (throws std::invalid_argument if value holds none), else nullptr.
std::exception_ptr notify_error_of(const std::any& value, NotifyOptions options,
                                   const char* what);

// Wakes the first or all waiters of `queue` (whose lock the caller holds), recording each
// delivery in the waiter's ticket; waiters whose deadline already fired are skipped. Returns
// the number woken.
int notify_queue(WaitQueue& queue, std::any& value, const std::exception_ptr& error, bool all);

}  // namespace internal
}  // namespace weft

#endif  // WEFT_SYNC_CONDITION_H_
