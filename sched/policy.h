// Policy: the scheduler plugin interface. A policy decides which runnable task a worker runs
// next; the runtime does everything else (threads, stacks, switching, parking, sleeping
// workers, timers).
//
// The runtime calls:
//   init(topology)     once, before any worker starts.
//   push(node, info)   from ANY thread (a worker, a timer thread, a plain thread), concurrently.
//   pop(worker)        only from worker `worker`'s own thread, concurrently with pushes and with
//                      other workers' pops.
//
// A policy must keep these promises (the conformance suite in plugins/ checks them):
//   * Nothing is lost: every pushed node is returned by exactly one later pop().
//   * Affinity: a node with affinity >= 0 is returned only by pop(affinity).
//   * Pools: a node is returned only by pop(w) for a worker w of the node's pool.
//   * Progress: after push(), a pop() by an eligible worker that starts later returns a node
//     (this one or another), so a worker that re-checks before sleeping never misses work --
//     except for a node held for its pusher (below): other workers' pops may pass it over for
//     a moment, while holds_back() tells them to look again soon. A push still in flight may
//     hide nodes behind it (its pusher wakes a worker once it returns); a pop while none is in
//     flight finds them.
//   * has_work_for_others(w) is never false while another worker could pop a node (below).
//   * A woken node does not wait behind a busy pusher: tasks are not preempted, so a free node
//     pushed (kWoken) by a worker whose task then runs on must reach another worker of its pool
//     in bounded time even while that worker has tasks of its own to pop (a policy with
//     per-worker queues has busy workers look at the others' now and then).
//   * pop() never blocks for long (a short spin on a lock is fine); nullptr means "nothing now".
//   * push() and pop() never throw (the runtime aborts, naming the policy, if one does).
// A policy never touches task contexts, threads or parking; it only orders nodes.
#ifndef WEFT_SCHED_POLICY_H_
#define WEFT_SCHED_POLICY_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "weft/task/sched_node.h"

namespace weft {

// Why a node is pushed: policies may treat a fresh task differently from a woken one.
enum class PushReason : std::uint8_t {
  kSpawned,    // first schedule of a new task
  kYielded,    // the running task called yield()
  kWoken,      // a parked task was made runnable (notify, unlock, channel, timer, schedule)
  kYieldedTo,  // the running task called yield(t): it is queued behind the task it ran
};

struct PushInfo {
  PushReason reason = PushReason::kSpawned;
  // The worker pushing, or -1 when pushed from a thread that is not a worker of this runtime.
  int from_worker = -1;
};

// Worker layout, fixed for a runtime's life. Workers are numbered 0..size-1, the default pool
// first, then the interactive pool.
struct Topology {
  std::vector<Pool> pool_of;  // per worker
  int num_workers() const { return static_cast<int>(pool_of.size()); }
  int count(Pool pool) const;
  int first(Pool pool) const;  // index of the pool's first worker (pools are contiguous)
};

class Policy {
 public:
  virtual ~Policy() = default;
  virtual std::string_view name() const = 0;
  virtual void init(const Topology& topology) = 0;
  virtual void push(SchedNode* node, const PushInfo& info) = 0;
  virtual SchedNode* pop(int worker) = 0;
  // Holding a node for the worker that pushed it (optional; most policies never do). The task
  // a worker just woke runs there as soon as the waking task blocks -- far sooner than a
  // sleeping worker could wake up and take it, and with the pair of tasks kept on one worker
  // and its cache. For such a push, holds_for_pusher(node, info) (asked just before push, on
  // the pushing worker's thread) returns true and the runtime wakes no idle worker for it.
  // Only a woken node (PushReason::kWoken) pushed by a worker may be held: the runtime asks
  // about no other push, which saves spawns and yields on several workers a call.
  // Other workers' pops may then pass the node over for a short while, as long as
  // holds_back(w) returns true for every worker w that may run it until some pop returns it;
  // a worker that finds nothing while holds_back() is true looks again shortly instead of
  // sleeping until the next push, so a held node runs even if its pusher never comes back.
  virtual bool holds_for_pusher(const SchedNode& /*node*/, const PushInfo& /*info*/) const {
    return false;
  }
  virtual bool holds_back(int /*worker*/) const { return false; }

  // Whether a pop() by a worker of `worker`'s pool other than `worker` may return a node now
  // (held nodes aside: holds_back() covers those). Asked on worker's thread when it leaves its
  // idle period with a task after a waker claimed its wake-up: the work that waker pushed may
  // be what is left (the worker found other work, or the push had hidden nodes behind it), so
  // true makes the runtime wake one more idle worker of the pool, as Go's spinning thread
  // that finds work wakes another. It must be true when another worker's pop() could return a
  // node pushed before the call (by a push that happens-before it) and not popped since; a
  // true with no such node costs a worker one wake-up for nothing. The default, always true,
  // loses no wake-up, but wakes one worker more than needed after most wake-ups from idle,
  // which the conformance suite fails (IdleWakePool.OnePushDoesNotWakeEveryWorker).
  virtual bool has_work_for_others(int /*worker*/) const { return true; }

  // Notifications, on the worker's own thread; most policies need neither.
  virtual void on_worker_start(int /*worker*/) {}
  virtual void on_worker_stop(int /*worker*/) {}
};

namespace internal {
// The next arrival number of a policy that orders by arrival (FifoPolicy, PriorityPolicy).
// Workers bump it with a plain load and store, no read-modify-write on their hot path: two
// racing pushes may share a number, which only leaves their relative order arbitrary, as it
// is anyway. Other threads (plain threads, the timer thread) are the ones likely to be
// preempted between the two, and a store that came back after others had counted on would
// roll the numbers back: later tasks would look older than earlier ones for as many pushes.
// They add atomically.
inline std::uint64_t next_arrival(std::atomic<std::uint64_t>& counter, int from_worker) {
  if (from_worker < 0) return counter.fetch_add(1, std::memory_order_relaxed);
  const std::uint64_t n = counter.load(std::memory_order_relaxed);
  counter.store(n + 1, std::memory_order_relaxed);
  return n;
}

using StealTraceFn = void (*)(const SchedNode* node, int victim, int thief);
// Set once a runtime traces (weft/sched/trace.h); null until then.
inline std::atomic<StealTraceFn> steal_trace_hook{nullptr};
}  // namespace internal

// A policy that moves `node` from worker `victim`'s queue to worker `thief` calls this from
// pop(thief): the runtime's trace (WEFT_TRACE) records it. Untraced, it costs a load and a
// branch, so it can stay in a policy's steal path unconditionally.
inline void trace_steal(const SchedNode* node, int victim, int thief) {
  internal::StealTraceFn hook = internal::steal_trace_hook.load(std::memory_order_relaxed);
  if (__builtin_expect(hook != nullptr, 0)) hook(node, victim, thief);
}

// The policy the default runtime uses: defined by exactly one linked scheduler target
// (//sched:scheduler picks it; see WEFT_DEFAULT_POLICY below).
std::unique_ptr<Policy> make_default_policy();

}  // namespace weft

// Defines make_default_policy() to return a new PolicyClass. A scheduler target puts this in one
// .cc file and sets alwayslink = True, so linking the target is what selects the policy; linking
// two scheduler targets into one binary fails with a duplicate symbol, as it should.
#define WEFT_DEFAULT_POLICY(PolicyClass)                   \
  std::unique_ptr<::weft::Policy> weft::make_default_policy() { \
    return std::make_unique<PolicyClass>();                 \
  }

#endif  // WEFT_SCHED_POLICY_H_
