// EdfPolicy: earliest deadline first, a scheduler plugin that needs data of each task.
//
// A task's deadline is the number given at spawn, `spawn(f, {.policy_arg = deadline})`, which
// lands in SchedNode::policy_arg. Any clock will do as long as all tasks use the same one (only
// the order matters); deadline_after() gives one on std::chrono::steady_clock. 0 means "no
// deadline" (every other value, negative ones included, is a deadline).
//
// Order: among the tasks a worker may run, the one with the earliest deadline; equal deadlines
// in the order the tasks became runnable. Tasks without a deadline run only when no task with
// one is runnable, first come first served among themselves (so with no deadlines at all this
// is a FIFO scheduler). Deadlines are a strict order, not a hint: a task that keeps missing
// its deadline still beats every later one, and a yield() gives way to at most the best other
// runnable task, after which the yielder is queued by its deadline again.
//
// Per pool, and per worker for its sticky tasks: a heap of deadlined tasks (NodeHeap, intrusive,
// so push never allocates) and a FIFO of the others, behind one SpinLock. A worker takes the
// better of its own and its pool's best.
//
// Thread safety: as the Policy contract (push from any thread, pop(w) from worker w's thread).
#ifndef WEFT_PLUGINS_EDF_POLICY_H_
#define WEFT_PLUGINS_EDF_POLICY_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>

#include "weft/plugins/node_heap.h"
#include "weft/sched/node_queue.h"
#include "weft/sched/policy.h"
#include "weft/sched/spin_lock.h"
#include "weft/task/sched_node.h"

namespace weft::plugins {

class EdfPolicy final : public Policy {
 public:
  // policy_arg value for "no deadline".
  static constexpr std::int64_t kNoDeadline = 0;

  // A deadline `from_now` after now on std::chrono::steady_clock, in nanoseconds: what to pass
  // as SpawnOptions::policy_arg. Never kNoDeadline; saturates (nanoseconds::max(): the latest).
  static std::int64_t deadline_after(std::chrono::nanoseconds from_now);

  std::string_view name() const override { return "edf"; }
  void init(const Topology& topology) override;
  void push(SchedNode* node, const PushInfo& info) override;
  SchedNode* pop(int worker) override;
  bool has_work_for_others(int worker) const override;

  // Whether a runs before b: earlier deadline, then no deadline, then arrival (policy_word).
  static bool before(const SchedNode* a, const SchedNode* b);

 private:
  struct Before {
    bool operator()(const SchedNode* a, const SchedNode* b) const { return before(a, b); }
  };
  struct alignas(64) Queues {
    SpinLock lock;
    NodeHeap<Before> deadlined;
    NodeQueue undeadlined;
    // The best node, or nullptr; under `lock`.
    SchedNode* best() const {
      return deadlined.empty() ? undeadlined.front() : deadlined.top();
    }
    SchedNode* pop_best() { return deadlined.empty() ? undeadlined.pop_front() : deadlined.pop(); }
  };

  Topology topology_;
  std::unique_ptr<Queues[]> pools_;    // per pool
  std::unique_ptr<Queues[]> workers_;  // per worker: its sticky tasks
  std::atomic<std::uint64_t> arrivals_{0};
};

}  // namespace weft::plugins

#endif  // WEFT_PLUGINS_EDF_POLICY_H_
