// PriorityPolicy: priority levels, for latency of important tasks under load.
//
// A task's priority (SpawnOptions::priority, TaskRef::set_priority; kDefaultPriority = 0) maps
// to one of kLevels levels: priorities below kLowestPriority count as it, above
// kHighestPriority as it, so the levels are -2, -1, 0, +1, +2. Each pool has one FIFO per
// level, and each worker one per level for its sticky tasks.
//
// Order: a worker takes the head of the highest non-empty level among its pool's queues and
// its own sticky queues (between the two at the same level, whichever became runnable first);
// within a level tasks run in the order they became runnable. A task that yields goes to the
// back of its level.
//
// Pools come first: a worker only ever takes tasks of its own pool (the Policy contract), so
// interactive workers never pick up default-pool work, and an interactive task never waits
// behind default-pool tasks however many there are: the interactive pool is a separate set of
// queues served by its own workers.
//
// Aging (no starvation): a worker counts its pops in a row that took a task while one of a
// lower level waited (passing it over); the kAgingInterval-th such pop takes the oldest of all
// it may take -- its own queues, its held task and its pool's queue -- whatever its level,
// instead of the best head. So a low-priority task queued behind a steady stream of higher ones
// still runs, wherever each of them waits (a sticky task of level 0 behind a level-1 task of the
// same worker that yields in a loop, say): it moves up one place in that worker's arrival order
// at least every kAgingInterval pops (in the worst case it waits for the tasks queued before it
// plus kAgingInterval times as many others). A pop that passed nothing over took the oldest
// already, so it ends the count: aging never runs a task ahead of a higher one that has not
// waited for anyone. (Aging every kAgingInterval-th pop, whatever it passed over, made a
// high-priority task woken in a flood of level-0 tasks wait one more turn of the flood once in
// kAgingInterval wake-ups: its p99 latency twice its p50's worst case.)
//
// Every shared queue has its own SpinLock and a word readable without it (its best level and
// that head's arrival number), so an empty queue costs one load. Work only the pushing worker
// may run (bound to it, or its pool has no other worker) goes to that worker's own queues,
// which take no lock. Like FifoPolicy it shares each pool's queues between the pool's workers:
// it is built for ordering, not for throughput.
//
// Threads that are not the pool's workers (a plain thread waking a task, the timer thread)
// never take a pool queue's lock: they push into a lock-free queue that the pool's workers
// move into the pool queue when they next look for work. A thread outside the runtime may be
// preempted at any moment, and one preempted while holding the lock stalled every worker of
// the pool (milliseconds of p99 wake-to-run latency with the waker a third thread on two
// CPUs). So such a task joins its level's order when a worker next pops, not at its push.
//
// In a pool of several workers, the task a worker wakes is held for it (held_slot.h, Go's
// runnext) instead of going to the pool's queue, so that no other worker is woken for it and
// tasks handing work back and forth stay on one worker. It keeps its place in the order: its
// worker takes it when its key is the best it sees (its level, then its arrival). Other workers
// pass it over until they have seen it held for kHold: an idle one then takes it, and a busy
// one, one held for kBusyWorkerHold (held_slot.h; it looks every kAgingInterval pops, at most
// twice per kBusyWorkerHold, whatever its tasks' length).
//
// Thread safety: as the Policy contract (push from any thread, pop(w) from worker w).
#ifndef WEFT_SCHED_PRIORITY_POLICY_H_
#define WEFT_SCHED_PRIORITY_POLICY_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "weft/sched/held_slot.h"
#include "weft/sched/mpsc_node_queue.h"
#include "weft/sched/node_queue.h"
#include "weft/sched/policy.h"
#include "weft/sched/spin_lock.h"

namespace weft {

class PriorityPolicy final : public Policy {
 public:
  static constexpr int kLowestPriority = -2;
  static constexpr int kHighestPriority = 2;
  static constexpr int kLevels = kHighestPriority - kLowestPriority + 1;
  static constexpr int kAgingInterval = 16;
  // Most nodes one pop moves from the outside queue into the pool's (drain_outside).
  static constexpr int kDrainBatch = 64;

  // The level (0 = lowest) a priority maps to.
  static int level_of(int priority);

  std::string_view name() const override { return "priority"; }
  void init(const Topology& topology) override;
  void push(SchedNode* node, const PushInfo& info) override;
  SchedNode* pop(int worker) override;
  bool holds_for_pusher(const SchedNode& node, const PushInfo& info) const override;
  bool holds_back(int worker) const override;
  bool has_work_for_others(int worker) const override;

  // How long other workers leave a held task alone.
  static constexpr std::chrono::microseconds kHold{20};

 private:
  // One FIFO per level, behind a lock when kShared (else only its owner worker touches it).
  // Nodes carry their arrival number in policy_word.
  template <bool kShared>
  class alignas(64) LeveledQueue {
   public:
    void push(SchedNode* node, int level);
    // The head of the best level.
    SchedNode* pop();
    // 0 when empty; otherwise larger means "take me first": the best level, then the oldest.
    std::uint64_t key() const { return key_.load(std::memory_order_seq_cst); }
    // Bit l set: level l held tasks at the last change (a hint, as stale as key() may be).
    std::uint32_t levels() const { return nonempty_hint_.load(std::memory_order_relaxed); }
    // For aging: the arrival number of the oldest task, of any level (UINT64_MAX when empty),
    // and taking it.
    std::uint64_t oldest();
    SchedNode* pop_oldest();

   private:
    [[gnu::always_inline]] void publish_key();  // on every push and pop
    int oldest_level_locked() const;  // -1 when empty
    SchedNode* pop_locked(int level);

    SpinLock lock_;              // used when kShared
    NodeQueue levels_[kLevels];  // guarded by lock_ when kShared, as is the one below
    std::uint32_t nonempty_ = 0;  // bit l: levels_[l] is not empty
    std::atomic<std::uint64_t> key_{0};
    std::atomic<std::uint32_t> nonempty_hint_{0};  // nonempty_, readable without the lock
  };

  struct PerWorker {
    LeveledQueue<false> local;  // work only this worker may run, pushed by this worker
    LeveledQueue<true> bound;   // its sticky tasks, pushed from elsewhere
    HeldSlot held;              // the task it woke last, with its key as the order word
    std::uint32_t pops = 0;     // owner-only: counts pops (for the look at held tasks)
    int passed_over = 0;        // owner-only: pops in a row that passed a lower level over
    // Owner-only: the earliest time a pop looks at the pool's held tasks again.
    std::chrono::steady_clock::time_point next_held_look;
    // Owner-only: per worker of the pool, the held task this worker saw there.
    std::vector<HeldSlot::Sighting> seen;
  };

  bool holds(const SchedNode& node, int from_worker) const;
  // Aging's pop (see the top): out of line, it runs at most once every kAgingInterval pops.
  [[gnu::noinline]] SchedNode* pop_oldest(PerWorker& me, LeveledQueue<true>& shared);
  // Only when a pop found nothing of its own; out of line to keep pop()'s frame small.
  [[gnu::noinline]] SchedNode* pop_when_empty(int worker);
  // pop() but for aging: the best head it finds, or nullptr.
  [[gnu::always_inline]] SchedNode* pop_best(int worker, PerWorker& me,
                                             LeveledQueue<true>& shared);
  SchedNode* steal_held(int worker, std::chrono::steady_clock::duration hold);

  static std::uint64_t key_of(int level, std::uint64_t seq);

  // Pushes from outside a pool's workers, on their way into its queue (see the top).
  struct alignas(64) OutsideQueue {
    MpscNodeQueue nodes;
    SpinLock drain;  // makes one worker at a time the queue's consumer
  };
  // Moves what came from outside into the pool queue; the caller first checks that there is
  // anything (OutsideQueue::nodes.maybe_nonempty()), so pop() pays one load for it; a pop that
  // finds nothing also calls it while another worker drains (pop_when_empty).
  [[gnu::noinline]] void drain_outside(int pool);

  Topology topology_;
  int pool_size_[kNumPools] = {};
  std::unique_ptr<LeveledQueue<true>[]> pool_queues_;  // per pool
  std::unique_ptr<OutsideQueue[]> outside_;            // per pool
  std::unique_ptr<PerWorker[]> workers_;
  // Arrival numbers (internal::next_arrival, policy.h).
  alignas(64) std::atomic<std::uint64_t> seq_{0};
};

}  // namespace weft

#endif  // WEFT_SCHED_PRIORITY_POLICY_H_
