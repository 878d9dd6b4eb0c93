// Switching between tasks: leave(), after_switch(), and a task's first and last moments.
// The protocol is described in runtime_core.h; the state words in park.cc.
#include <cxxabi.h>

#include <cstdio>
#include <memory>
#include <thread>
#include <utility>

#include "weft/sched/asymmetric_fence.h"
#include "weft/sched/runtime_core.h"
#include "weft/sched/trace.h"
#include "weft/task/current_task.h"
#include "weft/task/errors.h"
#include "weft/task/on_done.h"
#include "weft/task/stack.h"
#include "weft/task/task_local_storage.h"

namespace weft::internal {
namespace {

// libstdc++'s and libc++abi's per-thread exception globals share this layout.
struct EhGlobals {
  void* caught;
  unsigned int uncaught;
};

EhGlobals* eh_globals(Worker* w) { return static_cast<EhGlobals*>(w->eh_globals); }

void report_unhandled(TaskCore* t) {
  if (t->error_reported.exchange(true, std::memory_order_acq_rel)) return;
  std::string what = describe_exception(t->exception);
  // Julia's first line, "Unhandled Task ERROR: <the error>" (the spec's errormonitor example),
  // then which task it was, where Julia prints the stack trace a C++ exception does not carry.
  std::fprintf(stderr, "Unhandled Task ERROR: %s\n  in task %llu\n", what.c_str(),
               static_cast<unsigned long long>(t->id()));
}

void finish_task(TaskCore* self);
void retire(Worker* w, TaskCore* t);

// A task's storage goes as its body ends, as its function object does (task.h): on the task
// itself, before it is marked done. Kept until the core is freed, a value holding the task's
// own handle (current_task(), a TaskFailedException naming it, a closure or channel that keeps
// it) would keep the core alive, and the core the value: neither ever freed. A destructor that
// stores again gets a new table, which goes too.
void drop_local_storage(TaskCore* self) {
  while (std::unique_ptr<TaskLocalStorage> tls = std::move(self->local_storage)) tls.reset();
}

void task_entry(void* arg) {
  Worker* w = static_cast<Worker*>(arg);
  TaskCore* self = w->current;
  EhGlobals* eh = eh_globals(w);
  eh->caught = nullptr;
  eh->uncaught = 0;
  w->after_switch();
  if (self->error != nullptr) {
    // schedule(t, err; error=true) before t ever ran: it fails without running its body.
    self->exception = std::exchange(self->error, nullptr);
  } else {
    try {
      self->run_body();
    } catch (...) {
      self->exception = std::current_exception();
    }
    if (__builtin_expect(self->local_storage != nullptr, 0)) drop_local_storage(self);
  }
  finish_task(self);
}

// The end of a task that is marked done: its error reported if monitored, its on_done
// callbacks run, its waiters woken.
void announce_done(TaskCore* t) {
  // errormonitor's report comes before the waiters wake, so wait(errormonitor(t)) returns
  // after the message is out.
  if (t->exception != nullptr && t->error_monitored.load(std::memory_order_relaxed)) {
    report_unhandled(t);
  }
  // on_done callbacks (bind's channel closes) see the task done, and run before its waiters
  // list closes: wait(t) returns only after that (scheduling.cc), so after their effects.
  run_done_callbacks(t);
  Waiter* w = t->done_waiters.exchange(kDoneWaitersClosed, std::memory_order_acq_rel);
  while (w != nullptr) {
    Waiter* next = w->wq_next;  // read first: the woken waiter may reuse its links at once
    wake_waiter(w, nullptr, nullptr, WakeSource::kOwner);
    w = next;
  }
}

// Returns only where the task's context ends by returning from task_entry (leave()).
void finish_task(TaskCore* self) {
  // A store, not a read-modify-write (~6 ns a task), although a waker may be moving the state
  // of a running task at this moment: kDone replaces what a wake-up without payload wrote
  // (kNotified), which has nothing left to end; a wake-up with a payload publishes its result
  // with a compare-and-swap from its claim, which then fails and leaves kDone (park.cc). Only a
  // caller holding a reference wakes a running task with a payload (schedule(t, val)), so the
  // task outlives that wake even though nothing here waits for it. Release: the result and the
  // exception are visible to whoever sees kDone.
  self->state.store(kDone, std::memory_order_release);
  TaskRegistry::clear(self->registry_slot);
  // Before retire() looks for registry readers, and before announce_done() reads
  // error_monitored and the on_done callbacks: monitor_errors() and on_done() pair with this
  // fence.
  registry_finisher_fence();
  announce_done(self);
  leave(current_worker(), self, Leave::kFinish);
}

[[gnu::noinline, gnu::cold]] void wait_unheld(TaskCore* t) {
  for (int round = 0; t->holds.load(std::memory_order_acquire) != 0; ++round) {
    if (round < 64) {
      SpinLock::pause();
    } else {
      std::this_thread::yield();  // the dump's thread may be waiting for this CPU
    }
  }
}

// A task's first run: it counts as started, and task dumps can find it from now on.
void mark_started(Worker* w, TaskCore* t) {
  t->has_started.store(true, std::memory_order_release);
  t->registry_slot = w->registry.add(t);
}

// A task that was to run for the first time but got no stack (none could be mapped: out of
// memory or of mappings, see stack.h) fails with that error instead, and is done: its waiters
// see it as they see any failure, and nothing else is lost. The context that was about to run
// it queues it on its worker; the next context to arrive there ends it (fail_unstarted), since
// until the switch the leaving task may still hold a lock that its on_done callbacks need.
void queue_unstarted_failure(Worker* w, TaskCore* t) {
  t->exception = std::current_exception();
  t->wq_next = w->failed_starts;  // a task that never ran waits on nothing: the link is free
  w->failed_starts = t;
}

[[gnu::noinline, gnu::cold]] void fail_unstarted(Worker* w) {
  while (TaskCore* t = w->failed_starts) {
    w->failed_starts = static_cast<TaskCore*>(t->wq_next);
    t->wq_next = nullptr;
    t->has_started.store(true, std::memory_order_release);
    // Ours alone, popped or claimed by yieldto: no wake can be under way for a task that never
    // ran, so a store does. The fence pairs with monitor_errors(), as in finish_task().
    t->state.store(kDone, std::memory_order_release);
    light_fence();
    announce_done(t);
    retire(w, t);
  }
}

// Gives `next`, which has never run, its stack and first frame; false if no stack could be had
// (then it is queued to fail: queue_unstarted_failure). Out of line: inlined, its handler cost
// every prepare() registers to save.
[[gnu::noinline]] bool give_stack(Worker* w, TaskCore* next) {
  try {
    next->stack = allocate_stack(next->stack.size, next->id());
  } catch (...) {
    queue_unstarted_failure(w, next);
    return false;
  }
  next->context.init(next->stack.lo, next->stack.size, &task_entry);
  mark_started(w, next);
  return true;
}

// Makes `next` (exclusively ours: popped, or claimed by yieldto) run on worker w next. False if
// it cannot run, having got no stack: it then fails without running (give_stack).
bool prepare(Worker* w, TaskCore* next) {
  if (next->stack.lo == nullptr && !give_stack(w, next)) return false;
  // Popped tasks are kQueued (spawned, woken) and now ours; yielded ones and those woken from
  // an owned park are kRunning or kNotified (a timed park that yields leaves kArming first:
  // park.cc), which must stay as it is (see requeue), even while a wake writing its payload
  // claims it (kRunning | kClaimBit): that wake publishes kNotified itself, and the task reads
  // the payload only after (take_yield_value). Other claims (yieldto's, of a created or parked
  // task) are ours.
  const std::uint32_t s = next->state.load(std::memory_order_relaxed);
  bool was_parked = false;
  if ((s & ~kClaimBit) != kRunning && s != kNotified) {
    next->state.store(kRunning, std::memory_order_release);
    was_parked = true;
  }
  if (next->owned_park.load(std::memory_order_relaxed) != kNotOwned) {
    next->owned_park.store(kNotOwned, std::memory_order_relaxed);
    was_parked = true;
  }
  // A task dump may be reading a parked task's stack (task_dump.cc): either it sees the task
  // resumed and lets it be, or we see it holding the task and wait. The dump pays for the
  // fence. A yielded task was never parked, so no dump reads its stack.
  if (was_parked) {
    light_fence();
    if (__builtin_expect(next->holds.load(std::memory_order_acquire) != 0, 0)) wait_unheld(next);
  }
  next->last_worker.store(w->index, std::memory_order_relaxed);
  w->current = next;
  set_current_task_core(next);
  return true;
}

// Queues a task that yielded (its context is saved now). Its state stays kRunning while it
// waits in the queue: a schedule() meanwhile marks it kNotified, which prepare() keeps, so the
// wake-up is not lost, and the yield costs no read-modify-write on the state.
void requeue(Worker* w, TaskCore* t, PushReason reason) { w->rt->push(t, reason, w->index); }

#if WEFT_CONTEXT_START_IN_PLACE
// Whether `next`, which has never run, may start on the stack the finishing task leaves: the
// size it asked for (0: the default) is that stack's.
bool can_take_stack(const Stack& stack, std::uint32_t requested) {
  // Not default_stack_size(), which throws while WEFT_STACK_SIZE is invalid -- here, inside
  // a finishing task's leave(), that would end the process; give_stack() reports it instead,
  // as the failure of the task that was to start.
  return requested == stack.size ||
         (requested == 0 && stack.size == default_stack_size_if_known());
}

// The finishing task `cur` hands the stack it runs on to `next`, which has never run, and
// `next` starts on it at once (marl runs such tasks as plain calls for the same reason): no
// stack leaves or comes from the pool, no initial frame is written, and there is no switch,
// whose return into a fresh context no CPU predicts. cur's frames on that stack are dead.
[[noreturn]] void start_on_finished_stack(Worker* w, TaskCore* cur, TaskCore* next) {
  next->stack = std::exchange(cur->stack, Stack{});  // retire() then has no stack to release
  set_stack_owner(next->stack, next->id());            // for the overflow message
  mark_started(w, next);
  prepare(w, next);
  next->context.start_in_place(next->stack.lo, next->stack.size, &task_entry, w);
}
#endif

// `expected`: kRunning, or kArming for a timed park (park.cc).
void finish_park(Worker* w, TaskCore* t, std::uint32_t expected) {
  if (!t->state.compare_exchange_strong(expected, kParked, std::memory_order_acq_rel)) {
    // A wake-up arrived while it was still running or switching away: it goes straight back.
    load_unclaimed(t->state);
    adopt_pending_payload(t);
    t->state.store(kQueued, std::memory_order_release);
    w->rt->push(t, PushReason::kWoken, w->index);
  }
}

// Keeps the runtime's reference to a finished task while a registry reader may hold its
// pointer (task_registry.h); out of line so that retire() stays small.
[[gnu::noinline, gnu::cold]] void defer_release(Worker* w, TaskCore* t) {
  w->deferred_release.push_back(t);
}

void retire(Worker* w, TaskCore* t) {
  t->context.destroy();
  release_stack(t->stack);
  t->stack = Stack{};
  w->finished.store(w->finished.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  // The runtime's reference, taken at the first schedule; kept a while if a registry reader
  // may have found the task before finish_task cleared its slot (task_registry.h).
  if (__builtin_expect(w->rt->registry_readers.load(std::memory_order_acquire) != 0, 0)) {
    defer_release(w, t);
  } else {
    t->release_ref();
  }
}

}  // namespace

void* thread_eh_globals() { return abi::__cxa_get_globals(); }

void Worker::after_switch() {
  if (TaskCore* p = prev) {
    prev = nullptr;
    finish_leaving(p);
  }
  // After the leaving task's unlock: ending them may take the lock it held
  // (queue_unstarted_failure).
  if (__builtin_expect(failed_starts != nullptr, 0)) fail_unstarted(this);
}

void Worker::finish_leaving(TaskCore* p) {
  switch (prev_leave) {
    case Leave::kYield:
      requeue(this, p, PushReason::kYielded);
      break;
    case Leave::kYieldBehind:
      requeue(this, p, PushReason::kYieldedTo);
      break;
    case Leave::kPark:
    case Leave::kParkTimed: {
      // Unlock first: once finish_park() has marked the task parked, a lock-free waker (a
      // timer) may queue it and another worker resume it -- and the lock may live in the frame
      // it returns from. A waker that gets in between sees kRunning (or kArming) and leaves
      // kNotified, which finish_park() turns into a requeue: nothing is lost either way.
      UnlockFn fn = std::exchange(unlock, nullptr);
      if (fn != nullptr) fn(unlock_arg);
      finish_park(this, p, prev_leave == Leave::kParkTimed ? kArming : kRunning);
      break;
    }
    case Leave::kParkOwned:
      // Marked before the unlock, which publishes the mark to the only one who may wake the
      // task: whoever unlinks it under this lock next. After the unlock it is not ours to touch.
      p->owned_park.store(kOwnedParked, std::memory_order_relaxed);
      std::exchange(unlock, nullptr)(unlock_arg);
      break;
    case Leave::kFinish:
      retire(this, p);
      break;
    case Leave::kNone:
      break;
  }
}

namespace {
// For leave(), when the task it was to run got no stack (it fails: prepare()): the next one
// that can run, or nullptr.
[[gnu::noinline, gnu::cold]] TaskCore* pop_startable(Worker* w) {
  for (;;) {
    TaskCore* next = w->rt->pop(w->index);
    if (next == nullptr || prepare(w, next)) return next;
  }
}
}  // namespace

Worker* leave(Worker* w, TaskCore* cur, Leave how, TaskCore* next) {
  if (__builtin_expect(w->trace != nullptr, 0)) {
    trace_leave(w, cur,
                how == Leave::kPark || how == Leave::kParkTimed || how == Leave::kParkOwned);
  }
  if (next == nullptr) next = w->rt->pop(w->index);
  w->prev = cur;
  w->prev_leave = how;
  // The C++ runtime's per-thread exception bookkeeping (exceptions being handled, uncaught
  // count) belongs to the task, not the thread: a task that switches away inside a catch block
  // must find its own when it resumes, perhaps on another thread. It waits in this frame, on
  // the task's stack, rather than in the task core, which the runtime keeps small.
  EhGlobals* eh = eh_globals(w);
  void* const caught = eh->caught;
  const unsigned uncaught = eh->uncaught;
  const bool final = how == Leave::kFinish;
  void* arrived;
  if (next != nullptr) {
#if WEFT_CONTEXT_START_IN_PLACE
    if (final && next->stack.lo == nullptr && can_take_stack(cur->stack, next->stack.size)) {
      start_on_finished_stack(w, cur, next);
    }
#endif
    if (__builtin_expect(!prepare(w, next), 0)) next = pop_startable(w);
  }
  if (next != nullptr) {
    if (Context::kExitReturns && final) {
      cur->context.exit_to(next->context, w);
      return nullptr;
    }
    arrived = cur->context.switch_to(next->context, w, final);
  } else {
    w->current = nullptr;
    set_current_task_core(nullptr);
    if (Context::kExitReturns && final) {
      cur->context.exit_to(w->loop_context, w);
      return nullptr;
    }
    arrived = cur->context.switch_to(w->loop_context, w, final);
  }
  // Resumed, possibly on another worker: the one that switched to us passed itself.
  Worker* now = static_cast<Worker*>(arrived);
  eh = eh_globals(now);
  eh->caught = caught;
  eh->uncaught = uncaught;
  now->after_switch();
  return now;
}

void run_on_worker(Worker* w, TaskCore* t) {
  if (__builtin_expect(w->trace != nullptr, 0)) w->trace->slice_start = trace_clock_ns();
  if (!prepare(w, t)) {
    fail_unstarted(w);  // on the worker's own stack: no task's lock is held here
    return;
  }
  w->loop_context.switch_to(t->context, w);
  EhGlobals* eh = eh_globals(w);
  eh->caught = nullptr;
  eh->uncaught = 0;
  w->after_switch();
}

void monitor_errors(TaskCore* t) {
  // "Mark, then look at the state" against finish_task's "store kDone, then look at the mark":
  // one of the two sees the other and reports (error_reported keeps it to one report). The
  // finisher's fence is light, so this one is heavy: errormonitor is rare, finishing is not.
  t->error_monitored.store(true, std::memory_order_relaxed);
  heavy_fence();
  if (t->state.load(std::memory_order_acquire) == kDone && t->exception != nullptr) {
    report_unhandled(t);
  }
}

}  // namespace weft::internal
