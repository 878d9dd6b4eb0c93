#include "weft/plugins/lifo_policy.h"

#include <mutex>

namespace weft::plugins {

// policy_word ranks a queued node: larger runs sooner. Fresh and woken nodes rank above all
// yielded ones, newest first; yielded ones oldest first. So each deque's front is its best.
constexpr std::uint64_t kFresh = std::uint64_t{1} << 63;

void LifoPolicy::init(const Topology& topology) {
  topology_ = topology;
  pools_ = std::make_unique<Deque[]>(kNumPools);
  workers_ = std::make_unique<Deque[]>(topology.num_workers());
}

void LifoPolicy::push(SchedNode* node, const PushInfo& info) {
  const std::uint64_t stamp = stamp_.fetch_add(1, std::memory_order_relaxed);
  const bool yielded =
      info.reason == PushReason::kYielded || info.reason == PushReason::kYieldedTo;
  node->policy_word = yielded ? kFresh - 1 - stamp : kFresh | stamp;
  // Sticky tasks go to their worker's deque: only that worker's pop() looks there.
  Deque& d = node->affinity >= 0 ? workers_[node->affinity]
                                 : pools_[static_cast<int>(node->pool)];
  std::lock_guard<SpinLock> guard(d.lock);
  if (yielded) {
    d.nodes.push_back(node);
  } else {
    d.nodes.push_front(node);
  }
}

SchedNode* LifoPolicy::pop(int worker) {
  // Both locks, the worker's first; push holds only one at a time, so this cannot deadlock.
  Deque& mine = workers_[worker];
  Deque& pool = pools_[static_cast<int>(topology_.pool_of[worker])];
  std::lock_guard<SpinLock> mine_guard(mine.lock);
  std::lock_guard<SpinLock> pool_guard(pool.lock);
  SchedNode* a = mine.nodes.front();
  SchedNode* b = pool.nodes.front();
  if (a != nullptr && (b == nullptr || a->policy_word > b->policy_word)) {
    return mine.nodes.pop_front();
  }
  return pool.nodes.pop_front();  // nullptr when both are empty
}

bool LifoPolicy::has_work_for_others(int worker) const {
  // Another worker of the pool can take only what is in the pool's deque.
  Deque& pool = pools_[static_cast<int>(topology_.pool_of[worker])];
  std::lock_guard<SpinLock> guard(pool.lock);
  return !pool.nodes.empty();
}

}  // namespace weft::plugins
