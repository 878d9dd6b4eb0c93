#include "weft/sync/condition.h"

#include <stdexcept>
#include <utility>

#include "absl/strings/str_cat.h"

namespace weft {
namespace internal {

std::exception_ptr notify_error_of(const std::any& value, NotifyOptions options,
                                   const char* what) {
  if (!options.error) return nullptr;
  const auto* e = std::any_cast<std::exception_ptr>(&value);
  if (e == nullptr || *e == nullptr) {
    throw std::invalid_argument(absl::StrCat(
        what, ": with error=true the value must hold a non-null std::exception_ptr "
              "(std::make_exception_ptr(...)) to raise in the woken tasks"));
  }
  return *e;
}

int notify_queue(WaitQueue& queue, std::any& value, const std::exception_ptr& error, bool all) {
  int woken = 0;
  while (!queue.empty()) {
    // With all, each waiter gets a copy, made while the waiter is still queued: a copy that
    // throws leaves it there, for a later notify, rather than dequeued and never woken.
    std::any copy;
    if (all && error == nullptr && value.has_value()) copy = value;
    Waiter* w = queue.pop_front();
    // Woken under the queue's lock: a timed-out waiter that finds itself dequeued reads the
    // ticket only after taking that lock, so it sees the outcome of this very wake.
    const bool delivered = wake_dequeued(w, [&](Waiter* x) {
      if (error != nullptr) {
        std::exception_ptr e = error;  // wake_dequeued_waiter takes a mutable one
        return wake_dequeued_waiter(x, nullptr, &e);
      }
      if (!value.has_value()) return wake_dequeued_waiter(x, nullptr, nullptr);
      // The payload moves only into a waiter that takes it: one that timed out leaves it.
      return wake_dequeued_waiter(x, all ? &copy : &value, nullptr);
    });
    if (delivered) {
      ++woken;
      if (!all) break;
    }
  }
  return woken;
}

}  // namespace internal

std::any Condition::wait(WaitOptions options) {
  internal::Waiter* me = current_waiter();
  internal::WaitTicket ticket;
  lock_.lock();
  me->wq_data = &ticket;
  if (options.first) {
    queue_.push_front(me);
  } else {
    queue_.push_back(me);
  }
  internal::AwaitWakerUnlock after_wake(lock_);
  park(lock_, WaitKind::kCondition, this);
  return std::exchange(me->value, std::any());
}

std::optional<std::any> Condition::wait_until(Clock::time_point deadline, WaitOptions options) {
  // Edge-triggered: a wait whose deadline has passed can only time out.
  if (Clock::now() >= deadline) return std::nullopt;
  internal::Waiter* me = current_waiter();
  internal::WaitTicket ticket;
  lock_.lock();
  me->wq_data = &ticket;
  if (options.first) {
    queue_.push_front(me);
  } else {
    queue_.push_back(me);
  }
  internal::AwaitWakerUnlock after_wake(lock_);
  if (park_until(lock_, deadline, WaitKind::kCondition, this) == ParkResult::kTimedOut) {
    lock_.lock();
    if (me->wq_linked) {
      queue_.remove(me);
      lock_.unlock();
      return std::nullopt;
    }
    const bool owed = ticket.delivered;
    lock_.unlock();
    if (!owed) return std::nullopt;  // the notifier saw our deadline fire and moved on
    internal::consume_owed_wake(WaitKind::kCondition, this);
  }
  return std::exchange(me->value, std::any());
}

std::optional<std::any> Condition::wait_for(double seconds, WaitOptions options) {
  return wait_until(internal::deadline_after(seconds, "Condition::wait_for"), options);
}

int Condition::notify(std::any value, NotifyOptions options) {
  const std::exception_ptr error = internal::notify_error_of(value, options, "notify(Condition)");
  lock_.lock();
  int woken;
  try {
    woken = internal::notify_queue(queue_, value, error, options.all);
  } catch (...) {
    lock_.unlock();
    throw;
  }
  lock_.unlock();
  return woken;
}

bool Condition::has_waiters() const {
  lock_.lock();
  const bool any = !queue_.empty();
  lock_.unlock();
  return any;
}

}  // namespace weft
