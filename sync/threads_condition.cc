// threads::Condition. The queue is guarded by the user's lock for the waiters' and notifiers'
// logic AND by wake_lock_, a BiasedLock, for its memory: a waiter whose deadline fired must leave
// the queue before it re-acquires the user's lock, because re-acquiring may park it on that lock,
// and a notifier that still found it queued would then wake it out of the wrong park.
// wake_lock_ is also the lock a waiter hands to park, so a notify can never wake a waiter that
// has not parked yet.
#include "weft/sync/threads_condition.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "weft/task/errors.h"

namespace weft::threads {

void Condition::check_held(const char* what) const {
  if (!lock_->held_by_caller()) {
    throw TaskStateError(absl::StrCat(
        what, ": the caller must hold the Threads.Condition's lock (lock(c) first); ",
        lock_->islocked() ? "another task or thread holds it" : "it is not locked"));
  }
}

std::optional<std::any> Condition::wait_impl(const Clock::time_point* deadline,
                                             WaitOptions options) {
  check_held("wait(Threads.Condition)");
  if (deadline != nullptr && Clock::now() >= *deadline) return std::nullopt;
  internal::Waiter* me = current_waiter();
  internal::WaitTicket ticket;
  wake_lock_.lock();
  me->wq_data = &ticket;
  if (options.first) {
    queue_.push_front(me);
  } else {
    queue_.push_back(me);
  }
  const std::uint32_t depth = lock_->unlock_all();
  bool woken = true;
  try {
    if (deadline == nullptr) {
      park(wake_lock_, WaitKind::kCondition, this);
    } else if (park_until(wake_lock_, *deadline, WaitKind::kCondition, this) ==
               ParkResult::kTimedOut) {
      wake_lock_.lock();
      if (me->wq_linked) {
        queue_.remove(me);
        woken = false;
      } else {
        woken = ticket.delivered;  // final: notifiers wake under wake_lock_
      }
      wake_lock_.unlock();
      // Consume an owed wake before re-locking, which may park.
      if (woken) internal::consume_owed_wake(WaitKind::kCondition, this);
    }
  } catch (...) {
    lock_->relock_all(depth);
    throw;
  }
  // The notify's value, taken before re-locking, which may park.
  std::any value = woken ? std::exchange(me->value, std::any()) : std::any();
  lock_->relock_all(depth);
  if (!woken) return std::nullopt;
  return value;
}

std::any Condition::wait(WaitOptions options) { return *wait_impl(nullptr, options); }

std::optional<std::any> Condition::wait_until(Clock::time_point deadline, WaitOptions options) {
  return wait_impl(&deadline, options);
}

std::optional<std::any> Condition::wait_for(double seconds, WaitOptions options) {
  return wait_until(internal::deadline_after(seconds, "Threads.Condition wait_for"), options);
}

int Condition::notify(std::any value, NotifyOptions options) {
  check_held("notify(Threads.Condition)");
  const std::exception_ptr error =
      internal::notify_error_of(value, options, "notify(Threads.Condition)");
  wake_lock_.lock();
  int woken;
  try {
    woken = internal::notify_queue(queue_, value, error, options.all);
  } catch (...) {
    wake_lock_.unlock();
    throw;
  }
  wake_lock_.unlock();
  return woken;
}

}  // namespace weft::threads
