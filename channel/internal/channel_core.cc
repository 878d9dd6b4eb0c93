#include "weft/channel/internal/channel_core.h"

#include <cstdint>
#include <stdexcept>
#include <utility>

#include "absl/strings/str_cat.h"
#include "weft/channel/invalid_state_exception.h"
#include "weft/sched/park.h"
#include "weft/task/errors.h"
#include "weft/task/on_done.h"

namespace weft::internal {

namespace {

bool ends_iteration(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const InvalidStateException& e) {
    return e.state() == "closed";
  } catch (...) {
    return false;
  }
}

}  // namespace

ChannelCore::ChannelCore(std::int64_t capacity) : capacity_(capacity) {
  if (capacity < 0) {
    throw std::invalid_argument(absl::StrCat(
        "Channel: size must be >= 0 (0: unbuffered; kUnbounded: no limit), got ", capacity));
  }
}

ChannelCore::~ChannelCore() = default;

namespace {

// The close exception, built before taking the lock: nothing that allocates or throws runs
// under a SpinLock. Sets `quiet` if it ends iteration rather than being raised by it.
std::exception_ptr close_error(std::exception_ptr error, bool& quiet) {
  quiet = error == nullptr || ends_iteration(error);
  if (error == nullptr) {
    error = std::make_exception_ptr(InvalidStateException("Channel is closed.", "closed"));
  }
  return error;
}

}  // namespace

bool ChannelCore::close(std::exception_ptr error) {
  bool quiet;
  error = close_error(std::move(error), quiet);
  lock_.lock();
  return close_locked(std::move(error), quiet);
}

bool ChannelCore::close_in_turn(std::exception_ptr error) {
  bool quiet;
  error = close_error(std::move(error), quiet);
  lock_.lock();
  if (holder_ != nullptr && !await_hold_locked()) {
    HoldRelease release{this};
    lock_.lock();
    return close_locked(std::move(error), quiet);
  }
  return close_locked(std::move(error), quiet);
}

bool ChannelCore::close_locked(std::exception_ptr error, bool quiet) {
  if (closed_.load(std::memory_order_relaxed)) {
    lock_.unlock();
    return false;
  }
  close_error_ = std::move(error);
  close_ends_iteration_ = quiet;
  closed_.store(true, std::memory_order_release);
  Waiter* putters = putters_.take_all();
  // A putter whose item pointer is gone knows that nobody took its item.
  for (Waiter* w = putters; w != nullptr; w = w->wq_next) w->wq_data = nullptr;
  Waiter* takers = takers_.take_all();
  Waiter* watchers = watchers_.take_all();
  lock_.unlock();
  wake_chain(putters);
  wake_chain(takers);
  wake_chain(watchers);
  return true;
}

void ChannelCore::throw_closed() const { std::rethrow_exception(close_error_); }

void ChannelCore::park_watcher() {
  Waiter* me = current_waiter();
  watchers_.push_back(me);
  const std::uint32_t held = holder_ != nullptr ? drop_hold_locked(me) : 0;
  park(lock_, WaitKind::kChannelTake, this);
  if (held != 0) retake_hold(me, held);
}

// --- The hold (Julia's lock(c)) ---

Waiter* ChannelCore::pass_hold_locked() {
  Waiter* next = holders_.pop_front();
  holder_ = next;
  hold_depth_ = next != nullptr ? 1 : 0;
  return next;
}

void ChannelCore::wait_for_hold_locked(Waiter* me) {
  holders_.push_back(me);
  park(lock_, WaitKind::kChannelLock, this);  // whoever passes the hold to us wakes us
}

bool ChannelCore::await_hold_locked() {
  Waiter* me = current_waiter();
  if (holder_ == me) return true;
  wait_for_hold_locked(me);
  return false;
}

std::uint32_t ChannelCore::drop_hold_locked(Waiter* me) {
  if (holder_ != me) return 0;
  const std::uint32_t depth = hold_depth_;
  // Woken under lock_ (park.h allows it): the new holder runs once our park releases it.
  if (Waiter* next = pass_hold_locked()) wake(next);
  return depth;
}

void ChannelCore::retake_hold(Waiter* me, std::uint32_t depth) {
  lock_.lock();
  if (holder_ != nullptr) {
    wait_for_hold_locked(me);
    lock_.lock();  // to set the depth it was passed at (1) back to ours
  } else {
    holder_ = me;
  }
  hold_depth_ = depth;
  lock_.unlock();
}

void ChannelCore::release_hold() {
  lock_.lock();
  Waiter* next = --hold_depth_ == 0 ? pass_hold_locked() : nullptr;
  lock_.unlock();
  if (next != nullptr) wake(next);
}

void ChannelCore::lock_hold() {
  lock_.lock();
  Waiter* me = current_waiter();
  if (holder_ == nullptr) {
    holder_ = me;
    hold_depth_ = 1;
  } else if (holder_ == me) {
    if (hold_depth_ == UINT32_MAX) {
      lock_.unlock();
      throw TaskStateError(
          absl::StrCat("lock: Channel locked recursively ", hold_depth_, " times by ",
                       "the same task or thread; each lock must be matched by an unlock"));
    }
    ++hold_depth_;
  } else {
    wait_for_hold_locked(me);
    return;
  }
  lock_.unlock();
}

bool ChannelCore::trylock_hold() {
  lock_.lock();
  Waiter* me = current_waiter();
  const bool got = holder_ == nullptr || (holder_ == me && hold_depth_ != UINT32_MAX);
  if (got) {
    holder_ = me;
    ++hold_depth_;
  }
  lock_.unlock();
  return got;
}

void ChannelCore::unlock_hold() {
  lock_.lock();
  if (holder_ != current_waiter()) {
    const bool taken = holder_ != nullptr;
    lock_.unlock();
    throw_not_holder(taken);
  }
  Waiter* next = --hold_depth_ == 0 ? pass_hold_locked() : nullptr;
  lock_.unlock();
  if (next != nullptr) wake(next);
}

bool ChannelCore::hold_taken() {
  lock_.lock();
  const bool taken = holder_ != nullptr;
  lock_.unlock();
  return taken;
}

void ChannelCore::throw_not_holder(bool taken) const {
  throw TaskStateError(absl::StrCat(
      "unlock: ",
      taken ? "the Channel's lock is held by another task or thread, not by the caller"
            : "the Channel is not locked",
      "; each unlock(c) must match a lock(c) by the same task or thread"));
}

void ChannelCore::wake_chain(Waiter* chain) {
  while (chain != nullptr) {
    Waiter* next = chain->wq_next;  // first: once woken, the waiter may reuse its links
    wake(chain);
    chain = next;
  }
}

void ChannelCore::throw_fetch_unbuffered() {
  throw std::invalid_argument(
      "fetch: not supported on an unbuffered Channel (size 0): it holds no item to look at; "
      "use take, or a buffered Channel");
}

void bind_channel(std::shared_ptr<ChannelCore> channel, const TaskRef& task) {
  if (!task.valid()) throw std::invalid_argument("bind: the task handle is empty");
  // A closed channel ignores its tasks' ends (Julia): nothing to register.
  if (!channel->isopen()) return;
  // The callback shares the channel, so the channel outlives its handles until the task ends;
  // it must not hold `task` (the task would keep itself alive through its own callback).
  on_done(task, [channel = std::move(channel)](const TaskRef& t,
                                                const std::exception_ptr& failure) {
    channel->close(failure == nullptr ? nullptr
                                      : std::make_exception_ptr(TaskFailedException(t, failure)));
  });
}

}  // namespace weft::internal
