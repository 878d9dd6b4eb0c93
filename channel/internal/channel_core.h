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
//   holders_   waiting for the channel's hold (below).
// Invariants: takers_ is non-empty only while no item is buffered; putters_ only while the
// buffer is full; after close() all three are empty and stay empty.
//
// The hold is Julia's lock(c): a reentrant lock of the whole channel, kept in holder_ and
// hold_depth_ under lock_. While another task or thread holds it, put, take, fetch, wait and
// close first wait for the hold (queued in holders_), and run holding it; isready and n_avail
// do not (Julia's isready does not lock either). A holder whose own operation blocks gives the
// hold up while parked and takes it back, at the same depth, before returning (Julia's wait on
// the channel's condition releases its lock the same way). An operation that waited for the
// hold runs holding it and lets it go in the lock_ section that ends its work (before it wakes
// anyone: whoever it wakes may free the channel), and does not take it back after a park.
// An operation checks holder_ in the same lock_ section that does its work, so no operation
// that starts after lock(c) returned runs outside the hold. Costs nothing while nobody holds
// it but a test of holder_ the fast paths make anyway.
//
// Fairness, as ReentrantLock's (weft/sync/lock.h): a release frees the hold and wakes the
// oldest waiter, and a task that is running may take the hold before that waiter gets there
// ("barging"), so a task that locks and unlocks in a loop keeps it without a switch for each
// turn. While the woken waiter is on its way, releases wake nobody else; if it loses, it goes
// back to the head of the line, and once kHoldStarvation has passed since its first wake, the
// next release hands the hold to it directly: overtaken for about a millisecond at most. A
// strict FIFO hand-over made every lock+unlock of a contended hold cost a park and a wake: 4x
// slower on two workers (bench/sync_bench, BM_ContendedChannelLock).
#ifndef WEFT_CHANNEL_INTERNAL_CHANNEL_CORE_H_
#define WEFT_CHANNEL_INTERNAL_CHANNEL_CORE_H_

#include <atomic>
#include <chrono>
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
  // How long a waiter for the hold may be overtaken before a release hands it the hold.
  static constexpr std::chrono::microseconds kHoldStarvation{1000};

  // Throws std::invalid_argument naming `capacity` when it is negative.
  explicit ChannelCore(std::int64_t capacity);
  virtual ~ChannelCore();
  ChannelCore(const ChannelCore&) = delete;
  ChannelCore& operator=(const ChannelCore&) = delete;

  std::int64_t capacity() const { return capacity_; }
  bool isopen() const { return !closed_.load(std::memory_order_acquire); }

  // Closes the channel: blocked putters, takers and watchers are woken and raise `error`
  // (nullptr: InvalidStateException "Channel is closed."). Buffered items stay takeable.
  // The first close wins: closing a closed channel does nothing and returns false. Never
  // waits, not even for the hold (bind's close runs as a task ends, where nothing may block).
  bool close(std::exception_ptr error);
  // close(c): as close(), after waiting for a hold another task or thread has.
  bool close_in_turn(std::exception_ptr error);

  // lock(c), unlock(c), trylock(c), islocked(c): the hold (see the top). unlock by a task or
  // thread that does not hold it throws TaskStateError; so does a depth past 2^32 - 1.
  void lock_hold();
  void unlock_hold();
  bool trylock_hold();
  bool hold_taken();

  // Raises the exception the channel was closed with. Only once closed (isopen() false, or
  // observed under the lock, or by a waiter that close() woke).
  [[noreturn]] void throw_closed() const;
  // Whether iteration ends quietly at the close (Julia: the close exception is an
  // InvalidStateException whose state is :closed) rather than raising it.
  bool close_ends_iteration() const { return close_ends_iteration_; }

 protected:
  // Parks the caller in watchers_. Called with lock_ held; returns with it released.
  void park_watcher();

  // For an operation that found holder_ set, with lock_ held: true if the caller holds the
  // hold (lock_ is still held: go on). Otherwise waits for the hold and returns false once the
  // caller has it (depth 1), lock_ released: the caller then redoes its operation holding it,
  // and releases it with unlock_op() or HoldRelease.
  bool await_hold_locked();
  // Around a park inside an operation, with lock_ held: if `me` holds the hold, hands it to
  // the next in line and returns its depth (else 0); retake_hold() restores it after the park.
  // An operation parking with a hold of its own (from await_hold_locked()) does not take it
  // back: whoever completes the operation may free the channel as soon as it wakes it.
  std::uint32_t drop_hold_locked();
  void retake_hold(Waiter* me, std::uint32_t depth);
  // Ends an operation's lock_ section: releases lock_ and, when `own_hold`, the hold the
  // operation waited for (await_hold_locked()). An operation that wakes a counterpart (put,
  // take, close) lets its hold go here, in the section that decides whom to wake: once woken,
  // a taker (say) may drop the channel's last handle at once.
  void unlock_op(bool own_hold) {
    if (__builtin_expect(own_hold, 0)) {
      unlock_releasing_hold();
    } else {
      lock_.unlock();
    }
  }
  // With lock_ held: releases one level of the caller's hold, then lock_, then wakes the next
  // in line for the hold if the release passed it on.
  void unlock_releasing_hold();
  // Releases one level of the caller's hold after an operation that woke nobody (fetch, wait).
  void release_hold();
  struct HoldRelease {
    ChannelCore* core;
    ~HoldRelease() { core->release_hold(); }
  };
  // Wakes each waiter of a chain made by WaitQueue::take_all().
  static void wake_chain(Waiter* chain);
  [[noreturn]] static void throw_fetch_unbuffered();

  // Hot fields first, on the object's first cache line.
  BiasedLock lock_;  // a SpinLock once two threads have used the channel
  std::atomic<bool> closed_{false};  // written under lock_; read under it or with acquire
  const std::int64_t capacity_;      // 0: unbuffered
  // Under lock_: who holds the hold (its internal::current_lock_owner() token), or 0. A token,
  // not a Waiter*: a task that ends holding it leaves it held for good, and a later task given
  // the same memory must not pass for it; a plain thread's Waiter is replaced after a
  // DeadlockError, and the thread still holds what it held.
  std::uint64_t holder_ = 0;
  WaitQueue putters_;
  WaitQueue takers_;
  WaitQueue watchers_;

 private:
  // With lock_ held and a close error built: closes, ending with unlock_op(own_hold).
  bool close_locked(std::exception_ptr error, bool quiet, bool own_hold = false);
  // With lock_ held: takes the hold if it is free, else queues `me` for it and parks until it
  // is (see Fairness above). Returns holding the hold at depth 1, lock_ not held.
  void wait_for_hold_locked(Waiter* me);
  // With lock_ held and the hold's depth down to 0: frees it, or hands it to a starved waiter.
  // Returns the waiter to wake (the caller wakes it, under lock_ or after), or nullptr.
  Waiter* pass_hold_locked();
  // wait_for_hold_locked()'s way out when its park throws: leaves the line, or passes on what
  // a release meant for it, and restores wq_data. Takes and releases lock_.
  // `granted` is the waiter's ticket's, written by releases under lock_.
  void abandon_hold_wait(Waiter* me, const bool& granted, void* saved);
  [[noreturn]] void throw_not_holder(bool taken) const;

  std::uint32_t hold_depth_ = 0;  // under lock_
  WaitQueue holders_;             // under lock_; each one's wq_data is its HoldTicket
  bool hold_woken_in_flight_ = false;  // under lock_: a woken waiter is on its way to retry
  // Written under lock_ before closed_ is set, never again.
  std::exception_ptr close_error_;
  bool close_ends_iteration_ = false;
};

// bind(c, t): closes `channel` when `task` finishes, with TaskFailedException if it failed.
// An on_done callback on the task (weft/task/on_done.h), holding a reference to the channel:
// no task, no scheduler, one small allocation; closes at once if the task already ended.
void bind_channel(std::shared_ptr<ChannelCore> channel, const TaskRef& task);

// A channel size given as a floating-point number (Julia's Channel(Inf)): +infinity is
// unbounded, a whole number is itself; anything else throws std::invalid_argument.
std::int64_t channel_size_from(double size);
// An unsigned channel size: itself up to kUnbounded; past it, std::invalid_argument naming it.
std::int64_t channel_size_from_unsigned(std::uint64_t size);

}  // namespace weft::internal

#endif  // WEFT_CHANNEL_INTERNAL_CHANNEL_CORE_H_
