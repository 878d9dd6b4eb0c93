// Event and Semaphore: level triggering, reset, autoreset releasing one waiter per notify, the
// acquire/release ordering both promise, Semaphore's bounds, FIFO hand-off, scoped acquire,
// timed variants, plain threads, and the clear errors for bad sizes and over-release.
#include <atomic>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/sync/condition.h"
#include "weft/sync/threads_condition.h"
#include "weft/sync/event.h"
#include "weft/sync/semaphore.h"
#include "weft/sync/sync_scope.h"
#include "weft/task/errors.h"

namespace weft {
namespace {

using testing::RuntimeTest;
using testing::until_waiting;
class EventTest : public RuntimeTest {};
class SemaphoreTest : public RuntimeTest {};

TEST_P(EventTest, LevelTriggeredStaysSetUntilReset) {
  run([] {
    Event e;
    EXPECT_FALSE(e.isset());
    notify(e);
    EXPECT_TRUE(e.isset());
    wait(e);  // returns at once
    wait(e);
    reset(e);
    EXPECT_FALSE(e.isset());
    EXPECT_FALSE(e.wait_for(0.002));
  });
}

TEST_P(EventTest, NotifyReleasesEveryWaiter) {
  run([] {
    Event e;
    std::atomic<int> released{0};
    std::vector<Task<void>> waiters;
    for (int i = 0; i < 6; ++i) {
      waiters.push_back(spawn([&] {
        wait(e);
        released.fetch_add(1);
      }));
    }
    for (auto& t : waiters) until_waiting(t);
    EXPECT_EQ(released.load(), 0);
    notify(e);
    for (auto& t : waiters) wait(t);
    EXPECT_EQ(released.load(), 6);
  });
}

TEST_P(EventTest, AutoresetReleasesOneWaiterPerNotify) {
  run([] {
    Event e(/*autoreset=*/true);
    EXPECT_TRUE(e.autoreset());
    std::atomic<int> released{0};
    std::vector<Task<void>> waiters;
    for (int i = 0; i < 3; ++i) {
      waiters.push_back(spawn([&] {
        wait(e);
        released.fetch_add(1);
      }));
    }
    for (auto& t : waiters) until_waiting(t);
    for (int expected = 1; expected <= 3; ++expected) {
      notify(e);
      while (released.load() < expected) yield();
      sleep(0.001);
      EXPECT_EQ(released.load(), expected);  // exactly one per notify
    }
    for (auto& t : waiters) wait(t);
    EXPECT_FALSE(e.isset());  // every notify went to a waiter
  });
}

TEST_P(EventTest, AutoresetWithNoWaiterStaysSetForTheNextWait) {
  run([] {
    Event e(true);
    notify(e);
    EXPECT_TRUE(e.isset());
    wait(e);  // consumes it
    EXPECT_FALSE(e.isset());
    EXPECT_FALSE(e.wait_for(0.002));
    notify(e);
    notify(e);  // not counted: the event is a flag
    EXPECT_TRUE(e.wait_for(0));
    EXPECT_FALSE(e.wait_for(0));
  });
}

// What the notifier wrote before notify() is visible after wait() (acquire/release); the plain
// int is deliberately not atomic so that ThreadSanitizer checks the promise.
TEST_P(EventTest, NotifyWaitOrdersMemory) {
  run([] {
    for (int round = 0; round < 200; ++round) {
      Event e(round % 2 == 0);
      int payload = 0;
      auto reader = spawn([&] {
        wait(e);
        return payload;
      });
      auto writer = spawn([&] {
        payload = round + 1;
        notify(e);
      });
      wait(writer);
      EXPECT_EQ(fetch(reader), round + 1);
    }
  });
}

TEST_P(EventTest, PlainThreadWaitsForATask) {
  Event e;
  testing::BlockingThread waiter([&] { wait(e); });
  run([&] {
    EXPECT_TRUE(waiter.until_blocked()) << "the wait for an unset event did not block";
    notify(e);
  });
  waiter.join();
  EXPECT_TRUE(e.isset());
}

TEST_P(EventTest, TimedWaitValidatesItsTimeout) {
  run([] {
    Event e;
    EXPECT_THROW(e.wait_for(-0.5), std::invalid_argument);
    EXPECT_THROW(e.wait_for(std::nan("")), std::invalid_argument);
  });
}

// --- Semaphore ---

TEST_P(SemaphoreTest, BadSizesAreRejectedByName) {
  for (long long bad : {0LL, -1LL, -100LL, 1LL << 33}) {
    try {
      Semaphore s(bad);
      ADD_FAILURE() << "Semaphore(" << bad << ") was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(std::to_string(bad)), std::string::npos) << e.what();
    }
  }
}

// Semaphore(1.5) would silently be Semaphore(1): a floating-point size does not compile.
static_assert(!std::is_constructible_v<Semaphore, double>);
static_assert(!std::is_constructible_v<Semaphore, float>);
static_assert(std::is_constructible_v<Semaphore, int>);

TEST_P(SemaphoreTest, ReleasingMoreThanAcquiredIsAClearError) {
  run([] {
    Semaphore s(2);
    try {
      release(s);
      ADD_FAILURE() << "release without acquire was accepted";
    } catch (const TaskStateError& e) {
      EXPECT_NE(std::string(e.what()).find("Semaphore(2)"), std::string::npos) << e.what();
    }
    acquire(s);
    release(s);
    EXPECT_THROW(release(s), TaskStateError);
    EXPECT_EQ(s.in_use(), 0);
  });
}

TEST_P(SemaphoreTest, AcquireBlocksAtTheLimit) {
  run([] {
    Semaphore s(2);
    acquire(s);
    acquire(s);
    EXPECT_EQ(s.in_use(), 2);
    EXPECT_FALSE(s.try_acquire());
    std::atomic<bool> got{false};
    auto t = spawn([&] {
      acquire(s);
      got = true;
    });
    until_waiting(t);
    EXPECT_FALSE(got.load());
    release(s);
    wait(t);
    EXPECT_TRUE(got.load());
    EXPECT_EQ(s.in_use(), 2);
    release(s);
    release(s);
    EXPECT_EQ(s.in_use(), 0);
  });
}

TEST_P(SemaphoreTest, WaitersAreServedInArrivalOrder) {
  run([] {
    Semaphore s(1);
    acquire(s);
    std::vector<int> order;
    std::vector<Task<void>> waiters;
    for (int i = 0; i < 5; ++i) {
      waiters.push_back(async([&, i] {
        acquire(s);
        order.push_back(i);
        release(s);
      }));
      until_waiting(waiters.back());
    }
    // A newcomer cannot overtake the queue even though it never waits.
    EXPECT_FALSE(s.try_acquire());
    release(s);
    for (auto& t : waiters) wait(t);
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
    EXPECT_EQ(s.in_use(), 0);
  });
}

TEST_P(SemaphoreTest, ScopedAcquireReleasesOnReturnAndThrow) {
  run([] {
    Semaphore s(1);
    EXPECT_EQ(acquire([&] { return s.in_use(); }, s), 1);
    EXPECT_EQ(s.in_use(), 0);
    EXPECT_THROW(acquire([]() { throw std::runtime_error("x"); }, s), std::runtime_error);
    EXPECT_EQ(s.in_use(), 0);
  });
}

TEST_P(SemaphoreTest, TimedAcquire) {
  run([] {
    Semaphore s(1);
    EXPECT_TRUE(s.try_acquire_for(0));
    EXPECT_FALSE(s.try_acquire_for(0.002));
    auto t = spawn([&] { return s.try_acquire_for(10); });
    until_waiting(t);
    release(s);
    EXPECT_TRUE(fetch(t));
    release(s);
    EXPECT_EQ(s.in_use(), 0);
    EXPECT_THROW(s.try_acquire_for(-1), std::invalid_argument);
  });
}

// Permits bound the concurrency of tasks and plain threads together; the guarded counter is a
// plain int (acquire/release ordering, checked by ThreadSanitizer).
TEST_P(SemaphoreTest, MutualExclusionAcrossTasksAndThreads) {
  Semaphore s(1);
  long counter = 0;
  constexpr int kIters = 1000;
  std::thread thread([&] {
    for (int k = 0; k < kIters; ++k) acquire([&] { ++counter; }, s);
  });
  run([&] {
    sync_scope([&](SyncScope& scope) {
      for (int i = 0; i < 4; ++i) {
        scope.spawn([&] {
          for (int k = 0; k < kIters; ++k) acquire([&] { ++counter; }, s);
        });
      }
    });
  });
  thread.join();
  EXPECT_EQ(counter, 5L * kIters);
  EXPECT_EQ(s.in_use(), 0);
}

// A timed wait entered with a schedule()'s mark pending ends as timed out, leaving the mark
// (scheduling.h), after letting the worker's other tasks run while still queued. A notify or a
// release from one of them must pass over it as a timed-out waiter: not throw (with the lock
// held, wedging the primitive), and not lose the notification or the permit.
TEST_P(EventTest, AutoresetNotifyMeetingAWaitThatDeclinedAScheduleMark) {
  run([] {
    Event e(/*autoreset=*/true);
    std::string threw;
    auto notifier = async([&] {  // sticky: this worker
      try {
        notify(e);
      } catch (const std::exception& x) {
        threw = x.what();
      }
    });
    schedule(current_task(), 7);  // for our next wait()
    EXPECT_FALSE(e.wait_for(10.0));
    wait(notifier);
    EXPECT_EQ(threw, "");
    EXPECT_TRUE(e.isset()) << "the notification was lost";
    EXPECT_TRUE(e.wait_for(0));
    EXPECT_EQ(std::any_cast<int>(wait()), 7) << "the schedule()'s mark was lost";
  });
}

TEST_P(SemaphoreTest, ReleaseMeetingAnAcquireThatDeclinedAScheduleMark) {
  run([] {
    Semaphore s(1);
    s.acquire();
    std::string threw;
    auto releaser = async([&] {  // sticky: this worker
      try {
        s.release();
      } catch (const std::exception& x) {
        threw = x.what();
      }
    });
    schedule(current_task(), 7);  // for our next wait()
    EXPECT_FALSE(s.try_acquire_for(10.0));
    wait(releaser);
    EXPECT_EQ(threw, "");
    EXPECT_EQ(s.in_use(), 0) << "the released permit was lost";
    EXPECT_TRUE(s.try_acquire());
    s.release();
    EXPECT_EQ(std::any_cast<int>(wait()), 7) << "the schedule()'s mark was lost";
  });
}

WEFT_INSTANTIATE_WORKER_COUNTS(EventTest);
WEFT_INSTANTIATE_WORKER_COUNTS(SemaphoreTest);

}  // namespace
}  // namespace weft

namespace weft {
namespace {

// A waiter its waker released may destroy the primitive at once -- a stack-local Event that a
// task notifies to release the thread that owns it -- while the waker is still inside notify()
// (waking the rest, unlocking). The waiter must not return before the waker is done with it
// (weft/sync/wait_queue.h). Heap-allocated, so that ASan sees a late touch as a use after free.
// The waiter is this plain thread: a woken thread runs at once, where a woken task would wait
// to be popped.
class FreedByTheWokenWaiter : public testing::RuntimeTest {};

constexpr int kFreeRounds = 3000;

TEST_P(FreedByTheWokenWaiter, Event) {
  for (int i = 0; i < kFreeRounds; ++i) {
    auto e = std::make_unique<Event>();
    auto notifier = testing::submit_free(runtime(), [p = e.get()] { notify(*p); });
    e->wait();
    e.reset();
    wait(notifier);
  }
}

TEST_P(FreedByTheWokenWaiter, Semaphore) {
  for (int i = 0; i < kFreeRounds; ++i) {
    auto s = std::make_unique<Semaphore>(1);
    acquire(*s);
    auto releaser = testing::submit_free(runtime(), [p = s.get()] { release(*p); });
    acquire(*s);
    release(*s);
    s.reset();
    wait(releaser);
  }
}

TEST_P(FreedByTheWokenWaiter, Condition) {
  for (int i = 0; i < kFreeRounds; ++i) {
    auto c = std::make_unique<Condition>();
    auto notifier = testing::submit_free(runtime(), [p = c.get()] {
      // Until the thread has queued: it needs a CPU for that, which a task yielding to nobody
      // would keep busy.
      while (notify(*p) == 0) std::this_thread::yield();
    });
    c->wait();
    c.reset();
    wait(notifier);
  }
}

// The Threads.Condition idiom; the waiter destroys the condition (and its lock) once it has
// seen the flag and unlocked, while the notifier may still be inside its unlock, looking for
// a waiter to wake (ReentrantLock's two-step release).
TEST_P(FreedByTheWokenWaiter, ThreadsCondition) {
  for (int i = 0; i < kFreeRounds; ++i) {
    auto c = std::make_unique<threads::Condition>();
    bool ready = false;
    auto notifier = testing::submit_free(runtime(), [p = c.get(), &ready] {
      lock(*p);
      ready = true;
      notify(*p);
      unlock(*p);
    });
    lock(*c);
    while (!ready) wait(*c);
    unlock(*c);
    c.reset();
    wait(notifier);
  }
}

WEFT_INSTANTIATE_WORKER_COUNTS(FreedByTheWokenWaiter);

}  // namespace
}  // namespace weft
