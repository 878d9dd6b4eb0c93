// Deadlock detection (weft/sched/deadlock_error.h): a thread waiting for deadlocked tasks gets a
// DeadlockError naming every wait instead of hanging; waits that something can still end (a
// timer, a declared ExternalWakeSource) are left alone; the option turns it off; a thread
// blocked on a primitive gets the report but keeps waiting.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "gtest/gtest.h"
#include "tests/test_runtime.h"
#include "weft/channel/channel.h"
#include "weft/sched/deadlock_error.h"
#include "weft/sched/park.h"
#include "weft/sched/scheduling.h"
#include "weft/sync/lock.h"
#include "weft/sync/timedwait.h"
#include "weft/task/task_local_storage.h"
#include "weft/task/errors.h"

namespace weft {
namespace {

using std::chrono::steady_clock;
using testing::RuntimeTest;
class Deadlock : public RuntimeTest {
 protected:
  // A plain thread that sleeps in weft (a timed wait) and then wakes a task is progress: deadlock
  // detection must not declare the process deadlocked while it sleeps, even if that thread has
  // not otherwise touched weft before. `pause` is the sleep; then the thread puts 5.
  template <typename Pause>
  void expect_no_deadlock_while_a_thread_pauses(Pause pause, const char* what) {
    Channel<int> c;
    auto taker = run([&] { return spawn([&] { return take(c); }); });
    std::thread producer([&] {
      pause();
      put(c, 5);
    });
    int got = -1;
    try {
      got = fetch(taker);
    } catch (const DeadlockError& e) {
      ADD_FAILURE() << "a deadlock was declared while a plain thread was in " << what << ":\n"
                    << e.what();
      producer.join();
      got = fetch(taker);
    }
    EXPECT_EQ(got, 5);
    if (producer.joinable()) producer.join();
  }
};

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

// The spec's known deadlock: two tasks, each taking from the channel the other would put to.
TEST_P(Deadlock, TwoTasksTakingEachOthersChannelRaiseDeadlockError) {
  Channel<int> a;
  Channel<int> b;
  auto [first, second] = run([&] {
    auto t1 = spawn([&] { put(b, take(a)); });
    auto t2 = spawn([&] { put(a, take(b)); });
    return std::make_pair(t1, t2);
  });
  internal::Waiter* const waiter_before = current_waiter();
  const std::uint64_t lock_owner_before = internal::current_lock_owner();
  const auto start = steady_clock::now();
  try {
    wait(first);
    FAIL() << "wait returned from a deadlock";
  } catch (const DeadlockError& e) {
    EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(10));
    const std::string what = e.what();
    EXPECT_TRUE(contains(what, "this thread (tid ")) << what;
    EXPECT_TRUE(contains(what, "waiting on task " + std::to_string(first.id()))) << what;
    for (const TaskRef& t : {first, second}) {
      EXPECT_TRUE(contains(what, "task " + std::to_string(t.id()) + " waiting on channel take 0x"))
          << what;
    }
    int channel_waits = 0;
    for (const TaskInfo& t : e.tasks()) {
      if (t.id != first.id() && t.id != second.id()) continue;
      EXPECT_EQ(t.state, TaskState::kWaiting);
      EXPECT_EQ(t.wait_kind, WaitKind::kChannelTake);
      EXPECT_FALSE(t.backtrace.empty());
      ++channel_waits;
    }
    EXPECT_EQ(channel_waits, 2);
  }
  // The thread's Waiter stays in first's list of waiters: it is abandoned, and the thread
  // waits with a fresh one from now on; it is still the same thread to the locks it holds.
  EXPECT_NE(current_waiter(), waiter_before);
  EXPECT_EQ(internal::current_lock_owner(), lock_owner_before);
  // The program can still end the deadlock itself, and the thread can wait again.
  a.close();
  b.close();
  EXPECT_THROW(wait(first), TaskFailedException);
  EXPECT_THROW(wait(second), TaskFailedException);
}

// A thread's Waiter is replaced after a DeadlockError; the locks it holds stay its own.
TEST_P(Deadlock, AThreadKeepsItsLocksThroughADeadlockError) {
  Channel<int> a;
  Channel<int> b;
  ReentrantLock l;
  lock(l);
  lock(l);
  auto [first, second] = run([&] {
    auto t1 = spawn([&] { put(b, take(a)); });
    auto t2 = spawn([&] { put(a, take(b)); });
    return std::make_pair(t1, t2);
  });
  EXPECT_THROW(wait(first), DeadlockError);
  EXPECT_TRUE(l.held_by_caller());
  EXPECT_NO_THROW(unlock(l));
  EXPECT_NO_THROW(unlock(l));
  EXPECT_FALSE(islocked(l));
  a.close();
  b.close();
  EXPECT_THROW(wait(first), TaskFailedException);
  EXPECT_THROW(wait(second), TaskFailedException);
}

TEST_P(Deadlock, APlainThreadInWeftSleepIsNotADeadlock) {
  expect_no_deadlock_while_a_thread_pauses([] { weft::sleep(0.8); }, "weft::sleep");
}

TEST_P(Deadlock, APlainThreadInTimedwaitIsNotADeadlock) {
  expect_no_deadlock_while_a_thread_pauses(
      [] {
        EXPECT_EQ(timedwait([] { return false; }, 0.8, 0.05), TimedWaitResult::kTimedOut);
      },
      "timedwait");
}

TEST_P(Deadlock, TasksWaitingForEachOtherAreReportedAsACycle) {
  Task<void> a;
  Task<void> b;
  a = make_task([&] { wait(b); });
  b = make_task([&] { wait(a); });
  runtime().submit(a);
  runtime().submit(b);
  try {
    wait(a);
    FAIL() << "wait returned from a deadlock";
  } catch (const DeadlockError& e) {
    const std::uint64_t low = std::min(a.id(), b.id());
    const std::uint64_t high = std::max(a.id(), b.id());
    const std::string cycle = "cycle: task " + std::to_string(low) + " -> task " +
                              std::to_string(high) + " -> task " + std::to_string(low);
    EXPECT_TRUE(contains(e.what(), cycle)) << e.what();
  }
  // Nothing can end this one: the two tasks stay parked and the runtime reports them when it
  // shuts down.
}

TEST_P(Deadlock, APendingTimerIsNotADeadlock) {
  auto sleeper = run([] {
    return spawn([] {
      sleep(0.6);
      return 3;
    });
  });
  EXPECT_EQ(fetch(sleeper), 3);
}

TEST_P(Deadlock, AnExternalWakeSourceIsNotADeadlock) {
  Channel<int> c;
  auto taker = run([&] { return spawn([&] { return take(c); }); });
  ExternalWakeSource* declared = new ExternalWakeSource;
  std::thread producer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    put(c, 9);
    delete declared;
  });
  EXPECT_EQ(fetch(taker), 9);
  producer.join();
}

// A plain thread whose schedule() found the task still running (so it marked the task for its
// next wait() rather than queuing it) has woken a waiter as much as one that queued it: it may
// do so again, so it must be known, and a thread blocked meanwhile is not deadlocked. (One
// worker: the test is about the thread, not the scheduler.)
TEST(DeadlockOutsideWaker, AThreadWhoseScheduleMarkedARunningTaskMayScheduleAgain) {
  std::unique_ptr<Runtime> rt = testing::runtime_with(1);
  std::atomic<bool> running{false};
  std::atomic<bool> marked{false};
  auto task = rt->run([&] {
    return spawn([&] {
      running.store(true);
      while (!marked.load()) std::this_thread::yield();
      wait();  // the mark: returns at once
      wait();  // until the thread's next schedule()
      return 6;
    });
  });
  std::thread scheduler([&] {
    while (!running.load()) std::this_thread::yield();
    schedule(task);  // the task is running: marked, not queued
    marked.store(true);
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    schedule(task);
  });
  int got = -1;
  try {
    got = fetch(task);
  } catch (const DeadlockError& e) {
    ADD_FAILURE() << "a deadlock was declared while a thread that had scheduled the task could "
                     "still schedule it again:\n"
                  << e.what();
    scheduler.join();
    got = fetch(task);
  }
  EXPECT_EQ(got, 6);
  if (scheduler.joinable()) scheduler.join();
}

// A plain thread holding a ReentrantLock that a task waits for will wake that task when it
// unlocks, as surely as one that puts to the channel a task takes from: while it holds the
// lock, a thread blocked in fetch() is not deadlocked. It has not waited, woken or spawned in
// weft yet (it took the lock uncontended), which is all deadlock detection counts as "known".
TEST(DeadlockOutsideWaker, AThreadHoldingALockATaskWaitsForMayStillUnlockIt) {
  std::unique_ptr<Runtime> rt = testing::runtime_with(1);
  ReentrantLock l;
  std::atomic<bool> held{false};
  std::thread holder([&] {
    lock(l);
    held.store(true);
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    unlock(l);
  });
  while (!held.load()) std::this_thread::yield();
  auto task = rt->run([&] {
    return spawn([&] {
      lock(l);
      unlock(l);
      return 6;
    });
  });
  int got = -1;
  try {
    got = fetch(task);
  } catch (const DeadlockError& e) {
    ADD_FAILURE() << "a deadlock was declared while the thread holding the lock could still "
                     "unlock it:\n"
                  << e.what();
    holder.join();
    got = fetch(task);
  }
  EXPECT_EQ(got, 6);
  if (holder.joinable()) holder.join();
}

TEST_P(Deadlock, TheOptionTurnsDetectionOff) {
  RuntimeOptions options;
  options.default_threads = GetParam();
  options.detect_deadlocks = false;
  Runtime undetected(std::move(options));
  Channel<int> c;
  auto taker = undetected.run([&] { return spawn([&] { return take(c); }); });
  // A thread the runtime has never seen, which would otherwise look like nothing at all.
  std::thread late([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    put(c, 4);
  });
  EXPECT_EQ(fetch(taker), 4);
  late.join();
}

// A thread blocked on a primitive cannot be released (the primitive points into its stack): it
// prints the report and keeps waiting. Run in a child process, which the report ends.
TEST_P(Deadlock, AThreadBlockedOnAPrimitiveGetsTheReportAndKeepsWaiting) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        int fds[2];
        if (pipe(fds) != 0) std::_Exit(3);
        const int real_stderr = dup(STDERR_FILENO);
        dup2(fds[1], STDERR_FILENO);
        std::thread watcher([fds, real_stderr] {
          std::string text;
          char buf[4096];
          while (!contains(text, "cannot be released with a DeadlockError")) {
            const ssize_t n = read(fds[0], buf, sizeof buf);
            if (n <= 0) std::_Exit(4);
            text.append(buf, static_cast<std::size_t>(n));
          }
          [[maybe_unused]] ssize_t w = write(real_stderr, text.data(), text.size());
          std::_Exit(0);
        });
        watcher.detach();
        Channel<int> nobody_puts;
        take(nobody_puts);
        std::_Exit(5);
      },
      ::testing::ExitedWithCode(0), "keeps waiting: it is blocked on a channel take");
}

WEFT_INSTANTIATE_WORKER_COUNTS(Deadlock);

// A plain thread's task-local values go as it exits (weft/task/task_local_storage.h); stored
// before the thread first used weft, they go after weft's own state for the thread. A value
// whose destructor then still waits in weft must not leave the exited thread registered as a
// running thread that may still wake someone: deadlock detection would never again find the
// process asleep. Run in a child process: what it tests is process-wide.
TEST(DeadlockThreadExit, AThreadWhoseTaskLocalValueWaitsAsItExitsIsNotCountedAfter) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        std::unique_ptr<Runtime> rt = testing::runtime_with(1);
        struct WaitsWhenDestroyed {
          explicit WaitsWhenDestroyed(Runtime* r) : rt(r) {}
          ~WaitsWhenDestroyed() {
            if (rt->run([] { return 1; }) != 1) std::_Exit(3);
          }
          Runtime* rt;
        };
        std::thread([&rt] {
          task_local_storage("waits", std::make_shared<WaitsWhenDestroyed>(rt.get()));
          if (rt->run([] { return 0; }) != 0) std::_Exit(4);  // weft's state for the thread
        }).join();
        Task<void> stuck = rt->run([] { return spawn([] { wait(); }); });
        // If no DeadlockError comes, this ends the wait (a thread weft has not seen yet).
        std::thread([stuck] {
          std::this_thread::sleep_for(std::chrono::milliseconds(1500));
          std::fprintf(stderr, "no DeadlockError\n");
          std::_Exit(1);
        }).detach();
        try {
          wait(stuck);
        } catch (const DeadlockError&) {
          std::fprintf(stderr, "DeadlockError\n");
          std::_Exit(0);
        }
        std::_Exit(2);
      },
      ::testing::ExitedWithCode(0), "DeadlockError");
}


}  // namespace
}  // namespace weft
