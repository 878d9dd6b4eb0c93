// FifoPolicy's order, driven directly (no runtime): on a worker alone in its pool, whatever the
// mix of its own pushes (list, then the ring past kSpillAt), pushes from outside and pops, it
// hands tasks out in the order they were pushed; in a pool of two, a task a worker woke is held
// for it in its place in that order, and the other worker takes it only after kHold.
#include "weft/sched/fifo_policy.h"

#include <chrono>
#include <deque>
#include <memory>
#include <thread>
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

// Workers 0 and 1 share the default pool; 2 is the interactive pool's.
class FifoPolicyHeld : public ::testing::Test {
 protected:
  void SetUp() override {
    Topology t;
    t.pool_of = {Pool::kDefault, Pool::kDefault, Pool::kInteractive};
    policy_.init(t);
    for (int i = 0; i < 4; ++i) {
      nodes_.push_back(std::make_unique<SchedNode>());
      nodes_.back()->task_id = static_cast<std::uint64_t>(i);
    }
  }
  SchedNode* n(int i) { return nodes_[static_cast<std::size_t>(i)].get(); }
  // As the runtime does: asks whether the push is held, then pushes.
  bool push(SchedNode* node, PushReason reason, int from) {
    const bool held = policy_.holds_for_pusher(*node, PushInfo{reason, from});
    policy_.push(node, PushInfo{reason, from});
    return held;
  }

  FifoPolicy policy_;
  std::vector<std::unique_ptr<SchedNode>> nodes_;
};

// The woken task waits for its waker's worker in its place in the FIFO order: the waker's
// worker runs what came before it first, and the other worker passes it over (and says so).
TEST_F(FifoPolicyHeld, AWokenTaskIsHeldForItsWakerInItsPlace) {
  EXPECT_FALSE(push(n(0), PushReason::kSpawned, 0));
  EXPECT_TRUE(push(n(1), PushReason::kWoken, 0));
  EXPECT_FALSE(push(n(2), PushReason::kSpawned, 0));
  EXPECT_TRUE(policy_.holds_back(1));
  EXPECT_FALSE(policy_.holds_back(0));  // its own worker need not poll for it
  EXPECT_FALSE(policy_.holds_back(2));  // another pool's worker may not run it anyway
  EXPECT_EQ(policy_.pop(1), n(0));
  EXPECT_EQ(policy_.pop(1), n(2));
  EXPECT_EQ(policy_.pop(1), nullptr);  // not yet
  EXPECT_EQ(policy_.pop(0), n(1));
  EXPECT_FALSE(policy_.holds_back(1));
  EXPECT_EQ(policy_.pop(0), nullptr);

  EXPECT_FALSE(push(n(0), PushReason::kSpawned, 1));
  EXPECT_TRUE(push(n(1), PushReason::kWoken, 0));
  EXPECT_FALSE(push(n(2), PushReason::kSpawned, 1));
  EXPECT_EQ(policy_.pop(0), n(0));
  EXPECT_EQ(policy_.pop(0), n(1));
  EXPECT_EQ(policy_.pop(0), n(2));
}

// One task is held at a time: a second wake-up by the same worker goes to the pool, where any
// worker takes it at once. Yields, spawns, pushes from outside and a pool of one hold nothing.
TEST_F(FifoPolicyHeld, OnlyOneWokenTaskOfAPoolOfSeveralIsHeld) {
  EXPECT_TRUE(push(n(0), PushReason::kWoken, 0));
  EXPECT_FALSE(push(n(1), PushReason::kWoken, 0));
  EXPECT_EQ(policy_.pop(1), n(1));
  EXPECT_FALSE(policy_.holds_for_pusher(*n(2), PushInfo{PushReason::kYielded, 0}));
  EXPECT_FALSE(policy_.holds_for_pusher(*n(2), PushInfo{PushReason::kWoken, -1}));
  n(3)->pool = Pool::kInteractive;
  EXPECT_FALSE(policy_.holds_for_pusher(*n(3), PushInfo{PushReason::kWoken, 2}));
  n(2)->affinity = 1;
  EXPECT_FALSE(policy_.holds_for_pusher(*n(2), PushInfo{PushReason::kWoken, 0}));
  EXPECT_EQ(policy_.pop(0), n(0));
}

// A worker that keeps running never strands its held task: the other worker takes it once it
// has seen it held for kHold, and each new held task gets a hold of its own.
TEST_F(FifoPolicyHeld, AnotherWorkerTakesAHeldTaskAfterTheHold) {
  push(n(0), PushReason::kWoken, 0);
  const auto pushed = std::chrono::steady_clock::now();
  SchedNode* got = nullptr;
  while (got == nullptr) {
    ASSERT_LT(std::chrono::steady_clock::now() - pushed, std::chrono::seconds(1));
    got = policy_.pop(1);
  }
  EXPECT_EQ(got, n(0));
  EXPECT_GE(std::chrono::steady_clock::now() - pushed, FifoPolicy::kHold);
  EXPECT_EQ(policy_.pop(0), nullptr);

  push(n(1), PushReason::kWoken, 0);
  EXPECT_EQ(policy_.pop(1), nullptr);
  std::this_thread::sleep_for(2 * FifoPolicy::kHold);
  EXPECT_EQ(policy_.pop(0), n(1));
  push(n(2), PushReason::kWoken, 0);
  EXPECT_EQ(policy_.pop(1), nullptr);  // a new task: its hold starts now
  EXPECT_EQ(policy_.pop(0), n(2));
}

}  // namespace
}  // namespace weft
