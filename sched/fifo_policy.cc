#include "weft/sched/fifo_policy.h"

#include <mutex>

namespace weft {

void FifoPolicy::init(const Topology& topology) {
  topology_ = topology;
  pool_queues_ = std::make_unique<LockedQueue[]>(kNumPools);
  worker_queues_ = std::make_unique<LockedQueue[]>(topology.num_workers());
}

void FifoPolicy::push_locked(LockedQueue& q, SchedNode* node) {
  std::lock_guard<SpinLock> guard(q.lock);
  if (q.queue.empty()) q.front_seq.store(node->policy_word, std::memory_order_relaxed);
  q.queue.push_back(node);
}

SchedNode* FifoPolicy::pop_locked(LockedQueue& q) {
  std::lock_guard<SpinLock> guard(q.lock);
  SchedNode* n = q.queue.pop_front();
  SchedNode* front = q.queue.front();
  q.front_seq.store(front == nullptr ? UINT64_MAX : front->policy_word, std::memory_order_relaxed);
  return n;
}

void FifoPolicy::push(SchedNode* node, const PushInfo&) {
  node->policy_word = seq_.fetch_add(1, std::memory_order_relaxed);
  if (node->affinity >= 0) {
    push_locked(worker_queues_[node->affinity], node);
  } else {
    push_locked(pool_queues_[static_cast<int>(node->pool)], node);
  }
}

SchedNode* FifoPolicy::pop(int worker) {
  LockedQueue& mine = worker_queues_[worker];
  LockedQueue& shared = pool_queues_[static_cast<int>(topology_.pool_of[worker])];
  // Older head first; the hints may be stale, so fall back to the other queue when empty.
  const bool mine_first = mine.front_seq.load(std::memory_order_relaxed) <=
                          shared.front_seq.load(std::memory_order_relaxed);
  LockedQueue& first = mine_first ? mine : shared;
  LockedQueue& second = mine_first ? shared : mine;
  if (SchedNode* n = pop_locked(first)) return n;
  return pop_locked(second);
}

}  // namespace weft
