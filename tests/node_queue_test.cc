// NodeQueue against a model: whatever mix of pushes at either end and pops, it hands nodes out
// in order and counts them.
#include "weft/sched/node_queue.h"

#include <cstddef>
#include <deque>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace weft {
namespace {

TEST(NodeQueueTest, MatchesADequeThroughRandomPushesAndPops) {
  // Drift between empty and a few dozen nodes.
  const std::size_t limit = 32;
  std::vector<SchedNode> nodes(limit);
  std::vector<SchedNode*> unused;
  for (auto& n : nodes) unused.push_back(&n);
  std::deque<SchedNode*> model;
  NodeQueue q;
  std::mt19937 rng(7);
  for (int step = 0; step < 200000; ++step) {
    const int op = static_cast<int>(rng() % 8);
    if (op < 4 && !unused.empty()) {
      SchedNode* n = unused.back();
      unused.pop_back();
      if (op < 3) {
        q.push_back(n);
        model.push_back(n);
      } else {
        q.push_front(n);
        model.push_front(n);
      }
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
    ASSERT_EQ(q.front(), model.empty() ? nullptr : model.front()) << "step " << step;
  }
}

TEST(NodeQueueTest, DrainsALongQueueInOrder) {
  std::vector<SchedNode> nodes(1000);
  NodeQueue q;
  for (auto& n : nodes) q.push_back(&n);
  for (auto& n : nodes) ASSERT_EQ(q.pop_front(), &n);
  EXPECT_EQ(q.pop_front(), nullptr);
  EXPECT_TRUE(q.empty());
}

}  // namespace
}  // namespace weft
