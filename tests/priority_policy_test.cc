// PriorityPolicy: the level mapping, highest level first and FIFO within a level, sticky and
// shared queues merged by level then age, pools kept apart, aging (a low level still gets its
// turn, and only a task passed over), a task a worker woke held for it in its place in that
// order and taken by a busy worker once held too long, and in a runtime: tasks run in priority
// order, and a high-priority task overtakes a saturated pool.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "weft/sched/priority_policy.h"
#include "weft/sched/runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/task/task.h"

namespace weft {
namespace {

std::unique_ptr<SchedNode> make_node(int id, int priority, Pool pool = Pool::kDefault,
                                     int affinity = -1) {
  auto n = std::make_unique<SchedNode>();
  n->task_id = static_cast<std::uint64_t>(id);
  n->priority = priority;
  n->pool = pool;
  n->affinity = affinity;
  return n;
}

TEST(PriorityPolicyLevels, PrioritiesMapToClampedLevels) {
  EXPECT_EQ(PriorityPolicy::level_of(-100), 0);
  EXPECT_EQ(PriorityPolicy::level_of(PriorityPolicy::kLowestPriority), 0);
  EXPECT_EQ(PriorityPolicy::level_of(kDefaultPriority), 2);
  EXPECT_EQ(PriorityPolicy::level_of(1), 3);
  EXPECT_EQ(PriorityPolicy::level_of(PriorityPolicy::kHighestPriority),
            PriorityPolicy::kLevels - 1);
  EXPECT_EQ(PriorityPolicy::level_of(100), PriorityPolicy::kLevels - 1);
}

// Workers 0 and 1 in the default pool, 2 in the interactive pool.
class PriorityPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Topology t;
    t.pool_of = {Pool::kDefault, Pool::kDefault, Pool::kInteractive};
    policy_.init(t);
  }
  void push(SchedNode* n, int from = -1) {
    policy_.push(n, PushInfo{PushReason::kSpawned, from});
  }
  // Pops worker 0 until `low` comes out, pushing every other node straight back (`again`);
  // `low` must come out within kAgingInterval pops.
  void expect_served_within_aging(SchedNode* low, const PushInfo& again) {
    for (int pops = 1;; ++pops) {
      SchedNode* n = policy_.pop(0);
      ASSERT_NE(n, nullptr);
      if (n == low) return;
      ASSERT_LT(pops, PriorityPolicy::kAgingInterval) << "the low-priority node starved";
      policy_.push(n, again);
    }
  }
  std::vector<std::uint64_t> drain(int w) {
    std::vector<std::uint64_t> ids;
    while (SchedNode* n = policy_.pop(w)) ids.push_back(n->task_id);
    return ids;
  }

  PriorityPolicy policy_;
};

TEST_F(PriorityPolicyTest, HighestLevelFirstFifoWithinALevel) {
  const int priorities[] = {0, 2, -1, 2, 0, 1, -2, 5};
  std::vector<std::unique_ptr<SchedNode>> nodes;
  for (int i = 0; i < 8; ++i) {
    nodes.push_back(make_node(i, priorities[i]));
    push(nodes.back().get(), i % 2 == 0 ? 0 : -1);
  }
  // 2, 2 and 5 share the top level (in arrival order), then 1, 0, 0, -1, -2.
  EXPECT_EQ(drain(1), (std::vector<std::uint64_t>{1, 3, 7, 5, 0, 4, 2, 6}));
}

TEST_F(PriorityPolicyTest, StickyAndSharedQueuesMergeByLevelThenAge) {
  auto shared_low = make_node(0, 0);
  auto sticky_low = make_node(1, 0, Pool::kDefault, 0);
  auto shared_high = make_node(2, 1);
  auto sticky_high = make_node(3, 2, Pool::kDefault, 0);
  for (SchedNode* n : {shared_low.get(), sticky_low.get(), shared_high.get(), sticky_high.get()}) {
    push(n);
  }
  EXPECT_EQ(drain(1), (std::vector<std::uint64_t>{2, 0}));  // worker 1 sees no sticky node of 0
  for (SchedNode* n : {shared_low.get(), shared_high.get()}) push(n);
  EXPECT_EQ(drain(0), (std::vector<std::uint64_t>{3, 2, 1, 0}));
}

TEST_F(PriorityPolicyTest, PoolsStayApart) {
  auto interactive_low = make_node(0, -2, Pool::kInteractive);
  auto default_high = make_node(1, 2);
  push(interactive_low.get(), 0);
  push(default_high.get(), 2);
  EXPECT_EQ(drain(2), (std::vector<std::uint64_t>{0}));
  EXPECT_EQ(drain(0), (std::vector<std::uint64_t>{1}));
}

// A woken task is held for the worker that woke it, in its place in the order (level, then
// age); the pool's other worker passes it over (and says so) until it has seen it held for
// kHold. One task is held at a time.
TEST_F(PriorityPolicyTest, AWokenTaskIsHeldForItsWakerInItsPlace) {
  auto low = make_node(0, -1);
  auto woken = make_node(1, 0);
  auto high = make_node(2, 1);
  auto second = make_node(3, 0);
  const PushInfo woken_by_0{PushReason::kWoken, 0};
  push(low.get(), 0);
  EXPECT_TRUE(policy_.holds_for_pusher(*woken, woken_by_0));
  policy_.push(woken.get(), woken_by_0);
  EXPECT_FALSE(policy_.holds_for_pusher(*second, woken_by_0));
  push(high.get(), 0);
  EXPECT_TRUE(policy_.holds_back(1));
  EXPECT_FALSE(policy_.holds_back(2));
  EXPECT_EQ(drain(1), (std::vector<std::uint64_t>{2, 0}));  // not the held one, yet
  push(low.get(), -1);
  push(high.get(), 1);
  EXPECT_EQ(drain(0), (std::vector<std::uint64_t>{2, 1, 0}));
  EXPECT_FALSE(policy_.holds_back(1));

  policy_.push(woken.get(), woken_by_0);
  const auto pushed = std::chrono::steady_clock::now();
  SchedNode* got = nullptr;
  while (got == nullptr) {
    ASSERT_LT(std::chrono::steady_clock::now() - pushed, std::chrono::seconds(1));
    got = policy_.pop(1);
  }
  EXPECT_EQ(got, woken.get());
  EXPECT_GE(std::chrono::steady_clock::now() - pushed, PriorityPolicy::kHold);
  EXPECT_EQ(policy_.pop(0), nullptr);
}

// A low-priority node behind an endless supply of high-priority ones is served within
// kAgingInterval pops.
TEST_F(PriorityPolicyTest, AgingServesALowLevelUnderAHighFlood) {
  auto low = make_node(1000, PriorityPolicy::kLowestPriority);
  push(low.get());
  std::vector<std::unique_ptr<SchedNode>> high;
  for (int i = 0; i < 4; ++i) {
    high.push_back(make_node(i, PriorityPolicy::kHighestPriority));
    push(high.back().get());
  }
  // The high-priority one is runnable again at once.
  expect_served_within_aging(low.get(), PushInfo{PushReason::kSpawned, -1});
}

// The same across a worker's queues: its sticky high-priority task yields in a loop (back into
// the queue only it fills), while its sticky low-priority one was woken from elsewhere (into
// the queue others fill for it). Aging per queue never looked at the second.
TEST_F(PriorityPolicyTest, AgingServesALowLevelInAnotherQueueOfTheWorker) {
  auto high = make_node(0, PriorityPolicy::kHighestPriority, Pool::kDefault, 0);
  auto low = make_node(1, PriorityPolicy::kLowestPriority, Pool::kDefault, 0);
  push(high.get(), 0);
  policy_.push(low.get(), PushInfo{PushReason::kWoken, 1});
  expect_served_within_aging(low.get(), PushInfo{PushReason::kYielded, 0});
}

// Aging is for tasks passed over: a flood of equal tasks taking turns passes nobody over, so a
// high-priority node pushed into it comes out at the next pop, every time. (Aging every
// kAgingInterval-th pop put a flood task first once in kAgingInterval wake-ups.)
TEST_F(PriorityPolicyTest, AgingNeverDelaysAHighLevelBehindEqualTasksTakingTurns) {
  std::vector<std::unique_ptr<SchedNode>> flood;
  for (int i = 0; i < 8; ++i) {
    flood.push_back(make_node(i, kDefaultPriority));
    push(flood.back().get(), 0);
  }
  auto probe = make_node(1000, PriorityPolicy::kHighestPriority);
  for (int wake = 0; wake < 3 * PriorityPolicy::kAgingInterval; ++wake) {
    for (int turn = 0; turn < wake % 5; ++turn) {  // the flood runs on for a few turns
      SchedNode* n = policy_.pop(0);
      ASSERT_NE(n, nullptr);
      ASSERT_NE(n, probe.get());
      policy_.push(n, PushInfo{PushReason::kYielded, 0});
    }
    push(probe.get());  // woken from outside
    ASSERT_EQ(policy_.pop(0), probe.get()) << "wake-up " << wake;
  }
}

// A high-priority task held for worker 0, whose current task runs on (it does not pop again),
// while worker 1 is busy with low-priority tasks of 20 us each: worker 1 takes it at one of its
// looks once it has seen it held for kBusyWorkerHold (the header), a millisecond or two later
// -- not only after it has run 2048 low-priority tasks (two looks kBusyHeldCheckPops apart),
// which with tasks of a millisecond each would be seconds.
TEST_F(PriorityPolicyTest, ABusyWorkerTakesAHighTaskHeldTooLong) {
  std::vector<std::unique_ptr<SchedNode>> low;
  for (int i = 0; i < 3 * static_cast<int>(kBusyHeldCheckPops); ++i) {
    low.push_back(make_node(i, PriorityPolicy::kLowestPriority));
    push(low.back().get(), 1);
  }
  auto high = make_node(-1, PriorityPolicy::kHighestPriority);
  const PushInfo woken_by_0{PushReason::kWoken, 0};
  ASSERT_TRUE(policy_.holds_for_pusher(*high, woken_by_0));
  policy_.push(high.get(), woken_by_0);
  int pops = 0;
  for (;;) {
    SchedNode* n = policy_.pop(1);
    ASSERT_NE(n, nullptr);
    ++pops;
    if (n == high.get()) break;
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(20);
    while (std::chrono::steady_clock::now() < until) {
    }
  }
  // About 1 ms of 20 us tasks, then at most kAgingInterval pops and a look's spacing more (fewer
  // pops when the machine is slow: the hold is time, not pops).
  EXPECT_LT(pops, 400) << "the high-priority task waited behind " << pops - 1
                       << " low-priority tasks";
}

// ---- In a runtime ---------------------------------------------------------------------------

std::unique_ptr<Runtime> make_runtime(int workers) {
  RuntimeOptions options;
  options.default_threads = workers;
  options.interactive_threads = 0;
  options.policy = std::make_unique<PriorityPolicy>();
  return std::make_unique<Runtime>(std::move(options));
}

// The orders in which one worker may run tasks queued at once with these priorities: by
// priority, FIFO within a priority, except that one of its pops (at most one in
// kAgingInterval, wherever the worker's pop count stands) is aging's, which takes the oldest.
std::vector<std::vector<int>> orders_by_priority(const std::vector<int>& priorities) {
  static_assert(PriorityPolicy::kAgingInterval >= 8, "one aging pop at most among these");
  std::vector<std::vector<int>> orders;
  const int n = static_cast<int>(priorities.size());
  for (int aging_at = -1; aging_at < n; ++aging_at) {
    std::vector<int> queued(n);
    for (int i = 0; i < n; ++i) queued[i] = i;  // in arrival order
    std::vector<int> order;
    for (int step = 0; step < n; ++step) {
      auto pick = queued.begin();  // the oldest
      if (step != aging_at) {
        pick = std::max_element(queued.begin(), queued.end(), [&](int a, int b) {
          return priorities[a] < priorities[b];  // the first of the highest: FIFO within
        });
      }
      order.push_back(*pick);
      queued.erase(pick);
    }
    orders.push_back(order);
  }
  return orders;
}

// On one worker, tasks queued while it is busy run by priority, FIFO within a priority.
TEST(PriorityRuntime, QueuedTasksRunByPriority) {
  auto rt = make_runtime(1);
  std::mutex mu;
  std::vector<int> order;
  const std::vector<int> priorities = {0, -1, 2, 1, 0, 2, -2, 1};
  rt->run([&] {
    std::vector<Task<void>> tasks;
    for (int i = 0; i < 8; ++i) {
      tasks.push_back(spawn(
          [&mu, &order, i] {
            std::lock_guard<std::mutex> lock(mu);
            order.push_back(i);
          },
          {.priority = priorities[i]}));
    }
    wait(tasks[6]);  // the lowest: by the time it has run, all have
    for (auto& t : tasks) wait(t);
  });
  const auto allowed = orders_by_priority(priorities);
  ASSERT_EQ(allowed.front(), (std::vector<int>{2, 5, 3, 7, 0, 4, 1, 6}));  // no aging pop
  EXPECT_NE(std::find(allowed.begin(), allowed.end(), order), allowed.end())
      << "tasks ran in an order neither by priority nor by priority with one aging pop: "
      << ::testing::PrintToString(order);
}

// A saturated worker (CPU-bound tasks that yield) runs a woken high-priority task within a
// couple of turns, where a FIFO would make it wait for every queued task.
TEST(PriorityRuntime, HighPriorityTaskOvertakesASaturatedPool) {
  auto rt = make_runtime(1);
  rt->run([] {
    constexpr int kFlood = 50;
    std::atomic<bool> stop{false};
    std::atomic<long> turns{0};
    std::vector<Task<void>> flood;
    for (int i = 0; i < kFlood; ++i) {
      flood.push_back(spawn([&] {
        while (!stop.load()) {
          turns.fetch_add(1);
          yield();
        }
      }));
    }
    yield();  // let the flood start
    for (int round = 0; round < 20; ++round) {
      const long before = turns.load();
      auto probe = spawn([&turns] { return turns.load(); }, {.priority = 2});
      // Flood turns between the probe becoming runnable and it running: aging may put one
      // flood task first; a FIFO would run all kFlood of them.
      EXPECT_LE(fetch(probe) - before, 2) << "round " << round;
    }
    stop.store(true);
    for (auto& t : flood) wait(t);
  });
}

}  // namespace
}  // namespace weft
