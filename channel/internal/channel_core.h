// ChannelCore: the part of a channel that does not depend on its item type -- the lock, the
// three wait queues, closing, the close exception and bind() -- so that every Channel<T>
// shares one copy of it. ChannelState<T> (channel_state.h) adds the items.
//
// Queues, all guarded by lock_ (the park/wake contract of weft/sched/park.h):
//   putters_   blocked in put: the channel is full (or unbuffered with no taker). wq_data
//              points to the item; a taker moves it out, then wakes the putter. close() sets
//              wq_data to nullptr before waking, which tells the putter that its put failed.
//   takers_    blocked in take: the channel is empty. wq_data points to the taker's
//              std::optional<T> slot; a putter constructs the item there, then wakes it. A taker
//              woken with its slot still empty was woken by close().
//   watchers_  blocked in wait(c) or fetch(c): woken (all) when the channel becomes ready or
//              closes; they re-check under the lock.
// Invariants: takers_ is non-empty only while no item is buffered; putters_ only while the
// buffer is full; after close() all three are empty and stay empty.
#ifndef WEFT_CHANNEL_INTERNAL_CHANNEL_CORE_H_
#define WEFT_CHANNEL_INTERNAL_CHANNEL_CORE_H_

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>

#include "weft/sched/biased_lock.h"
#include "weft/sched/wait_queue.h"
#include "weft/task/task.h"
#include "weft/task/waiter.h"

namespace weft::internal {

class alignas(64) ChannelCore {
 public:
  // Throws std::invalid_argument naming `capacity` when it is negative.
  explicit ChannelCore(std::int64_t capacity);
  virtual ~ChannelCore();
  ChannelCore(const ChannelCore&) = delete;
  ChannelCore& operator=(const ChannelCore&) = delete;

  std::int64_t capacity() const { return capacity_; }
  bool isopen() const { return !closed_.load(std::memory_order_acquire); }

  // Closes the channel: blocked putters, takers and watchers are woken and raise `error`
  // (nullptr: InvalidStateException "Channel is closed."). Buffered items stay takeable.
  // The first close wins: closing a closed channel does nothing and returns false.
  bool close(std::exception_ptr error);

  // Raises the exception the channel was closed with. Only once closed (isopen() false, or
  // observed under the lock, or by a waiter that close() woke).
  [[noreturn]] void throw_closed() const;
  // Whether iteration ends quietly at the close (Julia: the close exception is an
  // InvalidStateException whose state is :closed) rather than raising it.
  bool close_ends_iteration() const { return close_ends_iteration_; }

 protected:
  // Parks the caller in watchers_. Called with lock_ held; returns with it released.
  void park_watcher();
  // Wakes each waiter of a chain made by WaitQueue::take_all().
  static void wake_chain(Waiter* chain);
  [[noreturn]] static void throw_fetch_unbuffered();

  // Hot fields first, on the object's first cache line.
  BiasedLock lock_;  // a SpinLock once two threads have used the channel
  std::atomic<bool> closed_{false};  // written under lock_; read under it or with acquire
  const std::int64_t capacity_;      // 0: unbuffered
  WaitQueue putters_;
  WaitQueue takers_;
  WaitQueue watchers_;

 private:
  // Written under lock_ before closed_ is set, never again.
  std::exception_ptr close_error_;
  bool close_ends_iteration_ = false;
};

// bind(c, t): closes `channel` when `task` finishes, with TaskFailedException if it failed.
// An on_done callback on the task (weft/task/on_done.h), holding a reference to the channel:
// no task, no scheduler, one small allocation; closes at once if the task already ended.
void bind_channel(std::shared_ptr<ChannelCore> channel, const TaskRef& task);

}  // namespace weft::internal

#endif  // WEFT_CHANNEL_INTERNAL_CHANNEL_CORE_H_
