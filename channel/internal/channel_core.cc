#include "weft/channel/internal/channel_core.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <utility>

#include "absl/strings/str_cat.h"
#include "weft/channel/invalid_state_exception.h"
#include "weft/sched/park.h"
#include "weft/task/current_task.h"
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

std::int64_t channel_size_from(double size) {
  if (size == std::numeric_limits<double>::infinity()) {
    return std::numeric_limits<std::int64_t>::max();  // kUnbounded
  }
  // 2^63 is the first double past the largest int64: no cast of it or above is defined.
  if (!(size >= 0 && size < 0x1p63) || size != std::floor(size)) {
    throw std::invalid_argument(absl::StrCat(
        "Channel: a floating-point size must be a whole number >= 0 or infinity (Julia's "
        "Channel(Inf): no limit), got ", size));
  }
  return static_cast<std::int64_t>(size);
}

std::int64_t channel_size_from_unsigned(std::uint64_t size) {
  if (size > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    throw std::invalid_argument(absl::StrCat(
        "Channel: size ", size, " is too large: the largest is kUnbounded (",
        std::numeric_limits<std::int64_t>::max(), ", no limit)"));
  }
  return static_cast<std::int64_t>(size);
}

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
  if (holder_ != 0 && !await_hold_locked()) {
    lock_.lock();
    return close_locked(std::move(error), quiet, /*own_hold=*/true);
  }
  return close_locked(std::move(error), quiet);
}

bool ChannelCore::close_locked(std::exception_ptr error, bool quiet, bool own_hold) {
  if (closed_.load(std::memory_order_relaxed)) {
    unlock_op(own_hold);
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
  unlock_op(own_hold);
  wake_chain(putters);
  wake_chain(takers);
  wake_chain(watchers);
  return true;
}

void ChannelCore::throw_closed() const { std::rethrow_exception(close_error_); }

void ChannelCore::park_watcher() {
  Waiter* me = current_waiter_if_made();
  if (me == nullptr) {  // a plain thread's first wait: its waiter is made without lock_
    lock_.unlock();
    current_waiter();
    return;  // the caller looks again
  }
  watchers_.push_back(me);
  const std::uint32_t held = holder_ != 0 ? drop_hold_locked() : 0;
  park(lock_, WaitKind::kChannelTake, this);
  if (held != 0) retake_hold(me, held);
}

// --- The hold (Julia's lock(c)) ---

namespace {

// A waiter's place in the line for the hold, on its stack, reached through its wq_data.
struct HoldTicket {
  std::uint64_t owner = 0;   // the waiter's token, for a release that hands it the hold
  Clock::time_point since;   // when it was first woken (unset before)
  std::uint32_t losses = 0;  // times woken and beaten to the hold by a barging locker
  bool granted = false;      // handed the hold by a release (it is the holder, at depth 1)
};

HoldTicket* hold_ticket_of(const Waiter* w) { return static_cast<HoldTicket*>(w->wq_data); }

}  // namespace

Waiter* ChannelCore::pass_hold_locked() {
  holder_ = 0;
  hold_depth_ = 0;
  Waiter* next = hold_woken_in_flight_ ? nullptr : holders_.pop_front();
  if (next == nullptr) return nullptr;
  HoldTicket* ticket = hold_ticket_of(next);
  if (ticket->losses > 0 && Clock::now() - ticket->since >= kHoldStarvation) {
    ticket->granted = true;
    holder_ = ticket->owner;
    hold_depth_ = 1;
  } else {
    hold_woken_in_flight_ = true;
  }
  return next;
}

void ChannelCore::wait_for_hold_locked(Waiter* me) {
  // An operation that parked keeps its own use of wq_data (put's item, which close clears)
  // across the wait for the hold that follows.
  void* const saved = me->wq_data;
  HoldTicket ticket;
  ticket.owner = current_lock_owner();
  for (;;) {
    if (holder_ == 0) {
      holder_ = ticket.owner;
      hold_depth_ = 1;
      break;
    }
    if (ticket.losses > 0) {
      holders_.push_front(me);  // beaten by a barging locker: keep our place at the head
    } else {
      holders_.push_back(me);
    }
    me->wq_data = &ticket;
    try {
      park(lock_, WaitKind::kChannelLock, this);  // woken by a release: pass_hold_locked()
    } catch (...) {
      // An error a schedule(t, err; error=true) of this running task left pending: it ends
      // the wait, and whatever the line holds for us passes on.
      abandon_hold_wait(me, ticket.granted, saved);  // reads it under lock_
      throw;
    }
    // Overtaking is timed from the first wake: no clock is read while the hold is uncontested.
    if (ticket.since == Clock::time_point{}) ticket.since = Clock::now();
    lock_.lock();
    if (ticket.granted) break;
    if (me->wq_linked) {
      // Resumed by a schedule() of this task that it consumed, not by a release: still in
      // line, so no wake is owed to us (a release that pops us later finds us running or
      // queued, which try_wake allows: we look again then).
      holders_.remove(me);
      continue;
    }
    hold_woken_in_flight_ = false;
    if (holder_ != 0) ++ticket.losses;
  }
  me->wq_data = saved;
  lock_.unlock();
}

void ChannelCore::abandon_hold_wait(Waiter* me, const bool& granted, void* saved) {
  lock_.lock();
  Waiter* next = nullptr;
  if (me->wq_linked) {
    holders_.remove(me);
  } else {
    // Popped by a release: either handed the hold, or woken to retry for it. Both pass on.
    if (!granted) hold_woken_in_flight_ = false;
    if (granted || holder_ == 0) next = pass_hold_locked();
  }
  me->wq_data = saved;
  lock_.unlock();
  if (next != nullptr) try_wake(next);
}

bool ChannelCore::await_hold_locked() {
  Waiter* me = current_waiter_if_made();
  if (me == nullptr) {  // a plain thread's first wait: its waiter is made without lock_
    lock_.unlock();
    me = current_waiter();
    lock_.lock();  // the hold may be free now: wait_for_hold_locked() then takes it
  }
  if (holder_ == current_lock_owner()) return true;
  wait_for_hold_locked(me);
  return false;
}

std::uint32_t ChannelCore::drop_hold_locked() {
  if (holder_ != current_lock_owner()) return 0;
  const std::uint32_t depth = hold_depth_;
  // Woken under lock_ (park.h allows it): it retries once our park releases lock_.
  if (Waiter* next = pass_hold_locked()) try_wake(next);
  return depth;
}

void ChannelCore::retake_hold(Waiter* me, std::uint32_t depth) {
  lock_.lock();
  wait_for_hold_locked(me);
  lock_.lock();  // to set the depth it was taken at (1) back to ours
  hold_depth_ = depth;
  lock_.unlock();
}

void ChannelCore::unlock_releasing_hold() {
  Waiter* next = --hold_depth_ == 0 ? pass_hold_locked() : nullptr;
  lock_.unlock();
  if (next != nullptr) try_wake(next);
}

void ChannelCore::release_hold() {
  lock_.lock();
  unlock_releasing_hold();
}

void ChannelCore::lock_hold() {
  Waiter* me = current_waiter();  // before lock_: a plain thread's first call makes it
  const std::uint64_t mine = current_lock_owner();
  lock_.lock();
  if (holder_ == 0) {
    holder_ = mine;
    hold_depth_ = 1;
  } else if (holder_ == mine) {
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
  const std::uint64_t mine = current_lock_owner();
  // A plain thread holding the channel will wake who waits for it: deadlock detection must know
  // it, as lock_hold() makes sure by making its waiter (before lock_, as there).
  if (names_a_thread(mine)) current_waiter();
  lock_.lock();
  const bool got = holder_ == 0 || (holder_ == mine && hold_depth_ != UINT32_MAX);
  if (got) {
    holder_ = mine;
    ++hold_depth_;
  }
  lock_.unlock();
  return got;
}

void ChannelCore::unlock_hold() {
  const std::uint64_t mine = current_lock_owner();
  lock_.lock();
  if (holder_ != mine) {
    const bool taken = holder_ != 0;
    lock_.unlock();
    throw_not_holder(taken);
  }
  unlock_releasing_hold();
}

bool ChannelCore::hold_taken() {
  lock_.lock();
  const bool taken = holder_ != 0;
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
