// Runtime: worker threads grouped in pools, running tasks under one scheduler Policy.
//
// Most programs never name it: the process's default runtime starts on first use, sized by
// WEFT_NUM_THREADS ("N" default-pool workers, "N,M" adds M interactive workers; "auto" or unset:
// one per CPU it may run on, no interactive pool; "N,auto": one interactive worker) and
// scheduled by the linked policy (//sched:scheduler). A program that compares policies
// constructs runtimes explicitly and runs work in them with run(), which blocks the calling
// (plain) thread until the task finishes.
//
// Shutdown: the destructor waits until no task is runnable, no timer is pending and no other
// thread is still inside a wake() or schedule() of one of its tasks, then stops the workers.
// Tasks still parked at that point (a task waiting on a descriptor or a process included)
// can never run again; they are reported on stderr ("weft: runtime shut down with N tasks
// still waiting", then what each waits on), their stacks are leaked rather than unwound (kept
// reachable, with what their frames hold: a leak checker does not report them again), and
// the runtime's stopped internals are kept, so that whatever wakes such a task later (the
// descriptor, another thread's put or notify) only queues it where it never runs. The default
// runtime does the same at process exit. Seeing inside a running runtime:
// weft/sched/task_dump.h, deadlock_error.h, and the trace file of RuntimeOptions::trace_path.
// Errors: the constructor throws std::invalid_argument for bad thread counts (options or
// WEFT_NUM_THREADS), and std::system_error when a worker thread cannot be started (out of
// threads or memory), with none of its workers left running.
// Thread safety: all members may be called from any thread; run() must not be called from one
// of this runtime's own workers (it would block the worker it needs).
#ifndef WEFT_SCHED_RUNTIME_H_
#define WEFT_SCHED_RUNTIME_H_

#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include "weft/sched/policy.h"
#include "weft/sched/scheduling.h"
#include "weft/task/task.h"

namespace weft {

namespace internal {
class RuntimeCore;
}  // namespace internal

struct RuntimeOptions {
  int default_threads = -1;      // -1: from WEFT_NUM_THREADS, else one per CPU
  int interactive_threads = -1;  // -1: from WEFT_NUM_THREADS, else 0
  std::unique_ptr<Policy> policy;  // nullptr: make_default_policy()
  int spin_before_sleep = 200;   // idle polls before a worker sleeps on its futex
  // Seeing inside (README, "Seeing inside the runtime"). The environment can turn the first
  // two off for the whole process: WEFT_DEADLOCK_DETECTION=0, WEFT_SIGQUIT_DUMP=0.
  // DeadlockError (weft/sched/deadlock_error.h). A deadlock is found only when every runtime
  // is asleep, so while a runtime with this false exists none is reported, on any runtime.
  bool detect_deadlocks = true;
  bool sigquit_dump = true;      // task dump on SIGQUIT (weft/sched/task_dump.h)
  std::string trace_path;        // Chrome trace file written at shutdown; "": WEFT_TRACE if set
};

class Runtime {
 public:
  explicit Runtime(RuntimeOptions options = {});
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // The process's default runtime, started on first use.
  static Runtime& global();

  // Schedules f as a task on this runtime's default pool and waits for it from the calling
  // plain thread; returns its result or throws TaskFailedException. Like Julia's root task the
  // task is sticky (bound to one worker), so the spec's schedule(t); yield() idioms behave
  // as they do there; what it spawns is free to run anywhere. A result that cannot be copied
  // (a std::unique_ptr) is moved out of the task, which no other handle names.
  template <typename F>
  auto run(F&& f) {
    auto t = make_task(std::forward<F>(f));
    submit(t);
    using T = std::invoke_result_t<std::decay_t<F>&>;
    if constexpr (std::is_void_v<T> || std::is_copy_constructible_v<T>) {
      return fetch(t);
    } else {
      wait(t);
      return T(std::move(*t.result_core()->value));
    }
  }

  // Schedules a not-yet-scheduled task on this runtime (schedule() uses the caller's runtime).
  void submit(const TaskRef& t);

  const Topology& topology() const;
  std::string policy_name() const;
  internal::RuntimeCore* core() const { return core_.get(); }

 private:
  std::unique_ptr<internal::RuntimeCore> core_;
};

}  // namespace weft

#endif  // WEFT_SCHED_RUNTIME_H_
