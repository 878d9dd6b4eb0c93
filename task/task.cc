#include "weft/task/task.h"

#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "weft/task/errors.h"

namespace weft {

const char* to_string(TaskState state) {
  switch (state) {
    case TaskState::kCreated: return "created";
    case TaskState::kQueued: return "queued";
    case TaskState::kRunning: return "running";
    case TaskState::kWaiting: return "waiting";
    case TaskState::kDone: return "done";
    case TaskState::kFailed: return "failed";
  }
  return "unknown";
}

const char* to_string(Pool pool) {
  return pool == Pool::kInteractive ? "interactive" : "default";
}

const char* to_string(WaitKind kind) {
  switch (kind) {
    case WaitKind::kNone: return "nothing";
    case WaitKind::kExplicit: return "wait()";
    case WaitKind::kYieldTo: return "yieldto";
    case WaitKind::kTask: return "task";
    case WaitKind::kCondition: return "condition";
    case WaitKind::kEvent: return "event";
    case WaitKind::kSemaphore: return "semaphore";
    case WaitKind::kLock: return "lock";
    case WaitKind::kChannelPut: return "channel put";
    case WaitKind::kChannelTake: return "channel take";
    case WaitKind::kSleep: return "sleep";
    case WaitKind::kFd: return "file descriptor";
    case WaitKind::kProcess: return "process";
    case WaitKind::kChannelLock: return "channel lock";
  }
  return "unknown";
}

TaskState TaskRef::state() const {
  checked_core("TaskRef::state");
  std::uint32_t s = core_->state.load(std::memory_order_acquire) & ~internal::kClaimBit;
  // An owned park leaves the state word as it was (sched/park.cc).
  switch (core_->owned_park.load(std::memory_order_relaxed)) {
    case internal::kOwnedParked: return TaskState::kWaiting;
    case internal::kOwnedWoken: return TaskState::kQueued;
    default: break;
  }
  switch (s) {
    case internal::kCreated: return TaskState::kCreated;
    case internal::kQueued: return TaskState::kQueued;
    case internal::kRunning:
    case internal::kNotified:
    case internal::kArming: return TaskState::kRunning;
    case internal::kParked: return TaskState::kWaiting;
    default: return core_->exception ? TaskState::kFailed : TaskState::kDone;
  }
}

namespace internal {
void throw_empty_task_handle(const char* op) {
  throw std::invalid_argument(absl::StrCat(
      op, ": the task handle is empty (default-constructed, moved from, or current_task() on "
          "a thread that is not running a task)"));
}

void check_pool(Pool pool, const char* what) {
  if (static_cast<int>(pool) >= kNumPools) {
    throw std::invalid_argument(absl::StrCat(what, ": ", static_cast<int>(pool),
                                             " is not a pool (Pool::kDefault or "
                                             "Pool::kInteractive)"));
  }
}

void throw_empty_callable() {
  throw std::invalid_argument(
      "Task: the function is empty (an empty std::function or AnyInvocable, or a null function "
      "pointer)");
}

void throw_result_not_copyable(const TaskCore* core) {
  throw std::logic_error(absl::StrCat("fetch: task ", core->id(),
                                      "'s result type cannot be copied into a std::any; fetch "
                                      "it through its typed Task<T>, which returns a reference "
                                      "to it"));
}

void check_before_schedule(const TaskCore* core, const char* what, const char* advice) {
  if (core->state.load(std::memory_order_acquire) != kCreated) {
    throw TaskStateError(
        absl::StrCat(what, ": task ", core->id(), " has already been scheduled", advice));
  }
}
}  // namespace internal

void TaskRef::set_sticky(bool sticky) {
  internal::check_before_schedule(checked_core("set_sticky"), "set_sticky");
  core_->sticky = sticky;
}

void TaskRef::set_pool(Pool pool) {
  internal::check_before_schedule(checked_core("set_pool"), "set_pool");
  internal::check_pool(pool, "set_pool");
  core_->node.pool = pool;
}

void TaskRef::set_priority(int priority) {
  internal::check_before_schedule(checked_core("set_priority"), "set_priority");
  core_->node.priority = priority;
}

void TaskRef::set_stack_size(std::size_t bytes) {
  internal::check_before_schedule(checked_core("set_stack_size"), "set_stack_size");
  core_->request_stack_size(bytes);
}

void TaskRef::set_policy_arg(std::int64_t arg) {
  internal::check_before_schedule(checked_core("set_policy_arg"), "set_policy_arg");
  core_->node.policy_arg = arg;
}

bool istaskstarted(const TaskRef& t) { return t.checked_core("istaskstarted")->started(); }
bool istaskdone(const TaskRef& t) { return t.checked_core("istaskdone")->done(); }
bool istaskfailed(const TaskRef& t) { return t.checked_core("istaskfailed")->failed(); }

}  // namespace weft
