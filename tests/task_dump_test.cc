// Task dumps (weft/sched/task_dump.h): a known set of parked tasks, each wait named correctly
// and each with a backtrace through the code that parked it; the running task; the text form;
// and the dump printed on SIGQUIT.
#include "weft/sched/task_dump.h"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_runtime.h"
#include "weft/channel/channel.h"
#include "weft/sched/park.h"
#include "weft/sched/scheduling.h"
#include "weft/sched/spin_lock.h"

namespace weft {
namespace {

using testing::RuntimeTest;
class TaskDump : public RuntimeTest {};

// A primitive made directly on park/wake: one waiter, woken once. pass() is kept a frame of its
// own in optimized builds too -- out of line, and park() is not its last call (a tail call
// leaves no frame) -- since backtraces name real frames only.
class Gate {
 public:
  [[gnu::noinline]] void pass() {
    lock_.lock();
    if (!open_) {
      waiter_ = current_waiter();
      park(lock_, WaitKind::kEvent, this);
    } else {
      lock_.unlock();
    }
    passed_.fetch_add(1, std::memory_order_relaxed);
  }
  int passed() const { return passed_.load(std::memory_order_relaxed); }
  void open() {
    lock_.lock();
    open_ = true;
    internal::Waiter* w = std::exchange(waiter_, nullptr);
    lock_.unlock();
    if (w != nullptr) wake(w);
  }

 private:
  SpinLock lock_;
  internal::Waiter* waiter_ = nullptr;
  bool open_ = false;
  std::atomic<int> passed_{0};
};

std::string hex(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%" PRIxPTR, reinterpret_cast<std::uintptr_t>(p));
  return buf;
}

const TaskInfo* find(const std::vector<TaskInfo>& dump, const TaskRef& t) {
  for (const TaskInfo& info : dump) {
    if (info.id == t.id()) return &info;
  }
  return nullptr;
}

bool mentions(const std::vector<std::string>& backtrace, const std::string& what) {
  for (const std::string& frame : backtrace) {
    if (frame.find(what) != std::string::npos) return true;
  }
  return false;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

// Yields until every task in `tasks` is parked (or fails after a few seconds).
void until_parked(const std::vector<TaskRef>& tasks) {
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (const TaskRef& t : tasks) {
    while (t.state() != TaskState::kWaiting) {
      ASSERT_LT(std::chrono::steady_clock::now(), limit) << "task " << t.id() << " never parked";
      yield();
    }
  }
}

TEST_P(TaskDump, NamesEachWaitAndShowsWhereItParked) {
  Runtime& rt = runtime();
  run([&rt] {
    Gate gate;
    Channel<int> channel;
    auto explicit_waiter = spawn([] { wait(); });
    // Long enough to be still asleep at the dump (tens of ms later even under TSan), which is
    // all it is for: the test waits it out at the end.
    auto sleeper = spawn([] { sleep(1.0); });
    auto task_waiter = spawn([&] { wait(explicit_waiter); });
    auto gate_waiter = spawn([&] { gate.pass(); });
    auto taker = spawn([&] { return take(channel); });
    until_parked({explicit_waiter, sleeper, task_waiter, gate_waiter, taker});

    const auto before = Clock::now();
    std::vector<TaskInfo> dump = task_dump(rt);

    const TaskInfo* e = find(dump, explicit_waiter);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->state, TaskState::kWaiting);
    EXPECT_EQ(e->wait_kind, WaitKind::kExplicit);
    EXPECT_EQ(e->wait_description, "wait() (until a schedule())");
    EXPECT_TRUE(mentions(e->backtrace, "weft::wait()")) << joined(e->backtrace);

    const TaskInfo* s = find(dump, sleeper);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->wait_kind, WaitKind::kSleep);
    EXPECT_EQ(s->wait_description.rfind("sleep until +", 0), 0u) << s->wait_description;
    ASSERT_TRUE(s->wait_deadline.has_value());
    EXPECT_GT(*s->wait_deadline, before);
    EXPECT_LE(*s->wait_deadline, before + std::chrono::milliseconds(1000));
    EXPECT_TRUE(mentions(s->backtrace, "weft::sleep")) << joined(s->backtrace);

    const TaskInfo* t = find(dump, task_waiter);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->wait_kind, WaitKind::kTask);
    EXPECT_EQ(t->wait_object, explicit_waiter.core());
    EXPECT_EQ(t->wait_description, "task " + std::to_string(explicit_waiter.id()));
    EXPECT_TRUE(mentions(t->backtrace, "weft::wait(weft::TaskRef const&)")) << joined(t->backtrace);

    const TaskInfo* g = find(dump, gate_waiter);
    ASSERT_NE(g, nullptr);
    EXPECT_EQ(g->wait_kind, WaitKind::kEvent);
    EXPECT_EQ(g->wait_object, &gate);
    EXPECT_EQ(g->wait_description, "event " + hex(&gate));
    EXPECT_FALSE(g->wait_deadline.has_value());
    EXPECT_TRUE(mentions(g->backtrace, "Gate::pass()")) << joined(g->backtrace);

    const TaskInfo* c = find(dump, taker);
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->wait_kind, WaitKind::kChannelTake);
    EXPECT_EQ(c->wait_description, "channel take " + hex(c->wait_object));
    // The task's own body (take itself may be inlined into it).
    EXPECT_TRUE(mentions(c->backtrace, "TestBody()")) << joined(c->backtrace);

    // The dumping task itself: running here, no wait, no backtrace.
    const TaskInfo* self = find(dump, current_task());
    ASSERT_NE(self, nullptr);
    EXPECT_EQ(self->state, TaskState::kRunning);
    EXPECT_EQ(self->worker, threadid() - 1);
    EXPECT_EQ(self->wait_kind, WaitKind::kNone);
    EXPECT_TRUE(self->backtrace.empty());

    for (const TaskInfo& info : dump) {
      if (info.state == TaskState::kWaiting) {
        EXPECT_GE(info.worker, 0);
      }
      EXPECT_EQ(info.pool, Pool::kDefault);
    }

    const std::string text = format_task_dump(dump);
    EXPECT_NE(text.find("task " + std::to_string(task_waiter.id()) + " waiting on task " +
                        std::to_string(explicit_waiter.id())),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("    #0 0x"), std::string::npos) << text;

    schedule(explicit_waiter);
    gate.open();
    put(channel, 42);
    EXPECT_EQ(fetch(taker), 42);
    wait(task_waiter);
    wait(gate_waiter);
    EXPECT_EQ(gate.passed(), 1);
    wait(sleeper);
  });
}

TEST_P(TaskDump, ListsOnlyUnfinishedStartedTasks) {
  Runtime& rt = runtime();
  run([&rt] {
    auto done = spawn([] { return 1; });
    fetch(done);
    auto waiting = spawn([] { wait(); });
    until_parked({waiting});
    std::vector<TaskInfo> dump = task_dump(rt);
    EXPECT_EQ(find(dump, done), nullptr);
    EXPECT_NE(find(dump, waiting), nullptr);
    // The dump's own format mentions the runtime and counts what has not started.
    const std::string text = format_task_dump(rt);
    EXPECT_NE(text.find("started tasks not finished"), std::string::npos) << text;
    schedule(waiting);
    wait(waiting);
  });
}

// A task suspended by yieldto stays suspended when the task it switched to ends without
// switching back; once that task's last handle is gone, a dump (or a deadlock report) must
// still name the wait without reading the freed task. The block it was freed to is reused by a
// new task of the same size, whose id a dump reading through the dangling pointer would show
// (ASan: a heap use after free).
TEST_P(TaskDump, AYieldtoWhoseTargetEndedAndWasFreedIsNamedSafely) {
  Runtime& rt = runtime();
  run([&rt] {
    auto target = std::make_unique<Task<void>>([] {});
    const std::uint64_t target_id = target->id();
    auto yielder = async([&target] { yieldto(*target); });
    until_parked({yielder});
    ASSERT_TRUE(istaskdone(*target));
    for (int i = 0; i < 10; ++i) yield();  // the runtime's reference goes with its stack
    target.reset();                        // the last handle
    std::vector<Task<void>> reuse;
    for (int i = 0; i < 32; ++i) reuse.emplace_back([] {});
    std::vector<TaskInfo> dump = task_dump(rt);
    const TaskInfo* y = find(dump, yielder);
    ASSERT_NE(y, nullptr);
    EXPECT_EQ(y->wait_kind, WaitKind::kYieldTo);
    EXPECT_EQ(y->wait_description,
              "yieldto task " + std::to_string(target_id) + " (until switched back)");
    schedule(yielder);
    wait(yielder);
  });
}

// Dumps from another thread while tasks keep parking and being woken, both kinds of park:
// owned (an unbuffered channel) and not (wait() and schedule()). A dump holds each task it
// reads still, so every waiting task it reports has a backtrace read from a parked stack (a
// resumed one would race with the unwinder: ASan and TSan watch this test).
TEST_P(TaskDump, HoldsTasksStillWhileTheyKeepParkingAndWaking) {
  Runtime& rt = runtime();
  constexpr int kRounds = 3000;
  std::atomic<bool> stop{false};
  std::atomic<int> dumps{0};
  std::atomic<int> waiting_seen{0};
  std::thread dumper([&] {
    while (!stop.load(std::memory_order_acquire)) {
      for (const TaskInfo& info : task_dump(rt)) {
        if (info.state != TaskState::kWaiting) continue;
        waiting_seen.fetch_add(1, std::memory_order_relaxed);
        EXPECT_FALSE(info.backtrace.empty()) << "task " << info.id << " " << info.wait_description;
      }
      dumps.fetch_add(1, std::memory_order_relaxed);
    }
  });
  const std::int64_t total = run([&] {
    Channel<int> ping;
    Channel<int> pong;
    auto echo = spawn([&] {
      for (int i = 0; i < kRounds; ++i) put(pong, take(ping) + 1);
    });
    auto waiter = spawn([&] {
      for (int i = 0; i < kRounds; ++i) wait();
    });
    auto poker = spawn([&] {
      for (int i = 0; i < kRounds; ++i) {
        while (waiter.state() != TaskState::kWaiting) yield();
        schedule(waiter);
      }
    });
    std::int64_t sum = 0;
    for (int i = 0; i < kRounds; ++i) {
      // Halfway, until a dump has completed: the rounds alone can finish before the dumper's
      // first dump does (9 ms on 2 workers), and then no dump overlapped them.
      if (i == kRounds / 2) {
        while (dumps.load(std::memory_order_relaxed) == 0) yield();
      }
      put(ping, i);
      sum += take(pong);
    }
    wait(echo);
    wait(poker);
    wait(waiter);
    return sum;
  });
  stop.store(true, std::memory_order_release);
  dumper.join();
  EXPECT_EQ(total, static_cast<std::int64_t>(kRounds) * (kRounds + 1) / 2);
  EXPECT_GT(dumps.load(), 0);
}

// Reads fd until `marker` shows up (or ~10 s pass); returns what it read.
std::string read_until(int fd, const std::string& marker) {
  std::string text;
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (text.find(marker) == std::string::npos && std::chrono::steady_clock::now() < limit) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    char buf[4096];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  return text;
}

TEST_P(TaskDump, SigquitPrintsTheDumpAndTheProcessCarriesOn) {
  struct sigaction current {};
  ASSERT_EQ(sigaction(SIGQUIT, nullptr, &current), 0);
  if (current.sa_handler == SIG_DFL || current.sa_handler == SIG_IGN) {
    GTEST_SKIP() << "SIGQUIT was not at its default action when the runtime started";
  }
  Gate gate;
  auto parked = run([&gate] { return spawn([&gate] { gate.pass(); }); });
  while (parked.state() != TaskState::kWaiting) std::this_thread::yield();

  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  std::fflush(stderr);
  const int saved_stderr = dup(STDERR_FILENO);
  dup2(pipe_fds[1], STDERR_FILENO);
  raise(SIGQUIT);
  const std::string text = read_until(pipe_fds[0], "=== end of weft task dump ===");
  dup2(saved_stderr, STDERR_FILENO);
  ::close(saved_stderr);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);

  EXPECT_NE(text.find("=== weft task dump (SIGQUIT"), std::string::npos) << text;
  EXPECT_NE(text.find("task " + std::to_string(parked.id()) + " waiting on event " + hex(&gate)),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("Gate::pass()"), std::string::npos) << text;
  gate.open();
  wait(parked);
}

WEFT_INSTANTIATE_WORKER_COUNTS(TaskDump);

}  // namespace
}  // namespace weft
