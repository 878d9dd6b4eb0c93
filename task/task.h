// Task handles: Julia's Task, @task and the istask* queries.
//
// A task is a function run on its own stack, switched to and from by the scheduler. Creating a
// Task (Julia's Task(func) and @task) does not start it: schedule(), yield(t), yieldto() or
// wait() do (weft/sched/scheduling.h). Task<T> is a typed handle (fetch returns T); TaskRef is
// the untyped one (Julia's Task), to which every Task<T> converts. Handles are cheap to copy
// (an atomic reference count) and safe to share between threads.
//
// By default a task is sticky, as Julia's Task(func) is: it runs only on the worker thread it is
// first scheduled on. Set it non-sticky before scheduling to let it migrate (Threads.@spawn
// does this for you: weft::spawn).
#ifndef WEFT_TASK_TASK_H_
#define WEFT_TASK_TASK_H_

#include <concepts>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

#include "weft/task/task_core.h"

namespace weft {

// What a task's state looks like from outside (Julia's :runnable, :done, :failed, plus detail).
enum class TaskState { kCreated, kQueued, kRunning, kWaiting, kDone, kFailed };
const char* to_string(TaskState state);

namespace internal {
[[noreturn, gnu::cold]] void throw_empty_task_handle(const char* op);
}  // namespace internal

// An empty handle (default-constructed, moved from, or current_task() on a plain thread) names
// no task: every call below, and every function taking a handle, throws std::invalid_argument
// for it, naming the call. valid() tells them apart.
class TaskRef {
 public:
  TaskRef() = default;
  explicit TaskRef(internal::TaskPtr core) : core_(std::move(core)) {}

  bool valid() const { return static_cast<bool>(core_); }
  std::uint64_t id() const { return checked_core("TaskRef::id")->id(); }
  TaskState state() const;

  bool sticky() const { return checked_core("TaskRef::sticky")->sticky; }
  // Only before the task is first scheduled; afterwards throws TaskStateError.
  void set_sticky(bool sticky);
  // Pool the task runs in, priority and stack size: settable before the first schedule.
  Pool pool() const { return checked_core("TaskRef::pool")->node.pool; }
  void set_pool(Pool pool);
  int priority() const { return checked_core("TaskRef::priority")->node.priority; }
  void set_priority(int priority);
  void set_stack_size(std::size_t bytes);
  void set_policy_arg(std::int64_t arg);

  // nullptr for an empty handle.
  internal::TaskCore* core() const { return core_.get(); }
  // The core, or std::invalid_argument naming `op` for an empty handle.
  internal::TaskCore* checked_core(const char* op) const {
    if (__builtin_expect(!core_, 0)) internal::throw_empty_task_handle(op);
    return core_.get();
  }
  friend bool operator==(const TaskRef& a, const TaskRef& b) { return a.core_ == b.core_; }

 protected:
  internal::TaskPtr core_;
};

bool istaskstarted(const TaskRef& t);
bool istaskdone(const TaskRef& t);
bool istaskfailed(const TaskRef& t);

namespace internal {

[[noreturn]] void throw_result_not_copyable(const TaskCore* core);

template <typename T>
class TaskResult : public TaskCore {
 public:
  std::optional<T> value;

  std::any result_as_any() const override {
    if constexpr (std::is_copy_constructible_v<T>) {
      return value.has_value() ? std::any(*value) : std::any();
    } else {
      throw_result_not_copyable(this);
    }
  }
};

template <>
class TaskResult<void> : public TaskCore {};

template <typename T, typename F>
class TaskImpl final : public TaskResult<T> {
 public:
  template <typename G>
  explicit TaskImpl(G&& g) : fn_(std::forward<G>(g)) {}

  // The callable is destroyed as soon as it has run (or thrown): a finished task must not keep
  // its captures alive while handles to it exist (a TaskFailedException holds one, and a
  // closure that captured the object holding that exception would otherwise form a cycle).
  void run_body() override {
    struct Drop {
      std::optional<F>& fn;
      ~Drop() { fn.reset(); }
    } drop{fn_};
    if constexpr (std::is_void_v<T>) {
      (*fn_)();
    } else {
      this->value.emplace((*fn_)());
    }
  }

 private:
  std::optional<F> fn_;
};

// Throws TaskStateError naming `what` if the task was scheduled already; `advice` follows.
void check_before_schedule(const TaskCore* core, const char* what,
                           const char* advice = "; set it before the first schedule");
// Throws std::invalid_argument naming `what` unless `pool` is one of the Pool values.
void check_pool(Pool pool, const char* what);

[[noreturn, gnu::cold]] void throw_empty_callable();

// f, refused (std::invalid_argument) if it is an empty std::function or AnyInvocable or a null
// function pointer: run as a task body it would fail only later, or crash the process.
template <typename F>
F&& checked_callable(F&& f) {
  // A function named directly (a reference to it) is never null.
  if constexpr (!std::is_function_v<std::remove_reference_t<F>> &&
                requires(const std::decay_t<F>& g) {
                  { g == nullptr } -> std::convertible_to<bool>;
                }) {
    if (f == nullptr) throw_empty_callable();
  }
  return std::forward<F>(f);
}

}  // namespace internal

template <typename T = void>
class Task : public TaskRef {
 public:
  using value_type = T;
  Task() = default;

  // Julia's Task(func): a task that will run f() when scheduled; not started. An empty f (an
  // empty std::function, a null function pointer) throws std::invalid_argument.
  template <typename F,
            typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, Task> &&
                                        std::is_invocable_r_v<T, std::decay_t<F>&>>>
  explicit Task(F&& f)
      : TaskRef(internal::TaskPtr(new internal::TaskImpl<T, std::decay_t<F>>(
                                      internal::checked_callable(std::forward<F>(f))),
                                  /*adopt=*/true)) {}

  // The result of a finished, successful task (used by fetch after waiting).
  internal::TaskResult<T>* result_core() const {
    return static_cast<internal::TaskResult<T>*>(core_.get());
  }
};

// Julia's @task: wraps f in a new, not started task.
template <typename F>
auto make_task(F&& f) {
  using R = std::invoke_result_t<std::decay_t<F>&>;
  return Task<R>(std::forward<F>(f));
}

}  // namespace weft

#endif  // WEFT_TASK_TASK_H_
