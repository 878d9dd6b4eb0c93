// LifoPolicy's order: depth-first for fresh and woken tasks, yielders behind everything, sticky
// tasks on their worker, and the newest of a worker's own and its pool's tasks first. Then the
// same order seen from tasks in a runtime.
#include <mutex>
#include <vector>

#include "gtest/gtest.h"
#include "weft/plugins/lifo_policy.h"
#include "weft/plugins/testing/policy_order.h"
#include "weft/sched/runtime.h"
#include "weft/sched/scheduling.h"

namespace weft::plugins {
namespace {

class LifoOrder : public weft::testing::PolicyOrder<LifoPolicy, 8> {
 protected:
  void push(int i, PushReason reason = PushReason::kSpawned, int affinity = -1,
            Pool pool = Pool::kDefault) {
    push_node(i, reason, affinity, pool);
  }
};

TEST_F(LifoOrder, NewestFirst) {
  push(0);
  push(1, PushReason::kWoken);
  push(2);
  EXPECT_EQ(drain(0), (std::vector<int>{2, 1, 0}));
}

TEST_F(LifoOrder, YieldersGoBehindEverythingOldestFirst) {
  push(0, PushReason::kYielded);
  push(1);
  push(2, PushReason::kYieldedTo);
  push(3);
  EXPECT_EQ(drain(1), (std::vector<int>{3, 1, 0, 2}));
}

TEST_F(LifoOrder, StickyTasksStayOnTheirWorkerAndMergeByAge) {
  push(0);                                // pool
  push(1, PushReason::kSpawned, 0);       // worker 0's
  push(2);                                // pool
  push(3, PushReason::kYielded, 0);       // worker 0's, yielded
  EXPECT_EQ(drain(1), (std::vector<int>{2, 0}));  // worker 1 never sees worker 0's
  push(4);
  EXPECT_EQ(drain(0), (std::vector<int>{4, 1, 3}));
}

TEST_F(LifoOrder, PoolsAreSeparate) {
  push(0, PushReason::kSpawned, -1, Pool::kInteractive);
  push(1);
  EXPECT_EQ(drain(2), (std::vector<int>{0}));
  EXPECT_EQ(drain(0), (std::vector<int>{1}));
}

// In a runtime of one worker: tasks spawned while their parent runs start newest first.
TEST(LifoRuntime, SpawnedTasksRunDepthFirst) {
  RuntimeOptions options;
  options.default_threads = 1;
  options.interactive_threads = 0;
  Runtime rt(std::move(options));
  ASSERT_EQ(rt.policy_name(), "lifo");
  std::vector<int> order = rt.run([] {
    std::mutex mu;
    std::vector<int> order;
    std::vector<Task<void>> tasks;
    for (int i = 0; i < 4; ++i) {
      tasks.push_back(spawn([&, i] {
        std::lock_guard<std::mutex> lock(mu);
        order.push_back(i);
      }));
    }
    for (auto& t : tasks) wait(t);
    return order;
  });
  EXPECT_EQ(order, (std::vector<int>{3, 2, 1, 0}));
}

}  // namespace
}  // namespace weft::plugins
