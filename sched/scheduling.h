// Scheduling tasks: Julia's schedule, yield, yieldto, wait, fetch, @async, Threads.@spawn,
// current_task, sleep and errormonitor.
//
// These run on the runtime that the calling thread belongs to (a worker's), or, from a plain
// thread, on the process's default runtime (weft/sched/runtime.h), started on first use.
// A plain thread that waits (wait, fetch, sleep) blocks as a thread; a task parks and leaves its
// worker to other tasks.
//
// Errors: operations the task's state forbids throw TaskStateError naming the task and why
// (schedule of a finished or already queued task, yieldto a finished or queued task, a task
// waiting for itself); a failed task's wait/fetch throws TaskFailedException; bad arguments
// throw std::invalid_argument.
#ifndef WEFT_SCHED_SCHEDULING_H_
#define WEFT_SCHED_SCHEDULING_H_

#include <any>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <type_traits>
#include <utility>

#include "absl/time/time.h"
#include "weft/task/errors.h"
#include "weft/task/task.h"

namespace weft {

struct ScheduleOptions {
  // Julia's error=true: the value (which must hold a std::exception_ptr) is raised in the task.
  bool error = false;
};

// schedule(t, [val]; error): adds t to its scheduler's queue. A new task starts (val is
// dropped: there is no wait to return it from; an error fails it without running); a task in
// wait() (or suspended by yieldto) resumes and its wait() returns val (or throws it).
// Scheduling a task that is running marks it: its next wait() returns at once (this is how
// yield() works, and what the spec's OneWayEvent relies on), with the value or error. An
// untimed wait inside a primitive first (a channel, Condition, Event, Semaphore, ReentrantLock
// -- also threads::Condition's re-lock --, wait(t)) leaves the mark for that wait(), and a
// timed one there (wait_until/wait_for of an Event, Condition, threads::Condition or
// Semaphore) ends as timed out, after letting the worker's other tasks run, and leaves it too
// (a timeout past ~31 years means never: such a wait is an untimed one).
// Others take it: sleep and a wait on a descriptor carry on past it (an error ends them). So
// schedule() a running task only when its next wait is a wait().
// Throws TaskStateError when t has finished, is already queued, or is parked inside a
// primitive (a Condition, lock, channel, ...) or in a timed wait, or on its way into one,
// whose wake-up schedule() would steal.
// Returns t, as Julia's schedule does (wait(schedule(t)), fetch(schedule(make_task(f)))).
const TaskRef& schedule(const TaskRef& t);
const TaskRef& schedule(const TaskRef& t, std::any value, ScheduleOptions options = {});
template <typename T>
const Task<T>& schedule(const Task<T>& t) {
  schedule(static_cast<const TaskRef&>(t));
  return t;
}
template <typename T>
const Task<T>& schedule(const Task<T>& t, std::any value, ScheduleOptions options = {}) {
  schedule(static_cast<const TaskRef&>(t), std::move(value), options);
  return t;
}

// yield(): lets other runnable tasks run; the caller stays runnable and continues at once when
// nothing else is. Returns the value a schedule() that raced with it passed (usually empty);
// that schedule() is then spent, and the next wait() waits for another.
// On a plain thread it yields the thread (std::this_thread::yield).
std::any yield();

// yield(t, arg): schedule(t, arg); yield(), but runs t immediately, ahead of the queue. A t
// that cannot run here (sticky elsewhere, another pool, or running on another worker, which
// schedule() marks for its next wait()) goes through schedule() and the queue.
std::any yield(const TaskRef& t, std::any arg = {});

// yieldto(t, arg): switches straight to t, which must be new, in wait(), or suspended by an
// earlier yieldto. The caller is suspended (not queued): it resumes only when someone
// schedules it or yieldto()s it, and then returns what they passed. Discouraged, as in Julia.
std::any yieldto(const TaskRef& t, std::any arg = {});

// wait(): blocks until an explicit schedule() or yieldto() restarts the caller; returns the
// value passed (or throws it when schedule used error=true). Only tasks may call it.
std::any wait();

// wait(t): blocks until t finishes; throws TaskFailedException if it failed. A task cannot
// wait for itself (TaskStateError). A task not yet scheduled is waited for, not started.
void wait(const TaskRef& t);

// What fetch(Task<T>) returns: a copy of the result, or, for a result that cannot be copied (a
// std::unique_ptr), a reference to it, valid while a handle to the task exists.
template <typename T>
using FetchResult =
    std::conditional_t<std::is_void_v<T> || std::is_copy_constructible_v<T>, T, const T&>;

// fetch(t): wait(t), then t's result (FetchResult above).
template <typename T>
FetchResult<T> fetch(const Task<T>& t) {
  t.checked_core("fetch");
  wait(t);
  if constexpr (!std::is_void_v<T>) return *t.result_core()->value;
}
// A reference into a task that only a temporary handle keeps alive would dangle: keep a handle
// to fetch a result that cannot be copied.
template <typename T>
  requires(!std::is_void_v<T> && !std::is_copy_constructible_v<T>)
void fetch(Task<T>&& t) = delete;
// fetch on an untyped handle (current_task(), a channel's taskref, TaskFailedException::task()):
// the result as a std::any holding a copy (empty for a void task). Throws std::logic_error
// when the result type is not copyable (fetch it through its Task<T>, which returns a reference
// to it), and as fetch(t) above.
std::any fetch(const TaskRef& t);

// The running task (Julia's current_task()); an invalid TaskRef on a plain thread.
TaskRef current_task();

// sleep(seconds): blocks the caller for at least `seconds` (at least 1 ms, as in Julia); a
// sleeping task costs no thread. Negative or NaN durations throw std::invalid_argument.
void sleep(double seconds);
void sleep(absl::Duration duration);

// errormonitor(t): prints "Unhandled Task ERROR: <what t threw>" and t's id to stderr if t
// fails (Julia's first line; no stack trace follows: a C++ exception carries none).
// Returns t, typed as given (fetch(errormonitor(spawn(f))) is f's result, not a std::any).
const TaskRef& errormonitor(const TaskRef& t);
template <typename T>
const Task<T>& errormonitor(const Task<T>& t) {
  errormonitor(static_cast<const TaskRef&>(t));
  return t;
}

struct SpawnOptions {
  Pool pool = Pool::kDefault;
  int priority = kDefaultPriority;
  std::size_t stack_size = 0;      // 0: the default; above 1 GiB: std::invalid_argument
  std::int64_t policy_arg = 0;     // handed to the scheduler policy (SchedNode::policy_arg)
};

// Threads.@spawn: a non-sticky task running f in `options.pool`, scheduled at once. Throws
// std::invalid_argument if the pool has no threads.
namespace internal {
// Configures and schedules a task made by the caller that nobody else can reach yet.
void spawn_new(TaskCore* t, const SpawnOptions& options);
}  // namespace internal

template <typename F>
auto spawn(F&& f, SpawnOptions options = {}) {
  auto t = make_task(std::forward<F>(f));
  internal::spawn_new(t.core(), options);
  return t;
}

namespace internal {
// @async's side effect on the caller: a task that uses @async becomes sticky (Julia).
void pin_current_task();
}  // namespace internal

// @async: a sticky task running f on the calling worker (Julia's @async); scheduled at once.
// As in Julia, the calling task becomes sticky too. Prefer spawn (Julia's advice stands).
template <typename F>
auto async(F&& f) {
  auto t = make_task(std::forward<F>(f));
  internal::pin_current_task();
  schedule(t);
  return t;
}

// Threads.nthreads(pool), Threads.threadid(), Threads.threadpool(): worker counts and ids of
// the calling thread's runtime. threadid() is 1-based like Julia's; 0 on a plain thread.
// nthreads of a value that is not a Pool throws std::invalid_argument.
int nthreads(Pool pool = Pool::kDefault);
int threadid();
Pool threadpool();                  // the calling worker's pool (kDefault on a plain thread)
Pool threadpool(const TaskRef& t);  // the pool t runs in

}  // namespace weft

#endif  // WEFT_SCHED_SCHEDULING_H_
