// EdfPolicy's order: earliest deadline first, ties and deadline-less tasks first come first
// served, deadline-less ones after every deadlined one; sticky tasks on their worker; and the
// deadline given at spawn honoured by a runtime.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <vector>

#include "gtest/gtest.h"
#include "weft/plugins/edf_policy.h"
#include "weft/plugins/testing/policy_order.h"
#include "weft/sched/runtime.h"
#include "weft/sched/scheduling.h"

namespace weft::plugins {
namespace {

class EdfOrder : public weft::testing::PolicyOrder<EdfPolicy, 64> {
 protected:
  void push(int i, std::int64_t deadline, int affinity = -1, Pool pool = Pool::kDefault,
            PushReason reason = PushReason::kSpawned) {
    nodes_[i].policy_arg = deadline;
    push_node(i, reason, affinity, pool);
  }
};

TEST_F(EdfOrder, EarliestDeadlineFirstThenTheDeadlineLessInArrivalOrder) {
  push(0, EdfPolicy::kNoDeadline);
  push(1, 300);
  push(2, EdfPolicy::kNoDeadline);
  push(3, -5);  // any value but 0 is a deadline
  push(4, 100);
  push(5, 300);  // same deadline as 1: after it
  EXPECT_EQ(drain(0), (std::vector<int>{3, 4, 1, 5, 0, 2}));
}

TEST_F(EdfOrder, ARepushedTaskQueuesBehindEqualDeadlines) {
  push(0, 10);
  push(1, 10);
  ASSERT_EQ(policy_.pop(0), &nodes_[0]);
  push(0, 10, -1, Pool::kDefault, PushReason::kYielded);
  EXPECT_EQ(drain(1), (std::vector<int>{1, 0}));
}

TEST_F(EdfOrder, StickyTasksStayOnTheirWorkerAndCompeteByDeadline) {
  push(0, 50);
  push(1, 20, /*affinity=*/1);
  push(2, 40);
  push(3, EdfPolicy::kNoDeadline, /*affinity=*/1);
  EXPECT_EQ(drain(0), (std::vector<int>{2, 0}));
  push(4, 30);
  EXPECT_EQ(drain(1), (std::vector<int>{1, 4, 3}));
}

TEST_F(EdfOrder, PoolsAreSeparate) {
  push(0, 5, -1, Pool::kInteractive);
  push(1, 10);
  EXPECT_EQ(drain(2), (std::vector<int>{0}));
  EXPECT_EQ(drain(0), (std::vector<int>{1}));
}

// Many deadlines in scrambled order come out sorted (the heap under load).
TEST_F(EdfOrder, ManyDeadlinesComeOutSorted) {
  for (int i = 0; i < kNodes; ++i) push(i, 1 + (i * 37) % kNodes);
  std::vector<int> ids = drain(0);
  ASSERT_EQ(ids.size(), static_cast<std::size_t>(kNodes));
  for (std::size_t k = 1; k < ids.size(); ++k) {
    EXPECT_LT(nodes_[ids[k - 1]].policy_arg, nodes_[ids[k]].policy_arg) << "at " << k;
  }
}

TEST(EdfDeadline, DeadlineAfterIsOnTheSteadyClockAndNeverNoDeadline) {
  const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::steady_clock::now().time_since_epoch())
                       .count();
  const std::int64_t d = EdfPolicy::deadline_after(std::chrono::milliseconds(5));
  EXPECT_GE(d, now + 5'000'000);
  EXPECT_NE(d, EdfPolicy::kNoDeadline);
  // "Whenever" stays the latest deadline instead of wrapping to the most urgent.
  EXPECT_EQ(EdfPolicy::deadline_after(std::chrono::nanoseconds::max()), INT64_MAX);
  EXPECT_GT(EdfPolicy::deadline_after(std::chrono::hours(24 * 365 * 200)), d);
}

// In a runtime of one worker: the deadline passed at spawn decides the order; tasks without
// one run last, in spawn order.
TEST(EdfRuntime, SpawnDeadlinesDecideTheOrder) {
  RuntimeOptions options;
  options.default_threads = 1;
  options.interactive_threads = 0;
  Runtime rt(std::move(options));
  ASSERT_EQ(rt.policy_name(), "edf");
  std::vector<int> order = rt.run([] {
    std::mutex mu;
    std::vector<int> order;
    std::vector<Task<void>> tasks;
    const std::int64_t deadlines[] = {30, EdfPolicy::kNoDeadline, 10, 20, EdfPolicy::kNoDeadline};
    for (int i = 0; i < 5; ++i) {
      tasks.push_back(spawn(
          [&, i] {
            std::lock_guard<std::mutex> lock(mu);
            order.push_back(i);
          },
          {.policy_arg = deadlines[i]}));
    }
    for (auto& t : tasks) wait(t);
    return order;
  });
  EXPECT_EQ(order, (std::vector<int>{2, 3, 0, 1, 4}));
}

}  // namespace
}  // namespace weft::plugins
