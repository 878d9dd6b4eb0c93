// WorkStealingPolicy: per-worker deques, idle workers stealing from busy ones.
//
// Each worker owns:
//   * a Chase-Lev deque (chase_lev_deque.h) of the tasks it spawned and the tasks it readied:
//     it pops the newest (LIFO, hot in cache), thieves take the oldest (FIFO), and with it half
//     of what is left (up to kStealBatch), which they move to their own deque: a thief runs the
//     oldest at once and the rest newest first, the older ones left where the next thief looks;
//   * a runnext slot: the task it just woke (a join, a notify, an unlock) runs right after the
//     running task leaves, so a pair of tasks handing work back and forth stays on one worker;
//     the slot's previous occupant moves to the deque;
//   * a queue of the tasks that yielded on it: FIFO, behind all other local work, so yield()
//     lets the others run (a LIFO deque would hand the yielding task straight back); a second
//     Chase-Lev deque of which everyone, the owner too, takes the oldest end;
//   * a queue of its sticky tasks (affinity), lock-free (mpsc_node_queue.h): anyone pushes,
//     only this worker pops, thieves never look.
// Each pool has a global FIFO for tasks that come from outside its workers (plain threads,
// timers, the other pool). It is intrusive (linked through SchedNode::next): it takes no
// memory of its own, so its size is bounded by the pool's live tasks and a push never fails or
// waits. The deques grow (by doubling) instead of overflowing into it: a worker that spawns a
// million tasks keeps them in LIFO order, and a task waiting for the first of them waits once.
//
// pop(w) looks, in order: runnext, own deque, own sticky queue, the pool's global queue, own
// yielded queue, then steals: the deques and yielded queues of the pool's other workers from a
// random one on, then their runnext slots (last, as the owner is about to run that task).
// A failed look is a few loads; only a queue that has something is locked or CASed. A worker
// alone in its pool has no thieves: it pops its deque with plain loads and stores, and keeps
// its yielded tasks in a plain list (a yield there measured 24 ns with the deque, 17 without).
//
// The runnext task is held for its owner (Policy::holds_for_pusher): a push into an empty
// runnext wakes no idle worker, and thieves leave the task alone until it has sat there for
// kRunnextHold, the same task since they first saw it (held_slot.h).
// Tasks handing work back and forth (a channel, a condition, a join) then stay on one worker
// as under Go's runnext, instead of crossing CPUs on every hand-off: on two workers that made
// an unbuffered channel round trip 10x faster and a buffered one 12x. Waking a worker for
// the push would cost the waker a system call each time for nothing (an earlier grace period
// without this sent woken workers straight back to sleep, to be woken by the next push). If
// the owner keeps running, idle workers poll (holds_back) and one takes the task after
// kRunnextHold.
//
// Fairness: every kFairnessInterval-th pop serves one of the FIFO sources (global, sticky,
// yielded, in rotation), so a LIFO hot path or a runnext ping-pong cannot starve the tasks
// queued there; every kDequeFairnessRounds-th of those pops takes the oldest task of its own
// deque, so that one cannot wait forever behind newer local work on a lone worker either.
// (Taking it every time, every 61 pops, made fib(30) 1.6x slower: each such pop starts another
// large subtree while the current ones wait, parked, each on its own stack.) And about every
// kBusyHeldCheckPops pops (held_slot.h) such a pop first takes a task another worker has held
// in its runnext slot past kBusyWorkerHold, its owner still busy with another task.
//
// The Policy promises hold: a pushed node sits in exactly one place until one pop takes it;
// sticky nodes only in their worker's sticky queue; each worker's structures only hold nodes
// of its own pool (pushes from another pool's worker go to the global queue of the node's
// pool); and every place a node can be is visible to the pool's thieves except the sticky
// queues, which their own worker is always woken for.
//
// Thread safety: as the Policy contract: push() from any thread, pop(w) from worker w only.
// A push with from_worker == w must come from worker w's thread (the runtime's pushes do).
#ifndef WEFT_SCHED_WORK_STEALING_POLICY_H_
#define WEFT_SCHED_WORK_STEALING_POLICY_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "weft/sched/chase_lev_deque.h"
#include "weft/sched/held_slot.h"
#include "weft/sched/locked_node_queue.h"
#include "weft/sched/mpsc_node_queue.h"
#include "weft/sched/node_queue.h"
#include "weft/sched/policy.h"

namespace weft {

class WorkStealingPolicy final : public Policy {
 public:
  // Every this many pops a worker serves an oldest-first source first (see above), and every
  // kDequeFairnessRounds-th time of those the oldest task of its own deque.
  static constexpr int kFairnessInterval = 61;
  static constexpr unsigned kDequeFairnessRounds = 64;
  // How long thieves leave a task in its owner's runnext slot.
  static constexpr std::chrono::microseconds kRunnextHold{20};
  // The most tasks one visit to a victim's deque takes (half of what it holds, up to this).
  static constexpr int kStealBatch = 32;

  std::string_view name() const override { return "work_stealing"; }
  void init(const Topology& topology) override;
  void push(SchedNode* node, const PushInfo& info) override;
  SchedNode* pop(int worker) override;
  bool holds_for_pusher(const SchedNode& node, const PushInfo& info) const override;
  bool holds_back(int worker) const override;
  bool has_work_for_others(int worker) const override;

 private:
  struct alignas(64) PerWorker {
    ChaseLevDeque deque;
    alignas(64) HeldSlot runnext;
    // Used as a FIFO: the owner pushes at the bottom, everyone (the owner too) steals the top.
    ChaseLevDeque yielded;
    // What `yielded` is for a worker alone in its pool, which no thief ever visits: a plain
    // list, owner-only (a yield then costs a few plain stores, as under FIFO).
    NodeQueue yielded_alone;
    MpscNodeQueue sticky;
    // Owner-only state.
    alignas(64) int pool_first = 0;  // the worker's pool: first worker and size
    int pool_count = 0;
    int pool = 0;
    std::uint32_t rng = 1;
    int tick = 0;
    unsigned fair_round = 0;
    // Per worker of the pool: the runnext task this worker, as a thief, saw there.
    std::vector<HeldSlot::Sighting> runnext_seen;
  };

  // The rarer ways pop() finds work: never inlined into it (not even by link-time
  // optimization), so that its common path keeps a small frame.
  [[gnu::noinline]] SchedNode* pop_fair(PerWorker& me);
  [[gnu::noinline, gnu::cold]] SchedNode* steal_long_held(PerWorker& me);
  [[gnu::noinline]] SchedNode* steal(int worker, PerWorker& me);
  SchedNode* steal_once(int worker, PerWorker& me);  // one look at every other worker
  void steal_more(ChaseLevDeque& victim, int victim_index, int worker, PerWorker& me);
  SchedNode* steal_runnext(int victim, PerWorker& me, std::chrono::steady_clock::duration hold);

  struct alignas(64) GlobalQueue {
    LockedNodeQueue queue;
    // Thieves of the pool moving nodes into their deques (steal_more): a node is in no queue
    // between the steal and the push, so a look that found nothing looks again if any thief
    // was at it meanwhile. Low 32 bits: thieves at it; high 32: moves finished (an epoch, so
    // that one that began and ended during a look is seen too).
    alignas(64) std::atomic<std::uint64_t> stealing{0};
  };

  Topology topology_;
  // Vectors, not new[]: gcc's array cookie for these over-aligned types is misread under ASan
  // (a reported heap-buffer-overflow in delete[]); a vector allocates without a cookie.
  std::vector<PerWorker> workers_;
  std::vector<GlobalQueue> global_;  // per pool
};

}  // namespace weft

#endif  // WEFT_SCHED_WORK_STEALING_POLICY_H_
