#include "weft/sched/fifo_policy.h"

#include <mutex>

namespace weft {

void FifoPolicy::init(const Topology& topology) {
  topology_ = topology;
  pool_queues_ = std::make_unique<LockedQueue[]>(kNumPools);
  worker_queues_ = std::make_unique<WorkerQueues[]>(topology.num_workers());
  for (int p = 0; p < kNumPools; ++p) pool_size_[p] = topology.count(static_cast<Pool>(p));
  for (int w = 0; w < topology.num_workers(); ++w) {
    worker_queues_[w].seen.resize(static_cast<std::size_t>(topology.num_workers()));
    if (pool_size_[static_cast<int>(topology.pool_of[w])] > 1) {
      worker_queues_[w].held_check_in = kBusyHeldCheckPops;
    }
  }
}

// A task woken by a worker of its pool, free to run on any of the pool's several workers, into
// that worker's empty slot.
bool FifoPolicy::holds(const SchedNode& node, int from_worker) const {
  const int pool = static_cast<int>(node.pool);
  return from_worker >= 0 && node.affinity < 0 && pool_size_[pool] > 1 &&
         topology_.pool_of[from_worker] == node.pool &&
         !worker_queues_[from_worker].held.maybe_held();
}

bool FifoPolicy::holds_for_pusher(const SchedNode& node, const PushInfo& info) const {
  return info.reason == PushReason::kWoken && holds(node, info.from_worker);
}

bool FifoPolicy::holds_back(int worker) const {
  const Pool pool = topology_.pool_of[worker];
  return pool_holds_back(worker, topology_.first(pool), pool_size_[static_cast<int>(pool)],
                         [this](int v) -> const HeldSlot& { return worker_queues_[v].held; });
}

SchedNode* FifoPolicy::steal_held(int worker, std::chrono::steady_clock::duration hold) {
  const Pool pool = topology_.pool_of[worker];
  return steal_held_in_pool(worker, topology_.first(pool), pool_size_[static_cast<int>(pool)],
                            worker_queues_[worker].seen, hold,
                            [this](int v) -> HeldSlot& { return worker_queues_[v].held; });
}

bool FifoPolicy::has_work_for_others(int worker) const {
  // Everything else another worker may take is held (holds_back()).
  return pool_queues_[static_cast<int>(topology_.pool_of[worker])].front_seq.load(
             std::memory_order_seq_cst) != UINT64_MAX;
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

inline void FifoPolicy::WorkerQueues::push_own(SchedNode* node) {
  if (__builtin_expect(!overflow.empty() || local.size() >= kSpillAt, 0)) {
    overflow.push_back(node);
  } else {
    local.push_back(node);
  }
}

inline SchedNode* FifoPolicy::WorkerQueues::own_front() const {
  SchedNode* n = local.front();
  return n != nullptr ? n : overflow.front();
}

inline SchedNode* FifoPolicy::WorkerQueues::pop_own() {
  if (SchedNode* n = local.pop_front()) return n;
  return overflow.pop_front();
}

void FifoPolicy::push(SchedNode* node, const PushInfo& info) {
  const std::uint64_t stamp = internal::next_arrival(stamp_, info.from_worker);
  node->policy_word = stamp;
  const int pool = static_cast<int>(node->pool);
  // Work only the pushing worker may run (bound to it, or its pool has no other worker) goes
  // to its own list: it is on its own thread, so no other thread touches that list.
  const int w = info.from_worker;
  if (w >= 0 && (node->affinity == w ||
                 (node->affinity < 0 && pool_size_[pool] == 1 && topology_.pool_of[w] == node->pool))) {
    worker_queues_[w].push_own(node);
  } else if (info.reason == PushReason::kWoken && holds(*node, w)) {
    worker_queues_[w].held.put(node, stamp);
  } else if (node->affinity >= 0) {
    worker_queues_[node->affinity].remote.push(node);
  } else {
    push_locked(pool_queues_[pool], node);
  }
}

SchedNode* FifoPolicy::pop(int worker) {
  WorkerQueues& mine = worker_queues_[worker];
  LockedQueue& shared = pool_queues_[static_cast<int>(topology_.pool_of[worker])];
  // A busy worker never reaches pop_ordered's last resort: it looks at the held tasks here.
  if (__builtin_expect(--mine.held_check_in == 0, 0)) {
    mine.held_check_in = kBusyHeldCheckPops;
    if (SchedNode* n = steal_held(worker, kBusyWorkerHold)) return n;
  }
  // The common cases -- tasks taking turns on their worker, or a burst of its own spawns
  // running -- with no stamps to compare and no registers to save for the rest: the worker's
  // own tasks are the oldest when nothing is anywhere else. seq_cst: as in pop_ordered().
  if ((mine.local.front() != nullptr || !mine.overflow.empty()) &&
      shared.front_seq.load(std::memory_order_seq_cst) == UINT64_MAX &&
      mine.remote.peek() == nullptr && !mine.held.maybe_held()) {
    return mine.pop_own();
  }
  return pop_ordered(worker, mine, shared);
}

SchedNode* FifoPolicy::pop_ordered(int worker, WorkerQueues& mine, LockedQueue& shared) {
  // The oldest of three heads. seq_cst: see MpscNodeQueue; the hint lets an empty shared
  // queue cost no lock.
  const std::uint64_t shared_stamp = shared.front_seq.load(std::memory_order_seq_cst);
  SchedNode* local = mine.own_front();
  SchedNode* remote = mine.remote.peek();
  const std::uint64_t local_stamp = local != nullptr ? local->policy_word : UINT64_MAX;
  const std::uint64_t remote_stamp = remote != nullptr ? remote->policy_word : UINT64_MAX;
  // One load and a branch that a worker alone in its pool always predicts: it never holds.
  if (__builtin_expect(mine.held.maybe_held(), 0)) {
    const std::uint64_t held_stamp = mine.held.order();
    if (held_stamp <= local_stamp && held_stamp <= remote_stamp && held_stamp <= shared_stamp) {
      if (SchedNode* n = mine.held.take()) return n;
    }
  }
  if (local_stamp <= remote_stamp && local_stamp <= shared_stamp && local != nullptr) {
    return mine.pop_own();
  }
  if (remote_stamp <= shared_stamp && remote != nullptr) {
    if (SchedNode* n = mine.remote.pop()) return n;
  }
  if (shared_stamp != UINT64_MAX) {
    if (SchedNode* n = pop_locked(shared)) return n;
  }
  if (SchedNode* n = mine.pop_own()) return n;
  if (SchedNode* n = mine.remote.pop()) return n;
  if (SchedNode* n = mine.held.take()) return n;
  return steal_held(worker, kHold);
}

}  // namespace weft
