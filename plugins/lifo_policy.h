// LifoPolicy: depth-first scheduling. The task that became runnable last runs first, so a task
// runs the work it spawns next, while its data are still in cache. A task that yields goes to
// the back instead, so yield() still lets every other runnable task run.
//
// One deque per pool and one per worker (its sticky tasks), each behind a SpinLock; a worker
// takes the better front of its own and its pool's. Simple, not built for contention.
// Thread safety: the Policy contract (push from any thread, pop(w) from worker w's thread).
#ifndef WEFT_PLUGINS_LIFO_POLICY_H_
#define WEFT_PLUGINS_LIFO_POLICY_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>

#include "weft/sched/node_queue.h"
#include "weft/sched/policy.h"
#include "weft/sched/spin_lock.h"

namespace weft::plugins {

class LifoPolicy final : public Policy {
 public:
  std::string_view name() const override { return "lifo"; }
  void init(const Topology& topology) override;
  void push(SchedNode* node, const PushInfo& info) override;
  SchedNode* pop(int worker) override;
  bool has_work_for_others(int worker) const override;

 private:
  // Front: fresh and woken tasks, newest first; back: yielded ones, oldest first.
  struct alignas(64) Deque {
    SpinLock lock;
    NodeQueue nodes;
  };

  Topology topology_;
  std::unique_ptr<Deque[]> pools_;    // per pool
  std::unique_ptr<Deque[]> workers_;  // per worker
  std::atomic<std::uint64_t> stamp_{0};
};

}  // namespace weft::plugins

#endif  // WEFT_PLUGINS_LIFO_POLICY_H_
