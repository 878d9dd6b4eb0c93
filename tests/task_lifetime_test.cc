// When a finished task's result goes: with its last handle, wherever that is dropped -- on
// the worker the task ended on, on another thread while that worker is still busy, or after
// the runtime has stopped. Never leaked, never destroyed while a handle is left. (A worker
// that held the runtime's reference back for a while, to spare a join a locked instruction,
// broke this: a result could outlive its last handle for as long as its worker stayed busy.)
#include <atomic>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_runtime.h"
#include "weft/sched/runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/task/task.h"

namespace weft {
namespace {

using testing::RuntimeTest;

// A result that counts its destruction.
class Tracked {
 public:
  explicit Tracked(std::atomic<int>* destroyed) : destroyed_(destroyed) {}
  Tracked(Tracked&& other) noexcept : destroyed_(std::exchange(other.destroyed_, nullptr)) {}
  Tracked& operator=(Tracked&&) = delete;
  ~Tracked() {
    if (destroyed_ != nullptr) destroyed_->fetch_add(1);
  }

 private:
  std::atomic<int>* destroyed_;
};

class TaskLifetimeTest : public RuntimeTest {};

// The child is sticky (async), so it ends on its parent's worker, which then drops the last
// handle.
TEST_P(TaskLifetimeTest, AResultGoesWithItsLastHandleDroppedWhereItsTaskEnded) {
  run([] {
    std::atomic<int> destroyed{0};
    for (int round = 0; round < 200; ++round) {
      {
        auto t = async([&destroyed] { return Tracked(&destroyed); });
        wait(t);
        ASSERT_EQ(destroyed.load(), round);
      }
      ASSERT_EQ(destroyed.load(), round + 1) << "round " << round;
    }
  });
}

// The last handle is dropped on another thread while the task's worker stays busy (it never
// runs out of work, and ends no task meanwhile): the result goes there and then.
TEST(TaskLifetime, AResultGoesWithItsLastHandleDroppedOnAnotherThreadWhileItsWorkerIsBusy) {
  RuntimeOptions options;
  options.default_threads = 1;
  options.interactive_threads = 0;
  Runtime rt(std::move(options));
  std::atomic<int> destroyed{0};
  std::atomic<bool> handed{false};
  std::atomic<bool> checked{false};
  TaskRef handle;
  Task<void> outer([&] {
    {
      auto t = async([&destroyed] { return Tracked(&destroyed); });
      wait(t);
      handle = t;
    }
    handed.store(true, std::memory_order_release);
    while (!checked.load(std::memory_order_acquire)) yield();
  });
  rt.submit(outer);
  ASSERT_TRUE(testing::spin_until(handed, std::chrono::seconds(10)));
  EXPECT_EQ(destroyed.load(), 0);
  handle = TaskRef();
  EXPECT_EQ(destroyed.load(), 1);
  checked.store(true, std::memory_order_release);
  wait(outer);
}

// Results whose handles outlive their runtime go with those handles, and none leaks (ASan's
// leak check).
TEST(TaskLifetime, ResultsOutliveTheirRuntimeWithTheirHandlesAndGoWithThem) {
  std::atomic<int> destroyed{0};
  std::vector<TaskRef> handles;
  constexpr int kTasks = 10;
  {
    RuntimeOptions options;
    options.default_threads = 1;
    options.interactive_threads = 0;
    Runtime rt(std::move(options));
    rt.run([&] {
      for (int i = 0; i < kTasks; ++i) {
        auto t = async([&destroyed] { return Tracked(&destroyed); });
        wait(t);
        handles.push_back(t);
      }
    });
  }
  EXPECT_EQ(destroyed.load(), 0);
  handles.clear();
  EXPECT_EQ(destroyed.load(), kTasks);
}

INSTANTIATE_TEST_SUITE_P(Workers, TaskLifetimeTest, ::testing::Values(1, 2),
                         testing::WorkerCountName);

}  // namespace
}  // namespace weft
