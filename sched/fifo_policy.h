// FifoPolicy: the reference scheduler. Tasks run in the order they became runnable.
//
// One queue per pool for tasks free to run on any of its workers (a SpinLock'd list), and per
// worker two queues for tasks only it may run: a lock-free one other threads push to, and a
// plain list for what the worker pushes itself (a yield, a task woken on its own worker, every
// spawn when its pool has one worker), which costs no atomic operation at all. That list
// overflows into a ring once it holds kSpillAt tasks: tasks spawned in bulk are cold by the
// time they run, and the ring prefetches the ones it will hand out next (RingQueue), which a
// list cannot do; a few tasks taking turns never reach the ring and pay nothing for it.
// pop() takes whichever head became runnable first (a stamp taken at push), so the order is
// one FIFO as far as each worker can tell. Simple and fair, not built for contention: the
// baseline the other policies are compared with.
//
// In a pool of several workers, the task a worker wakes is held for it (held_slot.h, Go's
// runnext) rather than queued for the pool, so that no other worker is woken for it: it runs
// there when its stamp comes up, which for tasks handing work back and forth is as soon as the
// waker blocks. Without that each hand-off crossed CPUs and woke a sleeping worker (an
// unbuffered channel round trip between two tasks on two workers cost 3x that on one). Other
// workers pass a held task over until they have seen it held for kHold, so the order stays
// FIFO as far as its worker can tell, and only another worker may take it a little late: an
// idle one, or a busy one once it has been held for kBusyWorkerHold and that worker has looked
// twice, kBusyHeldCheckPops of its pops apart (held_slot.h).
#ifndef WEFT_SCHED_FIFO_POLICY_H_
#define WEFT_SCHED_FIFO_POLICY_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <vector>

#include "weft/sched/held_slot.h"
#include "weft/sched/mpsc_node_queue.h"
#include "weft/sched/node_queue.h"
#include "weft/sched/policy.h"
#include "weft/sched/ring_queue.h"
#include "weft/sched/spin_lock.h"

namespace weft {

class FifoPolicy final : public Policy {
 public:
  std::string_view name() const override { return "fifo"; }
  void init(const Topology& topology) override;
  void push(SchedNode* node, const PushInfo& info) override;
  SchedNode* pop(int worker) override;
  bool holds_for_pusher(const SchedNode& node, const PushInfo& info) const override;
  bool holds_back(int worker) const override;
  bool has_work_for_others(int worker) const override;

  // How long other workers leave a held task alone.
  static constexpr std::chrono::microseconds kHold{20};

 private:
  // Own queue length at which pushes go to the ring. Past the prefetch distance, and small
  // enough that a burst of spawns is mostly prefetched.
  static constexpr std::size_t kSpillAt = 32;

  struct alignas(64) WorkerQueues {
    MpscNodeQueue remote;  // pushed by other threads
    // Pushed by the worker itself; owner-only. While `overflow` is not empty every push goes
    // there, so it only ever holds tasks newer than all of `local`'s: FIFO order is local's,
    // then overflow's.
    NodeQueue local;
    HeldSlot held;  // the task this worker woke last (see the top)
    RingQueue overflow;
    // Owner-only: per worker of the pool, the held task this worker saw there.
    std::vector<HeldSlot::Sighting> seen;
    // Owner-only: pops until the next look at the pool's held tasks (kBusyHeldCheckPops,
    // held_slot.h: a worker that always finds work of its own still takes a task held by a worker
    // whose current task runs on and on). 0 on a worker alone in its pool, where nothing is held:
    // it wraps, and the look, every 2^32 pops, finds nothing.
    std::uint32_t held_check_in = 0;

    void push_own(SchedNode* node);
    SchedNode* own_front() const;  // the oldest own task
    SchedNode* pop_own();
  };
  struct alignas(64) LockedQueue {
    SpinLock lock;
    NodeQueue queue;
    // The front's sequence number, readable without the lock (a hint for pop's choice).
    std::atomic<std::uint64_t> front_seq{UINT64_MAX};
  };

  static void push_locked(LockedQueue& q, SchedNode* node);
  static SchedNode* pop_locked(LockedQueue& q);
  bool holds(const SchedNode& node, int from_worker) const;
  // Only when a pop found nothing of its own; out of line to keep pop()'s frame small.
  [[gnu::noinline]] SchedNode* steal_held(int worker, std::chrono::steady_clock::duration hold);
  // pop() when its own list's front is not plainly the oldest task: the oldest of all heads.
  [[gnu::noinline]] SchedNode* pop_ordered(int worker, WorkerQueues& mine, LockedQueue& shared);

  Topology topology_;
  int pool_size_[kNumPools] = {};
  std::unique_ptr<LockedQueue[]> pool_queues_;    // per pool
  std::unique_ptr<WorkerQueues[]> worker_queues_;
  // Push stamps (internal::next_arrival, policy.h).
  alignas(64) std::atomic<std::uint64_t> stamp_{0};
};

}  // namespace weft

#endif  // WEFT_SCHED_FIFO_POLICY_H_
