#include "weft/sched/fifo_policy.h"

#include <mutex>

namespace weft {

void FifoPolicy::init(const Topology& topology) {
  topology_ = topology;
  pool_queues_ = std::make_unique<LockedQueue[]>(kNumPools);
  worker_queues_ = std::make_unique<StickyQueue[]>(topology.num_workers());
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
  const std::uint64_t stamp = stamp_.load(std::memory_order_relaxed);
  stamp_.store(stamp + 1, std::memory_order_relaxed);
  node->policy_word = stamp;
  if (node->affinity >= 0) {
    worker_queues_[node->affinity].queue.push(node);
  } else {
    push_locked(pool_queues_[static_cast<int>(node->pool)], node);
  }
}

SchedNode* FifoPolicy::pop(int worker) {
  MpscNodeQueue& mine = worker_queues_[worker].queue;
  LockedQueue& shared = pool_queues_[static_cast<int>(topology_.pool_of[worker])];
  // seq_cst: see MpscNodeQueue; the hint lets an empty shared queue cost no lock.
  const std::uint64_t shared_front = shared.front_seq.load(std::memory_order_seq_cst);
  SchedNode* sticky = mine.peek();
  if (sticky != nullptr && sticky->policy_word <= shared_front) {
    if (SchedNode* n = mine.pop()) return n;
  }
  if (shared_front != UINT64_MAX) {
    if (SchedNode* n = pop_locked(shared)) return n;
  }
  return mine.pop();
}

}  // namespace weft
