// ReentrantLock beyond the spec's examples: recursion, trylock/islocked, lock(f, l), the clear
// errors for misuse, contention between tasks on several workers and plain threads, parking
// (a waiting task leaves its worker to others), and that no waiter starves.
#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/held_lock.h"
#include "tests/test_runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/sync/lock.h"
#include "weft/sync/sync_scope.h"
#include "weft/task/errors.h"

namespace weft {
namespace {

using testing::RuntimeTest;
class LockTest : public RuntimeTest {};

TEST_P(LockTest, RecursiveLockCountsLevels) {
  run([] {
    ReentrantLock l;
    EXPECT_FALSE(islocked(l));
    lock(l);
    lock(l);
    EXPECT_TRUE(trylock(l));
    EXPECT_TRUE(islocked(l));
    EXPECT_TRUE(l.held_by_caller());
    unlock(l);
    unlock(l);
    EXPECT_TRUE(islocked(l));
    // Another task cannot take it while one level is still held.
    auto other = spawn([&] { return trylock(l); });
    EXPECT_FALSE(fetch(other));
    unlock(l);
    EXPECT_FALSE(islocked(l));
    EXPECT_FALSE(l.held_by_caller());
  });
}

TEST_P(LockTest, TrylockSucceedsWhenNotLocked) {
  run([] {
    ReentrantLock l;
    auto t = spawn([&] {
      const bool got = trylock(l);
      if (got) unlock(l);
      return got;
    });
    EXPECT_TRUE(fetch(t));
  });
}

TEST_P(LockTest, LockDoBlockReleasesOnReturnAndThrow) {
  run([] {
    ReentrantLock l;
    EXPECT_EQ(lock([&] { return islocked(l) ? 1 : 0; }, l), 1);
    EXPECT_FALSE(islocked(l));
    EXPECT_THROW(lock([]() -> int { throw std::out_of_range("inside"); }, l), std::out_of_range);
    EXPECT_FALSE(islocked(l));
    int value = 3;
    int& ref = lock([&]() -> int& { return value; }, l);
    EXPECT_EQ(&ref, &value);
    std::unique_ptr<int> moved = lock([] { return std::make_unique<int>(9); }, l);
    EXPECT_EQ(*moved, 9);
  });
}

TEST_P(LockTest, StandardLockGuardsWork) {
  run([] {
    ReentrantLock l;
    {
      std::lock_guard<ReentrantLock> g(l);
      std::unique_lock<ReentrantLock> nested(l, std::try_to_lock);
      EXPECT_TRUE(nested.owns_lock());
    }
    EXPECT_FALSE(islocked(l));
  });
}

TEST_P(LockTest, UnlockingAnUnlockedLockIsAClearError) {
  run([] {
    ReentrantLock l;
    try {
      unlock(l);
      FAIL() << "unlock of an unlocked lock returned";
    } catch (const TaskStateError& e) {
      EXPECT_NE(std::string(e.what()).find("not locked"), std::string::npos) << e.what();
    }
  });
}

TEST_P(LockTest, UnlockByANonOwnerIsAClearErrorAndChangesNothing) {
  run([] {
    ReentrantLock l;
    lock(l);
    auto intruder = spawn([&] {
      try {
        unlock(l);
        return std::string("unlock returned");
      } catch (const TaskStateError& e) {
        return std::string(e.what());
      }
    });
    const std::string message = fetch(intruder);
    EXPECT_NE(message.find("held by another task or thread"), std::string::npos) << message;
    EXPECT_NE(message.find("task " + std::to_string(intruder.id())), std::string::npos) << message;
    EXPECT_TRUE(l.held_by_caller());
    unlock(l);
    // From a plain thread too.
    lock(l);
    std::string thread_message;
    std::thread([&] {
      try {
        l.unlock();
      } catch (const TaskStateError& e) {
        thread_message = e.what();
      }
    }).join();
    EXPECT_NE(thread_message.find("a plain thread"), std::string::npos) << thread_message;
    unlock(l);
  });
}

// Julia's lock stays held by a task that ends holding it (tests/held_lock.h).
TEST_P(LockTest, ALockLeftHeldByAFinishedTaskStaysHeldForEveryLaterTask) {
  run([] {
    ReentrantLock l;
    testing::expect_held_for_every_later_task(l);
  });
}

// The same for plain threads: a thread that ends holding the lock leaves it held.
TEST_P(LockTest, ALockLeftHeldByAFinishedThreadStaysHeldForEveryLaterThread) {
  ReentrantLock l;
  std::thread([&l] { lock(l); }).join();
  for (int i = 0; i < 16; ++i) {
    bool refused = false;
    std::thread([&l, &refused] {
      refused = testing::take_or_find_refused(l, false) && !l.held_by_caller();
    }).join();
    ASSERT_TRUE(refused) << "thread " << i << " after the holder could take or release it";
  }
  EXPECT_TRUE(islocked(l));
}

// Tasks hammering one counter from every worker; parked waiters, spinning and barging all
// happen here. The count proves mutual exclusion.
TEST_P(LockTest, ContendedCounterFromManyTasks) {
  run([] {
    ReentrantLock l;
    long counter = 0;
    constexpr int kTasks = 100;
    constexpr int kIters = 300;
    sync_scope([&](SyncScope& s) {
      for (int i = 0; i < kTasks; ++i) {
        s.spawn([&, i] {
          for (int k = 0; k < kIters; ++k) {
            lock(l);
            const long seen = counter;
            if ((k + i) % 16 == 0) yield();  // hold it across a switch sometimes
            counter = seen + 1;
            unlock(l);
          }
        });
      }
    });
    EXPECT_EQ(counter, long{kTasks} * kIters);
    EXPECT_FALSE(islocked(l));
  });
}

// Tasks and plain threads contending for the same lock.
TEST_P(LockTest, TasksAndPlainThreadsShareALock) {
  ReentrantLock l;
  long counter = 0;
  constexpr int kIters = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      for (int k = 0; k < kIters; ++k) {
        lock([&] { ++counter; }, l);
      }
    });
  }
  run([&] {
    sync_scope([&](SyncScope& s) {
      for (int i = 0; i < 4; ++i) {
        s.spawn([&] {
          for (int k = 0; k < kIters; ++k) {
            lock(l);
            ++counter;
            unlock(l);
          }
        });
      }
    });
  });
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, 6L * kIters);
}

// A task waiting for the lock parks: on a single worker, the holder (which needs the worker to
// make progress) still gets to run and release it.
TEST_P(LockTest, WaitingTaskParksInsteadOfBlockingItsWorker) {
  run([] {
    ReentrantLock l;
    std::atomic<bool> holder_has_it{false};
    std::atomic<bool> waiter_got_it{false};
    auto holder = async([&] {
      lock(l);
      holder_has_it = true;
      sleep(0.01);  // parks holding the lock
      yield();
      unlock(l);
    });
    while (!holder_has_it) yield();
    auto waiter = async([&] {
      lock(l);
      waiter_got_it = true;
      unlock(l);
    });
    while (waiter.state() != TaskState::kWaiting) yield();
    EXPECT_FALSE(waiter_got_it.load());
    wait(holder);
    wait(waiter);
    EXPECT_TRUE(waiter_got_it.load());
  });
}

// The lock stays with a task across a migration between workers (owner = the task, not the
// thread), and recursion works after it moved. The task moves itself each round (left to
// itself a lone task may stay on one worker throughout); fails if it never moved.
TEST_P(LockTest, OwnershipFollowsTheTaskAcrossWorkers) {
  if (GetParam() < 2) GTEST_SKIP() << "migration needs two workers";
  run([] {
    ReentrantLock l;
    auto t = spawn([&] {
      lock(l);
      int moves = 0;
      for (int i = 0; i < 5; ++i) {
        moves += testing::move_to_another_worker();
        EXPECT_TRUE(l.held_by_caller());
        lock(l);
        unlock(l);
      }
      unlock(l);
      return moves;
    });
    EXPECT_GT(fetch(t), 0) << "the task never resumed on another worker";
    EXPECT_FALSE(islocked(l));
  });
}

// Fairness: a task that repeatedly locks and unlocks in a tight loop cannot keep a parked
// waiter out forever (the starvation hand-off).
TEST_P(LockTest, AWaiterIsNotStarvedByABargingLoop) {
  run([] {
    ReentrantLock l;
    std::atomic<bool> waiter_done{false};
    std::atomic<long> hog_rounds{0};
    // The hog stops at give_up at the latest, so that a starved waiter fails the test rather
    // than hanging it (the waiter would then get the lock only once the hog stopped).
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    auto hog = spawn([&] {
      while (!waiter_done.load(std::memory_order_relaxed) &&
             std::chrono::steady_clock::now() < give_up) {
        lock(l);
        hog_rounds.fetch_add(1, std::memory_order_relaxed);
        unlock(l);
        if (hog_rounds.load(std::memory_order_relaxed) % 64 == 0) yield();
      }
    });
    while (hog_rounds.load() == 0) yield();
    auto waiter = spawn([&] {
      for (int i = 0; i < 20; ++i) {
        lock(l);
        unlock(l);
      }
      waiter_done = true;
    });
    wait(waiter);
    const bool in_time = std::chrono::steady_clock::now() < give_up;
    wait(hog);
    EXPECT_TRUE(in_time) << "the waiter got the lock only once the hog stopped";
  });
}

WEFT_INSTANTIATE_WORKER_COUNTS(LockTest);

}  // namespace
}  // namespace weft
