#include "weft/task/task_local_storage.h"

#include <memory>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "weft/task/current_task.h"

namespace weft {

std::any* TaskLocalStorage::find(absl::string_view key) {
  auto it = map_.find(key);
  return it == map_.end() ? nullptr : &it->second;
}

std::any& TaskLocalStorage::at(absl::string_view key) {
  if (std::any* v = find(key)) return *v;
  throw std::out_of_range(absl::StrCat("task_local_storage: no value for key \"", key, "\""));
}

// Never inlined: a caller that switches tasks in between must not reuse a plain thread's
// thread_local address (weft/task/context.h, "Per-thread state").
[[gnu::noinline]] TaskLocalStorage& task_local_storage() {
  internal::TaskCore* core = internal::current_task_core();
  if (core == nullptr) {
    thread_local TaskLocalStorage thread_storage;
    return thread_storage;
  }
  if (!core->local_storage) core->local_storage = std::make_unique<TaskLocalStorage>();
  return *core->local_storage;
}

std::any& task_local_storage(absl::string_view key) { return task_local_storage().at(key); }

std::any& task_local_storage(std::string key, std::any value) {
  TaskLocalStorage& tls = task_local_storage();
  std::string lookup = key;
  tls.set(std::move(key), std::move(value));
  return tls.at(lookup);
}

}  // namespace weft
