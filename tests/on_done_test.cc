// on_done (weft/task/on_done.h): callbacks run once, in registration order, on the finishing
// task once it is marked done and before wait(t) returns; at once in the caller for an ended
// task; never for a task that never runs; exactly once when registration races with the end.
#include "weft/task/on_done.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/task/errors.h"
#include "weft/task/task.h"

namespace weft {
namespace {

using testing::RuntimeTest;
class OnDoneTest : public RuntimeTest {};

// What a callback saw, written by it and read after wait(t) returned.
struct Seen {
  int order = -1;
  bool on_the_task = false;
  bool marked_done = false;
  std::string failure;
};

std::string what(const std::exception_ptr& e) { return e == nullptr ? "" : describe_exception(e); }

TEST_P(OnDoneTest, RunsOnTheFinishingTaskInOrderBeforeWaitReturns) {
  run([] {
    std::atomic<bool> go{false};
    auto t = spawn([&go] {
      while (!go.load()) yield();
      throw std::runtime_error("the end");
    });
    std::vector<Seen> seen(3);
    int next = 0;
    for (int i = 0; i < 3; ++i) {
      on_done(t, [&seen, &next, i](const TaskRef& task, const std::exception_ptr& failure) {
        seen[i].order = next++;
        seen[i].on_the_task = current_task() == task;
        seen[i].marked_done = istaskfailed(task);
        seen[i].failure = what(failure);
      });
    }
    go.store(true);
    EXPECT_THROW(wait(t), TaskFailedException);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(seen[i].order, i);
      EXPECT_TRUE(seen[i].on_the_task);
      EXPECT_TRUE(seen[i].marked_done);
      EXPECT_EQ(seen[i].failure, "the end");
    }
  });
}

// istaskdone(t) turns true just before the callbacks run; wait(t) returns only after them.
// The callback sleeps (a test may; real callbacks must not block) to hold that window open.
TEST_P(OnDoneTest, WaitOnADoneTaskWaitsForItsCallbacks) {
  Task<void> t([] {});
  t.set_sticky(false);
  std::atomic<bool> finished{false};
  on_done(t, [&finished](const TaskRef&, const std::exception_ptr&) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    finished.store(true);
  });
  runtime().submit(t);
  while (!istaskdone(t)) std::this_thread::yield();
  wait(t);
  EXPECT_TRUE(finished.load());
}

// The same for a waiting task that was scheduled while it ran: its first park returns at once,
// consuming that, and must not end the wait. The waiter keeps its worker busy until t's
// callback has begun on another (one worker: the callback has run by then).
TEST_P(OnDoneTest, WaitByAScheduledTaskWaitsForTheCallbacks) {
  Task<void> t([] {});
  t.set_sticky(false);
  std::atomic<bool> started{false};
  std::atomic<bool> finished{false};
  on_done(t, [&started, &finished](const TaskRef&, const std::exception_ptr&) {
    started.store(true);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    finished.store(true);
  });
  const bool two_workers = GetParam() > 1;
  run([&] {
    schedule(t);
    if (two_workers) {
      while (!started.load()) {
      }
    }
    schedule(current_task());  // the next park returns at once
    wait(t);
    EXPECT_TRUE(finished.load()) << "wait(t) returned before t's callbacks had run";
  });
}

TEST_P(OnDoneTest, EndedTaskRunsTheCallbackInTheCaller) {
  run([] {
    auto ok = spawn([] { return 1; });
    wait(ok);
    const TaskRef me = current_task();
    bool ran = false;
    on_done(ok, [&](const TaskRef& task, const std::exception_ptr& failure) {
      ran = true;
      EXPECT_TRUE(current_task() == me);
      EXPECT_TRUE(task == ok);
      EXPECT_TRUE(istaskdone(task));
      EXPECT_EQ(failure, nullptr);
    });
    EXPECT_TRUE(ran);

    auto bad = spawn([] { throw std::logic_error("bad"); });
    EXPECT_THROW(wait(bad), TaskFailedException);
    std::string failure;
    on_done(bad, [&](const TaskRef&, const std::exception_ptr& e) { failure = what(e); });
    EXPECT_EQ(failure, "bad");
  });
}

// From a plain thread, on a task of the runtime: the callback runs on the task, and what it
// holds is released there, as the task ends.
TEST_P(OnDoneTest, PlainThreadRegistersAndHeldStateIsReleasedAtTheEnd) {
  std::atomic<bool> go{false};
  Task<void> t([&go] {
    while (!go.load()) yield();
  });
  t.set_sticky(false);
  runtime().submit(t);
  auto held = std::make_shared<std::atomic<int>>(0);
  std::weak_ptr<std::atomic<int>> alive = held;
  on_done(t, [held = std::move(held)](const TaskRef&, const std::exception_ptr&) {
    held->fetch_add(1);
  });
  EXPECT_FALSE(alive.expired());
  go.store(true);
  wait(t);
  EXPECT_TRUE(alive.expired());
}

TEST(OnDone, NeverStartedTaskDropsItsCallbacksWithoutRunningThem) {
  auto held = std::make_shared<int>(0);
  std::weak_ptr<int> alive = held;
  bool ran = false;
  {
    Task<void> never([] {});
    on_done(never, [&ran, held = std::move(held)](const TaskRef&, const std::exception_ptr&) {
      ran = true;
    });
  }
  EXPECT_FALSE(ran);
  EXPECT_TRUE(alive.expired());
}

TEST(OnDone, EmptyHandleOrCallbackIsRejected) {
  EXPECT_THROW(on_done(TaskRef(), [](const TaskRef&, const std::exception_ptr&) {}),
               std::invalid_argument);
  Task<void> t([] {});
  EXPECT_THROW(on_done(t, DoneCallback()), std::invalid_argument);
}

// Registrations from another thread racing with the tasks' ends: each callback runs exactly
// once, whichever side runs it.
TEST_P(OnDoneTest, RegistrationRacingTheEndRunsExactlyOnce) {
  constexpr int kTasks = 300;
  std::vector<std::atomic<int>> runs(kTasks);
  std::vector<Task<void>> tasks;
  tasks.reserve(kTasks);
  for (int i = 0; i < kTasks; ++i) {
    tasks.emplace_back([] {});
    tasks.back().set_sticky(false);
  }
  std::thread registrar([&] {
    for (int i = 0; i < kTasks; ++i) {
      for (int k = 0; k < 2; ++k) {
        on_done(tasks[i], [&runs, i](const TaskRef&, const std::exception_ptr&) {
          runs[i].fetch_add(1);
        });
      }
    }
  });
  for (auto& t : tasks) runtime().submit(t);
  registrar.join();
  for (auto& t : tasks) wait(t);
  // Read right after wait: a callback the task ran had to be over before wait returned.
  for (int i = 0; i < kTasks; ++i) EXPECT_EQ(runs[i].load(), 2) << "task " << i;
}

// A registration from a task while the new task may be finishing on another worker, as
// bind(channel, spawn(...)) does: each callback runs, and before wait() returns. The finisher
// marks its task done and looks for callbacks with no fence in between, so a registrant that
// pushes and then finds the task still running must make sure the finisher saw its push
// (on_done.cc); without that, callbacks were lost within a few hundred tries on two workers.
TEST_P(OnDoneTest, RegistrationFromATaskRacingTheEndIsNeverLost) {
  constexpr int kRounds = 20000;
  run([] {
    int lost = 0;
    for (int i = 0; i < kRounds; ++i) {
      // Shared: a callback that ran late would outlive this iteration.
      auto runs = std::make_shared<std::atomic<int>>(0);
      auto t = spawn([] {});
      on_done(t, [runs](const TaskRef&, const std::exception_ptr&) { runs->fetch_add(1); });
      wait(t);
      if (runs->load() != 1) ++lost;
    }
    EXPECT_EQ(lost, 0) << "callbacks that had not run when wait() returned";
  });
}

// Two registrations at once, from two threads, on a task that has already ended: each
// callback has run when its own on_done call returns (on_done.h: "at once, in the caller of
// on_done, before on_done returns"; and wait(t) promises every callback whose on_done had
// returned). A registration that pushed its callback just after another one had pushed its
// own, and before that one took the list to run it, found the list taken and returned at
// once: its callback ran later, on the other thread. The callbacks take a while (20 us each),
// so such a late run is seen; the threads' start is staggered a little more each round to
// sweep the window.
TEST_P(OnDoneTest, ConcurrentRegistrationsOnAnEndedTaskEachRunBeforeTheirCallReturns) {
  constexpr int kRounds = 3000;  // about one in ten came back early
  std::vector<Task<void>> tasks;
  tasks.reserve(kRounds);
  for (int i = 0; i < kRounds; ++i) {
    tasks.emplace_back([] {});
    tasks.back().set_sticky(false);
    runtime().submit(tasks.back());
  }
  for (auto& t : tasks) wait(t);
  auto slow = [](std::atomic<bool>* ran) {
    return [ran](const TaskRef&, const std::exception_ptr&) {
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
      while (std::chrono::steady_clock::now() < until) {
      }
      ran->store(true, std::memory_order_release);
    };
  };
  std::atomic<int> start{-1};
  std::atomic<int> finished{-1};
  std::atomic<int> late{0};
  std::vector<std::atomic<bool>> ran_a(kRounds), ran_b(kRounds);
  std::thread other([&] {
    for (int r = 0; r < kRounds; ++r) {
      while (start.load(std::memory_order_acquire) < r) std::this_thread::yield();
      for (int i = 0; i < (r * 7) % 64; ++i) asm volatile("" ::: "memory");
      on_done(tasks[r], slow(&ran_b[r]));
      if (!ran_b[r].load(std::memory_order_acquire)) late.fetch_add(1);
      finished.store(r, std::memory_order_release);
    }
  });
  for (int r = 0; r < kRounds; ++r) {
    start.store(r, std::memory_order_release);
    for (int i = 0; i < (r * 13) % 64; ++i) asm volatile("" ::: "memory");
    on_done(tasks[r], slow(&ran_a[r]));
    if (!ran_a[r].load(std::memory_order_acquire)) late.fetch_add(1);
    while (finished.load(std::memory_order_acquire) < r) std::this_thread::yield();
  }
  other.join();
  EXPECT_EQ(late.load(), 0) << "on_done calls that returned before their callback had run";
}

WEFT_INSTANTIATE_WORKER_COUNTS(OnDoneTest);

}  // namespace
}  // namespace weft
