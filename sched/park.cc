// The park/wake state machine (Waiter::state), for tasks and for plain threads.
//
//   task:   Created --schedule--> Queued --popped--> Running --park--> Parked --wake--> Queued
//           Running --timed park--> Arming --park--> Parked   (see timed waits below)
//           Running/Arming --wake before it parks--> Notified --park (after the switch)--> Queued
//           Running/Notified --finish--> Done   (a store: see finish_task in switch.cc)
//   thread: Running --park--> Parked --wake--> Notified --resumes--> Running
//           Running --wake before it parks--> Notified --park returns at once--> Running
//
// A wake that carries a value or an error first sets kClaimBit, writes the payload, then
// publishes the new state; readers spin while the bit is set (a few instructions). A wake with
// no payload is a single compare-and-swap. Only the transition's winner touches the payload,
// so a second wake of the same waiter is detected (kAlreadyScheduled), never a data race. A
// wake that finds the waiter running puts its payload aside (Waiter::pending_payload): the
// waiter may still be reading the payload of the wake that ended its last park. Whoever
// consumes the Notified wake-up -- the next park, a yield -- moves it over. A running task that
// finishes stores kDone over whatever a wake-up left, a claim included; so that wake publishes
// its state with a compare-and-swap from its claim, which fails if the task finished.
//
// Owned parks -- a task parking with its primitive's lock, held since it linked itself into
// the primitive's queue, and no deadline: the common case -- skip the state machine and cost
// no read-modify-write on either side. The only one who may wake such a task is whoever
// unlinks it under that lock afterwards (park.h), so the task's worker marks it
// Waiter::owned_park after the switch and before it releases the lock, and that waker reads
// the mark, queues the task and marks it woken, all with plain stores. The state word stays
// as it was: Running, or Notified by a wake-up that landed while the task was switching away
// (a schedule() racing with the park, which it never meant to end), which the owned park
// leaves for the task's next park, as a yield does. A task already Notified when it parks
// parks the usual way and takes that wake-up at once.
//
// Timed waits add the token Waiter::timed (timers.h): exactly one of the waker and the
// deadline moves it out of kArmed, and only the winner may move the state. A waiter arms the
// token before it publishes kParked, so a waker that finds it parked with no token has an
// untimed park (the common case: no read-modify-write on the token). A waker that finds it
// still running may be early: a lock-free primitive can wake before park_until() has armed.
// That waker claims the token first (kUntimed -> kWokenFirst); park_until() arms with a
// compare-and-swap, so it either loses to the claim (and waits for the wake untimed: kWoken)
// or the waker finds it armed and races the deadline as usual. Each park clears the token,
// except an owned one, which leaves a claim to the Notified wake-up it belongs to.
//
// schedule() never touches the token: it decides on the state word alone, and moves it with one
// compare-and-swap from the state it decided on. (Were it to claim the token and then move the
// state, the task could finish a park and enter a timed wait in between, and the late state
// change would end that wait as if its primitive had woken it.) No timed wait is one a
// schedule() may end, so a task's timed park says on the state word that it is on its way into
// one: it moves it Running -> Arming with a compare-and-swap before it arms the token, and parks
// from Arming instead of Running (finish_park). A schedule() refuses an Arming task, as a parked
// one it may not wake, and marks a Running one Notified for its next wait(); the timed park's
// compare-and-swap finds such a mark with nothing armed yet, and declines it if the task holds
// its primitive's lock (decline_marked_timed_park), or takes it, returning at once, if not. A
// primitive's waker, the timer included, treats Arming as Running: the park then requeues.

#include <cerrno>
#include <climits>
#include <cstdio>
#include <ctime>
#include <utility>

#include "absl/strings/str_cat.h"
#include "weft/sched/deadlock.h"
#include "weft/sched/deadlock_error.h"
#include "weft/sched/futex.h"
#include "weft/sched/park.h"
#include "weft/sched/runtime_core.h"
#include "weft/sched/spin_lock.h"
#include "weft/sched/trace.h"
#include "weft/task/current_task.h"
#include "weft/task/errors.h"

namespace weft {
namespace internal {

void adopt_pending_payload(Waiter* w) {
  if (w->pending_payload == nullptr) return;
  std::unique_ptr<WakePayload> p = std::move(w->pending_payload);
  if (p->value.has_value()) w->value = std::move(p->value);
  if (p->error != nullptr) w->error = std::move(p->error);
}

namespace {

bool has_payload(const std::any* value, const std::exception_ptr* error) {
  return (value != nullptr && value->has_value()) || (error != nullptr && *error != nullptr);
}

void write_payload(Waiter* w, std::any* value, std::exception_ptr* error) {
  if (value != nullptr && value->has_value()) w->value = std::move(*value);
  if (error != nullptr && *error != nullptr) w->error = *error;
}

// For a waiter found running: its value/error may still be being read (see Waiter).
void write_pending_payload(Waiter* w, std::any* value, std::exception_ptr* error) {
  auto p = std::make_unique<WakePayload>();
  if (value != nullptr && value->has_value()) p->value = std::move(*value);
  if (error != nullptr && *error != nullptr) p->error = *error;
  w->pending_payload = std::move(p);
}

void push_woken(TaskCore* t, RuntimeCore* rt) {
  Worker* w = current_worker();
  if (w == nullptr) note_outside_waker(t->wait_kind.load(std::memory_order_relaxed));
  rt->push(t, PushReason::kWoken, (w != nullptr && w->rt == rt) ? w->index : -1);
}

// A waker's side of the race with the waiter's deadline (`s`: the waiter's state, loaded
// before this looks at the token; refreshed here when it went stale). kLost when the deadline
// won: nothing may be delivered.
enum class DeadlineRace { kBeat, kLost };
DeadlineRace beat_deadline(Waiter* w, std::uint32_t& s) {
  for (;;) {
    std::uint32_t t = w->timed.load(std::memory_order_acquire);
    if (t == kUntimed) {
      if (s != kRunning && s != kArming) {
        // Parked untimed, or not waiting at all (the state machine reports that) -- unless the
        // state moved on since we read it: a waiter queued by its deadline may have run since,
        // cleared its token and be running now (a wake that lands after park_until returned
        // kTimedOut is owed to it: park.h). Then decide on the fresh state.
        const std::uint32_t now = load_unclaimed(w->state);
        if (now == s) return DeadlineRace::kBeat;
        s = now;
        continue;
      }
      // Only a running waiter may still arm a deadline for the park this wake is meant for
      // (an Arming task arms right after it publishes that: park_common).
      if (w->timed.compare_exchange_strong(t, kWokenFirst, std::memory_order_acq_rel)) {
        return DeadlineRace::kBeat;
      }
    }
    if (t != kArmed) return DeadlineRace::kLost;
    return w->timed.compare_exchange_strong(t, kWokenFirst, std::memory_order_acq_rel)
               ? DeadlineRace::kBeat
               : DeadlineRace::kLost;
  }
}

// Marks a task found running (`s`: kRunning, or kArming for a primitive's waker) Notified for
// its next park. A payload is put aside (Waiter::pending_payload): the task may still be reading
// the payload of the wake that ended its last park. False, with `s` refreshed, if the state was
// not `s` any more.
bool mark_running(TaskCore* t, std::uint32_t& s, bool payload, std::any* value,
                  std::exception_ptr* error) {
  if (!payload) return t->state.compare_exchange_weak(s, kNotified, std::memory_order_acq_rel);
  if (!t->state.compare_exchange_weak(s, s | kClaimBit, std::memory_order_acq_rel)) return false;
  write_pending_payload(t, value, error);
  // A running task may finish meanwhile and store kDone over our claim (finish_task): then it
  // stays done, and the payload waits for its destructor.
  std::uint32_t claimed = s | kClaimBit;
  t->state.compare_exchange_strong(claimed, kNotified, std::memory_order_release,
                                   std::memory_order_relaxed);
  return true;
}

// What a wake reports for a task in state `s` that it cannot wake: queued or marked already,
// finished, or not waiting at all.
WakeOutcome not_wakeable(std::uint32_t s) {
  switch (s) {
    case kQueued:
    case kNotified:
      return WakeOutcome::kAlreadyScheduled;
    case kDone:
      return WakeOutcome::kFinished;
    default:
      return WakeOutcome::kNotWaiting;
  }
}

// Wakes a task in an owned park: no one else may queue it, so it needs no read-modify-write.
// (A schedule() that raced with the park found the state Running and put its payload aside:
// it never writes the value this does.)
WakeOutcome wake_owned(TaskCore* t, std::any* value, std::exception_ptr* error) {
  auto* rt = static_cast<RuntimeCore*>(t->runtime);
  if (value != nullptr || error != nullptr) write_payload(t, value, error);
  t->owned_park.store(kOwnedWoken, std::memory_order_relaxed);
  if (__builtin_expect(rt->tracer != nullptr, 0)) trace_wake(rt, t->id());
  push_woken(t, rt);
  return WakeOutcome::kOk;
}

// `s`: the state as the caller last saw it (a compare-and-swap corrects it if stale).
WakeOutcome wake_task(TaskCore* t, std::uint32_t s, std::any* value, std::exception_ptr* error) {
  const bool payload = has_payload(value, error);
  // Read before the transition: a task woken while it still runs may finish (and be freed) as
  // soon as it sees the wake-up.
  auto* rt = static_cast<RuntimeCore*>(t->runtime);
  const std::uint64_t traced_id =
      __builtin_expect(rt != nullptr && rt->tracer != nullptr, 0) ? t->id() : 0;
  for (;;) {
    if (s & kClaimBit) {
      SpinLock::pause();
      s = t->state.load(std::memory_order_acquire);
      continue;
    }
    switch (s) {
      case kParked:
        if (!payload) {
          if (!t->state.compare_exchange_weak(s, kQueued, std::memory_order_acq_rel)) continue;
        } else {
          if (!t->state.compare_exchange_weak(s, kParked | kClaimBit,
                                              std::memory_order_acq_rel)) {
            continue;
          }
          write_payload(t, value, error);
          t->state.store(kQueued, std::memory_order_release);
        }
        if (__builtin_expect(traced_id != 0, 0)) trace_wake(rt, traced_id);
        push_woken(t, rt);
        return WakeOutcome::kOk;
      case kRunning:
      case kArming:
        // A wake-up as much as one that queues the task: a plain thread that gives one may give
        // another, so deadlock detection must know it (push_woken does this for the others).
        // Before the mark, after which the task may finish and be freed.
        if (current_worker() == nullptr) {
          note_outside_waker(t->wait_kind.load(std::memory_order_relaxed));
        }
        if (!mark_running(t, s, payload, value, error)) continue;
        if (__builtin_expect(traced_id != 0, 0)) trace_wake(rt, traced_id);
        return WakeOutcome::kOk;
      default:
        return not_wakeable(s);
    }
  }
}

WakeOutcome wake_thread(Waiter* w, std::uint32_t s, std::any* value, std::exception_ptr* error) {
  if (current_worker() == nullptr) note_outside_waker(w->wait_kind.load(std::memory_order_relaxed));
  for (;;) {
    if (s & kClaimBit) {
      SpinLock::pause();
      s = w->state.load(std::memory_order_acquire);
      continue;
    }
    if (s == kNotified) return WakeOutcome::kAlreadyScheduled;
    if (!w->state.compare_exchange_weak(s, s | kClaimBit, std::memory_order_acq_rel)) continue;
    if (s == kParked) {
      write_payload(w, value, error);
    } else if (has_payload(value, error)) {
      write_pending_payload(w, value, error);
    }
    w->state.store(kNotified, std::memory_order_release);
    if (s == kParked) futex_wake(&w->state);
    return WakeOutcome::kOk;
  }
}

// Gives up a plain thread's wait for a task in a deadlock (deadlock.h): throws DeadlockError,
// or returns if a wake-up came after all. Its waiter stays in the task's list of waiters, so
// it is abandoned rather than reused.
void raise_deadlock(ThreadWaiter* me) {
  std::vector<TaskInfo> tasks;
  std::string report = deadlock_report(me, &tasks);
  std::uint32_t parked = kParked;
  if (!me->state.compare_exchange_strong(parked, kRunning, std::memory_order_acq_rel)) return;
  abandon_thread_waiter(me);
  throw DeadlockError(report, std::move(tasks));
}

// A thread blocked on a primitive in a deadlock cannot be let go (the primitive keeps pointers
// into its stack): it says so once and keeps waiting.
void report_unreleasable_deadlock(ThreadWaiter* me) {
  std::vector<TaskInfo> tasks;
  std::string report = deadlock_report(me, &tasks);
  std::fprintf(stderr,
               "weft: %sthis thread keeps waiting: it is blocked on a %s, which may still refer "
               "to its stack, so it cannot be released with a DeadlockError\n%s",
               report.c_str(), to_string(me->wait_kind.load(std::memory_order_relaxed)),
               format_task_dump(tasks).c_str());
}

// Parks a plain thread. The lock is released first: a wake that comes before the futex wait
// leaves the state Notified, and the wait below sees it.
ParkResult park_thread(ThreadWaiter* me, UnlockFn unlock, void* lock,
                       const Clock::time_point* deadline) {
  if (unlock != nullptr) unlock(lock);
  me->parks.store(me->parks.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  // Without a deadline, wake up every kDeadlockPoll to look for a deadlock (deadlock.h).
  const bool watch = deadline == nullptr && deadlock_detection_enabled();
  const Clock::duration poll = kDeadlockPoll;
  DeadlockWatch deadlocks;
  for (;;) {
    std::uint32_t s = me->state.load(std::memory_order_acquire);
    if (s == kNotified) {
      adopt_pending_payload(me);
      me->state.store(kRunning, std::memory_order_release);
      return ParkResult::kWoken;
    }
    if (s & kClaimBit) {
      SpinLock::pause();
      continue;
    }
    if (s == kRunning) {
      me->state.compare_exchange_weak(s, kParked, std::memory_order_acq_rel);
      continue;
    }
    if (watch) {
      if (!futex_wait(&me->state, kParked, nullptr, &poll) && deadlocks.poll()) {
        if (me->wait_kind.load(std::memory_order_relaxed) == WaitKind::kTask) {
          raise_deadlock(me);
        } else if (!deadlocks.reported) {
          deadlocks.reported = true;
          report_unreleasable_deadlock(me);
        }
      }
      continue;
    }
    if (!futex_wait(&me->state, kParked, deadline)) {
      std::uint32_t armed = kArmed;
      if (me->timed.compare_exchange_strong(armed, kFiredTimer, std::memory_order_acq_rel)) {
        std::uint32_t parked = kParked;
        // Nobody else can move the state now: wakers check the token first and give up.
        me->state.compare_exchange_strong(parked, kRunning, std::memory_order_acq_rel);
        return ParkResult::kTimedOut;
      }
      // A waker won the token: its wake-up is on the way; wait for it without a deadline.
      deadline = nullptr;
    }
  }
}

[[gnu::noinline, gnu::cold]] void rethrow_pending_error(Waiter* w) {
  std::rethrow_exception(std::exchange(w->error, nullptr));
}

inline void raise_pending_error(Waiter* w) {
  if (__builtin_expect(w->error != nullptr, 0)) rethrow_pending_error(w);
}

void set_wait(Waiter* w, WaitKind kind, const void* object) {
  w->wait_kind.store(kind, std::memory_order_relaxed);
  w->wait_object.store(object, std::memory_order_relaxed);
}

// The running task's state is kRunning or (marked by a schedule(), or being marked) kNotified.
inline bool is_running_or_marked(const TaskCore* cur) {
  const std::uint32_t s = cur->state.load(std::memory_order_relaxed) & ~kClaimBit;
  return s == kRunning || s == kNotified;
}

// A timed park of a task that holds its primitive's lock found the task marked Notified before
// it armed. No waker of that primitive can have done it (they need the lock), so a schedule()
// did, marking the running task for its next wait() (scheduling.h). This park cannot tell that
// wake-up from its own (an untimed park with a lock can: it is owned), and taking it would end
// the wait as if the primitive had woken it, still in the primitive's queue. So it leaves the
// mark -- state and payload -- for the next wait() and ends as timed out: the primitive then
// unlinks the waiter under its lock, as after any timeout. (The same for a deadline token that
// an early wake claimed: not this primitive's either.) It lets the worker's other tasks run
// first, as the wait would have, so that a loop of timed waits does not keep them from running
// while the mark waits for a wait().
[[gnu::noinline, gnu::cold]] ParkResult decline_marked_timed_park(Worker* w, TaskCore* cur,
                                                                  UnlockFn unlock, void* lock) {
  unlock(lock);
  set_wait(cur, WaitKind::kNone, nullptr);
  run_others_first(w, cur);
  return ParkResult::kTimedOut;
}

// What the timer does at the deadline, done by the park itself: the token moves kArmed ->
// kFiredTimer. False when an early wake claimed the token first.
bool fire_own_deadline(Waiter* me) {
  std::uint32_t armed = kArmed;
  return me->timed.compare_exchange_strong(armed, kFiredTimer, std::memory_order_acq_rel);
}

// A timed task park's Running -> Arming, before it arms (see the top of this file). False when
// the task was marked Notified first; that mark stays. A wake writing its payload holds the
// claim bit for a few instructions, then publishes Notified.
bool enter_arming(TaskCore* cur) {
  for (std::uint32_t s = kRunning;; s = kRunning) {
    if (cur->state.compare_exchange_weak(s, kArming, std::memory_order_acq_rel)) return true;
    if (s == kNotified) return false;
    if (s & kClaimBit) SpinLock::pause();
  }
}

// Arming -> Running, for a timed park that ends without parking and lets other tasks run first:
// it then waits in the run queue as a yield does, whose state prepare() keeps only if it is
// Running or Notified. A waker that won the token first may be marking the task Notified: that
// mark stays (waited for while it is being written, which prepare() would overwrite).
void leave_arming(TaskCore* cur) {
  for (std::uint32_t s = kArming;; s = kArming) {
    if (cur->state.compare_exchange_weak(s, kRunning, std::memory_order_acq_rel)) return;
    if (s == kNotified) return;
    if (s & kClaimBit) SpinLock::pause();
  }
}

// Every park: a plain thread's, a timed one (park_impl takes the untimed task park itself).
[[gnu::noinline]] ParkResult park_common(UnlockFn unlock, void* lock,
                                         const Clock::time_point* deadline, WaitKind kind,
                                         const void* object) {
  // One thread-local lookup for both: on a worker thread the running task is its `current`.
  Worker* const worker = current_worker();
  TaskCore* cur = worker != nullptr ? worker->current : nullptr;
  Waiter* me = cur != nullptr ? static_cast<Waiter*>(cur) : thread_waiter();
  // Decided before arming: a park that loses its token to an early wake (below) must consume
  // that wake-up, which an owned park would leave for a later park. A task already Notified
  // takes that wake-up here too (returns at once), as a park always did, unless it holds a
  // primitive's lock: then the mark is a schedule()'s, and the park declines it.
  const bool owned = cur != nullptr && unlock != nullptr && deadline == nullptr &&
                     cur->state.load(std::memory_order_relaxed) == kRunning;
  Leave how = owned ? Leave::kParkOwned : Leave::kPark;
  set_wait(me, kind, object);
  if (deadline != nullptr) {
    if (cur != nullptr) {
      cur->wait_deadline.store(deadline->time_since_epoch().count(), std::memory_order_relaxed);
      if (enter_arming(cur)) {
        how = Leave::kParkTimed;
      } else if (unlock != nullptr) {
        return decline_marked_timed_park(worker, cur, unlock, lock);
      } else {
        deadline = nullptr;  // takes the mark: the park below returns at once
      }
    }
  }
  if (deadline != nullptr) {
    std::uint32_t untimed = kUntimed;
    // Fails only when an early wake claimed the token (see the top of this file): it is
    // delivered or on its way, so this park waits for it without a deadline -- unless the task
    // holds its primitive's lock, whose wakers cannot have come early: declined as a mark is.
    if (!me->timed.compare_exchange_strong(untimed, kArmed, std::memory_order_acq_rel)) {
      if (cur != nullptr && unlock != nullptr) {
        leave_arming(cur);
        return decline_marked_timed_park(worker, cur, unlock, lock);
      }
      deadline = nullptr;
    }
  }
  ParkResult result;
  if (cur == nullptr) {
    result = park_thread(static_cast<ThreadWaiter*>(me), unlock, lock, deadline);
  } else if (deadline != nullptr && !worker->rt->timers.try_add(me, *deadline) &&
             fire_own_deadline(me)) {
    // The deadline could not be registered (try_add said why; not thrown: the primitive that
    // called park_until() has this waiter in its queue, with a ticket in its frame). No timer
    // will end this wait, so it ends now, as its deadline would: the token says the deadline
    // won, and a waker still to come delivers nothing (as after any timeout). Had an early
    // wake claimed the token first, the park below would wait for that wake-up, which is on
    // its way (the timer entry it then cancels is not there: harmless). The worker's other
    // tasks run first, as they would have during the wait: a sleep retrying until its
    // deadline must not keep them from running. Meanwhile the task is running, and a
    // schedule() may mark it as such.
    leave_arming(cur);
    if (unlock != nullptr) unlock(lock);
    run_others_first(worker, cur);
    result = ParkResult::kTimedOut;
  } else {
    Worker* w = worker;
    w->unlock = unlock;
    w->unlock_arg = lock;
    leave(w, cur, how);
    result = ParkResult::kWoken;
    if (deadline != nullptr) {
      if (me->timed.load(std::memory_order_acquire) == kFiredTimer) {
        result = ParkResult::kTimedOut;
      } else {
        static_cast<RuntimeCore*>(cur->runtime)->timers.cancel(me, *deadline);
      }
    }
  }
  // Whatever moved it happened before this park returned: the arming above, the deadline, or
  // the wake that resumed us (a claim comes before its state transition). An owned park leaves
  // a claim alone: it belongs to a Notified wake-up, for the next park that is not owned.
  // Release: a waker that reads the token cleared then reads our state as running, never as
  // the kQueued our deadline left (beat_deadline).
  if (!owned && me->timed.load(std::memory_order_relaxed) != kUntimed) {
    me->timed.store(kUntimed, std::memory_order_release);
  }
  set_wait(me, WaitKind::kNone, nullptr);
  raise_pending_error(me);
  return result;
}

}  // namespace

WakeOutcome wake_scheduled(TaskCore* t, bool (*may_wake)(const TaskCore*), std::any* value,
                           std::exception_ptr* error) {
  // Every compare-and-swap that fails starts over from the state it found: so a parked task is
  // always claimed, and asked may_wake, whatever it was when we first looked.
  for (;;) {
    std::uint32_t s = load_unclaimed(t->state);
    switch (s) {
      case kParked: {
        if (!t->state.compare_exchange_weak(s, kParked | kClaimBit, std::memory_order_acq_rel)) {
          continue;
        }
        // Claimed: t stays parked on what it parked on until we let go.
        if (!may_wake(t)) {
          t->state.store(kParked, std::memory_order_release);
          return WakeOutcome::kNotWaiting;
        }
        // A wait a schedule() may end (wait(), yieldto) has no deadline: nothing to beat.
        auto* rt = static_cast<RuntimeCore*>(t->runtime);
        const std::uint64_t traced_id = __builtin_expect(rt->tracer != nullptr, 0) ? t->id() : 0;
        write_payload(t, value, error);
        t->state.store(kQueued, std::memory_order_release);
        // Traced once the claim is gone (as wake_task does): tracing may lock and allocate.
        if (__builtin_expect(traced_id != 0, 0)) trace_wake(rt, traced_id);
        push_woken(t, rt);
        return WakeOutcome::kOk;
      }
      case kRunning: {
        // For its next wait(); a timed park it enters first finds the mark (park_common). Read
        // first: the caller's reference may be the task's own to drop (the spec's OneWayEvent
        // holds its waiter's handle), so t may take the mark, finish and be freed at once.
        auto* rt = static_cast<RuntimeCore*>(t->runtime);
        const std::uint64_t traced_id = __builtin_expect(rt->tracer != nullptr, 0) ? t->id() : 0;
        // The mark is a wake-up, whose plain thread may give another (as in wake_task).
        if (current_worker() == nullptr) note_outside_waker(WaitKind::kNone);
        if (!mark_running(t, s, has_payload(value, error), value, error)) continue;
        if (__builtin_expect(traced_id != 0, 0)) trace_wake(rt, traced_id);
        return WakeOutcome::kOk;
      }
      case kArming:
        // On its way into a timed wait: its wake-up is its primitive's or its deadline's.
        return WakeOutcome::kNotWaiting;
      default:
        return not_wakeable(s);
    }
  }
}

WakeOutcome wake_waiter(Waiter* w, std::any* value, std::exception_ptr* error,
                        WakeSource source) {
  // An owned park has no deadline and no state transition. Relaxed: the primitive's lock
  // ordered the park before this wake.
  if (source == WakeSource::kOwner &&
      w->owned_park.load(std::memory_order_relaxed) == kOwnedParked) {
    return wake_owned(static_cast<TaskCore*>(w), value, error);
  }
  // The state first: a waiter arms its token before it publishes kParked.
  std::uint32_t s = load_unclaimed(w->state);
  if (source != WakeSource::kTimer && beat_deadline(w, s) == DeadlineRace::kLost) {
    return WakeOutcome::kTimedOut;
  }
  return w->kind == Waiter::Kind::kTask
             ? wake_task(static_cast<TaskCore*>(w), s, value, error)
             : wake_thread(w, s, value, error);
}

// The common park -- a task, no deadline -- is park_common's task branch on its own: the
// thread and deadline branches' locals gave every park a protected 0x110-byte frame.
void park_impl(UnlockFn unlock, void* lock, WaitKind kind, const void* object) {
  Worker* const worker = current_worker();
  TaskCore* const cur = worker != nullptr ? worker->current : nullptr;
  if (__builtin_expect(cur == nullptr, 0)) {
    park_common(unlock, lock, nullptr, kind, object);
    return;
  }
  // Owned whenever it has a lock -- a primitive's, whose wakers need that lock, so none of them
  // can have woken this wait yet -- even if a schedule() marked the task Notified while it ran:
  // that mark is for the task's next wait() (scheduling.h), and ending this park on it would be
  // a spurious end (an Event wait returning unset, a put returning with its item still queued).
  // An owned park leaves the state word as it is, so the mark (and its payload) waits untouched
  // for the next park that is not owned.
  const bool owned = unlock != nullptr && is_running_or_marked(cur);
  set_wait(cur, kind, object);
  worker->unlock = unlock;
  worker->unlock_arg = lock;
  leave(worker, cur, owned ? Leave::kParkOwned : Leave::kPark);
  if (!owned && cur->timed.load(std::memory_order_relaxed) != kUntimed) {
    cur->timed.store(kUntimed, std::memory_order_release);  // as in park_common()
  }
  set_wait(cur, WaitKind::kNone, nullptr);
  raise_pending_error(cur);
}

ParkResult park_until_impl(UnlockFn unlock, void* lock, Clock::time_point deadline,
                           WaitKind kind, const void* object) {
  // Never (what a timeout past ~31 years becomes: sync/deadline.h) is no deadline at all. As a
  // timer it would never fire, yet keep the runtime from ever looking quiescent: deadlock
  // detection would not see the wait, and shutdown would wait for it for good.
  if (deadline == Clock::time_point::max()) {
    park_impl(unlock, lock, kind, object);
    return ParkResult::kWoken;
  }
  return park_common(unlock, lock, &deadline, kind, object);
}

}  // namespace internal

internal::Waiter* current_waiter() {
  internal::Waiter* self = internal::current_self();
  return self != nullptr ? self : internal::thread_waiter();
}

internal::Waiter* current_waiter_if_made() {
  internal::Waiter* self = internal::current_self();
  return self != nullptr ? self : internal::thread_waiter_if_made();
}

namespace {
bool deliver(internal::Waiter* w, std::any* value, std::exception_ptr* error) {
  switch (internal::wake_waiter(w, value, error, internal::WakeSource::kOwner)) {
    case internal::WakeOutcome::kOk:
      return true;
    case internal::WakeOutcome::kTimedOut:
      return false;
    default:
      throw TaskStateError("wake: the waiter is not waiting (a primitive woke it twice)");
  }
}
}  // namespace

bool wake(internal::Waiter* w) {
  // The common case -- a primitive waking a task in an owned park -- without the detours a
  // payload or the state machine would take (wake_waiter's first test, for no payload).
  if (w->owned_park.load(std::memory_order_relaxed) == internal::kOwnedParked) {
    return internal::wake_owned(static_cast<internal::TaskCore*>(w), nullptr, nullptr) ==
           internal::WakeOutcome::kOk;
  }
  return deliver(w, nullptr, nullptr);
}
bool wake(internal::Waiter* w, std::any value) { return deliver(w, &value, nullptr); }
// The payload is written only by a wake that wins (internal::wake_waiter): no copy needed.
bool wake_moving(internal::Waiter* w, std::any& value) { return deliver(w, &value, nullptr); }
WakeResult try_wake(internal::Waiter* w) {
  switch (internal::wake_waiter(w, nullptr, nullptr, internal::WakeSource::kOwner)) {
    case internal::WakeOutcome::kOk:
      return WakeResult::kWoken;
    case internal::WakeOutcome::kTimedOut:
      return WakeResult::kTimedOut;
    case internal::WakeOutcome::kAlreadyScheduled:
      return WakeResult::kAlreadyQueued;
    default:
      throw TaskStateError("wake: the waiter is not waiting (a primitive woke it twice)");
  }
}

void run_others_first() {
  internal::Worker* const w = internal::current_worker();
  internal::TaskCore* const cur = w != nullptr ? w->current : nullptr;
  if (cur != nullptr) internal::run_others_first(w, cur);
}

void consume_pending_wake() {
  internal::TaskCore* cur = internal::current_task_core();
  if (cur == nullptr) return;
  if (internal::load_unclaimed(cur->state) == internal::kNotified) {
    park(WaitKind::kNone, nullptr);  // not owned: returns at once, taking it
  }
}

bool wake_error(internal::Waiter* w, std::exception_ptr error) {
  return deliver(w, nullptr, &error);
}

namespace internal {
bool wake_dequeued_waiter(Waiter* w, std::any* value, std::exception_ptr* error) {
  // The common case -- a task in an owned park, no payload -- as wake() takes it.
  if (value == nullptr && error == nullptr &&
      w->owned_park.load(std::memory_order_relaxed) == kOwnedParked) {
    return wake_owned(static_cast<TaskCore*>(w), nullptr, nullptr) == WakeOutcome::kOk;
  }
  switch (wake_waiter(w, value, error, WakeSource::kOwner)) {
    case WakeOutcome::kOk:
      return true;
    case WakeOutcome::kTimedOut:
    // Found marked (kNotified) or queued: a task the primitive's lock kept in its queue is
    // parked there unless its timed park ended -- its deadline fired, or it declined a
    // schedule()'s mark and let other tasks run first (park_common) -- and a schedule() or its
    // yield queued it since. It takes the lock next, finds itself dequeued, and with nothing
    // delivered reports the timeout it had; the mark stays for its next wait().
    case WakeOutcome::kAlreadyScheduled:
      return false;
    default:
      throw TaskStateError("wake: the waiter is not waiting (a primitive woke it twice)");
  }
}
}  // namespace internal

}  // namespace weft
