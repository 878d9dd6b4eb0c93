#include "weft/plugins/edf_policy.h"

#include <cstdint>
#include <mutex>

namespace weft::plugins {

std::int64_t EdfPolicy::deadline_after(std::chrono::nanoseconds from_now) {
  const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
  // Saturating: a far deadline (nanoseconds::max() for "whenever") must stay the latest, not
  // wrap to the most urgent.
  std::int64_t t;
  if (__builtin_add_overflow(now, from_now.count(), &t)) {
    t = from_now.count() > 0 ? INT64_MAX : INT64_MIN;
  }
  return t == kNoDeadline ? kNoDeadline + 1 : t;
}

bool EdfPolicy::before(const SchedNode* a, const SchedNode* b) {
  const bool a_has = a->policy_arg != kNoDeadline;
  const bool b_has = b->policy_arg != kNoDeadline;
  if (a_has != b_has) return a_has;
  if (a_has && a->policy_arg != b->policy_arg) return a->policy_arg < b->policy_arg;
  return a->policy_word < b->policy_word;
}

void EdfPolicy::init(const Topology& topology) {
  topology_ = topology;
  pools_ = std::make_unique<Queues[]>(kNumPools);
  workers_ = std::make_unique<Queues[]>(topology.num_workers());
}

void EdfPolicy::push(SchedNode* node, const PushInfo& /*info*/) {
  // The arrival number breaks ties, so equal deadlines (and no deadline) are first come first
  // served; a node pushed again (a yield, a wake-up) gets a new one.
  node->policy_word = arrivals_.fetch_add(1, std::memory_order_relaxed);
  Queues& q = node->affinity >= 0 ? workers_[node->affinity]
                                  : pools_[static_cast<int>(node->pool)];
  std::lock_guard<SpinLock> guard(q.lock);
  if (node->policy_arg != kNoDeadline) {
    q.deadlined.push(node);
  } else {
    q.undeadlined.push_back(node);
  }
}

SchedNode* EdfPolicy::pop(int worker) {
  // Both locks, always the worker's first: push holds one lock at a time, so no deadlock.
  Queues& mine = workers_[worker];
  Queues& pool = pools_[static_cast<int>(topology_.pool_of[worker])];
  std::lock_guard<SpinLock> mine_guard(mine.lock);
  std::lock_guard<SpinLock> pool_guard(pool.lock);
  SchedNode* a = mine.best();
  SchedNode* b = pool.best();
  if (a == nullptr && b == nullptr) return nullptr;
  if (b == nullptr || (a != nullptr && before(a, b))) return mine.pop_best();
  return pool.pop_best();
}

bool EdfPolicy::has_work_for_others(int worker) const {
  // Another worker of the pool can take only what is in the pool's queues.
  Queues& pool = pools_[static_cast<int>(topology_.pool_of[worker])];
  std::lock_guard<SpinLock> guard(pool.lock);
  return pool.best() != nullptr;
}

}  // namespace weft::plugins
