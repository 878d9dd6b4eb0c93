// FifoPolicy's order, driven directly (no runtime): on a worker alone in its pool, whatever the
// mix of its own pushes (list, then the ring past kSpillAt), pushes from outside and pops, it
// hands tasks out in the order they were pushed.
#include "weft/sched/fifo_policy.h"

#include <deque>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace weft {
namespace {

TEST(FifoPolicyTest, OwnPushesPastTheSpillAndOutsidePushesComeOutInPushOrder) {
  FifoPolicy policy;
  Topology topology;
  topology.pool_of = {Pool::kDefault, Pool::kInteractive};
  policy.init(topology);
  constexpr int kNodes = 400;
  std::vector<SchedNode> nodes(kNodes);
  for (int i = 0; i < kNodes; ++i) nodes[i].task_id = static_cast<std::uint64_t>(i);
  std::vector<SchedNode*> unused;
  for (auto& n : nodes) unused.push_back(&n);
  std::deque<SchedNode*> model;  // push order
  std::mt19937 rng(5);
  constexpr PushReason kReasons[] = {PushReason::kSpawned, PushReason::kYielded,
                                     PushReason::kWoken, PushReason::kYieldedTo};
  for (int step = 0; step < 200000; ++step) {
    // Bursts that fill well past the spill point, then drains to empty.
    const bool filling = (step / 3000) % 2 == 0;
    const bool push = static_cast<int>(rng() % 8) < (filling ? 6 : 2);
    if (push && !unused.empty()) {
      SchedNode* n = unused.back();
      unused.pop_back();
      // Mostly the worker's own pushes, some from outside (the pool queue) and some bound to
      // it from outside (its remote queue): one order across all three.
      const int kind = static_cast<int>(rng() % 10);
      n->pool = Pool::kDefault;
      n->affinity = kind == 9 ? 0 : -1;
      policy.push(n, PushInfo{kReasons[rng() % 4], kind < 7 ? 0 : -1});
      model.push_back(n);
    } else {
      SchedNode* got = policy.pop(0);
      if (model.empty()) {
        ASSERT_EQ(got, nullptr) << "step " << step;
      } else {
        ASSERT_NE(got, nullptr) << "step " << step << ": " << model.size() << " queued";
        ASSERT_EQ(got->task_id, model.front()->task_id) << "step " << step;
        model.pop_front();
        unused.push_back(got);
      }
    }
  }
  while (!model.empty()) {
    SchedNode* got = policy.pop(0);
    ASSERT_NE(got, nullptr);
    ASSERT_EQ(got->task_id, model.front()->task_id);
    model.pop_front();
  }
  EXPECT_EQ(policy.pop(0), nullptr);
  EXPECT_EQ(policy.pop(1), nullptr);
}

}  // namespace
}  // namespace weft
