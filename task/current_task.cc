#include "weft/task/current_task.h"

#include <atomic>

namespace weft::internal {
namespace {
thread_local TaskCore* tls_current_task = nullptr;
thread_local Waiter* tls_thread_waiter = nullptr;
thread_local std::uint64_t tls_thread_number = 0;  // 0: not numbered yet
std::atomic<std::uint64_t> next_thread_number{2};

[[gnu::noinline, gnu::cold]] std::uint64_t number_this_thread() {
  tls_thread_number = next_thread_number.fetch_add(1, std::memory_order_relaxed);
  return tls_thread_number;
}

inline std::uint64_t thread_number() {
  const std::uint64_t n = tls_thread_number;
  return n != 0 ? n : number_this_thread();
}

inline std::uint64_t lock_owner(std::uint64_t number) {
  const TaskCore* const task = tls_current_task;
  return task != nullptr ? ((task->id() + 1) << 1) | 1 : number << 1;
}

inline Waiter* self() {
  TaskCore* const task = tls_current_task;
  return task != nullptr ? static_cast<Waiter*>(task) : tls_thread_waiter;
}
}  // namespace

WEFT_THREAD_STATE_ACCESSOR TaskCore* current_task_core() { return tls_current_task; }

WEFT_THREAD_STATE_ACCESSOR void set_current_task_core(TaskCore* core) {
  tls_current_task = core;
}

WEFT_THREAD_STATE_ACCESSOR std::uint64_t current_thread_number() { return thread_number(); }

WEFT_THREAD_STATE_ACCESSOR Waiter* current_self() { return self(); }

WEFT_THREAD_STATE_ACCESSOR void set_current_thread_waiter(Waiter* w) {
  tls_thread_waiter = w;
}

WEFT_THREAD_STATE_ACCESSOR LockIds current_lock_ids() {
  const std::uint64_t n = thread_number();
  return {lock_owner(n), n};
}

WEFT_THREAD_STATE_ACCESSOR std::uint64_t current_lock_owner() {
  return tls_current_task != nullptr ? lock_owner(0) : lock_owner(thread_number());
}

}  // namespace weft::internal
