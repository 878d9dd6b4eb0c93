#include "weft/sched/work_stealing_policy.h"

#include <algorithm>
#include <cstdint>

#include "weft/sched/spin_lock.h"

namespace weft {
namespace {

// GlobalQueue::stealing: thieves at it in the low half, moves finished in the high half.
constexpr std::uint64_t kMoveStarted = 1;
constexpr std::uint64_t kMoveFinished = std::uint64_t{1} << 32;
constexpr std::uint64_t kMoveEnded = kMoveFinished - kMoveStarted;  // one less at it, one more done
constexpr std::uint64_t kMovesInProgress = kMoveFinished - 1;       // the low half's mask

// Counts a thief in GlobalQueue::stealing while it moves nodes, however it leaves.
class CountedMove {
 public:
  explicit CountedMove(std::atomic<std::uint64_t>& word) : word_(word) {
    word_.fetch_add(kMoveStarted, std::memory_order_seq_cst);
  }
  ~CountedMove() { word_.fetch_add(kMoveEnded, std::memory_order_release); }
  CountedMove(const CountedMove&) = delete;
  CountedMove& operator=(const CountedMove&) = delete;

 private:
  std::atomic<std::uint64_t>& word_;
};

}  // namespace

void WorkStealingPolicy::init(const Topology& topology) {
  topology_ = topology;
  const int n = topology.num_workers();
  workers_ = std::vector<PerWorker>(n);
  global_ = std::vector<GlobalQueue>(kNumPools);
  for (int w = 0; w < n; ++w) {
    PerWorker& me = workers_[w];
    const Pool pool = topology.pool_of[w];
    me.pool = static_cast<int>(pool);
    me.pool_first = topology.first(pool);
    me.pool_count = topology.count(pool);
    // Distinct nonzero xorshift seeds.
    me.rng = 0x9E3779B9u * static_cast<std::uint32_t>(w + 1);
    me.tick = w % kFairnessInterval;  // spread the workers' fairness pops over time
    me.runnext_seen.resize(static_cast<std::size_t>(n));
  }
}

void WorkStealingPolicy::push(SchedNode* node, const PushInfo& info) {
  if (node->affinity >= 0) {
    workers_[node->affinity].sticky.push(node);
    return;
  }
  const int w = info.from_worker;
  if (w < 0 || topology_.pool_of[w] != node->pool) {
    global_[static_cast<int>(node->pool)].queue.push(node);
    return;
  }
  PerWorker& me = workers_[w];
  switch (info.reason) {
    case PushReason::kYielded:
    case PushReason::kYieldedTo:
      if (me.pool_count == 1) {
        me.yielded_alone.push_back(node);
      } else {
        me.yielded.push(node);
      }
      return;
    case PushReason::kWoken: {
      // Alone in its pool, the worker's slot has no thieves.
      SchedNode* old =
          me.pool_count == 1 ? me.runnext.put_unshared(node, 0) : me.runnext.put(node, 0);
      if (old != nullptr) me.deque.push(old);
      return;
    }
    case PushReason::kSpawned:
      me.deque.push(node);
      return;
  }
}

bool WorkStealingPolicy::holds_for_pusher(const SchedNode& node, const PushInfo& info) const {
  // Into the pusher's empty runnext slot (push() above); a task it displaces goes to the deque,
  // where thieves may take it at once, so that push wakes a worker as usual.
  const int w = info.from_worker;
  return info.reason == PushReason::kWoken && node.affinity < 0 && w >= 0 &&
         topology_.pool_of[w] == node.pool &&
         !workers_[w].runnext.maybe_held();
}

bool WorkStealingPolicy::holds_back(int worker) const {
  const PerWorker& me = workers_[worker];
  return pool_holds_back(worker, me.pool_first, me.pool_count,
                         [this](int v) -> const HeldSlot& { return workers_[v].runnext; });
}

bool WorkStealingPolicy::has_work_for_others(int worker) const {
  // What a thief may take: the pool's global queue, any deque or yielded queue of the pool
  // (runnext slots are held: holds_back()). Asked once per wake-up from idle, so a look at
  // every worker of the pool is cheap enough.
  const PerWorker& me = workers_[worker];
  const GlobalQueue& global = global_[me.pool];
  const std::uint64_t moves_before = global.stealing.load(std::memory_order_seq_cst);
  if (global.queue.size_hint() != 0) return true;
  for (int v = me.pool_first; v < me.pool_first + me.pool_count; ++v) {
    if (!workers_[v].deque.empty() || !workers_[v].yielded.empty()) return true;
  }
  // As in steal(): a node a thief moved during the look may have been in neither deque.
  const std::uint64_t moves_after = global.stealing.load(std::memory_order_seq_cst);
  return moves_after != moves_before || (moves_after & kMovesInProgress) != 0;
}

// A task another worker has held in its runnext slot past kBusyWorkerHold (held_slot.h): a busy
// worker never reaches steal(), and the holder's current task may run on and on.
SchedNode* WorkStealingPolicy::steal_long_held(PerWorker& me) {
  const int worker = static_cast<int>(&me - workers_.data());
  return steal_held_in_pool(worker, me.pool_first, me.pool_count, me.runnext_seen,
                            kBusyWorkerHold,
                            [this](int v) -> HeldSlot& { return workers_[v].runnext; });
}

SchedNode* WorkStealingPolicy::pop_fair(PerWorker& me) {
  const unsigned round = me.fair_round++;
  if (me.pool_count > 1 && round % (kBusyHeldCheckPops / kFairnessInterval) == 0) {
    if (SchedNode* n = steal_long_held(me)) return n;
  }
  // Rarely, the oldest task of its own deque: taking it often would turn depth-first work
  // breadth-first (many half-done subtrees, each holding a stack).
  if (round % kDequeFairnessRounds == 0) {
    if (SchedNode* n = me.deque.steal()) return n;
  }
  for (unsigned i = 0; i < 3; ++i) {
    SchedNode* n = nullptr;
    switch ((round + i) % 3) {
      case 0:
        n = global_[me.pool].queue.pop();
        break;
      case 1:
        n = me.sticky.pop();
        break;
      case 2:
        n = me.pool_count == 1 ? me.yielded_alone.pop_front() : me.yielded.steal();
        break;
    }
    if (n != nullptr) return n;
  }
  return nullptr;
}

SchedNode* WorkStealingPolicy::pop(int worker) {
  PerWorker& me = workers_[worker];
  if (++me.tick >= kFairnessInterval) {
    me.tick = 0;
    if (SchedNode* n = pop_fair(me)) return n;
  }
  if (me.pool_count == 1) {
    // Alone in its pool: no thief can touch its slot or deques, so no read-modify-writes.
    if (SchedNode* n = me.runnext.take_unshared()) return n;
    if (SchedNode* n = me.deque.pop_unshared()) return n;
    if (SchedNode* n = me.sticky.pop()) return n;
    if (SchedNode* n = global_[me.pool].queue.pop()) return n;
    return me.yielded_alone.pop_front();
  }
  if (SchedNode* n = me.runnext.take()) return n;
  if (SchedNode* n = me.deque.pop()) return n;
  if (SchedNode* n = me.sticky.pop()) return n;
  if (SchedNode* n = global_[me.pool].queue.pop()) return n;
  if (SchedNode* n = me.yielded.steal()) return n;
  return steal(worker, me);
}

SchedNode* WorkStealingPolicy::steal(int worker, PerWorker& me) {
  const int count = me.pool_count;
  if (count <= 1) return nullptr;
  // A node another thief was moving into its deque was in neither deque as we looked, and the
  // Policy contract's progress rule says a look after its push must find it. If our look missed
  // one because a thief had taken it, that thief counted itself first (seq_cst, as are the
  // deques' loads), so the word read after the look differs from the one read before it, or
  // shows the thief still at it. Then we look again, first waiting for a change of the word if
  // it shows moves in progress and none finished (a few instructions, unless that thief is
  // preempted).
  const std::atomic<std::uint64_t>& stealing = global_[me.pool].stealing;
  std::uint64_t before = stealing.load(std::memory_order_seq_cst);
  for (;;) {
    if (SchedNode* n = steal_once(worker, me)) return n;
    std::uint64_t after = stealing.load(std::memory_order_seq_cst);
    if (after == before) {
      if ((after & kMovesInProgress) == 0) return nullptr;
      int pauses = 0;
      do {
        SpinLock::wait_step(pauses);
        after = stealing.load(std::memory_order_seq_cst);
      } while (after == before);
    }
    before = after;
  }
}

SchedNode* WorkStealingPolicy::steal_once(int worker, PerWorker& me) {
  const int count = me.pool_count;
  me.rng ^= me.rng << 13;
  me.rng ^= me.rng >> 17;
  me.rng ^= me.rng << 5;
  const int start = static_cast<int>(me.rng % static_cast<std::uint32_t>(count));
  for (int i = 0; i < count; ++i) {
    const int v = me.pool_first + (start + i) % count;
    if (v == worker) continue;
    PerWorker& victim = workers_[v];
    if (SchedNode* n = victim.deque.steal()) {
      trace_steal(n, v, worker);
      steal_more(victim.deque, v, worker, me);
      return n;
    }
    if (SchedNode* n = victim.yielded.steal()) {
      trace_steal(n, v, worker);
      return n;
    }
  }
  for (int i = 0; i < count; ++i) {
    const int v = me.pool_first + (start + i) % count;
    if (v == worker) continue;
    if (SchedNode* n = steal_runnext(v, me, kRunnextHold)) {
      trace_steal(n, v, worker);
      return n;
    }
  }
  return nullptr;
}

void WorkStealingPolicy::steal_more(ChaseLevDeque& victim, int victim_index, int worker,
                                    PerWorker& me) {
  // Half of what is left, one ordinary steal at a time: each still races the owner for the
  // last node on its own terms, so a batch needs nothing of the deque beyond steal(). What it
  // saves is the victim's time: a thief that came back for every task would read the victim's
  // `bottom` once per task, and the victim's next push would wait for that cache line to come
  // back across CPUs (a spawning loop ran 1.5-3x slower with a thief at its heels).
  const std::int64_t want = std::min<std::int64_t>(victim.size() / 2, kStealBatch - 1);
  if (want <= 0) return;
  // The pushes below cannot fail, which matters: a node taken from the victim and not pushed
  // would be lost. A thief steals only after its own deque.pop() found nothing, and only it
  // pushes there, so the deque is empty and holds a batch without growing (no allocation).
  static_assert(kStealBatch - 1 <= ChaseLevDeque::kInitialCapacity);
  CountedMove counted(global_[me.pool].stealing);  // before the first steal, after the last push
  // Each pushed as soon as it is taken, oldest first, so the thief (which runs the first task it
  // took at once) runs the rest newest first, and the older ones stay at its deque's far end as
  // the victim had them: that end is where the next thief looks, and the oldest tasks are the
  // ones worth stealing (a recursion's largest subtrees). A loop that joins tasks in the order
  // it spawned them then parks for the second task of a batch once, instead of being woken and
  // parking again for every task of it (the thief running them in order one step ahead): by
  // the time that one is done, so is the rest of the batch.
  for (std::int64_t got = 0; got < want; ++got) {
    SchedNode* n = victim.steal();
    if (n == nullptr) break;
    trace_steal(n, victim_index, worker);
    me.deque.push(n);
  }
}

SchedNode* WorkStealingPolicy::steal_runnext(int victim, PerWorker& me,
                                              std::chrono::steady_clock::duration hold) {
  return workers_[victim].runnext.steal_if_held(me.runnext_seen[static_cast<std::size_t>(victim)],
                                                hold);
}

}  // namespace weft
