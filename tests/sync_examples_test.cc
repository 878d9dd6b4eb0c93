// The examples of the spec's "Synchronization" and "Low-level synchronization using schedule and
// wait" sections, as tests: errormonitor, @sync, the Threads.Condition idiom, the Semaphore
// do-block, the ReentrantLock pattern, the islocked/trylock backoff, timedwait, wait(x) for each
// kind, and the OneWayEvent built from atomics and schedule/wait alone.
#include <sys/socket.h>
#include <sys/wait.h>
#include <spawn.h>
#include <unistd.h>

#include <algorithm>
#include <any>
#include <atomic>
#include <cmath>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/sync/sync.h"

extern char** environ;

namespace weft {
namespace {

using testing::RuntimeTest;
class SyncExamples : public RuntimeTest {};

// julia> Base._wait(errormonitor(Threads.@spawn error("task failed")))
// Unhandled Task ERROR: task failed
TEST_P(SyncExamples, ErrormonitorReportsTheFailure) {
  ::testing::internal::CaptureStderr();
  run([] {
    auto t = spawn([] { throw std::runtime_error("task failed"); });
    // No pause needed before reading stderr: the report is out before wait() returns (the
    // finishing task prints it before it wakes its waiters, sched/switch.cc announce_done, and
    // errormonitor of a task already done prints it itself).
    EXPECT_THROW(wait(errormonitor(t)), TaskFailedException);
  });
  const std::string err = ::testing::internal::GetCapturedStderr();
  // The spec's printed line, exactly (then weft names the task where Julia prints its stack
  // trace).
  EXPECT_NE(err.find("Unhandled Task ERROR: task failed\n"), std::string::npos) << err;
}

// julia> @sync begin
//            Threads.@spawn println("Thread-id $(Threads.threadid()), task 1")
//            Threads.@spawn println("Thread-id $(Threads.threadid()), task 2")
//        end;
TEST_P(SyncExamples, SyncWaitsForBothSpawns) {
  const int workers = GetParam();
  run([workers] {
    std::mutex mu;
    std::vector<std::string> lines;
    sync_scope([&](SyncScope& s) {
      for (int task = 1; task <= 2; ++task) {
        s.spawn([&, task] {
          std::string line =
              "Thread-id " + std::to_string(threadid()) + ", task " + std::to_string(task);
          std::lock_guard<std::mutex> hold(mu);
          lines.push_back(line);
        });
      }
    });
    ASSERT_EQ(lines.size(), 2u);  // both printed before @sync returned
    std::sort(lines.begin(), lines.end(), [](const std::string& a, const std::string& b) {
      return a.back() < b.back();
    });
    for (int task = 1; task <= 2; ++task) {
      const std::string& line = lines[task - 1];
      EXPECT_NE(line.find(", task " + std::to_string(task)), std::string::npos) << line;
      const int id = std::stoi(line.substr(std::string("Thread-id ").size()));
      // On one worker: id == 1, still a check (a plain thread's threadid() is 0).
      EXPECT_GE(id, 1);
      EXPECT_LE(id, workers);
    }
  });
}

// The Threads.Condition idiom:
//   lock(c)
//   try
//       while !thing_we_are_waiting_for
//           wait(c)
//       end
//   finally
//       unlock(c)
//   end
TEST_P(SyncExamples, ThreadsConditionIdiom) {
  run([] {
    threads::Condition c;
    bool thing_we_are_waiting_for = false;
    auto waiter = spawn([&] {
      lock(c);
      try {
        while (!thing_we_are_waiting_for) wait(c);
      } catch (...) {
        unlock(c);
        throw;
      }
      unlock(c);
      return 42;
    });
    testing::until_waiting(waiter);  // in wait(c), so notify has a waiter to wake
    lock(c);
    thing_we_are_waiting_for = true;
    notify(c);
    unlock(c);
    EXPECT_EQ(fetch(waiter), 42);
  });
}

// s = Base.Semaphore(2)
// @sync for _ in 1:100
//     Threads.@spawn begin
//         Base.acquire(s) do
//             foo()
//         end
//     end
// end
TEST_P(SyncExamples, SemaphoreLimitsConcurrentCallsToTwo) {
  run([] {
    Semaphore s(2);
    std::atomic<int> active{0};
    std::atomic<int> most{0};
    std::atomic<int> calls{0};
    auto foo = [&] {
      const int now = active.fetch_add(1) + 1;
      int seen = most.load();
      while (now > seen && !most.compare_exchange_weak(seen, now)) {
      }
      yield();  // let others try to get in meanwhile
      calls.fetch_add(1);
      active.fetch_sub(1);
    };
    sync_scope([&](SyncScope& scope) {
      for (int i = 0; i < 100; ++i) {
        scope.spawn([&] { acquire([&] { foo(); }, s); });
      }
    });
    EXPECT_EQ(calls.load(), 100);
    // Two at once, never more: each caller yields holding its permit, so a second gets in.
    EXPECT_EQ(most.load(), 2);
    EXPECT_EQ(s.in_use(), 0);
  });
}

// lock(l)
// try
//     <atomic work>
// finally
//     unlock(l)
// end
TEST_P(SyncExamples, ReentrantLockPattern) {
  run([] {
    ReentrantLock l;
    long counter = 0;
    sync_scope([&](SyncScope& s) {
      for (int i = 0; i < 8; ++i) {
        s.spawn([&] {
          for (int k = 0; k < 1000; ++k) {
            lock(l);
            try {
              ++counter;  // <atomic work>
              if (k % 100 == 0) yield();
            } catch (...) {
              unlock(l);
              throw;
            }
            unlock(l);
          }
        });
      }
    });
    EXPECT_EQ(counter, 8000);
    EXPECT_FALSE(islocked(l));
  });
}

// The islocked docstring's exponential backoff:
//   nspins = 0
//   while true
//       while islocked(lock)
//           GC.safepoint()
//           nspins += 1
//           nspins > LIMIT && error("timeout")
//       end
//       trylock(lock) && break
//       backoff()
//   end
// The holder keeps the lock until the contender has seen it locked (or, were islocked wrong,
// has failed a trylock), so the contender's wait loop surely runs: nspins > 0.
TEST_P(SyncExamples, IslockedTrylockBackoff) {
  run([] {
    ReentrantLock l;
    lock(l);
    std::atomic<bool> saw_locked{false};
    std::atomic<bool> backed_off{false};
    auto contender = spawn([&] {
      constexpr int kLimit = 100000000;
      int nspins = 0;
      int backoff_ms = 1;
      for (;;) {
        while (islocked(l)) {
          saw_locked.store(true);
          yield();  // GC.safepoint(): let the holder run on a single worker
          if (++nspins > kLimit) throw std::runtime_error("timeout");
        }
        if (trylock(l)) break;
        backed_off.store(true);
        sleep(backoff_ms * 1e-3);
        backoff_ms *= 2;
      }
      EXPECT_TRUE(l.held_by_caller());
      unlock(l);
      return nspins;
    });
    while (!saw_locked.load() && !backed_off.load()) yield();
    unlock(l);
    EXPECT_GT(fetch(contender), 0) << "the contender never saw the lock held";
  });
}

// timedwait's docstring:
//   julia> cb() = (sleep(5); return);
//   julia> t = @async cb();
//   julia> timedwait(()->istaskdone(t), 1)    -> :timed_out
//   julia> timedwait(()->istaskdone(t), 6.5)  -> :ok
// (the task's 5 s and the first timeout divided by 25)
TEST_P(SyncExamples, TimedwaitDocExample) {
  run([] {
    auto t = async([] { sleep(0.2); });
    EXPECT_EQ(timedwait([&] { return istaskdone(t); }, 0.04, 0.01), TimedWaitResult::kTimedOut);
    // Only :ok matters here: a timeout of many times the task's 0.2 s, so that a busy machine
    // running the task late cannot fail it; it costs nothing, the wait ends with the task.
    EXPECT_EQ(timedwait([&] { return istaskdone(t); }, 5.0, 0.01), TimedWaitResult::kOk);
    EXPECT_STREQ(to_string(TimedWaitResult::kOk), "ok");
    EXPECT_STREQ(to_string(TimedWaitResult::kTimedOut), "timed_out");
  });
}

// "The minimum value for pollint is 0.001 seconds": smaller ones are refused, as Julia refuses
// them (ArgumentError); the default is 0.1. A timeout already past still polls once.
TEST_P(SyncExamples, TimedwaitPollintAndTimeoutBounds) {
  run([] {
    int calls = 0;
    auto never = [&calls] {
      ++calls;
      return false;
    };
    for (double bad : {0.0005, 0.0, -1.0, std::nan("")}) {
      try {
        timedwait(never, 1.0, bad);
        ADD_FAILURE() << "pollint " << bad << " was accepted";
      } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("pollint must be at least 1 millisecond"),
                  std::string::npos)
            << e.what();
      }
    }
    EXPECT_EQ(calls, 0) << "testcb ran although the arguments were refused";
    EXPECT_EQ(timedwait(never, 0.001, 0.001), TimedWaitResult::kTimedOut);
    calls = 0;
    EXPECT_EQ(timedwait(never, -1.0), TimedWaitResult::kTimedOut);
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(timedwait([] { return true; }, -1.0), TimedWaitResult::kOk);
    EXPECT_THROW(timedwait(never, std::nan("")), std::invalid_argument);
  });
}

// wait([x]) for each kind the seed lists (Channel: see the channel tests).
TEST_P(SyncExamples, WaitDispatchesOnEveryKind) {
  run([] {
    // Condition: returns notify's val.
    Condition c;
    auto on_condition = spawn([&] { return std::any_cast<int>(wait(c)); });
    while (!c.has_waiters()) yield();
    EXPECT_EQ(notify(c, 7), 1);
    EXPECT_EQ(fetch(on_condition), 7);

    // Condition with first=true: queued ahead of the earlier waiter.
    std::vector<int> order;
    auto second = async([&] { wait(c); order.push_back(2); });
    while (second.state() != TaskState::kWaiting) yield();
    auto first = async([&] { wait(c, {.first = true}); order.push_back(1); });
    while (first.state() != TaskState::kWaiting) yield();
    // Wake one at a time: the run order of two tasks woken together is the scheduler's
    // business (LIFO runs the later one first), the wake order is the Condition's.
    EXPECT_EQ(notify(c, {}, {.all = false}), 1);
    wait(first);
    EXPECT_EQ(second.state(), TaskState::kWaiting);
    EXPECT_EQ(notify(c, {}, {.all = false}), 1);
    wait(second);
    EXPECT_EQ(order, (std::vector<int>{1, 2}));

    // Threads.Condition: wait with the lock held.
    threads::Condition tc;
    auto on_threads_condition = spawn([&] {
      lock(tc);
      std::any v = wait(tc);
      unlock(tc);
      return std::any_cast<std::string>(v);
    });
    for (;;) {
      lock(tc);
      const int woken = notify(tc, std::string("hi"));
      unlock(tc);
      if (woken == 1) break;
      yield();
    }
    EXPECT_EQ(fetch(on_threads_condition), "hi");

    // Event.
    Event e;
    auto on_event = spawn([&] { wait(e); });
    notify(e);
    wait(on_event);

    // Task: a failed task's wait throws TaskFailedException.
    auto failing = spawn([] { throw std::logic_error("no"); });
    EXPECT_THROW(wait(failing), TaskFailedException);

    // Process: the exit code.
    pid_t pid;
    const char* argv[] = {"/bin/sh", "-c", "exit 5", nullptr};
    ASSERT_EQ(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ),
              0);
    ProcessStatus status = wait(Process(pid));
    EXPECT_TRUE(status.exited());
    EXPECT_EQ(status.exit_code, 5);

    // RawFD.
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    auto reader = spawn([&] { return wait(RawFD(sv[0]), {.readable = true}); });
    testing::until_waiting(reader);  // parked on the descriptor: the wake path runs
    ASSERT_EQ(::write(sv[1], "x", 1), 1);
    FdEvent ev = fetch(reader);
    EXPECT_TRUE(ev.readable);
    EXPECT_FALSE(ev.timedout);
    ::close(sv[0]);
    ::close(sv[1]);
  });
}

// The low-level section's OneWayEvent: atomics plus schedule/wait, written outside sync/.
class OneWayEvent {
 public:
  void notify() {
    State state = state_.load();
    while (state != kNotifying) {
      // Spin until we successfully update the state to kNotifying.
      if (state_.compare_exchange_weak(state, kNotifying)) {
        if (state == kWaiting) {
          // kWaiting -> kNotifying: the waiter is waiting or about to call wait(); wake it.
          schedule(task_);
        } else {
          // kEmpty: the waiter has not called wait() yet (one notifier, by assumption).
          EXPECT_EQ(state, kEmpty);
        }
        break;
      }
    }
  }

  void wait() {
    task_ = current_task();
    State state = kEmpty;
    if (state_.compare_exchange_strong(state, kWaiting)) {
      // The notifier is now bound to schedule us: wait() at once, nothing that may yield first.
      weft::wait();
    } else {
      EXPECT_EQ(state, kNotifying);
    }
  }

 private:
  enum State { kEmpty, kWaiting, kNotifying };
  std::atomic<State> state_{kEmpty};
  TaskRef task_;
};

// ev = OneWayEvent()
// @sync begin
//     @async begin
//         wait(ev)
//         println("done")
//     end
//     println("notifying...")
//     notify(ev)
// end
// # output: notifying... done
TEST_P(SyncExamples, OneWayEventSpecExample) {
  run([] {
    OneWayEvent ev;
    std::vector<std::string> output;
    sync_scope([&](SyncScope& s) {
      s.async([&] {
        ev.wait();
        output.push_back("done");
      });
      output.push_back("notifying...");
      ev.notify();
    });
    EXPECT_EQ(output, (std::vector<std::string>{"notifying...", "done"}));
  });
}

// The other branch: the waiter is already parked (kWaiting) when notify comes.
TEST_P(SyncExamples, OneWayEventWaiterFirst) {
  run([] {
    OneWayEvent ev;
    std::atomic<bool> done{false};
    auto waiter = spawn([&] {
      ev.wait();
      done = true;
    });
    while (waiter.state() != TaskState::kWaiting) yield();
    EXPECT_FALSE(done.load());
    ev.notify();
    wait(waiter);
    EXPECT_TRUE(done.load());
  });
}

// Both orders racing across workers, many times.
TEST_P(SyncExamples, OneWayEventRaces) {
  run([] {
    for (int i = 0; i < 2000; ++i) {
      OneWayEvent ev;
      auto waiter = spawn([&] { ev.wait(); });
      auto notifier = spawn([&] { ev.notify(); });
      wait(notifier);
      wait(waiter);
    }
  });
}

WEFT_INSTANTIATE_WORKER_COUNTS(SyncExamples);

}  // namespace
}  // namespace weft
