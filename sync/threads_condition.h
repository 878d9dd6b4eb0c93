// threads::Condition: Julia's Threads.Condition, the thread-safe condition, paired with a lock.
//
// To wait or notify, a task must hold the condition's lock (lock(c) locks it). wait() releases
// the lock completely -- even when the caller locked it recursively -- in the same step as it
// queues, parks, and re-acquires it (to the same depth) before returning, also when it throws.
// Because a notify needs the lock too, "check the state, then wait" cannot miss a notify:
//
//   lock(c);
//   try { while (!ready) wait(c); } catch (...) { unlock(c); throw; }
//   unlock(c);
//
// or simply lock([&] { while (!ready) wait(c); }, c).
//
// The lock is a ReentrantLock: the condition's own, or one passed in (so several conditions,
// e.g. "not empty" and "not full", can share one lock). Edge-triggered and value-passing exactly
// like weft::Condition (weft/sync/condition.h), including the wait_until / wait_for extension.
// Errors: wait or notify without holding the lock throws TaskStateError.
// Thread safety: every member may be called from any task or plain thread (holding the lock).
#ifndef WEFT_SYNC_THREADS_CONDITION_H_
#define WEFT_SYNC_THREADS_CONDITION_H_

#include <any>
#include <optional>

#include "weft/sched/park.h"
#include "weft/sched/biased_lock.h"
#include "weft/sync/condition.h"
#include "weft/sync/lock.h"
#include "weft/sync/wait_queue.h"

namespace weft::threads {

class Condition {
 public:
  // Threads.Condition(): with a lock of its own.
  Condition() : lock_(&own_lock_) {}
  // Threads.Condition(lock): with the caller's lock, which must outlive the condition.
  explicit Condition(ReentrantLock& lock) : lock_(&lock) {}
  Condition(const Condition&) = delete;
  Condition& operator=(const Condition&) = delete;

  void lock() { lock_->lock(); }
  void unlock() { lock_->unlock(); }
  bool trylock() { return lock_->trylock(); }
  bool try_lock() { return lock_->trylock(); }
  bool islocked() const { return lock_->islocked(); }
  ReentrantLock& get_lock() const { return *lock_; }

  // wait(c; first): with the lock held: releases it, parks until a notify, re-locks; returns
  // the notify's value.
  std::any wait(WaitOptions options = {});
  // As wait(), giving up at the deadline (nullopt); the lock is re-acquired either way.
  std::optional<std::any> wait_until(Clock::time_point deadline, WaitOptions options = {});
  std::optional<std::any> wait_for(double seconds, WaitOptions options = {});

  // notify(c, val; all, error), with the lock held: returns the number of waiters woken.
  int notify(std::any value = {}, NotifyOptions options = {});

 private:
  void check_held(const char* what) const;
  // Both waits; deadline nullptr: none (then the result always has a value).
  std::optional<std::any> wait_impl(const Clock::time_point* deadline, WaitOptions options);

  ReentrantLock own_lock_;
  ReentrantLock* const lock_;
  internal::WaitQueue queue_;  // guarded by *lock_ and wake_lock_ (see threads_condition.cc)
  BiasedLock wake_lock_;
};

inline void lock(Condition& c) { c.lock(); }
inline void unlock(Condition& c) { c.unlock(); }
inline bool trylock(Condition& c) { return c.trylock(); }
inline bool islocked(const Condition& c) { return c.islocked(); }
inline std::any wait(Condition& c, WaitOptions options = {}) { return c.wait(options); }
inline int notify(Condition& c, std::any value = {}, NotifyOptions options = {}) {
  return c.notify(std::move(value), options);
}

}  // namespace weft::threads

namespace weft {
// So that unqualified wait(c) / notify(c) / lock(c) find them from namespace weft as well.
using threads::islocked;
using threads::lock;
using threads::notify;
using threads::trylock;
using threads::unlock;
using threads::wait;
}  // namespace weft

#endif  // WEFT_SYNC_THREADS_CONDITION_H_
