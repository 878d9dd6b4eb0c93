// RuntimeCore: workers, the policy, pushing and waking, startup and shutdown.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

#include "absl/strings/str_cat.h"
#include "weft/sched/asymmetric_fence.h"
#include "weft/sched/deadlock.h"
#include "weft/sched/dump.h"
#include "weft/sched/futex.h"
#include "weft/sched/runtime_core.h"
#include "weft/sched/runtime_options.h"
#include "weft/sched/trace.h"
#include "weft/task/core_allocator.h"
#include "weft/task/current_task.h"
#include "weft/task/errors.h"
#include "weft/task/stack.h"
#include "weft/task/task_core.h"

namespace weft {

int Topology::count(Pool pool) const {
  int n = 0;
  for (Pool p : pool_of) n += p == pool;
  return n;
}

int Topology::first(Pool pool) const {
  for (int i = 0; i < num_workers(); ++i) {
    if (pool_of[i] == pool) return i;
  }
  return -1;
}

namespace internal {
namespace {

// Live runtimes (for_each_runtime). Never destroyed: the default runtime outlives statics.
std::mutex& runtimes_mu() {
  static auto* mu = new std::mutex;
  return *mu;
}
std::vector<RuntimeCore*>& runtimes() {
  static auto* list = new std::vector<RuntimeCore*>;
  return *list;
}

// Leftover tasks at shutdown, one line each (a few: the rest are counted).
void report_waiting_tasks(RuntimeCore* rt) {
  constexpr std::size_t kMaxLines = 20;
  std::vector<TaskInfo> tasks = dump_tasks(rt, /*backtraces=*/false);
  for (std::size_t i = 0; i < tasks.size() && i < kMaxLines; ++i) {
    const TaskInfo& t = tasks[i];
    std::fprintf(stderr, "  task %llu %s%s%s\n", static_cast<unsigned long long>(t.id),
                 to_string(t.state), t.state == TaskState::kWaiting ? " on " : "",
                 t.wait_description.c_str());
  }
  if (tasks.size() > kMaxLines) {
    std::fprintf(stderr, "  and %zu more\n", tasks.size() - kMaxLines);
  }
}

// submit()'s errors, out of line: formatting the message gave every spawn a large stack frame.
[[noreturn, gnu::cold, gnu::noinline]] void throw_empty_pool(const TaskCore* t) {
  throw std::invalid_argument(absl::StrCat(
      "schedule: the ", to_string(t->node.pool), " threadpool has no threads (task ", t->id(),
      "); give it threads with WEFT_NUM_THREADS=\"N,M\" or RuntimeOptions"));
}

[[noreturn, gnu::cold, gnu::noinline]] void throw_already_scheduled(const TaskCore* t) {
  throw TaskStateError(absl::StrCat("schedule: task ", t->id(), " has already been scheduled"));
}

}  // namespace

std::mutex& runtimes_mutex() { return runtimes_mu(); }
const std::vector<RuntimeCore*>& runtimes_locked() { return runtimes(); }

RuntimeCore::RuntimeCore(Runtime* owner_runtime, RuntimeOptions options)
    : owner(owner_runtime),
      policy(options.policy ? std::move(options.policy) : make_default_policy()),
      spin_before_sleep(options.spin_before_sleep),
      detect_deadlocks(env_switch("WEFT_DEADLOCK_DETECTION", true) && options.detect_deadlocks) {
  prefer_huge_pages();  // for task cores (weft/task/core_allocator.h)
  ThreadCounts counts = resolve_thread_counts(options);
  // A malformed WEFT_STACK_SIZE is refused here, as WEFT_NUM_THREADS is, rather than failing
  // every task of the default size at its first run (silently, for one nobody waits on).
  default_stack_size();
  for (int i = 0; i < counts.default_threads; ++i) topology.pool_of.push_back(Pool::kDefault);
  for (int i = 0; i < counts.interactive_threads; ++i) {
    topology.pool_of.push_back(Pool::kInteractive);
  }
  for (int p = 0; p < kNumPools; ++p) {
    pool_size[p] = topology.count(static_cast<Pool>(p));
    pool_first[p] = topology.first(static_cast<Pool>(p));
  }
  policy->init(topology);
  init_registry_fences();
  for (int i = 0; i < topology.num_workers(); ++i) {
    auto w = std::make_unique<Worker>();
    w->rt = this;
    w->index = i;
    w->pool = topology.pool_of[i];
    workers.push_back(std::move(w));
  }
  if (std::string path = resolve_trace_path(options.trace_path); !path.empty()) {
    tracer = std::make_unique<Tracer>(std::move(path), topology.num_workers());
    for (auto& w : workers) w->trace = tracer->worker_buffer(w->index);
  }
  install_stack_overflow_handler();
  std::lock_guard<std::mutex> lock(runtimes_mu());
  runtimes().push_back(this);
}

RuntimeCore::~RuntimeCore() {
  shutdown();
  forget();
}

void RuntimeCore::forget() {
  {
    std::lock_guard<std::mutex> lock(runtimes_mu());
    auto& list = runtimes();
    if (auto it = std::find(list.begin(), list.end(), this); it != list.end()) list.erase(it);
  }
  for (auto& w : workers) release_deferred(w.get());
}

void RuntimeCore::start() {
  for (std::size_t i = 0; i < workers.size(); ++i) {
    Worker* raw = workers[i].get();
    try {
      raw->thread = std::thread([raw] { raw->loop(); });
    } catch (const std::system_error& e) {
      // Out of threads or memory (a container's pids limit, ulimit -u). The workers that did
      // start are stopped, so that the constructor's exception leaves nothing running; left
      // to shutdown(), which waits for every worker to go idle, they would hang it.
      stop_workers();
      throw std::system_error(e.code(),
                              absl::StrCat("Runtime: could not start worker thread ", i + 1,
                                           " of ", workers.size()));
    }
  }
}

void RuntimeCore::tell_workers_to_stop() {
  stopping.store(true, std::memory_order_release);
  for (auto& w : workers) {
    w->idle.store(false, std::memory_order_relaxed);
    w->wake_signal.store(1, std::memory_order_release);
    futex_wake(&w->wake_signal);
  }
}

void RuntimeCore::stop_workers() {
  tell_workers_to_stop();
  for (auto& w : workers) {
    if (w->thread.joinable()) w->thread.join();
  }
}

bool RuntimeCore::stop_workers_within(Clock::duration limit) {
  const Clock::time_point until = Clock::now() + limit;
  tell_workers_to_stop();
  while (workers_stopped.load(std::memory_order_acquire) != static_cast<int>(workers.size())) {
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  for (auto& w : workers) {
    if (w->thread.joinable()) w->thread.join();
  }
  return true;
}

void RuntimeCore::policy_threw(const char* call) const {
  const std::string what = describe_exception(std::current_exception());
  std::fprintf(stderr,
               "weft: scheduler policy '%s' threw from %s(): %s\n"
               "weft: a policy's push() and pop() must not throw (the task being pushed would be "
               "lost, and the exception would surface in an unrelated task); see docs/plugins.md\n",
               std::string(policy->name()).c_str(), call, what.c_str());
  std::fflush(stderr);
  std::abort();
}

void RuntimeCore::policy_misplaced(const SchedNode& node, int worker) const {
  const std::string bound =
      node.affinity >= 0 ? absl::StrCat("bound to worker ", node.affinity)
                         : absl::StrCat("of the ", to_string(node.pool), " pool");
  std::fprintf(stderr,
               "weft: scheduler policy '%s' returned task %llu, %s, from pop(%d), a worker of "
               "the %s pool: a task runs only on its sticky worker, else in its pool (see "
               "docs/plugins.md)\n",
               std::string(policy->name()).c_str(),
               static_cast<unsigned long long>(node.task_id),
               bound.c_str(), worker, to_string(topology.pool_of[worker]));
  std::fflush(stderr);
  std::abort();
}

void RuntimeCore::push_and_wake(TaskCore* t, PushReason reason, int from_worker) {
  if (from_worker < 0) {
    push_outside(t, reason);
    return;
  }
  // Copied before the push: once queued, the task may be popped, run and freed by another
  // worker before push() even returns.
  const int affinity = t->node.affinity;
  const Pool pool = t->node.pool;
  const PushInfo info{reason, from_worker};
  // Mostly nobody to wake when the policy holds the task for the pushing worker
  // (Policy::holds_for_pusher: asked about woken tasks only).
  const bool held = reason == PushReason::kWoken && policy->holds_for_pusher(t->node, info);
  policy_push(&t->node, info);
  if (held) {
    // An idle worker polling for held work takes it if it waits too long: none to wake. "Push,
    // then look at the pollers" against a poller's "stop, then look for held work" (worker.cc).
    light_fence();
    if (pollers[static_cast<int>(pool)].load(std::memory_order_seq_cst) != 0) return;
  }
  wake_one(affinity, pool);
}

void RuntimeCore::push_outside(TaskCore* t, PushReason reason) {
  // Relaxed is enough to be seen: whoever destroys the runtime because the task ran got there
  // through the policy's release of the task, which comes after this. The release below orders
  // everything this thread did to the runtime before shutdown()'s load that sees zero.
  outside_pushes.fetch_add(1, std::memory_order_relaxed);
  const int affinity = t->node.affinity;
  const Pool pool = t->node.pool;
  policy_push(&t->node, PushInfo{reason, -1});
  wake_one(affinity, pool);
  outside_pushes.fetch_sub(1, std::memory_order_release);
}

void RuntimeCore::wake_one(int affinity, Pool pool) {
  // "Publish the task, then look for idle workers" against the idle worker's "publish idleness,
  // then look for tasks" (worker.cc): one of the two must see the other. The store-load
  // ordering this needs is paid by the worker about to sleep (a heavy fence, rare and next to
  // a futex wait anyway), not by every push: a full fence here was ~8 ns a spawn.
  light_fence();
  if (idle_count.load(std::memory_order_seq_cst) == 0) return;
  auto try_wake = [this](Worker* w) {
    if (!w->idle.load(std::memory_order_relaxed) ||
        !w->idle.exchange(false, std::memory_order_acq_rel)) {
      return false;
    }
    idle_count.fetch_sub(1, std::memory_order_relaxed);
    w->wake_signal.store(1, std::memory_order_release);
    futex_wake(&w->wake_signal);
    return true;
  };
  if (affinity >= 0) {
    try_wake(workers[affinity].get());
    return;
  }
  const int first = pool_first[static_cast<int>(pool)];
  const int n = pool_size[static_cast<int>(pool)];
  const int start = static_cast<int>(next_binding.load(std::memory_order_relaxed) % n);
  for (int i = 0; i < n; ++i) {
    if (try_wake(workers[first + (start + i) % n].get())) return;
  }
}

void RuntimeCore::submit(TaskCore* t, Worker* from, bool unshared, std::any* value,
                         std::exception_ptr* error) {
  // Own the task before reading or writing its scheduling fields: two threads may race to
  // start it, and the winner writes them.
  if (unshared) {
    t->state.store(kCreated | kClaimBit, std::memory_order_relaxed);
  } else {
    std::uint32_t created = kCreated;
    if (!t->state.compare_exchange_strong(created, kCreated | kClaimBit,
                                          std::memory_order_acq_rel)) {
      throw_already_scheduled(t);
    }
  }
  const bool from_here = from != nullptr && from->rt == this;
  const bool bind_here = t->sticky && from_here;
  const int n = pool_size[static_cast<int>(t->node.pool)];
  if (!bind_here && n == 0) {
    t->state.store(kCreated, std::memory_order_release);  // not started: let it go again
    throw_empty_pool(t);
  }
  if (value != nullptr && value->has_value()) t->value = std::move(*value);
  if (error != nullptr) t->error = *error;
  if (bind_here) {
    t->node.affinity = from->index;
    t->node.pool = from->pool;
  } else if (t->sticky) {
    t->node.affinity = pool_first[static_cast<int>(t->node.pool)] +
                       static_cast<int>(next_binding.fetch_add(1, std::memory_order_relaxed) % n);
  } else {
    t->node.affinity = -1;
  }
  t->runtime = this;
  // The runtime's reference, until the task's stack is released.
  if (unshared) {
    t->add_ref_unshared();
  } else {
    t->add_ref();
  }
  if (from_here) {
    from->spawned.store(from->spawned.load(std::memory_order_relaxed) + 1,
                        std::memory_order_relaxed);
  } else {
    spawned_outside.fetch_add(1, std::memory_order_relaxed);
    if (current_worker() == nullptr) note_outside_waker(WaitKind::kNone);
  }
  if (__builtin_expect(tracer != nullptr, 0)) trace_spawn(this, t);
  t->state.store(kQueued, std::memory_order_release);
  push(t, PushReason::kSpawned, from_here ? from->index : -1);
}

std::int64_t RuntimeCore::live_tasks() const {
  std::int64_t n = spawned_outside.load(std::memory_order_acquire);
  for (const auto& w : workers) {
    n += w->spawned.load(std::memory_order_acquire) - w->finished.load(std::memory_order_acquire);
  }
  return n;
}

std::vector<TaskCore*> RuntimeCore::registered_tasks() {
  std::vector<TaskCore*> tasks;
  registry_readers.fetch_add(1, std::memory_order_seq_cst);
  registry_reader_fence();
  for (auto& w : workers) {
    w->registry.for_each([&](TaskCore* t) {
      t->add_ref();  // alive: see task_registry.h
      tasks.push_back(t);
    });
  }
  registry_readers.fetch_sub(1, std::memory_order_release);
  return tasks;
}

void RuntimeCore::release_deferred(Worker* w) {
  if (w->deferred_release.empty() || registry_readers.load(std::memory_order_acquire) != 0) {
    return;
  }
  for (TaskCore* t : w->deferred_release) t->release_ref();
  w->deferred_release.clear();
}

bool RuntimeCore::looks_quiescent() {
  return idle_count.load(std::memory_order_acquire) == topology.num_workers() &&
         outside_pushes.load(std::memory_order_acquire) == 0 && timers.empty();
}

bool RuntimeCore::quiescent() {
  // Every worker asleep having found nothing to run, no push from outside still under way, and
  // no timer that could wake a task. Two looks a little apart, because a worker between "idle"
  // and its last pop is not yet asleep.
  for (int look = 0; look < 2; ++look) {
    if (idle_count.load(std::memory_order_acquire) != topology.num_workers()) return false;
    if (outside_pushes.load(std::memory_order_acquire) != 0) return false;
    if (!timers.empty()) return false;
    if (look == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

void RuntimeCore::shutdown_if_idle() {
  for (int i = 0; i < 100; ++i) {
    if (quiescent()) {
      // Not shutdown(), which would wait for quiescence all over again: whatever a task woken
      // since then does (sleep for an hour, spin) would hold up exit. Nor joining the workers
      // come what may: a task woken just before they stop may run on one of them for good.
      stop_and_report(/*at_exit=*/true);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::fprintf(stderr, "weft: exiting with %lld tasks still running or waiting\n",
               static_cast<long long>(live_tasks()));
  if (tracer != nullptr) tracer->write(*this);  // what the workers have published so far
}

void RuntimeCore::shutdown() {
  if (stopping.load(std::memory_order_acquire) || workers.empty() ||
      !workers.front()->thread.joinable()) {
    return;
  }
  while (!quiescent()) std::this_thread::sleep_for(std::chrono::microseconds(500));
  stop_and_report();
}

void RuntimeCore::stop_and_report(bool at_exit) {
  if (stopping.load(std::memory_order_acquire) || workers.empty() ||
      !workers.front()->thread.joinable()) {
    return;
  }
  if (!at_exit) {
    stop_workers();
  } else if (!stop_workers_within(std::chrono::milliseconds(100))) {
    // As when the runtime is never found idle (shutdown_if_idle): the still running worker
    // goes on until the process ends.
    std::fprintf(stderr, "weft: exiting with a task still running\n");
    if (tracer != nullptr) tracer->write(*this);  // what the workers have published so far
    return;
  }
  timers.stop();
  // A thread may still be inside push() waking a task it should not have (its runtime was
  // going away): its task never runs, but the runtime must outlive the call.
  while (outside_pushes.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  if (std::int64_t left = live_tasks(); left > 0) {
    std::fprintf(stderr,
                 "weft: runtime (%s policy) shut down with %lld tasks still waiting; they can "
                 "never run again and their stacks are leaked\n",
                 std::string(policy->name()).c_str(), static_cast<long long>(left));
    report_waiting_tasks(this);
    // Leaked on purpose, as their stacks are, but reachable: a leak checker should not report
    // what the message above already did, nor what their frames hold.
    std::vector<TaskCore*> tasks = registered_tasks();
    for (TaskCore* t : tasks) abandon_stack(t->stack);
    std::lock_guard<std::mutex> lock(runtimes_mu());
    static auto* stranded = new std::vector<TaskCore*>;
    stranded->insert(stranded->end(), tasks.begin(), tasks.end());
    has_stranded_tasks = true;
  }
  if (tracer != nullptr) tracer->write(*this);
}

RuntimeCore* runtime_for_caller() {
  if (Worker* w = current_worker()) return w->rt;
  return Runtime::global().core();
}

}  // namespace internal

Runtime::Runtime(RuntimeOptions options) {
  const bool sigquit_dump = options.sigquit_dump;
  core_ = std::make_unique<internal::RuntimeCore>(this, std::move(options));
  if (sigquit_dump) internal::install_sigquit_dump();
  core_->start();
}

Runtime::~Runtime() {
  if (internal::current_worker() != nullptr && internal::current_worker()->rt == core_.get()) {
    std::fprintf(stderr, "weft: a Runtime was destroyed from one of its own workers\n");
    std::abort();
  }
  core_->shutdown();
  if (core_->has_stranded_tasks) {
    // What a stranded task waits on may still wake it -- a descriptor becoming ready, another
    // thread's put or notify, a schedule() -- and that wake queues it here: the core stays,
    // stopped, so that the wake lands in its queues (the task never runs) instead of in freed
    // memory. Kept reachable, as the stranded tasks are.
    core_->forget();
    std::lock_guard<std::mutex> lock(internal::runtimes_mu());
    static auto* kept = new std::vector<internal::RuntimeCore*>;
    kept->push_back(core_.release());
  }
}

Runtime& Runtime::global() {
  // Never destroyed: tasks may still run while static destructors do. At exit we stop it only
  // if it is idle, so exit() from inside a task (or with tasks spinning) cannot hang.
  static Runtime* runtime = [] {
    auto* r = new Runtime();
    std::atexit([] {
      internal::RuntimeCore* core = Runtime::global().core();
      if (internal::current_worker() != nullptr) return;
      core->shutdown_if_idle();
    });
    return r;
  }();
  return *runtime;
}

void Runtime::submit(const TaskRef& t) {
  internal::TaskCore* core = t.checked_core("Runtime::submit");
  internal::check_before_schedule(core, "Runtime::submit", " (a task is submitted once)");
  internal::Worker* w = internal::current_worker();
  core_->submit(core, (w != nullptr && w->rt == core_.get()) ? w : nullptr);
}

const Topology& Runtime::topology() const { return core_->topology; }
std::string Runtime::policy_name() const { return std::string(core_->policy->name()); }

}  // namespace weft
