// Task dumps (task_dump.h) and the SIGQUIT dump thread.
#include "weft/sched/task_dump.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "weft/sched/asymmetric_fence.h"
#include "weft/sched/backtrace.h"
#include "weft/sched/deadlock.h"
#include "weft/sched/dump.h"
#include "weft/sched/runtime_core.h"
#include "weft/sched/runtime_options.h"

namespace weft {
namespace internal {
namespace {

constexpr int kMaxFrames = 64;

std::string hex(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%" PRIxPTR, reinterpret_cast<std::uintptr_t>(p));
  return buf;
}

// "+35ms", "+12.5s", "-3ms" (already past).
std::string relative(Clock::time_point deadline) {
  const double ns = static_cast<double>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - Clock::now()).count());
  char buf[32];
  if (ns >= 10e9 || ns <= -10e9) {
    std::snprintf(buf, sizeof buf, "%+.1fs", ns / 1e9);
  } else {
    std::snprintf(buf, sizeof buf, "%+.0fms", ns / 1e6);
  }
  return buf;
}

std::optional<Clock::time_point> deadline_of(const TaskCore* w) {
  if (w->timed.load(std::memory_order_acquire) == kUntimed) return std::nullopt;
  return Clock::time_point(Clock::duration(w->wait_deadline.load(std::memory_order_relaxed)));
}

// Fills in t's state and wait, and walks a parked task's stack; false if it finished. The
// caller holds t (hold_tasks): a parked task cannot resume meanwhile, so its wait, what the
// wait keeps alive and its stack stay as they are while we read them.
bool inspect(RuntimeCore* rt, TaskCore* t, bool backtraces, TaskInfo* info, void** pcs,
             int* frames) {
  *frames = 0;
  info->id = t->id();
  const std::uint32_t s = load_unclaimed(t->state);
  if (s == kDone) return false;
  const std::uint8_t owned = t->owned_park.load(std::memory_order_acquire);
  if (s == kParked || owned == kOwnedParked) {
    info->state = TaskState::kWaiting;
    info->wait_kind = t->wait_kind.load(std::memory_order_relaxed);
    info->wait_object = t->wait_object.load(std::memory_order_relaxed);
    info->wait_deadline = deadline_of(t);
    std::optional<std::uint64_t> target;
    // The waiting frame holds a handle to the task it waits for: alive while we hold t.
    if ((info->wait_kind == WaitKind::kTask || info->wait_kind == WaitKind::kYieldTo) &&
        info->wait_object != nullptr) {
      target = static_cast<const TaskCore*>(info->wait_object)->id();
    }
    info->wait_description =
        describe_wait(info->wait_kind, info->wait_object, info->wait_deadline, target);
    if (backtraces) *frames = parked_backtrace(t, pcs, kMaxFrames);
  } else {
    info->state =
        s == kQueued || owned == kOwnedWoken ? TaskState::kQueued : TaskState::kRunning;
  }
  info->worker = t->last_worker.load(std::memory_order_relaxed);
  // A task runs only on its pool's workers, so the pool is the worker's (and reading the task's
  // own field could race with it pinning itself).
  info->pool = info->worker >= 0 ? rt->topology.pool_of[info->worker] : t->node.pool;
  return true;
}

std::string format_one(const TaskInfo& t) {
  std::string out = absl::StrCat("task ", t.id, " ", to_string(t.state));
  switch (t.state) {
    case TaskState::kWaiting:
      absl::StrAppend(&out, " on ", t.wait_description, " (", to_string(t.pool),
                      " pool, last ran on worker ", t.worker, ")");
      break;
    case TaskState::kRunning:
      absl::StrAppend(&out, " on worker ", t.worker, " (", to_string(t.pool), " pool)");
      break;
    default:
      absl::StrAppend(&out, ", runnable (", to_string(t.pool), " pool, last ran on worker ",
                      t.worker, ")");
  }
  out += t.backtrace.empty() ? "\n" : ":\n";
  for (std::size_t i = 0; i < t.backtrace.size(); ++i) {
    absl::StrAppend(&out, "    #", i, " ", t.backtrace[i], "\n");
  }
  return out;
}

// --- SIGQUIT ----------------------------------------------------------------------------------

int g_sigquit_pipe[2] = {-1, -1};

void on_sigquit(int) {
  const int saved = errno;
  const char c = 'q';
  // Non-blocking: with a dump already pending a full pipe loses nothing.
  [[maybe_unused]] ssize_t r = write(g_sigquit_pipe[1], &c, 1);
  errno = saved;
}

void write_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

void sigquit_dump_loop(int fd) {
  mark_service_thread();
  char buf[64];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    std::string text = "\n=== weft task dump (SIGQUIT; the process carries on) ===\n";
    for_each_runtime([&](RuntimeCore* rt) {
      std::vector<TaskInfo> tasks = dump_tasks(rt, /*backtraces=*/true);
      text += describe_runtime(rt, tasks.size());
      text += format_task_dump(tasks);
    });
    text += describe_waiting_threads();
    text += "=== end of weft task dump ===\n";
    write_all(STDERR_FILENO, text);
  }
}

}  // namespace

std::string describe_wait(WaitKind kind, const void* object,
                          std::optional<Clock::time_point> deadline,
                          std::optional<std::uint64_t> task_id) {
  std::string out;
  switch (kind) {
    case WaitKind::kNone:
      out = "nothing";
      break;
    case WaitKind::kExplicit:
      out = "wait() (until a schedule())";
      break;
    case WaitKind::kYieldTo:
      out = task_id ? absl::StrCat("yieldto task ", *task_id, " (until switched back)")
                    : "yieldto (until switched back)";
      break;
    case WaitKind::kTask:
      out = task_id ? absl::StrCat("task ", *task_id) : absl::StrCat("task at ", hex(object));
      break;
    case WaitKind::kSleep:
      return deadline ? absl::StrCat("sleep until ", relative(*deadline)) : "sleep";
    default:
      out = absl::StrCat(to_string(kind), " ", hex(object));
  }
  if (deadline) absl::StrAppend(&out, " until ", relative(*deadline));
  return out;
}

// Holds tasks still for a dump: a worker about to resume a held task waits in prepare()
// (switch.cc). The heavy fence pairs with prepare()'s light one: after it, a task we find
// parked cannot have been resumed, and will not be until we let it go. One fence serves a
// batch: it is a system call that interrupts every running thread of the process.
void hold_tasks(TaskCore* const* tasks, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) tasks[i]->holds.fetch_add(1, std::memory_order_relaxed);
  heavy_fence();
}

void let_go(TaskCore* t) { t->holds.fetch_sub(1, std::memory_order_release); }

std::vector<TaskInfo> dump_tasks(RuntimeCore* rt, bool backtraces) {
  constexpr std::size_t kHoldBatch = 256;
  std::vector<TaskCore*> tasks = rt->registered_tasks();
  std::vector<TaskInfo> out;
  out.reserve(tasks.size());
  // One batch's inspections, kept until the whole batch is let go: symbolizing takes
  // milliseconds (symbol tables, demangling), and a held task's worker waits to resume it.
  struct Inspected {
    TaskInfo info;
    int frames = 0;
    void* pcs[kMaxFrames];
  };
  std::vector<Inspected> batch;
  for (std::size_t first = 0; first < tasks.size(); first += kHoldBatch) {
    const std::size_t n = std::min(kHoldBatch, tasks.size() - first);
    batch.clear();
    hold_tasks(&tasks[first], n);
    for (std::size_t i = first; i < first + n; ++i) {
      TaskCore* t = tasks[i];
      Inspected seen;
      const bool alive = inspect(rt, t, backtraces, &seen.info, seen.pcs, &seen.frames);
      let_go(t);
      if (alive) batch.push_back(std::move(seen));
      t->release_ref();
    }
    for (Inspected& seen : batch) {
      if (seen.frames >= 0) {
        seen.info.backtrace = symbolize(seen.pcs, seen.frames);
      } else {
        seen.info.backtrace.push_back(absl::StrCat("(no backtrace: under ",
                                                   kUnwindStackReserve / 1024,
                                                   " KiB of its stack free for the unwinder)"));
      }
      out.push_back(std::move(seen.info));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const TaskInfo& a, const TaskInfo& b) { return a.id < b.id; });
  return out;
}

std::string describe_runtime(RuntimeCore* rt, std::size_t started) {
  const std::int64_t not_started =
      std::max<std::int64_t>(0, rt->live_tasks() - static_cast<std::int64_t>(started));
  return absl::StrCat("runtime ", hex(rt->owner), " (", std::string(rt->policy->name()),
                      " policy, ", rt->topology.num_workers(), " workers): ", started,
                      " started tasks not finished, about ", not_started,
                      " queued that have not started\n");
}

void install_sigquit_dump() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (!env_switch("WEFT_SIGQUIT_DUMP", true)) return;
    struct sigaction old {};
    if (sigaction(SIGQUIT, nullptr, &old) != 0) return;
    // The program's own handler, or an inherited "ignore", stays.
    if ((old.sa_flags & SA_SIGINFO) != 0 || old.sa_handler != SIG_DFL) return;
    if (pipe2(g_sigquit_pipe, O_CLOEXEC) != 0) return;
    fcntl(g_sigquit_pipe[1], F_SETFL, O_NONBLOCK);
    std::thread(sigquit_dump_loop, g_sigquit_pipe[0]).detach();
    struct sigaction sa {};
    sa.sa_handler = &on_sigquit;
    sigemptyset(&sa.sa_mask);
    // On the worker's alternate stack when it has one: the signal may land on a task close to
    // its stack's guard, where the kernel could not build the signal frame.
    sa.sa_flags = SA_RESTART | SA_ONSTACK;
    sigaction(SIGQUIT, &sa, nullptr);
  });
}

}  // namespace internal

std::vector<TaskInfo> task_dump(Runtime& runtime) {
  return internal::dump_tasks(runtime.core(), /*backtraces=*/true);
}

std::string format_task_dump(const std::vector<TaskInfo>& tasks) {
  std::string out;
  for (const TaskInfo& t : tasks) out += internal::format_one(t);
  return out;
}

std::string format_task_dump(Runtime& runtime) {
  std::vector<TaskInfo> tasks = task_dump(runtime);
  return internal::describe_runtime(runtime.core(), tasks.size()) + format_task_dump(tasks);
}

}  // namespace weft
