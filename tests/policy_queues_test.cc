// The unsynchronized queues policies build on (weft/sched/node_queue.h, ring_queue.h), each
// against a std::deque model: whatever mix of pushes and pops, they hand nodes out in order
// and count them; the ring through growth, wrap-around at every size and shrinking.
#include <cstddef>
#include <deque>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "weft/sched/node_queue.h"
#include "weft/sched/ring_queue.h"

namespace weft {
namespace {

enum class Op { kPushBack, kPushFront, kPop };

// Runs `steps` operations chosen by choose(step, rng) on q and on a deque, over `pool` nodes
// (a push when none is free pops instead), checking after each that the two agree.
template <typename Queue, typename Choose>
void CheckAgainstDeque(Queue& q, std::size_t pool, int steps, unsigned seed, Choose choose) {
  std::vector<SchedNode> nodes(pool);
  std::vector<SchedNode*> unused;
  for (auto& n : nodes) unused.push_back(&n);
  std::deque<SchedNode*> model;
  std::mt19937 rng(seed);
  for (int step = 0; step < steps; ++step) {
    const Op op = choose(step, rng);
    if (op != Op::kPop && !unused.empty()) {
      SchedNode* n = unused.back();
      unused.pop_back();
      if constexpr (requires { q.push_front(n); }) {
        if (op == Op::kPushFront) {
          q.push_front(n);
          model.push_front(n);
          continue;
        }
      }
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
    ASSERT_EQ(q.size(), model.size()) << "step " << step;
    ASSERT_EQ(q.empty(), model.empty()) << "step " << step;
    ASSERT_EQ(q.front(), model.empty() ? nullptr : model.front()) << "step " << step;
  }
}

TEST(NodeQueueTest, MatchesADequeThroughRandomPushesAndPops) {
  // Drifts between empty and a few dozen nodes; a quarter of the pushes at the front.
  NodeQueue q;
  CheckAgainstDeque(q, 32, 200000, 7, [](int, std::mt19937& rng) {
    const unsigned r = rng() % 8;
    return r < 3 ? Op::kPushBack : r < 4 ? Op::kPushFront : Op::kPop;
  });
}

TEST(NodeQueueTest, DrainsALongQueueInOrder) {
  std::vector<SchedNode> nodes(1000);
  NodeQueue q;
  for (auto& n : nodes) q.push_back(&n);
  for (auto& n : nodes) ASSERT_EQ(q.pop_front(), &n);
  EXPECT_EQ(q.pop_front(), nullptr);
  EXPECT_TRUE(q.empty());
}

TEST(RingQueueTest, MatchesADequeThroughRandomPushesAndPops) {
  // Phases that fill (up to 512 nodes: several doublings) and drain, so that the ring wraps
  // around at each size.
  RingQueue q;
  CheckAgainstDeque(q, 512, 300000, 11, [](int step, std::mt19937& rng) {
    const bool filling = (step / 5000) % 2 == 0;
    return rng() % 8 < (filling ? 6u : 2u) ? Op::kPushBack : Op::kPop;
  });
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
  // Growing again for every burst would cost a copy each time: a ring that has grown to a
  // moderate size stays that size.
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
