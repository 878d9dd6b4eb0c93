// FifoPolicy: the reference scheduler. Tasks run in the order they became runnable.
//
// One queue per pool for tasks free to run on any of its workers, and one per worker for
// sticky tasks bound to it; pop() takes whichever head became runnable first (a sequence number
// taken at push), so the order is one FIFO as far as each worker can tell. Each queue has its
// own SpinLock. Simple and fair, not fast under contention: it is the baseline the other
// policies are compared with.
#ifndef WEFT_SCHED_FIFO_POLICY_H_
#define WEFT_SCHED_FIFO_POLICY_H_

#include <atomic>
#include <memory>
#include <vector>

#include "weft/sched/node_queue.h"
#include "weft/sched/policy.h"
#include "weft/sched/spin_lock.h"

namespace weft {

class FifoPolicy final : public Policy {
 public:
  std::string_view name() const override { return "fifo"; }
  void init(const Topology& topology) override;
  void push(SchedNode* node, const PushInfo& info) override;
  SchedNode* pop(int worker) override;

 private:
  struct alignas(64) LockedQueue {
    SpinLock lock;
    NodeQueue queue;
    // The front's sequence number, readable without the lock (a hint for pop's choice).
    std::atomic<std::uint64_t> front_seq{UINT64_MAX};
  };

  static void push_locked(LockedQueue& q, SchedNode* node);
  static SchedNode* pop_locked(LockedQueue& q);

  Topology topology_;
  std::unique_ptr<LockedQueue[]> pool_queues_;    // per pool
  std::unique_ptr<LockedQueue[]> worker_queues_;  // per worker, sticky tasks
  alignas(64) std::atomic<std::uint64_t> seq_{0};
};

}  // namespace weft

#endif  // WEFT_SCHED_FIFO_POLICY_H_
