// sync_scope: Julia's @sync. Runs a body that starts tasks, then waits for every one of them,
// including tasks those tasks start in the same scope, and throws a CompositeException
// collecting every failure.
//
//   sync_scope([&](SyncScope& s) {
//     s.spawn([] { work(1); });                  // Threads.@spawn inside @sync
//     s.async([&] { s.spawn([] { work(2); }); });  // @async; its child joins the scope too
//   });
//
// Nesting: a task started by a scope runs with that scope as its "current sync scope" (a
// task-local binding), as does the body; sync_spawn() / sync_async() start a task in the
// current scope of the calling task (or a plain one outside any scope), so code deep inside a
// scope's tasks joins it without being handed the SyncScope. A sync_scope inside a scope's task
// is its own scope: the outer one waits for the task, and so for the inner scope as a whole.
//
// Errors: if any task failed, sync_scope throws CompositeException (one TaskFailedException per
// failed task, in registration order). If the body itself throws, the scope still waits for
// all its tasks (they may refer to the body's frame); it then rethrows the body's exception
// unchanged if no task failed, else a CompositeException whose first entry is the body's.
// Thread safety: a SyncScope may be used from any task or thread while its scope is open;
// registering a task after the scope finished waiting is a bug (it would not be waited for).
#ifndef WEFT_SYNC_SYNC_SCOPE_H_
#define WEFT_SYNC_SYNC_SCOPE_H_

#include <cstddef>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "weft/sched/scheduling.h"
#include "weft/sched/biased_lock.h"
#include "weft/sync/composite_exception.h"
#include "weft/task/task.h"
#include "weft/task/task_local_storage.h"

namespace weft {

class SyncScope {
 public:
  // Prefer sync_scope(body). A scope made directly must be wait()ed for before it is destroyed;
  // the destructor otherwise waits for the tasks and reports their failures on stderr.
  SyncScope() = default;
  ~SyncScope();
  SyncScope(const SyncScope&) = delete;
  SyncScope& operator=(const SyncScope&) = delete;

  // Threads.@spawn in the scope: a non-sticky task running f, awaited by the scope.
  template <typename F>
  auto spawn(F&& f, SpawnOptions options = {}) {
    auto t = weft::spawn(bind(std::forward<F>(f)), options);
    add(t);
    return t;
  }

  // @async in the scope: a sticky task on the calling worker, awaited by the scope.
  template <typename F>
  auto async(F&& f) {
    auto t = weft::async(bind(std::forward<F>(f)));
    add(t);
    return t;
  }

  // Adds a task started some other way to the tasks the scope waits for.
  void add(const TaskRef& t);

  // Julia's sync_end: waits for every task added so far and any they add meanwhile; throws
  // CompositeException if some failed. The scope is empty (reusable) afterwards.
  void wait() { finish(nullptr); }

  // The innermost scope the calling task runs in, or nullptr.
  static SyncScope* current();

  // Runs body() with this scope as the calling task's current scope (restored afterwards).
  template <typename Body>
  decltype(auto) enter(Body&& body) {
    return task_local_storage(std::forward<Body>(body), std::string(kKey), std::any(this));
  }

  // Waits as wait() does; `body_error` (may be null) is what the scope's body threw.
  void finish(std::exception_ptr body_error);

 private:
  static constexpr const char* kKey = "weft.sync_scope";

  template <typename F>
  auto bind(F&& f) {
    return [scope = this, fn = std::forward<F>(f)]() mutable -> decltype(auto) {
      bind_current(scope);
      return fn();
    };
  }
  static void bind_current(SyncScope* scope);
  void compact();

  BiasedLock lock_;
  std::vector<TaskRef> tasks_;  // registration order; tasks_[0, next_) are already waited for
  std::size_t next_ = 0;
  std::size_t compact_at_ = 256;
};

// @sync begin ... end: runs body(scope) (or body()) and waits for the scope's tasks; returns
// what the body returned.
template <typename Body>
auto sync_scope(Body&& body) {
  SyncScope scope;
  auto call = [&]() -> decltype(auto) {
    if constexpr (std::is_invocable_v<Body&&, SyncScope&>) {
      return std::forward<Body>(body)(scope);
    } else {
      return std::forward<Body>(body)();
    }
  };
  using R = std::decay_t<decltype(call())>;
  if constexpr (std::is_void_v<R>) {
    std::exception_ptr error;
    try {
      scope.enter(call);
    } catch (...) {
      error = std::current_exception();
    }
    scope.finish(error);
  } else {
    std::optional<R> result;
    std::exception_ptr error;
    try {
      scope.enter([&] { result.emplace(call()); });
    } catch (...) {
      error = std::current_exception();
    }
    scope.finish(error);
    return std::move(*result);
  }
}

// Threads.@spawn / @async as they behave lexically inside @sync: the task joins the calling
// task's current scope, if any.
template <typename F>
auto sync_spawn(F&& f, SpawnOptions options = {}) {
  if (SyncScope* s = SyncScope::current()) return s->spawn(std::forward<F>(f), options);
  return spawn(std::forward<F>(f), options);
}

template <typename F>
auto sync_async(F&& f) {
  if (SyncScope* s = SyncScope::current()) return s->async(std::forward<F>(f));
  return async(std::forward<F>(f));
}

}  // namespace weft

#endif  // WEFT_SYNC_SYNC_SCOPE_H_
