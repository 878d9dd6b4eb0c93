// sync_scope (@sync): waiting for every task including nested ones, collecting every failure in
// a CompositeException (nested scopes' failures nest), the body's own exception, the current
// scope binding, long-lived scopes, and plain threads.
#include <atomic>
#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "tests/test_runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/sync/composite_exception.h"
#include "weft/sync/event.h"
#include "weft/sync/sync_scope.h"
#include "weft/task/errors.h"
#include "weft/task/on_done.h"

namespace weft {
namespace {

using testing::RuntimeTest;
class SyncScopeTest : public RuntimeTest {};

TEST_P(SyncScopeTest, ReturnsTheBodysValueAfterTheTasks) {
  run([] {
    std::atomic<int> done{0};
    const int v = sync_scope([&](SyncScope& s) {
      for (int i = 0; i < 10; ++i) {
        s.spawn([&] {
          sleep(0.001);
          done.fetch_add(1);
        });
      }
      return 42;
    });
    EXPECT_EQ(v, 42);
    EXPECT_EQ(done.load(), 10);
  });
}

TEST_P(SyncScopeTest, WaitsForTasksSpawnedByItsTasks) {
  run([] {
    std::atomic<int> leaves{0};
    std::vector<TaskRef> all;
    std::mutex mu;
    sync_scope([&](SyncScope& s) {
      for (int i = 0; i < 4; ++i) {
        s.spawn([&] {
          // A child of a scope task, via the scope object...
          auto a = s.spawn([&] {
            // ...and a grandchild via the current-scope binding, without the object.
            auto b = sync_spawn([&] {
              sleep(0.002);
              leaves.fetch_add(1);
            });
            std::lock_guard<std::mutex> hold(mu);
            all.push_back(b);
          });
          auto c = s.async([&] {
            sleep(0.001);
            leaves.fetch_add(1);
          });
          std::lock_guard<std::mutex> hold(mu);
          all.push_back(a);
          all.push_back(c);
        });
      }
    });
    EXPECT_EQ(leaves.load(), 8);
    for (const TaskRef& t : all) EXPECT_TRUE(istaskdone(t));
  });
}

TEST_P(SyncScopeTest, ADeepChainOfNestedSpawnsIsAwaited) {
  run([] {
    std::atomic<int> depth_reached{0};
    std::function<void(int)> descend = [&](int depth) {
      if (depth == 200) {
        sleep(0.002);
        depth_reached = depth;
        return;
      }
      sync_spawn([&, depth] { descend(depth + 1); });
    };
    sync_scope([&] { sync_spawn([&] { descend(1); }); });
    EXPECT_EQ(depth_reached.load(), 200);
  });
}

TEST_P(SyncScopeTest, CollectsEveryFailure) {
  run([] {
    std::atomic<int> finished{0};
    try {
      sync_scope([&](SyncScope& s) {
        for (int i = 0; i < 6; ++i) {
          s.spawn([&, i] {
            sleep(0.001 * (6 - i));
            finished.fetch_add(1);
            if (i % 2 == 0) throw std::runtime_error("failure " + std::to_string(i));
          });
        }
      });
      FAIL() << "sync_scope did not throw";
    } catch (const CompositeException& e) {
      EXPECT_EQ(finished.load(), 6);  // the failures did not cut the wait short
      ASSERT_EQ(e.size(), 3u);
      int i = 0;
      for (const std::exception_ptr& p : e) {
        try {
          std::rethrow_exception(p);
        } catch (const TaskFailedException& f) {
          // Registration order.
          EXPECT_NE(std::string(f.what()).find("failure " + std::to_string(i)), std::string::npos);
          EXPECT_TRUE(istaskfailed(f.task()));
        }
        i += 2;
      }
      const std::string what = e.what();
      EXPECT_NE(what.find("3 exceptions"), std::string::npos) << what;
      for (int k : {0, 2, 4}) {
        EXPECT_NE(what.find("failure " + std::to_string(k)), std::string::npos) << what;
      }
    }
  });
}

TEST_P(SyncScopeTest, NestedScopesNestTheirFailures) {
  run([] {
    try {
      sync_scope([&](SyncScope& outer) {
        outer.spawn([] {
          sync_scope([](SyncScope& inner) {
            inner.spawn([] { throw std::logic_error("inner a"); });
            inner.spawn([] { throw std::logic_error("inner b"); });
          });
        });
        outer.spawn([] { throw std::out_of_range("outer"); });
        outer.spawn([] {});
      });
      FAIL() << "sync_scope did not throw";
    } catch (const CompositeException& e) {
      ASSERT_EQ(e.size(), 2u);
      // First: the task whose inner scope failed twice.
      try {
        std::rethrow_exception(e.exceptions()[0]);
      } catch (const TaskFailedException& f) {
        try {
          f.rethrow_cause();
        } catch (const CompositeException& inner) {
          EXPECT_EQ(inner.size(), 2u);
          const std::string what = inner.what();
          EXPECT_NE(what.find("inner a"), std::string::npos);
          EXPECT_NE(what.find("inner b"), std::string::npos);
        }
      }
      try {
        std::rethrow_exception(e.exceptions()[1]);
      } catch (const TaskFailedException& f) {
        EXPECT_THROW(f.rethrow_cause(), std::out_of_range);
      }
      // The outer message shows the nested ones too.
      EXPECT_NE(std::string(e.what()).find("inner a"), std::string::npos);
    }
  });
}

TEST_P(SyncScopeTest, ABodyThatThrowsStillWaitsForItsTasks) {
  run([] {
    std::atomic<bool> child_done{false};
    EXPECT_THROW(sync_scope([&](SyncScope& s) {
                   s.spawn([&] {
                     sleep(0.005);
                     child_done = true;
                   });
                   throw std::domain_error("body");
                 }),
                 std::domain_error);  // unchanged when no task failed
    EXPECT_TRUE(child_done.load());
    try {
      sync_scope([&](SyncScope& s) {
        s.spawn([] { throw std::runtime_error("task"); });
        throw std::domain_error("body");
      });
      FAIL();
    } catch (const CompositeException& e) {
      ASSERT_EQ(e.size(), 2u);
      EXPECT_THROW(std::rethrow_exception(e.exceptions()[0]), std::domain_error);
      EXPECT_THROW(std::rethrow_exception(e.exceptions()[1]), TaskFailedException);
    }
  });
}

TEST_P(SyncScopeTest, CurrentScopeBinding) {
  run([] {
    EXPECT_EQ(SyncScope::current(), nullptr);
    sync_scope([&](SyncScope& outer) {
      EXPECT_EQ(SyncScope::current(), &outer);
      auto t = outer.spawn([&] { return SyncScope::current(); });
      EXPECT_EQ(fetch(t), &outer);
      sync_scope([&](SyncScope& inner) {
        EXPECT_EQ(SyncScope::current(), &inner);
        auto u = inner.spawn([&] { return SyncScope::current(); });
        EXPECT_EQ(fetch(u), &inner);
      });
      EXPECT_EQ(SyncScope::current(), &outer);  // restored
    });
    EXPECT_EQ(SyncScope::current(), nullptr);
    // Outside any scope, sync_spawn is a plain spawn.
    auto plain = sync_spawn([] { return SyncScope::current() == nullptr; });
    EXPECT_TRUE(fetch(plain));
  });
}

// A scope that runs many short tasks keeps working (and drops finished ones as it goes).
TEST_P(SyncScopeTest, ManyShortTasks) {
  run([] {
    std::atomic<int> count{0};
    sync_scope([&](SyncScope& s) {
      for (int i = 0; i < 5000; ++i) {
        s.spawn([&] { count.fetch_add(1, std::memory_order_relaxed); });
        if (i % 500 == 0) yield();
      }
    });
    EXPECT_EQ(count.load(), 5000);
  });
}

// A task that is done but still in its on_done callbacks (as a bound channel's close; here one
// that takes a while) is still awaited when a flood of later spawns makes the scope drop the
// tasks that have ended. On two workers the body floods while the callback runs on the other.
TEST_P(SyncScopeTest, ADoneTaskStillInItsCallbacksIsAwaited) {
  const bool two_workers = GetParam() > 1;
  run([two_workers] {
    std::atomic<bool> started{false};
    std::atomic<bool> finished{false};
    Event go;  // outlives the scope's tasks (on one worker t waits only after the body)
    sync_scope([&](SyncScope& s) {
      auto t = s.spawn([&go] { wait(go); });
      on_done(t, [&](const TaskRef&, const std::exception_ptr&) {
        started.store(true);
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        finished.store(true);
      });
      notify(go);
      if (two_workers) {
        while (!started.load()) {
        }
      }
      for (int i = 0; i < 600; ++i) s.spawn([] {});
    });
    EXPECT_TRUE(finished.load()) << "the scope ended before a task's callbacks had run";
  });
}

TEST_P(SyncScopeTest, ManualScopeCanBeWaitedAndReused) {
  run([] {
    SyncScope s;
    std::atomic<int> n{0};
    s.spawn([&] { n.fetch_add(1); });
    s.wait();
    EXPECT_EQ(n.load(), 1);
    s.spawn([] { throw std::runtime_error("second round"); });
    EXPECT_THROW(s.wait(), CompositeException);
    s.wait();  // empty now
  });
}

TEST_P(SyncScopeTest, FromAPlainThread) {
  // The tasks go to the default runtime (the caller is not a worker of the test's runtime).
  std::atomic<int> n{0};
  std::thread([&] {
    sync_scope([&](SyncScope& s) {
      for (int i = 0; i < 10; ++i) s.spawn([&] { n.fetch_add(1); });
    });
  }).join();
  EXPECT_EQ(n.load(), 10);
}

WEFT_INSTANTIATE_WORKER_COUNTS(SyncScopeTest);

}  // namespace
}  // namespace weft
