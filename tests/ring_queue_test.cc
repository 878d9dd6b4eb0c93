// RingQueue against a model: through growth (a burst far past its initial size), shrinking
// (emptied while big) and wrap-around at every size in between, it hands nodes out in order and
// counts them.
#include "weft/sched/ring_queue.h"

#include <cstddef>
#include <deque>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace weft {
namespace {

void ExpectSame(const RingQueue& q, const std::deque<SchedNode*>& model, int step) {
  ASSERT_EQ(q.size(), model.size()) << "step " << step;
  ASSERT_EQ(q.empty(), model.empty()) << "step " << step;
  ASSERT_EQ(q.front(), model.empty() ? nullptr : model.front()) << "step " << step;
}

TEST(RingQueueTest, MatchesADequeThroughRandomPushesAndPops) {
  std::vector<SchedNode> nodes(512);
  std::vector<SchedNode*> unused;
  for (auto& n : nodes) unused.push_back(&n);
  std::deque<SchedNode*> model;
  RingQueue q;
  std::mt19937 rng(11);
  for (int step = 0; step < 300000; ++step) {
    // Phases that fill (up to 512: several doublings) and drain, so the ring wraps at each size.
    const bool filling = (step / 5000) % 2 == 0;
    const bool push = static_cast<int>(rng() % 8) < (filling ? 6 : 2);
    if (push && !unused.empty()) {
      SchedNode* n = unused.back();
      unused.pop_back();
      q.push_back(n);
      model.push_back(n);
    } else {
      SchedNode* got = q.pop_front();
      if (model.empty()) {
        ASSERT_EQ(got, nullptr) << "step " << step;
      } else {
        ASSERT_EQ(got, model.front()) << "step " << step;
        model.pop_front();
        unused.push_back(got);
      }
    }
    ExpectSame(q, model, step);
  }
}

TEST(RingQueueTest, ABurstPastKeepCapacityDrainsInOrderAndShrinksBack) {
  const std::size_t burst = RingQueue::kKeepCapacity * 2 + 37;
  std::vector<SchedNode> nodes(burst);
  RingQueue q;
  EXPECT_EQ(q.capacity(), RingQueue::kInitialCapacity);
  // A few popped first, so that the ring grows while wrapped.
  for (std::size_t i = 0; i < 10; ++i) q.push_back(&nodes[i]);
  for (std::size_t i = 0; i < 5; ++i) ASSERT_EQ(q.pop_front(), &nodes[i]);
  for (std::size_t i = 10; i < burst; ++i) q.push_back(&nodes[i]);
  EXPECT_EQ(q.size(), burst - 5);
  EXPECT_GT(q.capacity(), RingQueue::kKeepCapacity);
  for (std::size_t i = 5; i < burst; ++i) {
    ASSERT_EQ(q.pop_front(), &nodes[i]) << "position " << i;
  }
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.pop_front(), nullptr);
  EXPECT_EQ(q.capacity(), RingQueue::kInitialCapacity) << "an emptied big ring keeps its memory";
  // Still a working queue after shrinking.
  q.push_back(&nodes[0]);
  q.push_back(&nodes[1]);
  EXPECT_EQ(q.pop_front(), &nodes[0]);
  EXPECT_EQ(q.pop_front(), &nodes[1]);
  EXPECT_EQ(q.pop_front(), nullptr);
}

TEST(RingQueueTest, ABurstBelowKeepCapacityKeepsItsRing) {
  // Growing again and again for every burst would cost a copy each time: a ring that has
  // grown to a moderate size stays that size.
  std::vector<SchedNode> nodes(1000);
  RingQueue q;
  for (auto& n : nodes) q.push_back(&n);
  const std::size_t grown = q.capacity();
  EXPECT_GE(grown, nodes.size());
  while (q.pop_front() != nullptr) {
  }
  EXPECT_EQ(q.capacity(), grown);
}

}  // namespace
}  // namespace weft
