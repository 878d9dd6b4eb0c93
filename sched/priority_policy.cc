#include "weft/sched/priority_policy.h"

#include <algorithm>
#include <mutex>

namespace weft {
namespace {

// Arrival numbers fit in the low 56 bits of a key (2^56 pushes: centuries at any real rate).
constexpr int kSeqBits = 56;
constexpr std::uint64_t kSeqMask = (std::uint64_t{1} << kSeqBits) - 1;
static_assert(PriorityPolicy::kLevels <= 32, "a level is a bit of LeveledQueue::nonempty_");

}  // namespace

int PriorityPolicy::level_of(int priority) {
  return std::clamp(priority, kLowestPriority, kHighestPriority) - kLowestPriority;
}

std::uint64_t PriorityPolicy::key_of(int level, std::uint64_t seq) {
  return (static_cast<std::uint64_t>(level + 1) << kSeqBits) | (kSeqMask - (seq & kSeqMask));
}

template <bool kShared>
void PriorityPolicy::LeveledQueue<kShared>::publish_key() {
  std::uint64_t key = 0;
  if (nonempty_ != 0) {
    const int best = 31 - __builtin_clz(nonempty_);
    key = key_of(best, levels_[best].front()->policy_word);
  }
  key_.store(key, std::memory_order_release);
}

template <bool kShared>
void PriorityPolicy::LeveledQueue<kShared>::push(SchedNode* node, int level) {
  if constexpr (kShared) lock_.lock();
  levels_[level].push_back(node);
  nonempty_ |= 1u << level;
  publish_key();
  if constexpr (kShared) lock_.unlock();
}

template <bool kShared>
SchedNode* PriorityPolicy::LeveledQueue<kShared>::pop() {
  if (key() == 0) return nullptr;
  if constexpr (kShared) {
    std::lock_guard<SpinLock> guard(lock_);
    return pop_locked();
  } else {
    return pop_locked();
  }
}

template <bool kShared>
SchedNode* PriorityPolicy::LeveledQueue<kShared>::pop_locked() {
  if (nonempty_ == 0) return nullptr;
  int chosen = 31 - __builtin_clz(nonempty_);  // the highest level
  if (++pops_ % kAgingInterval == 0) {
    // The oldest head of any level.
    std::uint64_t oldest = UINT64_MAX;
    for (int level = 0; level < kLevels; ++level) {
      const SchedNode* head = levels_[level].front();
      if (head != nullptr && head->policy_word < oldest) {
        oldest = head->policy_word;
        chosen = level;
      }
    }
  }
  SchedNode* n = levels_[chosen].pop_front();
  if (levels_[chosen].empty()) nonempty_ &= ~(1u << chosen);
  publish_key();
  return n;
}

void PriorityPolicy::init(const Topology& topology) {
  topology_ = topology;
  for (int p = 0; p < kNumPools; ++p) pool_size_[p] = topology.count(static_cast<Pool>(p));
  pool_queues_ = std::make_unique<LeveledQueue<true>[]>(kNumPools);
  outside_ = std::make_unique<OutsideQueue[]>(kNumPools);
  workers_ = std::make_unique<PerWorker[]>(topology.num_workers());
  for (int w = 0; w < topology.num_workers(); ++w) {
    workers_[w].seen.resize(static_cast<std::size_t>(topology.num_workers()));
  }
}

// A task woken by a worker of its pool, free to run on any of the pool's several workers, into
// that worker's empty slot.
bool PriorityPolicy::holds(const SchedNode& node, int from_worker) const {
  const int pool = static_cast<int>(node.pool);
  return from_worker >= 0 && node.affinity < 0 && pool_size_[pool] > 1 &&
         topology_.pool_of[from_worker] == node.pool && !workers_[from_worker].held.maybe_held();
}

bool PriorityPolicy::holds_for_pusher(const SchedNode& node, const PushInfo& info) const {
  return info.reason == PushReason::kWoken && holds(node, info.from_worker);
}

bool PriorityPolicy::holds_back(int worker) const {
  const Pool pool = topology_.pool_of[worker];
  return pool_holds_back(worker, topology_.first(pool), pool_size_[static_cast<int>(pool)],
                         [this](int v) -> const HeldSlot& { return workers_[v].held; });
}

SchedNode* PriorityPolicy::steal_held(int worker) {
  const Pool pool = topology_.pool_of[worker];
  return steal_held_in_pool(worker, topology_.first(pool), pool_size_[static_cast<int>(pool)],
                            workers_[worker].seen, kHold,
                            [this](int v) -> HeldSlot& { return workers_[v].held; });
}

void PriorityPolicy::push(SchedNode* node, const PushInfo& info) {
  const std::uint64_t seq = seq_.load(std::memory_order_relaxed);
  seq_.store(seq + 1, std::memory_order_relaxed);
  node->policy_word = seq;
  const int level = level_of(node->priority);
  const int pool = static_cast<int>(node->pool);
  const int w = info.from_worker;
  if (w >= 0 && (node->affinity == w || (node->affinity < 0 && pool_size_[pool] == 1 &&
                                         topology_.pool_of[w] == node->pool))) {
    workers_[w].local.push(node, level);  // on worker w's own thread
  } else if (info.reason == PushReason::kWoken && holds(*node, w)) {
    workers_[w].held.put(node, key_of(level, seq));
  } else if (node->affinity >= 0) {
    workers_[node->affinity].bound.push(node, level);
  } else if (w < 0) {
    outside_[pool].nodes.push(node);
  } else {
    pool_queues_[pool].push(node, level);
  }
}

void PriorityPolicy::drain_outside(int pool) {
  OutsideQueue& q = outside_[pool];
  // A worker that finds another one draining does not wait for it, but leaves it a note to look
  // again once it has unlocked. Without the note, a push that landed after the drainer's last
  // pop was left to nobody: its pusher woke this worker for it, this worker found the queue
  // locked and went back to sleep, and so did the drainer (a burst from a plain thread lost
  // two tasks, once, under TSan). "Note up, then look at the lock" against the drainer's
  // "unlock, then take the note": with a fence on each side one of the two sees the other. The
  // note is released and taken with acquire, so the drainer then sees what the noter had seen.
  // A push still in flight when the queue is drained is followed by its pusher's wake-up.
  if (!q.drain.try_lock()) {
    q.again.store(true, std::memory_order_release);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!q.drain.try_lock()) return;
  }
  do {
    while (SchedNode* n = q.nodes.pop()) pool_queues_[pool].push(n, level_of(n->priority));
    q.drain.unlock();
    std::atomic_thread_fence(std::memory_order_seq_cst);
  } while (q.again.exchange(false, std::memory_order_acquire) && q.drain.try_lock());
}

SchedNode* PriorityPolicy::pop(int worker) {
  PerWorker& me = workers_[worker];
  const int pool = static_cast<int>(topology_.pool_of[worker]);
  if (outside_[pool].nodes.maybe_nonempty()) drain_outside(pool);
  auto& shared = pool_queues_[pool];
  // The best head first (the keys may be stale, so then the others).
  const std::uint64_t local_key = me.local.key();
  const std::uint64_t bound_key = me.bound.key();
  const std::uint64_t shared_key = shared.key();
  // One load and a branch that a worker alone in its pool always predicts: it never holds.
  if (__builtin_expect(me.held.maybe_held(), 0)) {
    const std::uint64_t held_key = me.held.order();
    if (held_key >= local_key && held_key >= bound_key && held_key >= shared_key) {
      if (SchedNode* n = me.held.take()) return n;
    }
  }
  if (local_key != 0 && local_key >= bound_key && local_key >= shared_key) {
    if (SchedNode* n = me.local.pop()) return n;
  }
  if (bound_key != 0 && bound_key >= shared_key) {
    if (SchedNode* n = me.bound.pop()) return n;
  }
  if (SchedNode* n = shared.pop()) return n;
  if (SchedNode* n = me.bound.pop()) return n;
  if (SchedNode* n = me.local.pop()) return n;
  if (SchedNode* n = me.held.take()) return n;
  return steal_held(worker);
}

}  // namespace weft
