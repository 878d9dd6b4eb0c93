// When a finished task's result goes (weft/task/task_core.h, TaskCore::release_runtime_ref):
// with its last handle when that is dropped on the worker the task ended on; otherwise at the
// latest kHeldRuntimeRefs task ends later on that worker, or when the runtime stops -- never
// leaked, never destroyed while a handle is left.
#include <atomic>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_runtime.h"
#include "weft/sched/runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/task/task.h"
#include "weft/task/task_core.h"

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

// The child is sticky (async), so it ends on its parent's worker: the parent's join and drop
// find the runtime's reference held back there and free the result at once.
TEST_P(TaskLifetimeTest, AResultGoesWithItsLastHandleDroppedWhereItsTaskEnded) {
  run([] {
    std::atomic<int> destroyed{0};
    for (int round = 0; round < 3 * internal::kHeldRuntimeRefs; ++round) {
      {
        auto t = async([&destroyed] { return Tracked(&destroyed); });
        wait(t);
        ASSERT_EQ(destroyed.load(), round);
      }
      ASSERT_EQ(destroyed.load(), round + 1) << "round " << round;
    }
  });
}

// The last handle is dropped on another thread while the worker stays busy (it never runs out
// of work, which would release what it holds): the result still goes within kHeldRuntimeRefs
// more task ends there, here tasks whose handles were dropped before they ran.
TEST(TaskLifetime, AResultOutlivesAHandleDroppedElsewhereByABoundedNumberOfTaskEnds) {
  RuntimeOptions options;
  options.default_threads = 1;
  options.interactive_threads = 0;
  Runtime rt(std::move(options));
  std::atomic<int> destroyed{0};
  std::atomic<bool> handed{false};
  std::atomic<bool> dropped{false};
  TaskRef handle;
  Task<void> outer([&] {
    {
      auto t = async([&destroyed] { return Tracked(&destroyed); });
      wait(t);
      handle = t;
    }
    handed.store(true, std::memory_order_release);
    while (!dropped.load(std::memory_order_acquire)) yield();
    std::atomic<int> ran{0};
    for (int i = 0; i < internal::kHeldRuntimeRefs; ++i) {
      static_cast<void>(async([&ran] { ran.fetch_add(1); }));
    }
    // Each ended before we run again (a task is released by the context that follows it).
    while (ran.load() < internal::kHeldRuntimeRefs) yield();
    EXPECT_EQ(destroyed.load(), 1);
  });
  rt.submit(outer);
  ASSERT_TRUE(testing::spin_until(handed, std::chrono::seconds(10)));
  handle = TaskRef();
  EXPECT_EQ(destroyed.load(), 0) << "not destroyed by now would be fine, but not before";
  dropped.store(true, std::memory_order_release);
  wait(outer);
}

// A runtime that stops gives up every reference its workers held back: the results go with
// the handles that outlive it, and none leaks (ASan's leak check).
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
