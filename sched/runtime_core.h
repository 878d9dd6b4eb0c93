// RuntimeCore and Worker: the runtime's internals (not part of the public surface).
//
// The switching protocol, in one paragraph (why it is lost-wakeup-free): a task never changes
// its own scheduling state while it is still running on its stack (but for Running <-> Arming
// on its way into a timed park, which only tells schedule() to keep off: park.cc). When it
// leaves (yield, park, finish), it records what it did in its worker (prev, prev_leave,
// unlock) and switches directly to the next task (or to the worker's own loop when there is
// none); the context that
// arrives runs after_switch(), which -- now that the leaving task's registers are saved --
// publishes it: queues it (yield), releases the caller's lock and then marks it parked (park; a
// wake-up that lands in between finds it still kRunning and leaves kNotified, which turns the
// park into a requeue), or frees its stack (finish). So no other worker can ever pick up a task
// whose context is not saved yet, and no wake-up can be lost.
#ifndef WEFT_SCHED_RUNTIME_CORE_H_
#define WEFT_SCHED_RUNTIME_CORE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "weft/sched/park.h"
#include "weft/sched/policy.h"
#include "weft/sched/runtime.h"
#include "weft/sched/spin_lock.h"
#include "weft/sched/task_registry.h"
#include "weft/sched/timers.h"
#include "weft/task/context.h"
#include "weft/task/task_core.h"

namespace weft::internal {

class RuntimeCore;
class TraceBuffer;
class Tracer;

// What the task that just switched away asked the arriving context to finish for it. kParkTimed:
// a park whose state is kArming rather than kRunning (park.cc).
enum class Leave : std::uint8_t {
  kNone, kYield, kYieldBehind, kPark, kParkTimed, kParkOwned, kFinish
};

struct alignas(64) Worker {
  RuntimeCore* rt = nullptr;
  int index = 0;
  Pool pool = Pool::kDefault;
  Context loop_context;  // the worker thread's own stack, running loop()
  void* eh_globals = nullptr;  // this thread's C++ exception globals (see leave())
  TaskCore* current = nullptr;

  // Set by the leaving context, consumed by after_switch() on the arriving one.
  TaskCore* prev = nullptr;
  Leave prev_leave = Leave::kNone;
  UnlockFn unlock = nullptr;
  void* unlock_arg = nullptr;
  // Tasks that got no stack to start on, to be ended as failed by the next context to arrive
  // (switch.cc: queue_unstarted_failure), linked through Waiter::wq_next.
  TaskCore* failed_starts = nullptr;

  // Sleeping: `idle` is published before the last look for work; a waker that clears it owns
  // the duty to raise `wake_signal` and futex-wake this worker.
  // Tasks first scheduled from / finished on this worker; written only by its own thread, so
  // counting costs no atomic read-modify-write (live tasks = all spawned - all finished).
  std::atomic<std::int64_t> spawned{0};
  std::atomic<std::int64_t> finished{0};
  // This worker's trace events, or nullptr when the runtime is not tracing (trace.h).
  TraceBuffer* trace = nullptr;

  // The started tasks first run here (task dumps, deadlock detection), and finished tasks
  // whose reference a reader of the registry may still need (task_registry.h).
  TaskRegistry registry;
  std::vector<TaskCore*> deferred_release;  // this worker's thread only

  alignas(64) std::atomic<bool> idle{false};
  std::atomic<std::uint32_t> wake_signal{0};
  // Times this worker went to sleep: progress seen by deadlock detection (off the hot path).
  std::atomic<std::uint64_t> sleeps{0};
  std::thread thread;

  void after_switch();
  void finish_leaving(TaskCore* p);  // after_switch(): what `p` asked for (prev_leave)
  void loop();
};

// The worker the calling thread is, or nullptr on a plain thread (out of line: see
// weft/task/current_task.h for why).
Worker* current_worker();

class RuntimeCore {
 public:
  RuntimeCore(Runtime* owner, RuntimeOptions options);
  ~RuntimeCore();

  // Starts the worker threads; throws std::system_error, with none left running, if one
  // cannot be started.
  void start();
  // Waits until nothing can run any more, then stops the workers and reports parked tasks.
  void shutdown();
  // shutdown() if the runtime is quiescent within ~100 ms; otherwise only reports (used at
  // exit). Once it found the runtime quiescent it stops it without waiting for quiescence
  // again: a task woken just after (a descriptor, another thread) that then waits on a long
  // timer or spins must not hold up exit.
  void shutdown_if_idle();
  // Sets `stopping` and wakes every worker: each stops once it finds nothing to run.
  void tell_workers_to_stop();
  // Stops and joins the workers that run (shutdown() once quiescent, or a start() that failed).
  void stop_workers();
  // stop_workers() for exit: false, with the workers told to stop but not joined, if they have
  // not all stopped within `limit` -- one still runs a task woken after the runtime was found
  // quiescent, which may never return to its worker (it spins, or yields in a loop).
  bool stop_workers_within(Clock::duration limit);
  // shutdown()'s second half, once quiescent: stops the workers and the timers, then reports
  // (and keeps) the tasks left parked. `at_exit`: gives up, as shutdown_if_idle() does on a
  // busy runtime, if a worker does not stop within ~100 ms (stop_workers_within).
  void stop_and_report(bool at_exit = false);
  // Leaves the list of runtimes (task dumps, deadlock detection) and drops the task references
  // kept for registry readers: what the destructor does, for a core kept after its shutdown.
  void forget();

  // Queues a runnable task and wakes one idle worker that may run it. from_worker < 0: pushed
  // from a thread that is not one of this runtime's workers (counted: see outside_pushes).
  void push(TaskCore* t, PushReason reason, int from_worker) {
    // Inline for the common case of a yield or a wake on one worker: nobody to wake when the
    // pushing worker is the only one that may run the task (it is bound there, or the pool
    // has no other worker); it finds the task at its next pop.
    if (from_worker >= 0) {
      const int affinity = t->node.affinity;
      const Pool pool = t->node.pool;
      if (affinity == from_worker ||
          (affinity < 0 && pool_size[static_cast<int>(pool)] == 1 &&
           topology.pool_of[from_worker] == pool)) {
        policy_push(&t->node, PushInfo{reason, from_worker});
        return;
      }
    }
    push_and_wake(t, reason, from_worker);
  }
  TaskCore* pop(int worker) {
    SchedNode* n = policy_pop(worker);
#ifndef NDEBUG
    // A policy that hands a worker a task it may not run (another worker's sticky task, another
    // pool's) would have it run there silently; builds with assertions stop at once instead,
    // naming the policy (a plugin author's first run; the conformance suite checks it too).
    if (n != nullptr && (n->affinity >= 0 ? n->affinity != worker
                                          : topology.pool_of[worker] != n->pool)) {
      policy_misplaced(*n, worker);
    }
#endif
    return n == nullptr ? nullptr : task_of(n);
  }

  // The policy's push() and pop(), which must not throw (docs/plugins.md): a push that throws
  // has lost its task, and the exception would come out of whatever called it -- a spawn, a
  // yield, a wake-up inside another task's unlock, a worker's idle loop -- as that caller's
  // failure, or end a worker thread. One that does ends the process here instead, naming the
  // policy, the call and the exception (policy_threw). No cost when nothing throws.
  void policy_push(SchedNode* node, const PushInfo& info) noexcept {
    try {
      policy->push(node, info);
    } catch (...) {
      policy_threw("push");
    }
  }
  SchedNode* policy_pop(int worker) noexcept {
    try {
      return policy->pop(worker);
    } catch (...) {
      policy_threw("pop");
    }
  }
  [[noreturn, gnu::cold, gnu::noinline]] void policy_threw(const char* call) const;
  [[noreturn, gnu::cold, gnu::noinline]] void policy_misplaced(const SchedNode& node,
                                                              int worker) const;

  // First schedule of a task on this runtime: binds it (sticky affinity, pool) and queues it.
  // `unshared`: t is being spawned and no other thread can reach it yet, so claiming it and
  // taking the runtime's reference need no read-modify-write (each one ~5-10 ns). `value` and
  // `error` (schedule(t, val; error)) are moved into the task once it is ours: a schedule that
  // loses the race to start it, or cannot (no thread in its pool), leaves it untouched.
  void submit(TaskCore* t, Worker* from, bool unshared = false, std::any* value = nullptr,
              std::exception_ptr* error = nullptr);

  Runtime* const owner;
  Topology topology;
  int pool_size[kNumPools] = {};   // cached from topology: spawns ask on every call
  int pool_first[kNumPools] = {};
  std::unique_ptr<Policy> policy;
  std::atomic<int> registry_readers{0};  // see task_registry.h; next to `policy`: read together
  std::vector<std::unique_ptr<Worker>> workers;
  Timers timers;
  const int spin_before_sleep;
  std::atomic<bool> stopping{false};
  std::atomic<int> workers_stopped{0};  // workers whose loop has ended (stop_workers_within)
  bool has_stranded_tasks = false;  // shutdown() left tasks parked (then the core is kept)
  std::atomic<int> idle_count{0};
  // Idle workers per pool polling for work a policy holds for another worker (worker.cc).
  std::atomic<int> pollers[kNumPools] = {};
  std::atomic<std::int64_t> spawned_outside{0};  // first scheduled from non-worker threads
  // Pushes from non-worker threads still inside push(). The task such a push queued may run,
  // finish and let its owner destroy the runtime before push() returns, so shutdown() waits
  // for this to drop to zero. Workers never count: their pushes end before they can stop.
  std::atomic<int> outside_pushes{0};
  std::atomic<std::uint32_t> next_binding{0};  // round robin for tasks bound from outside
  const bool detect_deadlocks;      // RuntimeOptions::detect_deadlocks and the environment
  std::unique_ptr<Tracer> tracer;   // nullptr unless tracing (RuntimeOptions::trace_path)

  std::int64_t live_tasks() const;  // scheduled and not finished; exact only when quiescent

  // Every started, unfinished task, each with a reference the caller must release_ref().
  std::vector<TaskCore*> registered_tasks();
  // Drops the references w kept while a reader was active (w's thread, or w stopped).
  void release_deferred(Worker* w);
  // Everyone asleep: every worker idle and no timer pending (no pause: the caller compares
  // two looks itself, see deadlock.cc).
  bool looks_quiescent();
  // Wakes one idle worker that may run a task of this affinity (>= 0: that worker only) and
  // pool, if any is idle.
  void wake_one(int affinity, Pool pool);

 private:
  // push() when an idle worker may have to be woken for the task.
  void push_and_wake(TaskCore* t, PushReason reason, int from_worker);
  void push_outside(TaskCore* t, PushReason reason);
  bool quiescent();
};

// Every live runtime, for dumps and deadlock detection: f(RuntimeCore*) under the registry's
// lock, so none of them is destroyed meanwhile.
std::mutex& runtimes_mutex();
const std::vector<RuntimeCore*>& runtimes_locked();
template <typename F>
void for_each_runtime(F&& f) {
  std::lock_guard<std::mutex> lock(runtimes_mutex());
  for (RuntimeCore* rt : runtimes_locked()) f(rt);
}

// Runs t on worker w from its loop, until t switches back to the loop.
void run_on_worker(Worker* w, TaskCore* t);

// The calling thread's C++ exception globals (for Worker::eh_globals).
void* thread_eh_globals();

// errormonitor(t).
void monitor_errors(TaskCore* t);

// Switches the running task `cur` away (see Leave). Returns, on whichever worker resumes it,
// once it runs again; `next` is the task to run instead (nullptr: ask the policy). With
// kFinish it never returns, except where Context::exit_to() returns (Context::kExitReturns):
// then it returns nullptr, and so must the task's entry, at once.
Worker* leave(Worker* w, TaskCore* cur, Leave how, TaskCore* next = nullptr);
// Lets the other runnable tasks of worker w run before the running task `cur` goes on: queues
// cur behind them, leaving its state word (and a schedule()'s mark in it) as it is. False if
// there was nothing else to run (cur carries on at once).
// Inline: every yield() is this, and a call of its own cost each one ~13 instructions.
inline bool run_others_first(Worker* w, TaskCore* cur) {
  TaskCore* next = w->rt->pop(w->index);
  if (next == nullptr) return false;
  leave(w, cur, Leave::kYield, next);
  return true;
}

// Wakes a waiter: the state machine in park.cc. kOk, or why nothing happened.
enum class WakeOutcome { kOk, kTimedOut, kAlreadyScheduled, kFinished, kNotWaiting };
// Who wakes: the one who unlinked the waiter from what it waits on (a primitive's queue, a
// task's list of waiters), or its deadline. schedule() has wake_scheduled().
enum class WakeSource { kOwner, kTimer };
WakeOutcome wake_waiter(Waiter* w, std::any* value, std::exception_ptr* error, WakeSource source);
// schedule()'s wake of task t, decided on t's state word alone (never its deadline token:
// park.cc). A parked t is claimed before `may_wake(t)` (its wait is one a schedule() may end) is
// asked, and woken while still claimed, so t cannot be woken by another, run and park on
// something else in between; a running t is marked for its next park. kNotWaiting when a
// parked t's wait is not one of those, or t is on its way into a timed wait (kArming).
WakeOutcome wake_scheduled(TaskCore* t, bool (*may_wake)(const TaskCore*), std::any* value,
                           std::exception_ptr* error);
// Moves the payload of a wake that found w running (Waiter::pending_payload) to where a park's
// payload is read: by whoever consumes that wake-up, while w cannot be woken again (park.cc).
void adopt_pending_payload(Waiter* w);

// The runtime a new task from this thread goes to.
RuntimeCore* runtime_for_caller();

// The state word once no waker holds the claim bit (it is writing the wake value: a few
// instructions, so spinning is right).
inline std::uint32_t load_unclaimed(const std::atomic<std::uint32_t>& state) {
  std::uint32_t s = state.load(std::memory_order_acquire);
  while (s & kClaimBit) {
    SpinLock::pause();
    s = state.load(std::memory_order_acquire);
  }
  return s;
}

}  // namespace weft::internal

#endif  // WEFT_SCHED_RUNTIME_CORE_H_
