// park / wake: the line between the runtime and everything built on it (sync/, channel/, and
// user primitives such as the spec's OneWayEvent).
//
// A primitive keeps Waiters (weft/task/waiter.h) in a queue guarded by its own lock. To block,
// it links current_waiter() into the queue and calls park(lock): the caller is suspended and
// the lock released only after it can no longer miss a wake-up (for a task: after its context
// is saved; for a plain thread: the wake is remembered as a permit). To wake, it unlinks a
// waiter under the lock and calls wake(w) (after or before unlocking, either is fine for an
// untimed wait; see below for timed ones). A woken waiter may return at once and destroy the
// primitive: a waker that still touches it after the wake (unlocking, waking more) must make
// its waiters wait for that before they return (sync/'s do: BiasedLock::wait_unlocked).
//
// A task that parks gives its worker thread to other tasks; a plain thread blocks on a futex.
// Both are Waiters, so primitives need not care which they hold.
//
// The lock passed to park() must have been held since the waiter was linked, and only whoever
// unlinks it under that lock may wake it: that is what lets an untimed park(lock) and its wake
// run without any atomic read-modify-write (park.cc). schedule() refuses such a waiter.
//
// Timed waits: park_until() returns kTimedOut or kWoken; wake() returns false iff the waiter's
// deadline fired first (nothing delivered), so the primitive can hand its wake-up to the next
// waiter. That race is decided for every wake that lands before park_until() returns, even
// before it is called (a lock-free primitive's early wake is reported kWoken). A wake landing
// after park_until() returned kTimedOut belongs to the next park: it returns true and is owed.
// So wakers of timed waiters wake under the queue lock, and a timed-out waiter takes that lock
// before it trusts the timeout: still linked, it unlinks itself; dequeued, the waker's wake()
// has returned, and if that returned true (recorded under the lock: sync/wait_queue.h) the
// waiter parks once more to consume it. Without a lock: a waiter that lost its entry to a waker
// waits until that waker's wake() has returned, and consumes the wake if it returned true.
//
// Errors: a wake carrying an exception (wake_error) makes park() throw it in the woken waiter.
// Thread safety: every function may be called from any thread.
#ifndef WEFT_SCHED_PARK_H_
#define WEFT_SCHED_PARK_H_

#include <any>
#include <chrono>
#include <exception>

#include "weft/task/waiter.h"

namespace weft {

using Clock = std::chrono::steady_clock;
enum class ParkResult { kWoken, kTimedOut };

namespace internal {
using UnlockFn = void (*)(void*);
void park_impl(UnlockFn unlock, void* lock, WaitKind kind, const void* object);
ParkResult park_until_impl(UnlockFn unlock, void* lock, Clock::time_point deadline,
                           WaitKind kind, const void* object);
template <typename Lock>
void unlock_thunk(void* lock) {
  static_cast<Lock*>(lock)->unlock();
}
// For a waker that dequeued `w` under its queue's lock (sync/wait_queue.h's wake_dequeued):
// wake(w), wake_moving(w, *value) or wake_error(w, *error) (value and error may be null; the
// value is moved from only if delivered), except that a waiter whose timed park has already
// ended -- timed out, or declined for a schedule()'s mark (scheduling.h), and on its way to
// take the lock and unlink itself -- is reported as timed out (false) also when it is marked
// or queued to run meanwhile, rather than throwing TaskStateError as wake() does.
bool wake_dequeued_waiter(Waiter* w, std::any* value, std::exception_ptr* error);
}  // namespace internal

// The calling task's Waiter, or the calling plain thread's. A plain thread's is made on its
// first call, which allocates and takes a mutex: not to be done holding a SpinLock (see
// current_waiter_if_made).
internal::Waiter* current_waiter();
// As current_waiter(), but nullptr on a plain thread whose waiter is not made yet: for code
// holding a spin lock, which then releases it to call current_waiter() and starts over.
internal::Waiter* current_waiter_if_made();

// park(lock) suspends the caller until a wake(), releasing lock.unlock() atomically with
// suspending. The lock is NOT held on return. Throws what wake_error() passed.
template <typename Lock>
void park(Lock& lock, WaitKind kind, const void* object) {
  internal::park_impl(&internal::unlock_thunk<Lock>, &lock, kind, object);
}
// park() without a lock: for lock-free primitives, which must make sure a wake() can only
// come after the waiter published itself (a wake before park() is remembered: park returns).
inline void park(WaitKind kind, const void* object) {
  internal::park_impl(nullptr, nullptr, kind, object);
}

// As park(lock), but gives up at `deadline`.
template <typename Lock>
ParkResult park_until(Lock& lock, Clock::time_point deadline, WaitKind kind, const void* object) {
  return internal::park_until_impl(&internal::unlock_thunk<Lock>, &lock, deadline, kind, object);
}
inline ParkResult park_until(Clock::time_point deadline, WaitKind kind, const void* object) {
  return internal::park_until_impl(nullptr, nullptr, deadline, kind, object);
}

// Makes a parked (or parking) waiter runnable. Returns false only if the waiter's timed wait
// already expired (nothing was delivered). Waking a waiter that is not waiting is a bug in the
// primitive and throws TaskStateError.
bool wake(internal::Waiter* w);
// As wake(w), delivering `value` (readable by the woken waiter as its Waiter::value).
bool wake(internal::Waiter* w, std::any value);
// As wake(w, value), moving from `value` only if the wake is delivered: when it returns false
// (the waiter timed out), `value` is intact for the next waiter.
bool wake_moving(internal::Waiter* w, std::any& value);
// As wake(w), making park() throw `error` in the woken waiter.
bool wake_error(internal::Waiter* w, std::exception_ptr error);
// As wake(w), reporting rather than throwing when the waiter is already queued to run (a
// schedule() of it ended its park early; it will run and look for itself): kAlreadyQueued
// (nothing done), and kTimedOut when its deadline won (nothing delivered).
enum class WakeResult { kWoken, kTimedOut, kAlreadyQueued };
WakeResult try_wake(internal::Waiter* w);
// Lets the calling task's worker run its other runnable tasks before the caller goes on (it
// stays runnable, queued behind them), as Julia's put! on an unbuffered channel does after
// handing its item to a waiting taker. Unlike yield() it takes nothing a schedule() left for
// the caller's next wait. Returns at once on a plain thread, or with nothing else to run.
void run_others_first();
// For a primitive that woke the calling task while it ran (after a park of it ended early on
// a schedule()'s mark): takes a wake-up still pending on the task, if any (a park that returns
// at once), so that it does not end the task's next wait. Nothing on a plain thread.
void consume_pending_wake();

namespace internal {
// The calling thread belongs to the runtime or to a primitive (timers, the dump thread, the fd
// poller): never counted as a plain thread that may still wake someone (deadlock detection),
// whatever it wakes.
void mark_service_thread();
}  // namespace internal

// ExternalWakeSource: "something the runtime cannot see may still wake a waiter". Deadlock
// detection (weft/sched/deadlock_error.h) never reports while one exists. Hold one for as long
// as that is true: in a thread that will put into a channel after blocking in read(), in a
// poller while it watches descriptors, around a callback registered with a C library. Threads
// that have woken or spawned tasks before are already counted, and waits for descriptors and
// processes (WaitKind::kFd, kProcess) always count as awaiting the outside world.
// Costs one atomic increment and decrement; any thread; may be nested and moved between threads.
class ExternalWakeSource {
 public:
  ExternalWakeSource();
  ~ExternalWakeSource();
  ExternalWakeSource(const ExternalWakeSource&) = delete;
  ExternalWakeSource& operator=(const ExternalWakeSource&) = delete;
};

}  // namespace weft

#endif  // WEFT_SCHED_PARK_H_
