// The user-facing scheduling calls (scheduling.h) on top of the runtime's switch and park.
#include "weft/sched/scheduling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <thread>

#include "absl/strings/str_cat.h"
#include "weft/sched/park.h"
#include "weft/sched/runtime_core.h"
#include "weft/sched/trace.h"
#include "weft/task/current_task.h"

namespace weft {
namespace internal {
namespace {

bool parked_by_user(const TaskCore* t) {
  WaitKind k = t->wait_kind.load(std::memory_order_relaxed);
  return k == WaitKind::kExplicit || k == WaitKind::kYieldTo;
}

[[noreturn]] void state_error(const char* op, const TaskCore* t, std::uint32_t s) {
  // An owned park leaves the state word as it was (park.cc).
  switch (t->owned_park.load(std::memory_order_relaxed)) {
    case kOwnedParked: s = kParked; break;
    case kOwnedWoken: s = kQueued; break;
    default: break;
  }
  std::string why;
  switch (s) {
    case kQueued:
    case kNotified:
      why = "is already scheduled (queued to run)";
      break;
    case kDone:
      why = "has already finished";
      break;
    case kRunning:
      // Also a task that yield()ed and waits in the run queue: its state stays kRunning.
      why = "is running, or queued to run after a yield() (only a new task, or one in wait() "
            "or yieldto, can be switched to)";
      break;
    case kParked:
    case kArming:  // on its way into a timed wait
      why = absl::StrCat("is waiting on a ", to_string(t->wait_kind.load()),
                         ", whose wake-up this would steal");
      break;
    default:
      why = "is not in a state this allows";
  }
  throw TaskStateError(absl::StrCat(op, ": task ", t->id(), " ", why));
}

// wait(t)'s errors, out of line: joining is hot, and building the exceptions gave it a large
// stack frame.
[[noreturn, gnu::cold, gnu::noinline]] void throw_waits_for_itself(const TaskCore* t) {
  throw TaskStateError(
      absl::StrCat("wait: task ", t->id(), " cannot wait for itself (it would never finish)"));
}

// What wait(t) passes to park() as its lock: unlocking links the waiter into t's list of
// waiters. For a task that happens once its context is saved, so the finisher, who alone wakes
// what it finds there, cannot wake it any sooner: an owned park (park.h), with no
// read-modify-write on the state word on either side, where linking before parking needed two.
// If t finished meanwhile (the list is closed), nobody else will wake the waiter: it wakes
// itself. A task's park that is not owned -- the task was scheduled while it ran, and the park
// returns at once, consuming that -- links nothing (linked() stays false): had it linked, the
// finisher's wake-up would land later, after wait(t) returned, on a task that has moved on.
class JoinLink {
 public:
  JoinLink(TaskCore* target, Waiter* me) : target_(target), me_(me) {}
  bool linked() const { return linked_; }
  void unlock() {
    // Locals only: once linked, the waiter may resume and this object go with its frame.
    TaskCore* const target = target_;
    Waiter* const me = me_;
    if (me->kind == Waiter::Kind::kTask &&
        me->owned_park.load(std::memory_order_relaxed) != kOwnedParked) {
      return;  // not owned: the task resumes only by its requeue, after this returns
    }
    linked_ = true;
    Waiter* head = target->done_waiters.load(std::memory_order_acquire);
    do {
      if (head == kDoneWaitersClosed) {
        wake_waiter(me, nullptr, nullptr, WakeSource::kOwner);
        return;
      }
      me->wq_next = head;
    } while (!target->done_waiters.compare_exchange_weak(head, me, std::memory_order_acq_rel,
                                                         std::memory_order_acquire));
  }

 private:
  TaskCore* const target_;
  Waiter* const me_;
  bool linked_ = false;
};

[[noreturn, gnu::cold, gnu::noinline]] void throw_task_failed(const TaskRef& t) {
  throw TaskFailedException(t, t.core()->exception);
}

std::any take_wake_value(Waiter* w) {
  if (w->error != nullptr) std::rethrow_exception(std::exchange(w->error, nullptr));
  if (!w->value.has_value()) return {};  // the common case: skip std::any's move machinery
  return std::exchange(w->value, std::any());
}

// What a schedule() left for a task that yielded (it stayed kRunning): ours only once that
// wake-up is published (kNotified). A wake still claiming the state may be writing it; it then
// stays pending for the next park, which takes it. A wake-up whose value (or error) the yield
// returns ends here, as at a park, whether the yield ran other tasks first or not -- left
// pending, it would also end the task's next wait(), at once and empty: one schedule() ending
// two waits. Nobody else moves a state from kNotified (wakers report it already scheduled), so
// a store does. It ends with the deadline token an early wake claimed on its way (kWokenFirst:
// park.cc), or the next timed wait could not arm it and would never time out.
[[gnu::noinline]] std::any take_notified_yield_value(TaskCore* cur) {
  if (load_unclaimed(cur->state) != kNotified) return {};
  std::exception_ptr error;
  std::any value;
  if (std::unique_ptr<WakePayload> p = std::move(cur->pending_payload)) {
    error = std::move(p->error);
    value = std::move(p->value);
  }
  cur->state.store(kRunning, std::memory_order_release);
  cur->timed.store(kUntimed, std::memory_order_release);  // after the state: see park.cc
  if (error != nullptr) std::rethrow_exception(error);
  return value;
}

// The common case inline: nothing raced with the yield (the state is plain kRunning), which
// spares every yield a call to a function whose locals need a stack-protected frame.
inline std::any take_yield_value(TaskCore* cur) {
  if (cur->state.load(std::memory_order_acquire) == kRunning) return {};
  return take_notified_yield_value(cur);
}

// A task that is not running but may be resumed by a direct switch (yield(t), yieldto) on
// worker w: claims it and hands it `arg`. False when t must not run on w (sticky elsewhere,
// another pool or runtime): the caller then goes through the queue instead. With
// `running_via_queue` (yield(t), which is schedule(t, arg); yield()), also false for a task
// running on another worker, which schedule() marks for its next wait(); yieldto refuses it.
bool claim_for_switch(TaskCore* t, Worker* w, std::any* arg, const char* op,
                      bool running_via_queue = false) {
  for (;;) {
    std::uint32_t s = load_unclaimed(t->state);
    if (running_via_queue && s == kRunning &&
        t->owned_park.load(std::memory_order_relaxed) == kNotOwned) {
      return false;
    }
    if (s == kCreated) {
      if (!t->state.compare_exchange_strong(s, kCreated | kClaimBit, std::memory_order_acq_rel)) {
        continue;
      }
      // Read once claimed: a racing schedule() that wins writes it (RuntimeCore::submit).
      if (!t->sticky && t->node.pool != w->pool) {
        t->state.store(kCreated, std::memory_order_release);
        return false;
      }
      t->runtime = w->rt;
      t->node.affinity = t->sticky ? w->index : -1;
      t->node.pool = w->pool;
      t->add_ref();
      w->spawned.store(w->spawned.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      if (__builtin_expect(w->rt->tracer != nullptr, 0)) trace_spawn(w->rt, t);
      return true;
    }
    if (s != kParked) state_error(op, t, s);
    if (!t->state.compare_exchange_strong(s, kParked | kClaimBit, std::memory_order_acq_rel)) {
      continue;
    }
    // Checked once claimed: until then t could be woken by another, run and park on something
    // whose wake-up this switch would steal.
    if (!parked_by_user(t)) {
      t->state.store(kParked, std::memory_order_release);
      state_error(op, t, s);
    }
    if (t->runtime != w->rt || t->node.pool != w->pool ||
        (t->node.affinity >= 0 && t->node.affinity != w->index)) {
      t->state.store(kParked, std::memory_order_release);
      return false;
    }
    if (arg != nullptr && arg->has_value()) t->value = std::move(*arg);
    return true;
  }
}

void schedule_impl(TaskCore* t, std::any* value, std::exception_ptr* error) {
  std::uint32_t s = load_unclaimed(t->state);
  if (s == kCreated) {
    Worker* w = current_worker();
    RuntimeCore* rt = w != nullptr ? w->rt : runtime_for_caller();
    // No value: a new task has no wait to return it from (Julia's first switch calls the
    // function with no arguments). Kept, its first wait woken without one would return it.
    rt->submit(t, w, /*unshared=*/false, nullptr, error);
    return;
  }
  if (t->owned_park.load(std::memory_order_relaxed) != kNotOwned) state_error("schedule", t, s);
  // The state wake_scheduled() decided on, not one read again: by now a queued t may run.
  switch (wake_scheduled(t, &parked_by_user, value, error)) {
    case WakeOutcome::kOk:
      return;
    case WakeOutcome::kAlreadyScheduled:
      state_error("schedule", t, kQueued);
    case WakeOutcome::kFinished:
      state_error("schedule", t, kDone);
    default:
      // t waits on something only its own waker may end: parked, or on its way into a timed
      // wait (kArming).
      state_error("schedule", t, kParked);
  }
}

}  // namespace

void spawn_new(TaskCore* t, const SpawnOptions& options) {
  check_pool(options.pool, "spawn");
  t->sticky = false;
  t->node.pool = options.pool;
  t->node.priority = options.priority;
  t->request_stack_size(options.stack_size);
  t->node.policy_arg = options.policy_arg;
  Worker* w = current_worker();
  RuntimeCore* rt = w != nullptr ? w->rt : runtime_for_caller();
  rt->submit(t, w, /*unshared=*/true);
}

void pin_current_task() {
  TaskCore* cur = current_task_core();
  if (cur == nullptr || cur->sticky) return;
  // Only the running task touches its own node while it runs: no policy holds it now.
  Worker* w = current_worker();
  cur->sticky = true;
  cur->node.affinity = w->index;
  cur->node.pool = w->pool;
}

}  // namespace internal

using internal::current_task_core;
using internal::current_worker;
using internal::TaskCore;
using internal::Worker;

const TaskRef& schedule(const TaskRef& t) {
  internal::schedule_impl(t.checked_core("schedule"), nullptr, nullptr);
  return t;
}

std::any fetch(const TaskRef& t) {
  TaskCore* core = t.checked_core("fetch");
  wait(t);
  return core->result_as_any();
}

const TaskRef& schedule(const TaskRef& t, std::any value, ScheduleOptions options) {
  t.checked_core("schedule");
  if (!options.error) {
    internal::schedule_impl(t.core(), &value, nullptr);
    return t;
  }
  auto* e = std::any_cast<std::exception_ptr>(&value);
  if (e == nullptr || *e == nullptr) {
    throw std::invalid_argument(
        "schedule(t, val, {.error = true}): val must hold a non-null std::exception_ptr "
        "(std::make_exception_ptr(...))");
  }
  std::exception_ptr error = *e;
  internal::schedule_impl(t.core(), nullptr, &error);
  return t;
}

std::any yield() {
  // One thread-local lookup for both: on a worker thread the running task is its `current`.
  Worker* const w = current_worker();
  TaskCore* const cur = w != nullptr ? w->current : nullptr;
  if (cur == nullptr) {
    std::this_thread::yield();
    return {};
  }
  internal::run_others_first(w, cur);
  // Back (or nothing else to run): carry on, consuming a schedule() that may have raced with us.
  return internal::take_yield_value(cur);
}

std::any yield(const TaskRef& t, std::any arg) {
  TaskCore* target = t.checked_core("yield(t)");
  TaskCore* cur = current_task_core();
  if (target == cur) throw TaskStateError("yield(t): t is the calling task");
  if (cur == nullptr) {
    schedule(t, std::move(arg));
    std::this_thread::yield();
    return {};
  }
  Worker* w = current_worker();
  if (!internal::claim_for_switch(target, w, &arg, "yield(t)", /*running_via_queue=*/true)) {
    schedule(t, std::move(arg));
    return yield();
  }
  internal::leave(w, cur, internal::Leave::kYieldBehind, target);
  return internal::take_yield_value(cur);
}

std::any yieldto(const TaskRef& t, std::any arg) {
  TaskCore* target = t.checked_core("yieldto");
  TaskCore* cur = current_task_core();
  if (cur == nullptr) throw TaskStateError("yieldto: only a task can switch to another task");
  if (target == cur) return arg;
  // A handle of our own while we are suspended: wait_object names the target for task dumps
  // and deadlock reports (task_dump.cc), which read its id; the target may end without
  // switching back, and the handle the caller passed go, while we stay suspended.
  const TaskRef keep_target = t;
  Worker* w = current_worker();
  cur->wait_kind.store(WaitKind::kYieldTo, std::memory_order_relaxed);
  cur->wait_object.store(target, std::memory_order_relaxed);
  if (!internal::claim_for_switch(target, w, &arg, "yieldto")) {
    cur->wait_kind.store(WaitKind::kNone, std::memory_order_relaxed);
    schedule(t, std::move(arg));
    return wait();
  }
  internal::leave(w, cur, internal::Leave::kPark, target);
  // As at the end of any park that is not owned (park.cc): an early wake of this task while it
  // ran may have claimed the deadline token (kWokenFirst); left so, the next timed wait could
  // not arm it and would never time out.
  if (cur->timed.load(std::memory_order_relaxed) != internal::kUntimed) {
    cur->timed.store(internal::kUntimed, std::memory_order_release);
  }
  cur->wait_kind.store(WaitKind::kNone, std::memory_order_relaxed);
  cur->wait_object.store(nullptr, std::memory_order_relaxed);
  return internal::take_wake_value(cur);
}

std::any wait() {
  TaskCore* cur = current_task_core();
  if (cur == nullptr) {
    throw TaskStateError(
        "wait(): only a task can wait for an explicit schedule(); a plain thread has no task "
        "to schedule");
  }
  park(WaitKind::kExplicit, nullptr);
  return std::exchange(cur->value, std::any());
}

void wait(const TaskRef& t) {
  TaskCore* target = t.checked_core("wait");
  // Not done() alone: a finishing task is marked done before it reports to errormonitor and
  // runs its on_done callbacks; wait returns once those are over, when it closes this list.
  if (target->done_waiters.load(std::memory_order_acquire) != internal::kDoneWaitersClosed) {
    internal::Waiter* me = current_waiter();
    if (me == target) internal::throw_waits_for_itself(target);
    // Linked by an owned park (JoinLink), which only the finisher's wake-up, or the link's own
    // when it found the list closed, ends. A park that consumed a schedule() of this running
    // task instead linked nothing: again.
    internal::JoinLink link(target, me);
    do {
      park(link, WaitKind::kTask, target);
    } while (!link.linked());
  }
  if (target->exception != nullptr) internal::throw_task_failed(t);
}

TaskRef current_task() {
  TaskCore* cur = current_task_core();
  return cur == nullptr ? TaskRef() : TaskRef(internal::TaskPtr(cur, /*adopt=*/false));
}

void sleep(double seconds) {
  if (std::isnan(seconds) || seconds < 0) {
    throw std::invalid_argument(absl::StrCat("sleep: cannot sleep for ", seconds, " seconds"));
  }
  sleep(seconds > 1e9 ? absl::InfiniteDuration() : absl::Seconds(seconds));  // ~31 years: never
}

void sleep(absl::Duration duration) {
  if (duration < absl::ZeroDuration()) {
    throw std::invalid_argument(
        absl::StrCat("sleep: cannot sleep for a negative duration (", absl::FormatDuration(duration), ")"));
  }
  // Julia's minimum sleep is 1 ms. Past ~31 years (the clock's range: now + duration must not
  // wrap into the past) a sleep is forever: a task's parks untimed (sync/deadline.h's "never"),
  // so that it holds up neither shutdown nor deadlock detection as a pending timer would.
  duration = std::max(duration, absl::Milliseconds(1));
  const bool forever = duration > absl::Seconds(1e9);
  if (current_task_core() == nullptr) {
    // A plain thread sleeping in weft is a timed wait, and what it does next may wake a task:
    // it must be known to deadlock detection (deadlock.h), where a running thread is progress.
    // A thread seen for the first time here would otherwise be invisible, and a thread blocked
    // on its tasks meanwhile declared deadlocked.
    current_waiter();
    std::this_thread::sleep_for(absl::ToChronoNanoseconds(std::min(duration, absl::Seconds(1e9))));
    return;
  }
  const Clock::time_point deadline =
      forever ? Clock::time_point::max() : Clock::now() + absl::ToChronoNanoseconds(duration);
  while (Clock::now() < deadline) park_until(deadline, WaitKind::kSleep, nullptr);
  // A schedule()'s value that a park above took (a sleep carries on past a schedule: see
  // scheduling.h) is dropped here, as Julia's sleep drops what its wait returned; left in
  // place, a later wait(c) or wait() woken without a value would return it.
  current_task_core()->value.reset();
}

const TaskRef& errormonitor(const TaskRef& t) {
  internal::monitor_errors(t.checked_core("errormonitor"));
  return t;
}

int nthreads(Pool pool) {
  internal::check_pool(pool, "nthreads");
  return internal::runtime_for_caller()->topology.count(pool);
}

int threadid() {
  Worker* w = current_worker();
  return w == nullptr ? 0 : w->index + 1;
}

Pool threadpool() {
  Worker* w = current_worker();
  return w == nullptr ? Pool::kDefault : w->pool;
}

Pool threadpool(const TaskRef& t) { return t.pool(); }

}  // namespace weft
