// Deadlock detection (deadlock.h) and the registry of plain threads.
#include "weft/sched/deadlock.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cxxabi.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "weft/sched/dump.h"
#include "weft/sched/park.h"
#include "weft/sched/runtime_core.h"
#include "weft/sched/runtime_options.h"
#include "weft/task/current_task.h"

extern "C" void* __dso_handle;  // this library's, for __cxa_thread_atexit

namespace weft {
namespace internal {
namespace {

std::atomic<std::int64_t> g_external_sources{0};

// Never destroyed: threads may exit (and unregister) after static destructors have run.
std::mutex& threads_mutex() {
  static auto* mu = new std::mutex;
  return *mu;
}
ThreadWaiter* g_threads = nullptr;  // guarded by threads_mutex()
// Waiters left behind by a DeadlockError, kept reachable for good; guarded by threads_mutex().
std::vector<ThreadWaiter*>* g_abandoned = nullptr;

// The functions that touch these thread_locals are never inlined (gnu::noinline), not even by
// link-time optimization: inlined into code that a task runs across a switch, the thread's
// address could outlive a move to another thread (weft/task/context.h, "Per-thread state").
thread_local bool tls_service_thread = false;

// The calling plain thread's waiter, made on first use and deleted as the thread exits by a
// destructor registered as it is made (__cxa_thread_atexit, as a thread_local object's is).
// Not a thread_local object with a destructor of its own: the thread's thread_local
// destructors run in the reverse order of their registration, so one registered before the
// waiter was made -- that of the thread's task-local values (weft/task/task_local_storage.h),
// stored before the thread first waited -- runs after it, and may still wait in weft (a value
// whose destructor fetches a task). The waiter it then makes registers its own destructor,
// which runs after it: no thread that has exited stays registered as one still running.
// current_task.h keeps a copy (current_self()), so it changes only through set_thread_waiter().
thread_local ThreadWaiter* tls_waiter = nullptr;

void set_thread_waiter(ThreadWaiter* w) {
  tls_waiter = w;
  set_current_thread_waiter(w);
}

void delete_thread_waiter_at_exit(void* p) {
  auto* const w = static_cast<ThreadWaiter*>(p);
  if (tls_waiter != w) return;  // abandoned after a DeadlockError: kept for good
  set_thread_waiter(nullptr);
  delete w;
}

ThreadWaiter* make_thread_waiter() {
  auto* const w = new ThreadWaiter;
  set_thread_waiter(w);
  abi::__cxa_thread_atexit(&delete_thread_waiter_at_exit, w, &__dso_handle);
  return w;
}

bool awaits_outside_world(WaitKind kind) {
  return kind == WaitKind::kFd || kind == WaitKind::kProcess;
}

struct Fingerprint {
  std::uint64_t h = 0xcbf29ce484222325u;
  void mix(std::uint64_t v) { h = (h ^ v) * 0x100000001b3u + (h >> 29); }
};

// One look at the whole process: false if anything visible could still make progress; else
// `fp` sums up every progress counter, to compare with the next look.
bool looks_asleep(Fingerprint* fp) {
  if (g_external_sources.load(std::memory_order_acquire) != 0) return false;
  {
    std::lock_guard<std::mutex> lock(threads_mutex());
    for (ThreadWaiter* w = g_threads; w != nullptr; w = w->registry_next) {
      if (w->state.load(std::memory_order_acquire) != kParked ||
          w->timed.load(std::memory_order_acquire) != kUntimed ||
          awaits_outside_world(w->wait_kind.load(std::memory_order_relaxed))) {
        return false;
      }
      fp->mix(static_cast<std::uint64_t>(w->tid));
      fp->mix(w->parks.load(std::memory_order_relaxed));
    }
  }
  bool asleep = true;
  for_each_runtime([&](RuntimeCore* rt) {
    if (!asleep) return;
    if (!rt->detect_deadlocks) {
      asleep = false;
      return;
    }
    if (rt->stopping.load(std::memory_order_acquire)) return;  // its tasks can never run again
    if (!rt->looks_quiescent()) {
      asleep = false;
      return;
    }
    std::vector<TaskCore*> tasks = rt->registered_tasks();
    for (TaskCore* t : tasks) {
      if ((t->state.load(std::memory_order_acquire) != kParked &&
           t->owned_park.load(std::memory_order_acquire) != kOwnedParked) ||
          awaits_outside_world(t->wait_kind.load(std::memory_order_relaxed))) {
        asleep = false;
      }
      fp->mix(t->id());
      t->release_ref();
    }
    // Scheduled tasks that never started are runnable.
    if (static_cast<std::int64_t>(tasks.size()) != rt->live_tasks()) asleep = false;
    for (const auto& w : rt->workers) {
      fp->mix(w->sleeps.load(std::memory_order_acquire));
      fp->mix(static_cast<std::uint64_t>(w->spawned.load(std::memory_order_acquire)));
      fp->mix(static_cast<std::uint64_t>(w->finished.load(std::memory_order_acquire)));
    }
    fp->mix(static_cast<std::uint64_t>(rt->spawned_outside.load(std::memory_order_acquire)));
  });
  return asleep;
}

// Ids of every started task by address, for naming what threads wait on without touching the
// task (it may be gone: the addresses are only compared).
std::map<const void*, std::uint64_t> task_ids() {
  std::map<const void*, std::uint64_t> ids;
  for_each_runtime([&](RuntimeCore* rt) {
    for (TaskCore* t : rt->registered_tasks()) {
      ids[t] = t->id();
      t->release_ref();
    }
  });
  return ids;
}

std::optional<std::uint64_t> lookup(const std::map<const void*, std::uint64_t>& ids,
                                    const void* p) {
  auto it = ids.find(p);
  return it == ids.end() ? std::nullopt : std::optional<std::uint64_t>(it->second);
}

std::string describe_thread_wait(const ThreadWaiter* w,
                                 const std::map<const void*, std::uint64_t>& ids) {
  const WaitKind kind = w->wait_kind.load(std::memory_order_relaxed);
  const void* object = w->wait_object.load(std::memory_order_relaxed);
  return describe_wait(kind, object, std::nullopt, lookup(ids, object));
}

}  // namespace

ThreadWaiter::ThreadWaiter() : Waiter(Kind::kThread), tid(syscall(SYS_gettid)) {
  state.store(kRunning, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(threads_mutex());
  registry_next = g_threads;
  if (g_threads != nullptr) g_threads->registry_prev = this;
  g_threads = this;
}

ThreadWaiter::~ThreadWaiter() {
  std::lock_guard<std::mutex> lock(threads_mutex());
  if (registry_prev != nullptr) {
    registry_prev->registry_next = registry_next;
  } else {
    g_threads = registry_next;
  }
  if (registry_next != nullptr) registry_next->registry_prev = registry_prev;
}

[[gnu::noinline]] ThreadWaiter* thread_waiter() {
  ThreadWaiter* const w = tls_waiter;
  return w != nullptr ? w : make_thread_waiter();
}

ThreadWaiter* thread_waiter_if_made() { return tls_waiter; }

[[gnu::noinline]] void note_outside_waker(WaitKind woken) {
  if (tls_service_thread || awaits_outside_world(woken)) return;
  thread_waiter();
}

[[gnu::noinline]] void mark_service_thread() { tls_service_thread = true; }

bool deadlock_detection_enabled() {
  static const bool enabled = [] {
    try {
      return env_switch("WEFT_DEADLOCK_DETECTION", true);
    } catch (const std::invalid_argument&) {
      return true;  // every Runtime constructor rejects the value with that message
    }
  }();
  return enabled;
}

bool DeadlockWatch::poll() {
  Fingerprint fp;
  if (!looks_asleep(&fp)) {
    same_ = 0;
    return false;
  }
  if (same_ > 0 && fp.h == last_) {
    ++same_;
  } else {
    same_ = 1;
    last_ = fp.h;
  }
  return same_ >= kDeadlockConfirmations;
}

std::string deadlock_report(ThreadWaiter* me, std::vector<TaskInfo>* tasks) {
  const std::map<const void*, std::uint64_t> ids = task_ids();
  std::string out =
      "deadlock: every task and every thread that could wake them is waiting, and nothing can "
      "wake any of them (no timer, no descriptor or process wait, no ExternalWakeSource):\n";
  {
    const WaitKind kind = me->wait_kind.load(std::memory_order_relaxed);
    const void* object = me->wait_object.load(std::memory_order_relaxed);
    std::optional<std::uint64_t> target = lookup(ids, object);
    // Our own frame holds the handle of the task we wait for.
    if (kind == WaitKind::kTask && object != nullptr) {
      target = static_cast<const TaskCore*>(object)->id();
    }
    absl::StrAppend(&out, "  this thread (tid ", me->tid, ") waiting on ",
                    describe_wait(kind, object, std::nullopt, target), "\n");
  }
  {
    std::lock_guard<std::mutex> lock(threads_mutex());
    for (ThreadWaiter* w = g_threads; w != nullptr; w = w->registry_next) {
      if (w == me) continue;
      absl::StrAppend(&out, "  thread ", w->tid, " waiting on ", describe_thread_wait(w, ids),
                      "\n");
    }
  }
  for_each_runtime([&](RuntimeCore* rt) {
    for (TaskInfo& t : dump_tasks(rt, /*backtraces=*/true)) tasks->push_back(std::move(t));
  });
  std::map<std::uint64_t, std::uint64_t> waits_for;  // task -> the task it waits for
  for (const TaskInfo& t : *tasks) {
    absl::StrAppend(&out, "  task ", t.id, " waiting on ", t.wait_description, "\n");
    if (t.wait_kind == WaitKind::kTask) {
      if (auto target = lookup(ids, t.wait_object)) waits_for[t.id] = *target;
    }
  }
  // Cycles of tasks waiting for each other, each printed once from its smallest id.
  for (const auto& edge : waits_for) {
    const std::uint64_t start = edge.first;
    std::vector<std::uint64_t> path{start};
    std::set<std::uint64_t> seen{start};
    for (auto it = waits_for.find(start); it != waits_for.end(); it = waits_for.find(it->second)) {
      if (it->second == start) {
        std::string cycle = "  cycle:";
        for (std::uint64_t id : path) absl::StrAppend(&cycle, " task ", id, " ->");
        absl::StrAppend(&out, cycle, " task ", start, "\n");
        break;
      }
      if (it->second < start || !seen.insert(it->second).second) break;
      path.push_back(it->second);
    }
  }
  return out;
}

[[gnu::noinline]] void abandon_thread_waiter(ThreadWaiter* w) {
  {
    std::lock_guard<std::mutex> lock(threads_mutex());
    if (w->registry_prev != nullptr) {
      w->registry_prev->registry_next = w->registry_next;
    } else {
      g_threads = w->registry_next;
    }
    if (w->registry_next != nullptr) w->registry_next->registry_prev = w->registry_prev;
    w->registry_prev = w->registry_next = nullptr;
    if (g_abandoned == nullptr) g_abandoned = new std::vector<ThreadWaiter*>;
    g_abandoned->push_back(w);
  }
  // At once, not on the thread's next call into weft: a thread that caught its DeadlockError
  // and goes on with other work (perhaps to wake someone) is running, and must count as such,
  // or the others still blocked could be declared deadlocked while it can still help them.
  if (tls_waiter == w) make_thread_waiter();
}

std::string describe_waiting_threads() {
  const std::map<const void*, std::uint64_t> ids = task_ids();
  std::string out;
  std::lock_guard<std::mutex> lock(threads_mutex());
  for (ThreadWaiter* w = g_threads; w != nullptr; w = w->registry_next) {
    if ((w->state.load(std::memory_order_acquire) & ~kClaimBit) != kParked) continue;
    if (out.empty()) out = "plain threads waiting in weft:\n";
    absl::StrAppend(&out, "  thread ", w->tid, " waiting on ", describe_thread_wait(w, ids),
                    w->timed.load(std::memory_order_relaxed) != kUntimed ? " (timed)" : "", "\n");
  }
  return out;
}

}  // namespace internal

ExternalWakeSource::ExternalWakeSource() {
  internal::g_external_sources.fetch_add(1, std::memory_order_acq_rel);
}

ExternalWakeSource::~ExternalWakeSource() {
  internal::g_external_sources.fetch_sub(1, std::memory_order_acq_rel);
}

}  // namespace weft
