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

namespace {
// The level of a nonzero key_of().
int level_of_key(std::uint64_t key) { return static_cast<int>(key >> kSeqBits) - 1; }
}  // namespace

template <bool kShared>
inline void PriorityPolicy::LeveledQueue<kShared>::publish_key() {
  std::uint64_t key = 0;
  if (nonempty_ != 0) {
    const int best = 31 - __builtin_clz(nonempty_);
    key = key_of(best, levels_[best].front()->policy_word);
  }
  key_.store(key, std::memory_order_release);
  nonempty_hint_.store(nonempty_, std::memory_order_relaxed);
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
  if constexpr (kShared) lock_.lock();
  SchedNode* n = nonempty_ == 0 ? nullptr : pop_locked(31 - __builtin_clz(nonempty_));
  if constexpr (kShared) lock_.unlock();
  return n;
}

template <bool kShared>
int PriorityPolicy::LeveledQueue<kShared>::oldest_level_locked() const {
  int chosen = -1;
  std::uint64_t oldest = UINT64_MAX;
  for (int level = 0; level < kLevels; ++level) {
    const SchedNode* head = levels_[level].front();
    if (head != nullptr && head->policy_word < oldest) {
      oldest = head->policy_word;
      chosen = level;
    }
  }
  return chosen;
}

template <bool kShared>
std::uint64_t PriorityPolicy::LeveledQueue<kShared>::oldest() {
  if (key() == 0) return UINT64_MAX;
  if constexpr (kShared) lock_.lock();
  const int level = oldest_level_locked();
  const std::uint64_t seq = level < 0 ? UINT64_MAX : levels_[level].front()->policy_word;
  if constexpr (kShared) lock_.unlock();
  return seq;
}

template <bool kShared>
SchedNode* PriorityPolicy::LeveledQueue<kShared>::pop_oldest() {
  if (key() == 0) return nullptr;
  if constexpr (kShared) lock_.lock();
  const int level = oldest_level_locked();
  SchedNode* n = level < 0 ? nullptr : pop_locked(level);
  if constexpr (kShared) lock_.unlock();
  return n;
}

template <bool kShared>
SchedNode* PriorityPolicy::LeveledQueue<kShared>::pop_locked(int level) {
  SchedNode* n = levels_[level].pop_front();
  if (levels_[level].empty()) nonempty_ &= ~(1u << level);
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

bool PriorityPolicy::has_work_for_others(int worker) const {
  // Everything else another worker may take is held (holds_back()). A drain in progress may
  // be carrying nodes from the outside queue to the pool queue, in neither for a moment.
  const int pool = static_cast<int>(topology_.pool_of[worker]);
  const OutsideQueue& outside = outside_[pool];
  return outside.nodes.maybe_nonempty() || outside.drain.is_locked() ||
         pool_queues_[pool].key() != 0;
}

SchedNode* PriorityPolicy::steal_held(int worker, std::chrono::steady_clock::duration hold) {
  const Pool pool = topology_.pool_of[worker];
  return steal_held_in_pool(worker, topology_.first(pool), pool_size_[static_cast<int>(pool)],
                            workers_[worker].seen, hold,
                            [this](int v) -> HeldSlot& { return workers_[v].held; });
}

void PriorityPolicy::push(SchedNode* node, const PushInfo& info) {
  const std::uint64_t seq = internal::next_arrival(seq_, info.from_worker);
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
  // A worker that finds another one draining waits for it (a few pointer moves), then drains
  // what is left itself, before it looks at the pool queue. It must not look sooner: woken for
  // a task the drainer is still moving, it would find nothing and go back to sleep, leaving the
  // task to the drainer, who runs one task and leaves the others queued with a worker asleep
  // (the Policy contract's progress rule). A push still in flight when the queue is drained is
  // followed by its pusher's wake-up of a worker, which drains it.
  // Nothing left to move, but a drain in progress may be carrying the last node (in neither
  // queue until its push to the pool queue, which its unlock publishes): wait for it, without
  // taking the lock, or every pop meanwhile would queue behind the one before it.
  for (int pauses = 0; !q.nodes.maybe_nonempty(); SpinLock::wait_step(pauses)) {
    if (!q.drain.is_locked()) return;
  }
  std::lock_guard<SpinLock> guard(q.drain);
  // At most kDrainBatch nodes: plain threads pushing faster than one worker moves nodes would
  // otherwise keep it here, and every other worker of the pool waiting above, for as long as
  // they push. What is left stays visible (maybe_nonempty): the next pop drains on.
  for (int moved = 0; moved < kDrainBatch; ++moved) {
    SchedNode* n = q.nodes.pop();
    if (n == nullptr) break;
    pool_queues_[pool].push(n, level_of(n->priority));
  }
}

SchedNode* PriorityPolicy::pop_oldest(PerWorker& me, LeveledQueue<true>& shared) {
  const std::uint64_t local = me.local.oldest();
  const std::uint64_t bound = me.bound.oldest();
  const std::uint64_t pooled = shared.oldest();
  const std::uint64_t held =
      me.held.maybe_held() ? kSeqMask - (me.held.order() & kSeqMask) : UINT64_MAX;
  const std::uint64_t oldest = std::min({local, bound, pooled, held});
  if (oldest == UINT64_MAX) return nullptr;
  if (oldest == held) return me.held.take();  // nullptr if a thief took it meanwhile
  if (oldest == local) return me.local.pop_oldest();
  if (oldest == bound) return me.bound.pop_oldest();
  return shared.pop_oldest();
}

inline SchedNode* PriorityPolicy::pop_best(int worker, PerWorker& me,
                                           LeveledQueue<true>& shared) {
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
  return pop_when_empty(worker);
}

SchedNode* PriorityPolicy::pop(int worker) {
  PerWorker& me = workers_[worker];
  const int pool = static_cast<int>(topology_.pool_of[worker]);
  if (outside_[pool].nodes.maybe_nonempty()) drain_outside(pool);
  auto& shared = pool_queues_[pool];
  // Now and then a task another worker has held past kBusyWorkerHold (held_slot.h): a busy
  // worker never reaches pop_when_empty, and that worker's current task may run on. Paced by
  // time, not by pops (kBusyHeldCheckPops): with tasks of 20 us, two looks 1024 pops apart left
  // a held high-priority task behind 2048 low-priority ones, and behind seconds of them with
  // tasks of a millisecond. The clock is read every kAgingInterval pops, and the slots looked
  // at at most twice per kBusyWorkerHold, so a held task is seen twice and taken within about
  // 1.5 kBusyWorkerHold and kAgingInterval pops.
  if (__builtin_expect(++me.pops % kAgingInterval == 0, 0)) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= me.next_held_look) {
      me.next_held_look = now + kBusyWorkerHold / 2;
      if (SchedNode* n = steal_held(worker, kBusyWorkerHold)) return n;
    }
  }
  if (__builtin_expect(me.passed_over >= kAgingInterval - 1, 0)) {
    me.passed_over = 0;
    if (SchedNode* n = pop_oldest(me, shared)) return n;
  }
  // What waits, by level, before the pop: if it takes a task above the lowest of them, it
  // passed that one over (see the top). Hints: a queue changing meanwhile moves aging by a pop.
  std::uint32_t waiting = me.local.levels() | me.bound.levels() | shared.levels();
  if (__builtin_expect(me.held.maybe_held(), 0)) waiting |= 1u << level_of_key(me.held.order());
  SchedNode* n = pop_best(worker, me, shared);
  if ((waiting & (waiting - 1)) == 0) {
    me.passed_over = 0;  // one level waited (the common case): n is of it, nothing passed over
  } else if (n != nullptr) {
    const std::uint32_t below = (1u << level_of(n->priority)) - 1;
    me.passed_over = (waiting & below) != 0 ? me.passed_over + 1 : 0;
  }
  return n;
}

SchedNode* PriorityPolicy::pop_when_empty(int worker) {
  // Nothing found, but a drain that was in progress as pop() began may be carrying a node that
  // is in no queue until it reaches the pool's: wait for the drain if it is still at it
  // (drain_outside), then look at the pool queue again (also for one that has ended since).
  // Only here, off the path of a pop that finds work: returning another node is as good.
  const int pool = static_cast<int>(topology_.pool_of[worker]);
  if (outside_[pool].drain.is_locked()) drain_outside(pool);
  if (SchedNode* n = pool_queues_[pool].pop()) return n;
  return steal_held(worker, kHold);
}

}  // namespace weft
