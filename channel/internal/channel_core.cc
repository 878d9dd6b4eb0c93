#include "weft/channel/internal/channel_core.h"

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

bool ChannelCore::close(std::exception_ptr error) {
  // Built before taking the lock: nothing that allocates or throws runs under a SpinLock.
  const bool quiet = error == nullptr || ends_iteration(error);
  if (error == nullptr) {
    error = std::make_exception_ptr(InvalidStateException("Channel is closed.", "closed"));
  }
  lock_.lock();
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
  watchers_.push_back(current_waiter());
  park(lock_, WaitKind::kChannelTake, this);
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
