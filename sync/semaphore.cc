#include "weft/sync/semaphore.h"

#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "weft/sync/deadline.h"
#include "weft/task/errors.h"

namespace weft {
namespace {

std::uint32_t checked_size(std::int64_t sem_size) {
  if (sem_size <= 0 || sem_size > 0x7fffffff) {
    throw std::invalid_argument(absl::StrCat(
        "Semaphore: the size must be between 1 and 2147483647, not ", sem_size));
  }
  return static_cast<std::uint32_t>(sem_size);
}

}  // namespace

Semaphore::Semaphore(std::int64_t sem_size)
    : size_(checked_size(sem_size)), state_(size_) {}

bool Semaphore::try_acquire() {
  std::uint64_t s = state_.load(std::memory_order_relaxed);
  while (free_of(s) > 0) {
    if (state_.compare_exchange_weak(s, s - 1, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
      lock_.wait_unlocked();  // as in acquire()
      return true;
    }
  }
  return false;
}

bool Semaphore::try_acquire_until(Clock::time_point deadline) {
  if (try_acquire()) return true;
  if (Clock::now() >= deadline) return false;
  return acquire_slow(&deadline);
}

bool Semaphore::try_acquire_for(double seconds) {
  return try_acquire_until(internal::deadline_after(seconds, "Semaphore::try_acquire_for"));
}

bool Semaphore::acquire_slow(const Clock::time_point* deadline) {
  internal::Waiter* me = current_waiter();
  internal::WaitTicket ticket;
  lock_.lock();
  std::uint64_t s = state_.load(std::memory_order_relaxed);
  for (;;) {
    if (free_of(s) > 0) {
      if (state_.compare_exchange_weak(s, s - 1, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        lock_.unlock();
        return true;
      }
      continue;
    }
    // None free: count ourselves as a waiter in the same step, so a release sees us.
    if (state_.compare_exchange_weak(s, s + kOneWaiter, std::memory_order_relaxed,
                                     std::memory_order_relaxed)) {
      break;
    }
  }
  me->wq_data = &ticket;
  queue_.push_back(me);
  internal::AwaitWakerUnlock after_wake(lock_);
  if (deadline == nullptr) {
    park(lock_, WaitKind::kSemaphore, this);
    return true;  // a release handed us its permit
  }
  if (park_until(lock_, *deadline, WaitKind::kSemaphore, this) == ParkResult::kWoken) return true;
  lock_.lock();
  if (me->wq_linked) {
    queue_.remove(me);
    state_.fetch_sub(kOneWaiter, std::memory_order_relaxed);
    lock_.unlock();
    return false;
  }
  // A release dequeued us. If its wake reached us the permit is ours; otherwise it saw our
  // deadline fire and passed the permit on.
  const bool owed = ticket.delivered;
  lock_.unlock();
  if (owed) internal::consume_owed_wake(WaitKind::kSemaphore, this);
  return owed;
}

void Semaphore::release_slow() {
  lock_.lock();
  for (;;) {
    internal::Waiter* w = queue_.pop_front();
    if (w == nullptr) {
      // Every waiter timed out meanwhile: the permit goes back to the pool.
      std::uint64_t s = state_.load(std::memory_order_relaxed);
      do {
        if (free_of(s) >= size_) {
          lock_.unlock();
          over_release();
        }
      } while (!state_.compare_exchange_weak(s, s + 1, std::memory_order_release,
                                             std::memory_order_relaxed));
      break;
    }
    state_.fetch_sub(kOneWaiter, std::memory_order_relaxed);
    // Under lock_, so a waiter that timed out reads this outcome only after it is final.
    if (internal::wake_dequeued(w)) break;
  }
  lock_.unlock();
}

void Semaphore::over_release() const {
  throw TaskStateError(absl::StrCat("release: Semaphore(", size_,
                                    ") has no permit in use; each release must match an acquire"));
}

}  // namespace weft
