// Lost-wakeup hunts and timeout races. Ping-pong between tasks (and plain threads) across
// workers through every primitive; a lost wake-up hangs the test (the watchdog fails it). Timed
// waits racing with notifications check that exactly one side wins and that no wake-up leaks
// into a later wait (which would return early with the wrong value).
//
// The default run is short; WEFT_STRESS=1 runs the long mode (a million rounds), e.g.
//   bazel test --config=tsan --test_env=WEFT_STRESS=1 --test_env=WEFT_TEST_TIMEOUT=0
//     --test_timeout=3600 //tests:sync_stress_test
#include <fcntl.h>
#include <unistd.h>

#include <any>
#include <atomic>
#include <thread>

#include "gtest/gtest.h"
#include "tests/stress_mode.h"
#include "tests/test_runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/sync/sync.h"

namespace weft {
namespace {

using testing::RuntimeTest;
class SyncStress : public RuntimeTest {};

int rounds(int normal, int stress) { return testing::stress_mode() ? stress : normal; }

// A short busy pause of about `units` loop iterations, yielding now and then, so that the two
// sides of a race meet at varying offsets.
void jitter(int units) {
  for (int i = 0; i < units; ++i) {
    if (i % 64 == 63) yield();
    SpinLock::pause();
  }
}

TEST_P(SyncStress, EventPingPongAcrossWorkers) {
  const int n = rounds(20000, 1000000);
  run([n] {
    Event ping(true), pong(true);
    auto a = spawn([&] {
      for (int i = 0; i < n; ++i) {
        notify(ping);
        wait(pong);
      }
    });
    auto b = spawn([&] {
      for (int i = 0; i < n; ++i) {
        wait(ping);
        notify(pong);
      }
    });
    wait(a);
    wait(b);
    EXPECT_FALSE(ping.isset());
    EXPECT_FALSE(pong.isset());
  });
}

TEST_P(SyncStress, ThreadsConditionTurnTaking) {
  const int n = rounds(20000, 1000000);
  run([n] {
    threads::Condition c;
    long turn = 0;  // guarded by c's lock: even -> a, odd -> b
    auto player = [&](int parity) {
      for (int i = 0; i < n; ++i) {
        lock(c);
        while (turn % 2 != parity) wait(c);
        ++turn;
        notify(c);
        unlock(c);
      }
    };
    auto a = spawn([&] { player(0); });
    auto b = spawn([&] { player(1); });
    wait(a);
    wait(b);
    EXPECT_EQ(turn, 2L * n);
  });
}

TEST_P(SyncStress, ConditionPingPongOnOneWorker) {
  // Base.Condition is for tasks of one thread: @async tasks share the caller's worker.
  const int n = rounds(20000, 1000000);
  run([n] {
    Condition c;
    int turn = 0;
    auto player = [&](int parity) {
      for (int i = 0; i < n; ++i) {
        while (turn % 2 != parity) wait(c);
        ++turn;
        notify(c);
      }
    };
    auto a = async([&] { player(0); });
    auto b = async([&] { player(1); });
    wait(a);
    wait(b);
    EXPECT_EQ(turn, 2 * n);
  });
}

TEST_P(SyncStress, SemaphorePingPong) {
  const int n = rounds(20000, 1000000);
  run([n] {
    Semaphore to_b(1), to_a(1);
    acquire(to_b);
    acquire(to_a);
    auto a = spawn([&] {
      for (int i = 0; i < n; ++i) {
        release(to_b);
        acquire(to_a);
      }
    });
    auto b = spawn([&] {
      for (int i = 0; i < n; ++i) {
        acquire(to_b);
        release(to_a);
      }
    });
    wait(a);
    wait(b);
    EXPECT_EQ(to_a.in_use(), 1);
    EXPECT_EQ(to_b.in_use(), 1);
  });
}

TEST_P(SyncStress, LockHandoffStorm) {
  const int per_task = rounds(2000, 100000);
  run([per_task] {
    ReentrantLock l;
    long counter = 0;
    sync_scope([&](SyncScope& s) {
      for (int t = 0; t < 16; ++t) {
        s.spawn([&] {
          for (int i = 0; i < per_task; ++i) {
            lock(l);
            ++counter;
            if (i % 8 == 0) yield();
            unlock(l);
          }
        });
      }
    });
    EXPECT_EQ(counter, 16L * per_task);
  });
}

TEST_P(SyncStress, PlainThreadAndTaskPingPong) {
  const int n = rounds(5000, 200000);
  Event ping(true), pong(true);
  // Each side numbers its notifies and checks, when its wait returns, that the other side's
  // count is exactly one round on: a wait that returned without its notify (early, or on a
  // notify meant for an earlier round) sees the count one short, and a lost wake-up hangs.
  std::atomic<int> pings{0}, pongs{0};
  int thread_off_turn = 0, task_off_turn = 0;
  std::thread thread([&] {
    for (int i = 0; i < n; ++i) {
      wait(ping);
      thread_off_turn += pings.load(std::memory_order_relaxed) != i + 1;
      pongs.store(i + 1, std::memory_order_relaxed);
      notify(pong);
    }
  });
  run([&] {
    for (int i = 0; i < n; ++i) {
      pings.store(i + 1, std::memory_order_relaxed);
      notify(ping);
      wait(pong);
      task_off_turn += pongs.load(std::memory_order_relaxed) != i + 1;
    }
  });
  thread.join();
  EXPECT_EQ(thread_off_turn, 0) << "plain thread's waits that returned out of turn";
  EXPECT_EQ(task_off_turn, 0) << "task's waits that returned out of turn";
  // Every notify was taken by its wait: an autoreset event left set had one too many.
  EXPECT_FALSE(ping.isset());
  EXPECT_FALSE(pong.isset());
}

// After a timed wait, the waiter waits on `after` for `kSentinel`: a wake-up leaked by the
// timed wait would end this wait early, without the sentinel.
constexpr int kSentinel = -7;

void expect_no_leaked_wake(Condition& after) {
  std::any v = after.wait();
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(std::any_cast<int>(v), kSentinel);
}

void release_sentinel_waiter(Condition& after) {
  while (notify(after, kSentinel, {.all = false}) == 0) yield();
}

// Round i's timeout in a timeout race: 0 to 49 steps, spread so that the deadline lands before,
// at and after the notification; and every 50th round a second, which the notification always
// beats, and 0, which it never does, so that both endings happen however loaded the machine.
double race_timeout(int i, double step) { return i % 50 == 49 ? 1.0 : (i % 50) * step; }

// How the rounds of a timeout race ended: both endings must have been exercised, or the test
// showed nothing about the race (race_timeout makes sure each can happen).
struct Outcomes {
  std::atomic<int> delivered{0};
  std::atomic<int> timed_out{0};
  void count(bool got) { (got ? delivered : timed_out).fetch_add(1, std::memory_order_relaxed); }
  void expect_both() const {
    EXPECT_GT(delivered.load(), 0);
    EXPECT_GT(timed_out.load(), 0);
  }
};

TEST_P(SyncStress, ConditionTimeoutRacesNotify) {
  const int n = rounds(2000, 200000);
  Outcomes outcomes;
  run([n, &outcomes] {
    Condition c, after;
    for (int i = 0; i < n; ++i) {
      const double timeout = race_timeout(i, 1e-6);
      auto waiter = spawn([&, timeout] {
        const bool got = c.wait_for(timeout).has_value();
        expect_no_leaked_wake(after);
        return got;
      });
      auto notifier = spawn([&, i] {
        jitter((i * 7919) % 1500);
        return notify(c, i, {.all = false});
      });
      const int woken = fetch(notifier);
      release_sentinel_waiter(after);
      const bool got = fetch(waiter);
      ASSERT_EQ(woken, got ? 1 : 0) << "round " << i;
      ASSERT_FALSE(c.has_waiters());
      outcomes.count(got);
    }
  });
  outcomes.expect_both();
}

TEST_P(SyncStress, ThreadsConditionTimeoutRacesNotify) {
  const int n = rounds(2000, 200000);
  Outcomes outcomes;
  run([n, &outcomes] {
    threads::Condition c;
    Condition after;
    for (int i = 0; i < n; ++i) {
      const double timeout = race_timeout(i, 1e-6);
      auto waiter = spawn([&, timeout] {
        lock(c);
        const bool got = c.wait_for(timeout).has_value();
        const bool held = c.get_lock().held_by_caller();
        unlock(c);
        EXPECT_TRUE(held);
        expect_no_leaked_wake(after);
        return got;
      });
      auto notifier = spawn([&, i] {
        jitter((i * 7919) % 1500);
        return lock([&] { return notify(c, i, {.all = false}); }, c);
      });
      const int woken = fetch(notifier);
      release_sentinel_waiter(after);
      const bool got = fetch(waiter);
      ASSERT_EQ(woken, got ? 1 : 0) << "round " << i;
      outcomes.count(got);
    }
  });
  outcomes.expect_both();
}

TEST_P(SyncStress, AutoresetEventTimeoutRacesNotify) {
  const int n = rounds(2000, 200000);
  Outcomes outcomes;
  run([n, &outcomes] {
    Event e(true);
    Condition after;
    for (int i = 0; i < n; ++i) {
      const double timeout = race_timeout(i, 1e-6);
      auto waiter = spawn([&, timeout] {
        const bool got = e.wait_for(timeout);
        expect_no_leaked_wake(after);
        return got;
      });
      auto notifier = spawn([&, i] {
        jitter((i * 7919) % 1500);
        notify(e);
      });
      wait(notifier);
      release_sentinel_waiter(after);
      const bool got = fetch(waiter);
      // Exactly one: the waiter took the notification, or the event kept it.
      ASSERT_NE(got, e.isset()) << "round " << i;
      reset(e);
      outcomes.count(got);
    }
  });
  outcomes.expect_both();
}

TEST_P(SyncStress, SemaphoreTimeoutRacesRelease) {
  const int n = rounds(2000, 200000);
  Outcomes outcomes;
  run([n, &outcomes] {
    Semaphore s(1);
    Condition after;
    acquire(s);
    for (int i = 0; i < n; ++i) {
      const double timeout = race_timeout(i, 1e-6);
      auto waiter = spawn([&, timeout] {
        const bool got = s.try_acquire_for(timeout);
        if (got) release(s);
        expect_no_leaked_wake(after);
        return got;
      });
      auto releaser = spawn([&, i] {
        jitter((i * 7919) % 1500);
        release(s);
      });
      wait(releaser);
      release_sentinel_waiter(after);
      outcomes.count(fetch(waiter));
      // Whoever won, the permit is back in the pool: not lost, not duplicated.
      ASSERT_EQ(s.in_use(), 0) << "round " << i;
      ASSERT_TRUE(s.try_acquire());
    }
    release(s);
  });
  outcomes.expect_both();
}

TEST_P(SyncStress, FdTimeoutRacesReadiness) {
  const int n = rounds(500, 50000);
  run([n] {
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    Condition after;
    int ready = 0, timed_out = 0;
    for (int i = 0; i < n; ++i) {
      const double timeout = race_timeout(i, 2e-6);
      auto waiter = spawn([&, timeout] {
        FdEvent ev = poll_fd(p[0], timeout, {.readable = true});
        expect_no_leaked_wake(after);
        return ev;
      });
      auto writer = spawn([&, i] {
        jitter((i * 7919) % 1500);
        ASSERT_EQ(::write(p[1], "x", 1), 1);
      });
      wait(writer);
      release_sentinel_waiter(after);
      FdEvent ev = fetch(waiter);
      ASSERT_NE(ev.readable, ev.timedout) << to_string(ev);
      (ev.readable ? ready : timed_out)++;
      char byte;
      ASSERT_EQ(::read(p[0], &byte, 1), 1);
    }
    // Both endings were exercised (race_timeout makes sure each can happen).
    EXPECT_GT(ready, 0);
    EXPECT_GT(timed_out, 0);
    ::close(p[0]);
    ::close(p[1]);
  });
}

WEFT_INSTANTIATE_WORKER_COUNTS(SyncStress);

}  // namespace
}  // namespace weft
