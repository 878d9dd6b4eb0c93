// Idle workers: they sleep (no CPU while there is nothing to do), a push wakes them without
// losing a wake-up (bursts from plain threads, from tasks, and from timers, right as workers
// fall asleep), one push does not wake the whole pool, and shutdown with parked tasks is
// defined: the runtime stops, reports them, and does not hang.
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/test_runtime.h"
#include "weft/sched/runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/sync/event.h"
#include "weft/task/task.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

namespace weft {
namespace {

using testing::RuntimeTest;
using testing::runtime_with;
using testing::spin_until;
using testing::submit_free;
using testing::until_waiting_from_thread;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

// A worker thread of a runtime: its kernel id and its CPU-time clock.
struct WorkerThread {
  pid_t tid;
  clockid_t cpu_clock;
};

// The `workers` threads of rt's default pool, which the runtime does not expose: found by as
// many free tasks, pushed from this plain thread, each of which reports the thread it runs on
// and then spins until all have started, so that each holds a worker of its own. The idle
// measurements below then count these threads only, not the test's other threads (the timer
// thread, the watchdog, a sanitizer's background thread). Fails the test if the tasks never all
// ran at once (a push that woke no worker: the tests below catch that too).
std::vector<WorkerThread> find_worker_threads(Runtime& rt, int workers) {
  std::vector<WorkerThread> found(workers);
  std::atomic<int> arrived{0};
  std::atomic<int> gave_up{0};
  std::vector<Task<void>> tasks;
  for (int i = 0; i < workers; ++i) {
    tasks.push_back(submit_free(rt, [&, workers] {
      const int slot = arrived.fetch_add(1, std::memory_order_acq_rel);
      found[slot].tid = gettid();
      EXPECT_EQ(pthread_getcpuclockid(pthread_self(), &found[slot].cpu_clock), 0);
      const auto deadline = SteadyClock::now() + milliseconds(5000);
      while (arrived.load(std::memory_order_acquire) < workers) {
        if (SteadyClock::now() > deadline) {
          gave_up.fetch_add(1);
          break;
        }
      }
    }));
  }
  for (auto& t : tasks) wait(t);
  std::set<pid_t> distinct;
  for (const WorkerThread& w : found) distinct.insert(w.tid);
  EXPECT_EQ(gave_up.load(), 0) << "the finding tasks never all ran at once";
  EXPECT_EQ(static_cast<int>(distinct.size()), workers) << "workers found";
  return found;
}

double cpu_seconds(const std::vector<WorkerThread>& threads) {
  double sum = 0;
  for (const WorkerThread& w : threads) {
    timespec ts{};
    clock_gettime(w.cpu_clock, &ts);
    sum += static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
  }
  return sum;
}

// Voluntary context switches of these threads, summed.
long voluntary_switches(const std::vector<WorkerThread>& threads) {
  long sum = 0;
  for (const WorkerThread& w : threads) {
    std::ifstream status("/proc/self/task/" + std::to_string(w.tid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0) sum += std::atol(line.c_str() + 24);
    }
  }
  return sum;
}

// Waits (as a plain thread) until counter reaches `target` or `limit` passes.
bool wait_for_count(const std::atomic<int>& counter, int target, milliseconds limit) {
  const auto deadline = SteadyClock::now() + limit;
  while (counter.load(std::memory_order_acquire) < target) {
    if (SteadyClock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  return true;
}

class IdleWake : public RuntimeTest {};

TEST_P(IdleWake, IdleWorkersUseNoCpu) {
  // Finding the workers is work for all of them first: they have run and then go idle.
  const std::vector<WorkerThread> workers = find_worker_threads(runtime(), GetParam());
  std::this_thread::sleep_for(milliseconds(20));
  const double before = cpu_seconds(workers);
  std::this_thread::sleep_for(milliseconds(200));
  const double used = cpu_seconds(workers) - before;
  // A spinning worker would burn ~200 ms per worker here; sleeping ones burn next to nothing.
  EXPECT_LT(used, 0.02) << GetParam() << " idle workers used " << used * 1e3
                        << " ms of CPU in 200 ms";
}

// Bursts of tasks from a plain thread, each burst right after the workers went (or are going)
// to sleep: every task must run. A lost wake-up leaves a task queued with every worker asleep.
TEST_P(IdleWake, BurstsFromAPlainThreadAreNeverLost) {
  std::minstd_rand rng(7);
  std::atomic<int> ran{0};
  int expected = 0;
  for (int round = 0; round < 200; ++round) {
    // 0-300 us: sometimes while workers still spin, sometimes as they sleep, sometimes after.
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 300));
    const int burst = 1 + static_cast<int>(rng() % 16);
    std::vector<Task<void>> tasks;
    for (int i = 0; i < burst; ++i) {
      tasks.push_back(
          submit_free(runtime(), [&ran] { ran.fetch_add(1, std::memory_order_release); }));
    }
    expected += burst;
    // Polled, so that nothing but the pushes themselves can wake a worker.
    ASSERT_TRUE(wait_for_count(ran, expected, milliseconds(5000)))
        << "round " << round << ": " << expected - ran.load() << " tasks never ran";
    for (auto& t : tasks) wait(t);
  }
}

// Two tasks pushed from a plain thread into a pool of two sleeping workers, the first of which
// spins until the second has run: each push wakes a worker, and the second task must run on the
// worker its push woke while the first holds the other (a worker that found the first still on
// its way into the pool's queue must not go back to sleep, and a wake-up spent on the worker
// that took the first must be passed on: passed_wake_test.cc forces that case).
TEST_P(IdleWake, APairFromAPlainThreadRunsSideBySide) {
  if (GetParam() < 2) GTEST_SKIP() << "needs two workers";
  for (int round = 0; round < 200; ++round) {
    std::this_thread::sleep_for(std::chrono::microseconds(round % 4 == 0 ? 2000 : 200));
    std::atomic<bool> second_ran{false};
    std::atomic<bool> in_time{true};
    auto first =
        submit_free(runtime(), [&] { in_time = spin_until(second_ran, milliseconds(2000)); });
    auto second = submit_free(runtime(), [&] { second_ran.store(true, std::memory_order_release); });
    wait(first);
    wait(second);
    ASSERT_TRUE(in_time.load()) << "round " << round
                                << ": the second task waited while a worker slept";
  }
}

// The same from inside tasks (pushes from a worker) and from the timer thread (sleep): a task
// sleeps, wakes up and spawns a burst, whose tasks each park and are woken by another task.
TEST_P(IdleWake, BurstsFromTasksAndTimersAreNeverLost) {
  run([] {
    std::minstd_rand rng(11);
    for (int round = 0; round < 50; ++round) {
      sleep(0.001);  // every worker goes idle; the timer wakes us
      const int burst = 1 + static_cast<int>(rng() % 8);
      std::vector<Task<int>> waiters;
      for (int i = 0; i < burst; ++i) {
        waiters.push_back(spawn([] { return std::any_cast<int>(wait()); }));
      }
      for (int i = 0; i < burst; ++i) {
        while (waiters[i].state() != TaskState::kWaiting) yield();
      }
      auto waker = spawn([&waiters] {
        for (std::size_t i = 0; i < waiters.size(); ++i) schedule(waiters[i], static_cast<int>(i));
      });
      wait(waker);
      for (int i = 0; i < burst; ++i) EXPECT_EQ(fetch(waiters[i]), i);
    }
  });
}

// One task pushed into an idle pool wakes one worker, not all of them. Counted as the workers'
// voluntary context switches (a worker that wakes up and finds nothing goes back to sleep: one
// switch).
TEST(IdleWakePool, OnePushDoesNotWakeEveryWorker) {
  constexpr int kWorkers = 4;
  constexpr int kPushes = 20;
  RuntimeOptions options;
  options.default_threads = kWorkers;
  options.interactive_threads = 0;
  Runtime rt(std::move(options));
  const std::vector<WorkerThread> workers = find_worker_threads(rt, kWorkers);
  std::this_thread::sleep_for(milliseconds(50));
  const long before = voluntary_switches(workers);
  for (int i = 0; i < kPushes; ++i) {
    std::atomic<int> ran{0};
    auto t = submit_free(rt, [&ran] { ran.store(1, std::memory_order_release); });
    ASSERT_TRUE(wait_for_count(ran, 1, milliseconds(5000)));
    wait(t);
    std::this_thread::sleep_for(milliseconds(5));  // back to sleep
  }
  const long switches = voluntary_switches(workers) - before;
  // One woken worker per push gives about kPushes; waking all would give kWorkers * kPushes.
  EXPECT_LT(switches, 2 * kPushes) << switches << " wake-ups for " << kPushes << " pushes into "
                                   << kWorkers << " idle workers";
}

// A runtime of `workers` default-pool workers and no interactive pool.
RuntimeOptions default_pool_only(int workers) {
  RuntimeOptions options;
  options.default_threads = workers;
  options.interactive_threads = 0;
  return options;
}

// A task that waits until a schedule() of it, then sets `ran`; returned once it waits.
Task<void> parked_until_scheduled(std::atomic<bool>& ran) {
  auto t = spawn([&ran] {
    wait();
    ran.store(true, std::memory_order_release);
  });
  while (t.state() != TaskState::kWaiting) yield();
  return t;
}

// A task woken by a task that then keeps its worker busy (here: spins until the woken task has
// run) runs on another worker. A policy may hold a woken task for the worker that woke it
// (work stealing does, briefly: Policy::holds_for_pusher), but an idle worker takes it in the
// end, whether that worker was asleep (then the push wakes it) or polling.
TEST(IdleWakeHeld, ATaskWokenByABusyTaskRunsOnAnotherWorker) {
  Runtime rt(default_pool_only(2));
  for (int round = 0; round < 40; ++round) {
    const bool asleep = round % 2 == 0;
    rt.run([asleep, round] {
      std::atomic<bool> ran{false};
      auto woken = parked_until_scheduled(ran);
      // Long enough for the other worker to stop polling and sleep for good.
      if (asleep) std::this_thread::sleep_for(milliseconds(5));
      schedule(woken);
      ASSERT_TRUE(spin_until(ran, milliseconds(5000)))
          << "round " << round << ": the woken task never ran while its waker kept busy";
      wait(woken);
    });
  }
}

// The same while the other worker is never idle: it runs a stream of tasks that yield in a loop.
// A policy that holds the woken task for its busy waker must still let a busy worker take it
// once it has been held for a while, not only a worker that has run out of work; otherwise it
// waits for as long as its waker keeps its worker.
TEST(IdleWakeHeld, ATaskHeldByABusyWorkerIsTakenByAnotherBusyOne) {
  Runtime rt(default_pool_only(2));
  for (int round = 0; round < 10; ++round) {
    rt.run([round] {
      std::atomic<bool> ran{false};
      std::atomic<bool> stop{false};
      auto woken = parked_until_scheduled(ran);
      std::vector<Task<void>> churn;
      for (int i = 0; i < 4; ++i) {
        churn.push_back(spawn([&stop] {
          while (!stop.load(std::memory_order_relaxed)) yield();
        }));
      }
      auto waker = spawn([&woken, &ran] {
        schedule(woken);
        return spin_until(ran, milliseconds(5000));
      });
      const bool in_time = fetch(waker);
      stop.store(true, std::memory_order_relaxed);
      for (auto& t : churn) wait(t);
      wait(woken);
      EXPECT_TRUE(in_time) << "round " << round
                           << ": the held task waited while a busy worker ran other tasks";
    });
  }
}

// The same with three workers, where the worker roused to see to the held task is drawn away
// by other work first: a task spawned right after, which keeps it busy. The held task's push
// woke nobody else, so that worker, as it leaves with the other task, must hand the watch to
// the worker still asleep; otherwise the held task waits for as long as its waker and the other
// task keep their workers. The spawn comes at varying delays after the wake, so that it finds
// the roused worker at every step: just woken, going idle again, polling.
TEST(IdleWakeHeld, AWorkerDrawnAwayHandsTheWatchToASleepingOne) {
  Runtime rt(default_pool_only(3));
  for (int round = 0; round < 60; ++round) {
    const auto delay = std::chrono::microseconds(5 * (round % 12));
    rt.run([delay, round] {
      std::atomic<bool> ran{false};
      std::atomic<bool> release{false};
      auto woken = parked_until_scheduled(ran);
      std::this_thread::sleep_for(milliseconds(5));  // the other two workers asleep for good
      schedule(woken);
      for (const auto until = SteadyClock::now() + delay; SteadyClock::now() < until;) {
      }
      auto busy = spawn([&release] {
        while (!release.load(std::memory_order_acquire)) {
        }
      });
      const bool in_time = spin_until(ran, milliseconds(2000));
      release.store(true, std::memory_order_release);
      wait(busy);
      wait(woken);
      EXPECT_TRUE(in_time) << "round " << round << ": the woken task waited while a worker slept";
    });
  }
}


// Destroys the runtime; what it reported on stderr, once it has returned within 5 s.
std::string shut_down_promptly(std::unique_ptr<Runtime>& rt) {
  ::testing::internal::CaptureStderr();
  const auto start = SteadyClock::now();
  rt.reset();
  const auto took = SteadyClock::now() - start;
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_LT(took, std::chrono::seconds(5));
  return err;
}

// Shutdown with a task parked forever: the destructor stops the workers once nothing can run,
// says how many tasks were left waiting, and returns; a later wake of one of them is harmless.
TEST(IdleWakeShutdown, ParkedTasksAreReportedAndShutdownReturns) {
  auto rt = runtime_with(2);
  std::vector<Task<void>> parked;
  for (int i = 0; i < 3; ++i) parked.push_back(submit_free(*rt, [] { wait(); }));
  for (auto& t : parked) until_waiting_from_thread(t);
  const std::string err = shut_down_promptly(rt);
  EXPECT_NE(err.find("3 tasks still waiting"), std::string::npos) << err;
  for (auto& t : parked) EXPECT_EQ(t.state(), TaskState::kWaiting);
  // What they wait on may still wake them, from another thread, after the shutdown: the wake
  // queues the task in the stopped runtime (it never runs) rather than in freed memory (ASan
  // reported a use after free here before the runtime's core was kept).
  for (auto& t : parked) schedule(t);
  std::this_thread::sleep_for(milliseconds(20));
  for (auto& t : parked) EXPECT_FALSE(istaskdone(t));
}

// What a task parked for good holds in its frames stays with it: LeakSanitizer must not report
// it as leaked, as the shutdown reported the task (it did, the stack not being scanned).
TEST(IdleWakeShutdown, WhatAStrandedTaskHoldsIsNotReportedAsLeaked) {
#if !defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "needs LeakSanitizer (the ASan configurations)";
#else
  auto rt = runtime_with(1);
  auto parked = submit_free(*rt, [] {
    auto held = std::make_unique<std::vector<int>>(1000, 7);  // only this frame points at it
    wait();
    EXPECT_EQ((*held)[3], 7);
  });
  until_waiting_from_thread(parked);
  const std::string err = shut_down_promptly(rt);
  EXPECT_NE(err.find("1 tasks still waiting"), std::string::npos) << err;
  EXPECT_EQ(__lsan_do_recoverable_leak_check(), 0)
      << "LeakSanitizer reported what the stranded task's frames hold (above)";
#endif
}

// A timeout too long to ever end (past ~31 years: "never") is no timer: shutdown sees the task
// parked for good, reports it and returns, instead of waiting for a deadline that never comes.
TEST(IdleWakeShutdown, ATimeoutOfNeverIsNoPendingTimer) {
  auto rt = runtime_with(1);
  Event never_set;
  std::atomic<bool> returned{false};
  auto waiter = submit_free(*rt, [&] {
    if (never_set.wait_for(1e12)) ADD_FAILURE() << "wait_for returned true, the event unset";
    returned.store(true);
  });
  until_waiting_from_thread(waiter);
  const std::string err = shut_down_promptly(rt);
  EXPECT_NE(err.find("1 tasks still waiting"), std::string::npos) << err;
  EXPECT_FALSE(returned.load());
}

// The same for a sleep of forever (past ~31 years), in seconds or as an absl::Duration.
TEST(IdleWakeShutdown, ASleepOfForeverIsNoPendingTimer) {
  for (const bool as_duration : {false, true}) {
    auto rt = runtime_with(1);
    std::atomic<bool> returned{false};
    auto sleeper = submit_free(*rt, [&returned, as_duration] {
      if (as_duration) {
        sleep(absl::InfiniteDuration());
      } else {
        sleep(INFINITY);
      }
      returned.store(true);
    });
    until_waiting_from_thread(sleeper);
    const std::string err = shut_down_promptly(rt);
    EXPECT_NE(err.find("1 tasks still waiting"), std::string::npos) << err;
    EXPECT_FALSE(returned.load());
  }
}

WEFT_INSTANTIATE_WORKER_COUNTS(IdleWake);

}  // namespace
}  // namespace weft
