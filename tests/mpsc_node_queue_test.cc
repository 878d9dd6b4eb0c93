// MpscNodeQueue under real concurrency: producers on their own threads, one consumer, every
// node handed out once and in each producer's order, and maybe_nonempty() never saying "empty"
// while a node whose push has returned is still inside. That last promise is what lets a
// worker skip a queue without locking it; a false "empty" there leaves a task runnable that no
// worker ever picks up.
#include "weft/sched/mpsc_node_queue.h"

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/stress_mode.h"

namespace weft {
namespace {

// The long mode (tests/stress_mode.h): 20 times the nodes.
int env_scale() { return testing::stress_mode() ? 20 : 1; }

TEST(MpscNodeQueueTest, SingleThreadIsFifoAndEmptiesCleanly) {
  MpscNodeQueue q;
  EXPECT_FALSE(q.maybe_nonempty());
  EXPECT_EQ(q.pop(), nullptr);
  std::vector<SchedNode> nodes(5);
  for (int round = 0; round < 3; ++round) {
    for (auto& n : nodes) q.push(&n);
    EXPECT_TRUE(q.maybe_nonempty());
    EXPECT_EQ(q.peek(), &nodes[0]);
    for (auto& n : nodes) EXPECT_EQ(q.pop(), &n);
    EXPECT_EQ(q.pop(), nullptr);
    EXPECT_FALSE(q.maybe_nonempty()) << "round " << round;
  }
}

// Producers tag each node with (producer, sequence) in policy_word.
constexpr int kProducers = 2;

TEST(MpscNodeQueueTest, ConcurrentPushesArriveOnceInOrderAndNeverLookEmpty) {
  const int per_producer = 1'000'000 * env_scale();
  std::vector<std::vector<SchedNode>> nodes(kProducers, std::vector<SchedNode>(per_producer));
  for (int p = 0; p < kProducers; ++p) {
    for (int i = 0; i < per_producer; ++i) {
      nodes[p][i].policy_word = (static_cast<std::uint64_t>(p) << 32) | static_cast<unsigned>(i);
    }
  }
  MpscNodeQueue q;
  // Pushes that have returned, counted after each returns.
  std::atomic<std::int64_t> completed{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      while (!go.load(std::memory_order_acquire)) {
      }
      for (int i = 0; i < per_producer; ++i) {
        q.push(&nodes[p][i]);
        completed.fetch_add(1, std::memory_order_release);
      }
    });
  }
  go.store(true, std::memory_order_release);
  const std::int64_t total = std::int64_t{kProducers} * per_producer;
  std::vector<std::int64_t> next(kProducers, 0);
  std::int64_t popped = 0;
  std::int64_t false_empties = 0;
  std::int64_t first_bad_popped = -1, first_bad_completed = -1;
  while (popped < total) {
    if (SchedNode* n = q.pop()) {
      const int p = static_cast<int>(n->policy_word >> 32);
      const std::int64_t i = static_cast<std::uint32_t>(n->policy_word);
      ASSERT_LT(p, kProducers);
      ASSERT_EQ(i, next[p]) << "producer " << p << "'s nodes out of order or repeated";
      ++next[p];
      ++popped;
      continue;
    }
    // Pushes that returned before the call; "empty" must mean every one of them was popped.
    const std::int64_t before = completed.load(std::memory_order_acquire);
    if (!q.maybe_nonempty() && popped < before) {
      if (false_empties++ == 0) {
        first_bad_popped = popped;
        first_bad_completed = before;
      }
    }
  }
  for (auto& t : producers) t.join();
  EXPECT_EQ(q.pop(), nullptr);
  EXPECT_FALSE(q.maybe_nonempty());
  EXPECT_EQ(false_empties, 0) << "maybe_nonempty() said empty with " << first_bad_completed
                              << " pushes returned and only " << first_bad_popped << " popped";
}

}  // namespace
}  // namespace weft
