// Condition and threads::Condition: notify's counts and values, all/one, error=true, first=true,
// edge triggering, timed waits, and for threads::Condition the lock rules (wait/notify need it;
// wait releases it fully even when held recursively and restores the depth), a lock shared by
// two conditions, and plain threads on either side.
#include <any>
#include <atomic>
#include <chrono>
#include <cmath>
#include <deque>
#include <optional>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/sync/condition.h"
#include "weft/sync/sync_scope.h"
#include "weft/sync/threads_condition.h"
#include "weft/task/errors.h"

namespace weft {
namespace {

using testing::RuntimeTest;
using testing::until_waiting;
class ConditionTest : public RuntimeTest {};

TEST_P(ConditionTest, NotifyWithoutWaitersWakesNobody) {
  run([] {
    Condition c;
    EXPECT_EQ(notify(c), 0);
    EXPECT_EQ(notify(c, 1, {.all = false}), 0);
    EXPECT_FALSE(c.has_waiters());
  });
}

TEST_P(ConditionTest, NotifyAllPassesTheValueToEveryWaiter) {
  run([] {
    Condition c;
    std::vector<Task<std::string>> waiters;
    for (int i = 0; i < 5; ++i) {
      waiters.push_back(spawn([&] { return std::any_cast<std::string>(wait(c)); }));
    }
    for (auto& t : waiters) until_waiting(t);
    EXPECT_EQ(notify(c, std::string("value")), 5);
    for (auto& t : waiters) EXPECT_EQ(fetch(t), "value");
  });
}

// A value whose copy throws, the second time: a notify with all hands each waiter a copy, and
// the copy that throws must leave its waiter queued (a later notify wakes it), not dequeued
// and never woken.
struct ThrowsOnSecondCopy {
  ThrowsOnSecondCopy() = default;
  ThrowsOnSecondCopy(ThrowsOnSecondCopy&&) noexcept = default;
  ThrowsOnSecondCopy(const ThrowsOnSecondCopy&) {
    if (++copies == 2) throw std::runtime_error("copy failed");
  }
  static inline int copies = 0;
};

TEST_P(ConditionTest, NotifyAllWhoseCopyThrowsLeavesTheRestQueued) {
  run([] {
    Condition c;
    int woken = 0;
    std::vector<Task<void>> waiters;
    for (int i = 0; i < 3; ++i) {
      waiters.push_back(async([&c, &woken] {
        wait(c);
        ++woken;
      }));
    }
    for (auto& t : waiters) until_waiting(t);
    ThrowsOnSecondCopy::copies = 0;
    std::any value = ThrowsOnSecondCopy{};
    EXPECT_THROW(notify(c, std::move(value), {.all = true}), std::runtime_error);
    ASSERT_EQ(notify(c, {}, {.all = true}), 2) << "a waiter left the queue without a wake";
    for (auto& t : waiters) wait(t);
    EXPECT_EQ(woken, 3);
  });
}

TEST_P(ConditionTest, NotifyOneWakesTheWaitersInOrder) {
  run([] {
    Condition c;
    std::vector<Task<int>> waiters;
    for (int i = 0; i < 3; ++i) {
      waiters.push_back(spawn([&] { return std::any_cast<int>(wait(c)); }));
      until_waiting(waiters.back());
    }
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(notify(c, i, {.all = false}), 1);
      EXPECT_EQ(fetch(waiters[i]), i);  // first in, first out
    }
    EXPECT_EQ(notify(c, 9, {.all = false}), 0);
  });
}

TEST_P(ConditionTest, FirstTrueJumpsTheQueue) {
  run([] {
    Condition c;
    auto late = spawn([&] { return std::any_cast<int>(wait(c)); });
    until_waiting(late);
    auto early = spawn([&] { return std::any_cast<int>(wait(c, {.first = true})); });
    until_waiting(early);
    EXPECT_EQ(notify(c, 1, {.all = false}), 1);
    EXPECT_EQ(fetch(early), 1);
    EXPECT_EQ(notify(c, 2, {.all = false}), 1);
    EXPECT_EQ(fetch(late), 2);
  });
}

TEST_P(ConditionTest, ErrorTrueRaisesInTheWokenTasks) {
  run([] {
    Condition c;
    auto a = spawn([&] { wait(c); });
    auto b = spawn([&] { wait(c); });
    until_waiting(a);
    until_waiting(b);
    std::exception_ptr e = std::make_exception_ptr(std::runtime_error("interrupted"));
    EXPECT_EQ(notify(c, e, {.error = true}), 2);
    for (auto* t : {&a, &b}) {
      try {
        wait(*t);
        ADD_FAILURE() << "the waiter did not raise";
      } catch (const TaskFailedException& f) {
        EXPECT_THROW(f.rethrow_cause(), std::runtime_error);
      }
    }
  });
}

TEST_P(ConditionTest, ErrorTrueNeedsAnExceptionPtr) {
  run([] {
    Condition c;
    auto w = spawn([&] { return std::any_cast<int>(wait(c)); });
    until_waiting(w);
    try {
      notify(c, std::string("not an exception"), {.error = true});
      ADD_FAILURE() << "notify accepted a non-exception";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("exception_ptr"), std::string::npos) << e.what();
    }
    // Nobody was woken by the refused notify.
    EXPECT_EQ(notify(c, 5), 1);
    EXPECT_EQ(fetch(w), 5);
  });
}

TEST_P(ConditionTest, EdgeTriggeredAnEarlierNotifyIsNotRemembered) {
  run([] {
    Condition c;
    EXPECT_EQ(notify(c, 1), 0);
    EXPECT_FALSE(c.wait_for(0.005).has_value());
  });
}

TEST_P(ConditionTest, TimedWaitTimesOutOrGetsTheValue) {
  run([] {
    Condition c;
    EXPECT_FALSE(c.wait_for(0).has_value());
    EXPECT_FALSE(c.wait_for(0.002).has_value());
    EXPECT_FALSE(c.has_waiters());  // the timed-out waiter left the queue
    auto w = spawn([&] { return c.wait_for(10); });
    until_waiting(w);
    EXPECT_EQ(notify(c, 3), 1);
    auto got = fetch(w);
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(std::any_cast<int>(*got), 3);
    EXPECT_THROW(c.wait_for(-1), std::invalid_argument);
    EXPECT_THROW(c.wait_for(std::nan("")), std::invalid_argument);
  });
}

TEST_P(ConditionTest, PlainThreadWaitsAndTaskNotifies) {
  Condition c;
  std::atomic<bool> waiting{false};
  std::any got;
  std::thread waiter([&] {
    waiting = true;
    got = wait(c);
  });
  run([&] {
    while (!waiting || !c.has_waiters()) yield();
    EXPECT_EQ(notify(c, 11), 1);
  });
  waiter.join();
  EXPECT_EQ(std::any_cast<int>(got), 11);
}

// --- threads::Condition ---

TEST_P(ConditionTest, ThreadsConditionWaitWithoutTheLockIsAClearError) {
  run([] {
    threads::Condition c;
    try {
      wait(c);
      ADD_FAILURE() << "wait without the lock returned";
    } catch (const TaskStateError& e) {
      EXPECT_NE(std::string(e.what()).find("must hold"), std::string::npos) << e.what();
    }
    EXPECT_THROW(notify(c), TaskStateError);
    EXPECT_THROW(c.wait_for(0.001), TaskStateError);
    // Held by someone else is not enough either.
    lock(c);
    auto other = spawn([&] {
      try {
        wait(c);
        return std::string("returned");
      } catch (const TaskStateError& e) {
        return std::string(e.what());
      }
    });
    EXPECT_NE(fetch(other).find("another task"), std::string::npos);
    unlock(c);
  });
}

TEST_P(ConditionTest, ThreadsConditionWaitReleasesARecursiveLockFully) {
  run([] {
    threads::Condition c;
    std::atomic<bool> waiting{false};
    auto waiter = spawn([&] {
      lock(c);
      lock(c);
      lock(c);  // depth 3
      waiting = true;
      std::any v = wait(c);
      EXPECT_TRUE(c.get_lock().held_by_caller());
      unlock(c);
      unlock(c);
      EXPECT_TRUE(islocked(c));  // still depth 1: the depth was restored
      unlock(c);
      EXPECT_THROW(unlock(c), TaskStateError);
      return std::any_cast<int>(v);
    });
    while (!waiting) yield();
    // While the waiter waits, the lock is free for us although it locked it three times.
    for (;;) {
      lock(c);
      const int woken = notify(c, 8);
      unlock(c);
      if (woken == 1) break;
      yield();
    }
    EXPECT_EQ(fetch(waiter), 8);
    EXPECT_FALSE(islocked(c));
  });
}

TEST_P(ConditionTest, ThreadsConditionErrorIsRaisedWithTheLockHeld) {
  run([] {
    threads::Condition c;
    auto waiter = spawn([&] {
      lock(c);
      try {
        wait(c);
      } catch (const std::logic_error& e) {
        const bool held = c.get_lock().held_by_caller();
        unlock(c);
        return held ? std::string(e.what()) : std::string("lock not held");
      }
      unlock(c);
      return std::string("no error");
    });
    until_waiting(waiter);
    lock(c);
    EXPECT_EQ(notify(c, std::make_exception_ptr(std::logic_error("stop")), {.error = true}), 1);
    unlock(c);
    EXPECT_EQ(fetch(waiter), "stop");
  });
}

// Until the timer of `timed`'s wait has fired, without yielding: the task is then queued to
// run, still in its condition's queue. False if that takes over 10 s.
bool until_timer_fired(const TaskRef& timed) {
  for (const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       timed.state() != TaskState::kQueued;) {
    if (std::chrono::steady_clock::now() > limit) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// A notify of one (all=false) that meets a waiter whose timeout has fired, but who has not left
// the queue yet, passes the value on to the next waiter, whole. The waiters are bound to this
// task's worker (async), which does not yield while the first one's timer fires.
TEST_P(ConditionTest, NotifyPassesOverATimedOutWaiterWithItsValue) {
  run([] {
    Condition c;
    auto timed = async([&] { return c.wait_for(0.01); });
    until_waiting(timed);
    auto plain = async([&] { return c.wait(); });
    until_waiting(plain);
    ASSERT_TRUE(until_timer_fired(timed));
    EXPECT_EQ(notify(c, std::string("the value"), {.all = false}), 1);
    EXPECT_FALSE(fetch(timed).has_value());
    const std::any got = fetch(plain);
    ASSERT_TRUE(got.has_value()) << "the value was lost on the timed-out waiter";
    EXPECT_EQ(std::any_cast<std::string>(got), "the value");
  });
}

TEST_P(ConditionTest, ThreadsConditionNotifyPassesOverATimedOutWaiterWithItsValue) {
  run([] {
    threads::Condition c;
    auto timed = async([&] {
      lock(c);
      auto r = c.wait_for(0.01);
      unlock(c);
      return r;
    });
    until_waiting(timed);
    auto plain = async([&] {
      lock(c);
      std::any r = c.wait();
      unlock(c);
      return r;
    });
    until_waiting(plain);
    ASSERT_TRUE(until_timer_fired(timed));
    lock(c);
    EXPECT_EQ(notify(c, std::string("the value"), {.all = false}), 1);
    unlock(c);
    EXPECT_FALSE(fetch(timed).has_value());
    const std::any got = fetch(plain);
    ASSERT_TRUE(got.has_value()) << "the value was lost on the timed-out waiter";
    EXPECT_EQ(std::any_cast<std::string>(got), "the value");
  });
}

TEST_P(ConditionTest, ThreadsConditionTimedWaitHoldsTheLockOnReturn) {
  run([] {
    threads::Condition c;
    lock(c);
    EXPECT_FALSE(c.wait_for(0.002).has_value());
    EXPECT_TRUE(c.get_lock().held_by_caller());
    EXPECT_FALSE(c.wait_for(0).has_value());
    unlock(c);
    EXPECT_FALSE(islocked(c));
  });
}

// A bounded buffer: two conditions ("not empty", "not full") sharing one lock.
TEST_P(ConditionTest, TwoConditionsShareOneLock) {
  run([] {
    ReentrantLock l;
    threads::Condition not_empty(l);
    threads::Condition not_full(l);
    std::deque<int> buffer;
    constexpr std::size_t kCapacity = 4;
    constexpr int kItems = 2000;
    long sum = 0;
    sync_scope([&](SyncScope& s) {
      s.spawn([&] {
        for (int i = 1; i <= kItems; ++i) {
          lock([&] {
            while (buffer.size() == kCapacity) wait(not_full);
            buffer.push_back(i);
            notify(not_empty, {}, {.all = false});
          }, l);
        }
      });
      s.spawn([&] {
        for (int i = 1; i <= kItems; ++i) {
          lock([&] {
            while (buffer.empty()) wait(not_empty);
            sum += buffer.front();
            buffer.pop_front();
            notify(not_full, {}, {.all = false});
          }, l);
        }
      });
    });
    EXPECT_EQ(sum, long{kItems} * (kItems + 1) / 2);
  });
}

TEST_P(ConditionTest, ThreadsConditionBetweenAPlainThreadAndTasks) {
  threads::Condition c;
  int stage = 0;
  std::thread thread([&] {
    lock(c);
    while (stage != 1) wait(c);
    stage = 2;
    notify(c);
    unlock(c);
  });
  run([&] {
    lock(c);
    stage = 1;
    notify(c);
    while (stage != 2) wait(c);
    unlock(c);
  });
  thread.join();
  EXPECT_EQ(stage, 2);
}

// A timed wait entered with a schedule()'s mark pending ends as timed out and leaves the mark
// (scheduling.h); on its way out it lets the worker's other tasks run while it is still in the
// condition's queue. A notify from one of them must treat it as the timed-out waiter it is:
// not count it, pass the value on, and not throw ("a primitive woke it twice").
TEST_P(ConditionTest, NotifyMeetingAWaitThatDeclinedAScheduleMark) {
  run([] {
    Condition c;
    auto plain = async([&] { return c.wait(); });  // sticky: this worker
    until_waiting(plain);
    int woken = -1;
    std::string threw;
    auto notifier = async([&] {
      try {
        woken = notify(c, std::string("the value"), {.all = false});
      } catch (const std::exception& e) {
        threw = e.what();
        notify(c, std::string("the value"), {.all = false});  // let `plain` go
      }
    });
    schedule(current_task(), 7);  // marks us: for our next wait()
    const std::optional<std::any> r = c.wait_for(10.0, {.first = true});
    wait(notifier);
    EXPECT_EQ(threw, "") << "notify threw on a waiter that had timed out";
    EXPECT_FALSE(r.has_value()) << "the declined timed wait took a notify";
    EXPECT_EQ(woken, 1);
    const std::any got = fetch(plain);
    ASSERT_TRUE(got.has_value()) << "the value went to the timed-out waiter";
    EXPECT_EQ(std::any_cast<std::string>(got), "the value");
    EXPECT_EQ(std::any_cast<int>(wait()), 7) << "the schedule()'s mark was lost";
  });
}

TEST_P(ConditionTest, ThreadsConditionNotifyMeetingAWaitThatDeclinedAScheduleMark) {
  run([] {
    threads::Condition c;
    int woken = -1;
    std::string threw;
    auto notifier = async([&] {  // sticky: this worker
      lock(c);
      try {
        woken = notify(c, 1);
      } catch (const std::exception& e) {
        threw = e.what();
      }
      unlock(c);
    });
    schedule(current_task(), 7);  // for our next wait()
    lock(c);
    const std::optional<std::any> r = c.wait_for(10.0);
    EXPECT_TRUE(c.get_lock().held_by_caller());
    unlock(c);
    wait(notifier);
    EXPECT_EQ(threw, "");
    EXPECT_FALSE(r.has_value()) << "the declined timed wait took a notify";
    EXPECT_EQ(woken, 0);
    EXPECT_EQ(std::any_cast<int>(wait()), 7) << "the schedule()'s mark was lost";
  });
}

WEFT_INSTANTIATE_WORKER_COUNTS(ConditionTest);

}  // namespace
}  // namespace weft
