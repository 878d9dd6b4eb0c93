// WorkStealingPolicy and its Chase-Lev deque, unit by unit: the deque's LIFO/FIFO ends, its
// growth, its owner/thief races (every node taken exactly once: run it under TSan); the
// policy's order (runnext, owner LIFO, thieves FIFO from the oldest end and half of what is
// left at a time, yielded tasks last),
// a woken task held for its waker (thieves take it only after kRunnextHold), sticky nodes never
// stolen, pools kept apart, a deque that grows, and fairness.
// The runtime-level behaviour (all tests in tests/) runs against it through weft_sched_test.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "weft/sched/chase_lev_deque.h"
#include "weft/sched/work_stealing_policy.h"

namespace weft {
namespace {

std::vector<std::unique_ptr<SchedNode>> make_nodes(int n, Pool pool = Pool::kDefault) {
  std::vector<std::unique_ptr<SchedNode>> nodes;
  for (int i = 0; i < n; ++i) {
    nodes.push_back(std::make_unique<SchedNode>());
    nodes.back()->task_id = static_cast<std::uint64_t>(i);
    nodes.back()->pool = pool;
  }
  return nodes;
}

// ---- The deque ------------------------------------------------------------------------------

TEST(ChaseLevDeque, OwnerPopsNewestThiefStealsOldest) {
  auto nodes = make_nodes(4);
  ChaseLevDeque d;
  EXPECT_TRUE(d.empty());
  EXPECT_EQ(d.pop(), nullptr);
  EXPECT_EQ(d.steal(), nullptr);
  for (auto& n : nodes) d.push(n.get());
  EXPECT_EQ(d.size(), 4);
  EXPECT_EQ(d.pop(), nodes[3].get());
  EXPECT_EQ(d.steal(), nodes[0].get());
  EXPECT_EQ(d.pop(), nodes[2].get());
  EXPECT_EQ(d.steal(), nodes[1].get());
  EXPECT_EQ(d.pop(), nullptr);
  EXPECT_EQ(d.steal(), nullptr);
  EXPECT_TRUE(d.empty());
}

TEST(ChaseLevDeque, GrowsWhenFullKeepingBothOrders) {
  const int n = 5 * static_cast<int>(ChaseLevDeque::kInitialCapacity) + 3;
  auto nodes = make_nodes(n);
  ChaseLevDeque d;
  // Some steals first, so that the live range starts mid-ring when it is copied.
  for (int i = 0; i < 10; ++i) d.push(nodes[i].get());
  for (int i = 0; i < 7; ++i) ASSERT_EQ(d.steal(), nodes[i].get());
  for (int i = 10; i < n; ++i) d.push(nodes[i].get());
  EXPECT_GE(d.capacity(), n - 7);
  EXPECT_EQ(d.size(), n - 7);
  EXPECT_EQ(d.steal(), nodes[7].get());
  EXPECT_EQ(d.pop(), nodes[n - 1].get());
  int low = 8, high = n - 2;
  while (low <= high) {
    ASSERT_EQ(d.steal(), nodes[low++].get());
    if (low <= high) {
      ASSERT_EQ(d.pop(), nodes[high--].get());
    }
  }
  EXPECT_EQ(d.pop(), nullptr);
}

TEST(ChaseLevDeque, UnsharedPopForALoneOwner) {
  auto nodes = make_nodes(3);
  ChaseLevDeque d;
  for (auto& n : nodes) d.push(n.get());
  EXPECT_EQ(d.pop_unshared(), nodes[2].get());
  EXPECT_EQ(d.steal(), nodes[0].get());  // the ends still agree with each other
  EXPECT_EQ(d.pop_unshared(), nodes[1].get());
  EXPECT_EQ(d.pop_unshared(), nullptr);
  EXPECT_EQ(d.steal(), nullptr);
}

// One owner pushing (growing the ring several times) and popping, three thieves stealing: each
// node is taken exactly once.
TEST(ChaseLevDeque, OwnerAndThievesTakeEachNodeOnce) {
#if defined(__SANITIZE_THREAD__)
  constexpr int kNodes = 20'000;
#else
  constexpr int kNodes = 400'000;
#endif
  auto nodes = make_nodes(kNodes);
  ChaseLevDeque d;
  std::vector<std::atomic<int>> taken(kNodes);
  std::atomic<int> total{0};
  std::atomic<bool> done_pushing{false};
  auto take = [&](SchedNode* n) {
    taken[n->task_id].fetch_add(1, std::memory_order_relaxed);
    total.fetch_add(1, std::memory_order_relaxed);
  };
  std::vector<std::thread> thieves;
  for (int i = 0; i < 3; ++i) {
    thieves.emplace_back([&] {
      for (;;) {
        if (SchedNode* n = d.steal()) {
          take(n);
        } else if (done_pushing.load()) {
          break;
        }
      }
    });
  }
  for (int i = 0; i < kNodes; ++i) {
    d.push(nodes[i].get());
    // Pop sometimes, but let the deque fill up in bursts so that it has to grow.
    if ((i / 5000) % 2 == 1 && i % 3 == 0) {
      if (SchedNode* n = d.pop()) take(n);
    }
  }
  done_pushing.store(true);
  while (SchedNode* n = d.pop()) take(n);
  for (auto& t : thieves) t.join();
  EXPECT_EQ(total.load(), kNodes);
  int bad = 0;
  for (auto& t : taken) bad += t.load() != 1;
  EXPECT_EQ(bad, 0);
}

// ---- The policy -----------------------------------------------------------------------------

// Workers 0 and 1 in the default pool, 2 in the interactive pool.
class WorkStealingPolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Topology t;
    t.pool_of = {Pool::kDefault, Pool::kDefault, Pool::kInteractive};
    policy_.init(t);
  }
  void push(SchedNode* n, PushReason reason, int from) { policy_.push(n, PushInfo{reason, from}); }
  SchedNode* pop(int w) { return policy_.pop(w); }

  WorkStealingPolicy policy_;
};

TEST_F(WorkStealingPolicyTest, OwnerRunsNewestFirstThievesTakeOldest) {
  auto n = make_nodes(4);
  for (auto& node : n) push(node.get(), PushReason::kSpawned, 0);
  EXPECT_EQ(pop(1), n[0].get());  // a thief: the oldest
  EXPECT_EQ(pop(0), n[3].get());  // the owner: the newest
  EXPECT_EQ(pop(0), n[2].get());
  EXPECT_EQ(pop(1), n[1].get());
  EXPECT_EQ(pop(0), nullptr);
  EXPECT_EQ(pop(1), nullptr);
}

// Records every node a policy reports stolen (weft::trace_steal), while it lives.
class StealLog {
 public:
  StealLog() { internal::steal_trace_hook.store(&record, std::memory_order_relaxed); }
  ~StealLog() {
    internal::steal_trace_hook.store(nullptr, std::memory_order_relaxed);
    entries().clear();
  }
  struct Entry {
    std::uint64_t task_id;
    int victim, thief;
  };
  static std::vector<Entry>& entries() {
    static std::vector<Entry> log;
    return log;
  }

 private:
  static void record(const SchedNode* node, int victim, int thief) {
    entries().push_back({node->task_id, victim, thief});
  }
};

TEST_F(WorkStealingPolicyTest, AThiefTakesHalfOfWhatIsLeftOldestFirst) {
  StealLog log;
  auto n = make_nodes(21);
  for (auto& node : n) push(node.get(), PushReason::kSpawned, 0);
  EXPECT_EQ(pop(1), n[0].get());  // the oldest, and half of the 20 left behind it
  ASSERT_EQ(StealLog::entries().size(), 11u);
  for (int i = 0; i <= 10; ++i) {
    EXPECT_EQ(StealLog::entries()[i].task_id, static_cast<std::uint64_t>(i));
    EXPECT_EQ(StealLog::entries()[i].victim, 0);
    EXPECT_EQ(StealLog::entries()[i].thief, 1);
  }
  // The rest of the batch now sits in the thief's deque, newest first at its LIFO end (the
  // older ones where the next thief looks), and comes out with no further visit to the victim,
  // which keeps the newer half.
  for (int i = 10; i >= 1; --i) ASSERT_EQ(pop(1), n[i].get()) << i;
  EXPECT_EQ(StealLog::entries().size(), 11u);
  for (int i = 20; i >= 11; --i) ASSERT_EQ(pop(0), n[i].get()) << i;
  EXPECT_EQ(pop(0), nullptr);
  EXPECT_EQ(pop(1), nullptr);
}

TEST_F(WorkStealingPolicyTest, AThiefTakesAtMostABatch) {
  const int batch = WorkStealingPolicy::kStealBatch;
  // Half of what is left would be more than a batch. (Few enough that no fairness pop, every
  // kFairnessInterval-th, comes in between.)
  StealLog log;
  auto n = make_nodes(2 * batch + 8);
  for (auto& node : n) push(node.get(), PushReason::kSpawned, 0);
  EXPECT_EQ(pop(1), n[0].get());
  EXPECT_EQ(StealLog::entries().size(), static_cast<std::size_t>(batch));
  // The victim kept everything after the batch, newest first at its end.
  for (int i = 2 * batch + 7; i >= batch; --i) ASSERT_EQ(pop(0), n[i].get()) << i;
  for (int i = batch - 1; i >= 1; --i) ASSERT_EQ(pop(1), n[i].get()) << i;
  EXPECT_EQ(pop(0), nullptr);
  EXPECT_EQ(pop(1), nullptr);
}

// A node a thief has taken for its own deque (the rest of a batch: steal_more) and not yet put
// there is in no queue. A look by another worker meanwhile must wait for it rather than report
// nothing (the Policy contract's progress rule): a worker that believed it would go to sleep
// with the node queued and nobody awake to run it. The thief is held at that moment through
// the steal trace hook, which runs between taking the node and pushing it. It lets go once the
// look has returned, or 200 ms after the look began: a look that waits for it (as it must) is
// not left waiting forever, and one that does not wait has returned by then.
namespace transit {
std::atomic<int> steals{0};
std::atomic<bool> holding{false};
std::atomic<bool> look_started{false};
std::atomic<bool> look_done{false};
void hold_first_batch_node(const SchedNode* /*node*/, int /*victim*/, int /*thief*/) {
  if (steals.fetch_add(1) != 1) return;  // the first steal is the node the thief runs
  holding.store(true, std::memory_order_release);
  using Clock = std::chrono::steady_clock;
  const auto give_up = Clock::now() + std::chrono::seconds(10);
  Clock::time_point let_go = Clock::time_point::max();
  while (!look_done.load(std::memory_order_acquire) && Clock::now() < give_up) {
    if (let_go == Clock::time_point::max() && look_started.load(std::memory_order_acquire)) {
      let_go = Clock::now() + std::chrono::milliseconds(200);
    }
    if (Clock::now() >= let_go) break;
    std::this_thread::yield();
  }
}
}  // namespace transit

TEST(WorkStealingPolicyTransit, ALookWaitsForANodeAThiefIsMovingToItsDeque) {
  Topology t;
  t.pool_of = {Pool::kDefault, Pool::kDefault, Pool::kDefault};
  WorkStealingPolicy policy;
  policy.init(t);
  auto n = make_nodes(3);
  for (auto& node : n) policy.push(node.get(), PushInfo{PushReason::kSpawned, 0});
  transit::steals = 0;
  transit::holding = false;
  transit::look_started = false;
  transit::look_done = false;
  internal::steal_trace_hook.store(&transit::hold_first_batch_node);
  SchedNode* thief_got = nullptr;
  // Worker 1 steals n0 to run and n1 (half of the two left) for its deque, and is held there.
  std::thread thief([&] { thief_got = policy.pop(1); });
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!transit::holding.load(std::memory_order_acquire) &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::yield();
  }
  const bool held = transit::holding.load();
  // This thread plays workers 0 and 2. The victim takes its last node, n2; then worker 2 looks.
  SchedNode* owner_got = policy.pop(0);
  transit::look_started.store(true, std::memory_order_release);
  SchedNode* looker_got = policy.pop(2);
  transit::look_done.store(true, std::memory_order_release);
  thief.join();
  internal::steal_trace_hook.store(nullptr);
  ASSERT_TRUE(held) << "the thief never took a second node";
  EXPECT_EQ(thief_got, n[0].get());
  EXPECT_EQ(owner_got, n[2].get());
  EXPECT_EQ(looker_got, n[1].get())
      << "a look while the thief was moving n1 into its deque found nothing";
}

TEST_F(WorkStealingPolicyTest, WokenTaskRunsNextAndDisplacedOneStaysLocal) {
  auto n = make_nodes(4);
  push(n[0].get(), PushReason::kSpawned, 0);
  push(n[1].get(), PushReason::kWoken, 0);
  push(n[2].get(), PushReason::kWoken, 0);  // n[1] moves from runnext to the deque
  EXPECT_EQ(pop(0), n[2].get());
  EXPECT_EQ(pop(0), n[1].get());
  EXPECT_EQ(pop(0), n[0].get());
  EXPECT_EQ(pop(0), nullptr);
}

// A woken task is held for the worker that woke it: no idle worker is woken for it, and thieves
// pass it over (saying so through holds_back) until it has waited kRunnextHold, then take it
// (its owner may be busy for long: nothing may be stranded).
TEST_F(WorkStealingPolicyTest, ThievesLeaveRunnextToItsOwnerForAWhile) {
  auto n = make_nodes(2);
  EXPECT_TRUE(policy_.holds_for_pusher(*n[0], PushInfo{PushReason::kWoken, 0}));
  EXPECT_FALSE(policy_.holds_for_pusher(*n[1], PushInfo{PushReason::kSpawned, 0}));
  EXPECT_FALSE(policy_.holds_back(1));
  push(n[0].get(), PushReason::kWoken, 0);
  push(n[1].get(), PushReason::kSpawned, 0);
  EXPECT_EQ(pop(1), n[1].get());  // the deque first
  const auto pushed = std::chrono::steady_clock::now();
  EXPECT_EQ(pop(1), nullptr);     // then the runnext task, but not yet
  EXPECT_TRUE(policy_.holds_back(1));
  EXPECT_FALSE(policy_.holds_back(2));  // another pool's worker may not run it anyway
  SchedNode* got = nullptr;
  while (got == nullptr) {
    ASSERT_LT(std::chrono::steady_clock::now() - pushed, std::chrono::seconds(1));
    got = pop(1);
  }
  EXPECT_EQ(got, n[0].get());
  EXPECT_GE(std::chrono::steady_clock::now() - pushed, WorkStealingPolicy::kRunnextHold);
  EXPECT_FALSE(policy_.holds_back(1));
  EXPECT_EQ(pop(0), nullptr);
}

// The owner takes its runnext task back at any time; a thief that saw an earlier task there
// does not count that one's wait for the next.
TEST_F(WorkStealingPolicyTest, EachRunnextTaskGetsItsOwnHold) {
  auto n = make_nodes(2);
  push(n[0].get(), PushReason::kWoken, 0);
  EXPECT_EQ(pop(1), nullptr);
  std::this_thread::sleep_for(2 * WorkStealingPolicy::kRunnextHold);
  EXPECT_EQ(pop(0), n[0].get());
  push(n[1].get(), PushReason::kWoken, 0);
  EXPECT_EQ(pop(1), nullptr);  // a new push: its hold starts now
  EXPECT_EQ(pop(0), n[1].get());
}

// A woken task that displaces the runnext task is not held: the displaced one goes to the
// deque, where thieves take it at once, and a worker should be woken for it.
TEST_F(WorkStealingPolicyTest, APushThatDisplacesRunnextIsNotHeld) {
  auto n = make_nodes(2);
  push(n[0].get(), PushReason::kWoken, 0);
  EXPECT_FALSE(policy_.holds_for_pusher(*n[1], PushInfo{PushReason::kWoken, 0}));
  push(n[1].get(), PushReason::kWoken, 0);
  EXPECT_EQ(pop(1), n[0].get());
  EXPECT_EQ(pop(0), n[1].get());
  // Bound tasks, pushes from outside and from another pool go elsewhere: never held.
  n[0]->affinity = 0;
  EXPECT_FALSE(policy_.holds_for_pusher(*n[0], PushInfo{PushReason::kWoken, 0}));
  EXPECT_FALSE(policy_.holds_for_pusher(*n[1], PushInfo{PushReason::kWoken, -1}));
  EXPECT_FALSE(policy_.holds_for_pusher(*n[1], PushInfo{PushReason::kWoken, 2}));
}

TEST_F(WorkStealingPolicyTest, YieldedTasksGoBehindOtherLocalWork) {
  auto n = make_nodes(3);
  push(n[0].get(), PushReason::kSpawned, 0);
  push(n[1].get(), PushReason::kYielded, 0);
  push(n[2].get(), PushReason::kSpawned, 0);
  EXPECT_EQ(pop(0), n[2].get());
  EXPECT_EQ(pop(0), n[0].get());
  EXPECT_EQ(pop(0), n[1].get());
}

TEST_F(WorkStealingPolicyTest, StickyNodesAreNeverStolen) {
  auto n = make_nodes(3);
  for (auto& node : n) {
    node->affinity = 0;
    push(node.get(), PushReason::kSpawned, 0);
  }
  EXPECT_EQ(pop(1), nullptr);
  // Pushed from another worker or from outside, they still go to worker 0 only.
  auto m = make_nodes(2);
  m[0]->affinity = 0;
  m[1]->affinity = 0;
  push(m[0].get(), PushReason::kWoken, 1);
  push(m[1].get(), PushReason::kWoken, -1);
  EXPECT_EQ(pop(1), nullptr);
  std::vector<SchedNode*> got;
  while (SchedNode* x = pop(0)) got.push_back(x);
  EXPECT_EQ(got, (std::vector<SchedNode*>{n[0].get(), n[1].get(), n[2].get(), m[0].get(),
                                          m[1].get()}));
}

TEST_F(WorkStealingPolicyTest, PoolsStayApart) {
  auto interactive = make_nodes(2, Pool::kInteractive);
  push(interactive[0].get(), PushReason::kSpawned, 0);  // from a default worker
  push(interactive[1].get(), PushReason::kWoken, -1);   // from outside
  auto deflt = make_nodes(2);
  push(deflt[0].get(), PushReason::kSpawned, -1);
  push(deflt[1].get(), PushReason::kWoken, 0);
  EXPECT_EQ(pop(2), interactive[0].get());
  EXPECT_EQ(pop(2), interactive[1].get());
  EXPECT_EQ(pop(2), nullptr);  // interactive workers never take default-pool nodes
  EXPECT_EQ(pop(1), deflt[0].get());
  EXPECT_EQ(pop(0), deflt[1].get());
  EXPECT_EQ(pop(1), nullptr);
}

// A worker that spawns far more than the deque's first ring holds keeps them all: its own
// pops see them newest first, a thief's oldest first, and every one exactly once.
TEST_F(WorkStealingPolicyTest, ManySpawnsStayInTheirWorkersDeque) {
  const int n = 3 * static_cast<int>(ChaseLevDeque::kInitialCapacity);
  auto nodes = make_nodes(n);
  for (auto& node : nodes) push(node.get(), PushReason::kSpawned, 0);
  EXPECT_EQ(pop(1), nodes[0].get());
  EXPECT_EQ(pop(0), nodes[n - 1].get());
  std::vector<int> seen(n);
  seen[0] = seen[n - 1] = 1;
  int taken = 2;
  for (int i = 0; i < n / 2; ++i) {
    SchedNode* x = pop(1);
    ASSERT_NE(x, nullptr);
    ++seen[x->task_id];
    ++taken;
  }
  while (SchedNode* x = pop(0)) {
    ++seen[x->task_id];
    ++taken;
  }
  EXPECT_EQ(taken, n);
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), n);
}

// A runnext ping-pong cannot starve a yielded task.
TEST_F(WorkStealingPolicyTest, FairnessServesOldWorkAmidNewWork) {
  auto old = make_nodes(1);
  push(old[0].get(), PushReason::kYielded, 0);
  auto fresh = make_nodes(2);
  int pops = 0;
  for (;;) {
    push(fresh[pops % 2].get(), PushReason::kWoken, 0);
    SchedNode* x = pop(0);
    ++pops;
    if (x == old[0].get()) break;
    ASSERT_LE(pops, 4 * WorkStealingPolicy::kFairnessInterval) << "the yielded task starved";
    // x is runnable again at once: as if it woke its partner and waited for it.
  }
  SUCCEED() << "served after " << pops << " pops";
}

// Nor can a stream of fresh spawns, each run at once LIFO, starve the oldest task of the deque
// on a worker with nobody to steal it (the other worker of the pool never pops here).
TEST_F(WorkStealingPolicyTest, FairnessServesTheDequesOldestAmidFreshSpawns) {
  auto old = make_nodes(1);
  push(old[0].get(), PushReason::kSpawned, 0);
  auto fresh = make_nodes(1);
  const int limit =
      WorkStealingPolicy::kFairnessInterval * (WorkStealingPolicy::kDequeFairnessRounds + 1);
  int pops = 0;
  for (;;) {
    push(fresh[0].get(), PushReason::kSpawned, 0);
    SchedNode* x = pop(0);
    ++pops;
    if (x == old[0].get()) break;
    ASSERT_EQ(x, fresh[0].get());
    ASSERT_LE(pops, limit) << "the deque's oldest task starved";
  }
  EXPECT_EQ(pop(0), fresh[0].get());
  EXPECT_EQ(pop(0), nullptr);
}

// A worker alone in its pool takes the unshared paths (no thieves): the same order.
TEST(WorkStealingPolicyAlone, SameOrderForAWorkerAloneInItsPool) {
  WorkStealingPolicy policy;
  Topology t;
  t.pool_of = {Pool::kDefault, Pool::kInteractive};
  policy.init(t);
  auto n = make_nodes(5);
  auto push = [&](SchedNode* node, PushReason r, int from) { policy.push(node, {r, from}); };
  push(n[0].get(), PushReason::kSpawned, 0);
  push(n[1].get(), PushReason::kYielded, 0);
  push(n[2].get(), PushReason::kSpawned, 0);
  push(n[3].get(), PushReason::kWoken, 0);
  push(n[4].get(), PushReason::kYielded, 0);
  std::vector<SchedNode*> got;
  while (SchedNode* x = policy.pop(0)) got.push_back(x);
  EXPECT_EQ(got, (std::vector<SchedNode*>{n[3].get(), n[2].get(), n[0].get(), n[1].get(),
                                          n[4].get()}));
  EXPECT_EQ(policy.pop(1), nullptr);
}

}  // namespace
}  // namespace weft
