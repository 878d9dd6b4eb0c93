// Task-local storage: Julia's task_local_storage(key), task_local_storage(key, value) and the
// scoped task_local_storage(body, key, value).
//
// Each task has its own key -> value table, created on first use; a plain thread (not a task)
// has one per thread. Keys are strings, values std::any. Only the running task touches its table,
// so no locking: the storage follows the task when it migrates between worker threads.
// Looking up a missing key throws std::out_of_range naming the key (Julia's KeyError). A
// reference to a stored value stays valid while its key stays in the table: storing other keys
// does not move it. A task's table is destroyed as its function returns or throws, on the task
// itself and before it is marked done (so a value may hold the task's own handle without
// keeping the task alive); a plain thread's, when the thread exits.
#ifndef WEFT_TASK_TASK_LOCAL_STORAGE_H_
#define WEFT_TASK_TASK_LOCAL_STORAGE_H_

#include <any>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/node_hash_map.h"
#include "absl/strings/string_view.h"

namespace weft {

class TaskLocalStorage {
 public:
  bool contains(absl::string_view key) const { return map_.contains(key); }
  // nullptr when absent.
  std::any* find(absl::string_view key);
  // Throws std::out_of_range naming the key when absent.
  std::any& at(absl::string_view key);
  void set(std::string key, std::any value) { map_.insert_or_assign(std::move(key), std::move(value)); }
  bool erase(absl::string_view key) { return map_.erase(key) > 0; }
  std::size_t size() const { return map_.size(); }

 private:
  // Node-based: task_local_storage(key) hands out references into it.
  absl::node_hash_map<std::string, std::any> map_;
};

// The calling task's table (or the calling thread's, outside any task).
TaskLocalStorage& task_local_storage();

// task_local_storage(key): the value; throws std::out_of_range when the key is absent.
std::any& task_local_storage(absl::string_view key);

// task_local_storage(key, value): sets it and returns a reference to the stored value.
std::any& task_local_storage(std::string key, std::any value);

// task_local_storage(body, key, value): runs body() with key bound to value, then restores the
// previous value (or its absence), also when body throws. Returns what body returns.
template <typename F>
decltype(auto) task_local_storage(F&& body, std::string key, std::any value) {
  TaskLocalStorage& tls = task_local_storage();
  std::optional<std::any> previous;
  if (std::any* old = tls.find(key)) previous = std::move(*old);
  tls.set(key, std::move(value));
  struct Restore {
    TaskLocalStorage& tls;
    std::string& key;
    std::optional<std::any>& previous;
    ~Restore() {
      // Re-fetch the table: body may have migrated the task, but the table is the task's own,
      // so the reference stays valid; only the entry changes.
      if (previous) {
        tls.set(key, std::move(*previous));
      } else {
        tls.erase(key);
      }
    }
  } restore{tls, key, previous};
  return std::forward<F>(body)();
}

}  // namespace weft

#endif  // WEFT_TASK_TASK_LOCAL_STORAGE_H_
