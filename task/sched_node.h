// SchedNode: the part of a task a scheduler policy sees.
//
// Every task embeds one. A policy queues nodes (never tasks) and may use `next`, `prev` and
// `policy_word` freely while the node is in its care (from push() until pop() returns it); the
// other fields are set by the runtime and are read-only to the policy. Nodes are never copied.
#ifndef WEFT_TASK_SCHED_NODE_H_
#define WEFT_TASK_SCHED_NODE_H_

#include <cstddef>
#include <cstdint>

namespace weft {

// Julia's threadpools. Workers belong to exactly one pool; a task runs only on its pool's
// workers.
enum class Pool : std::uint8_t { kDefault = 0, kInteractive = 1 };
inline constexpr int kNumPools = 2;

const char* to_string(Pool pool);

// Task priority: higher runs first under policies that care (sched:priority). Others ignore it.
inline constexpr int kDefaultPriority = 0;

struct SchedNode {
  // Free for the policy while the node is queued.
  SchedNode* next = nullptr;
  SchedNode* prev = nullptr;
  std::uint64_t policy_word = 0;

  // Read-only to the policy.
  std::int32_t affinity = -1;   // worker index the task must run on, or -1 for any in `pool`
  Pool pool = Pool::kDefault;
  std::int32_t priority = kDefaultPriority;
  std::int64_t policy_arg = 0;  // set at spawn (SpawnOptions::policy_arg), e.g. a deadline
  std::uint64_t task_id = 0;    // for diagnostics
};

// Where a node sits in its task (task_core.h asserts it), and how much of the task starting
// it touches: what prefetch_task() fetches.
inline constexpr std::ptrdiff_t kSchedNodeOffsetInTask = 88;
inline constexpr std::ptrdiff_t kTaskStartBytes = 256;

// A hint for a policy that knows which node it will hand out a few pops from now: starts
// loading that task's memory into the cache. A program that spawns many tasks before they run
// finds each cold when it does (1M spawned tasks are 256 MB), and a miss per line of it on
// every pop. No effect on behaviour: any node, even one another thread has since taken and
// freed, is safe to pass (a prefetch never faults).
inline void prefetch_task(const SchedNode* node) {
  const char* task = reinterpret_cast<const char*>(node) - kSchedNodeOffsetInTask;
  for (std::ptrdiff_t line = 0; line < kTaskStartBytes; line += 64) {
    __builtin_prefetch(task + line);
  }
}

}  // namespace weft

#endif  // WEFT_TASK_SCHED_NODE_H_
