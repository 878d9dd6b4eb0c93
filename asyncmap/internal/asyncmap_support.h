// The non-template parts of asyncmap: option checks with their error messages, the task
// limit (ntasks as a number or a function), and the record of the first failure.
#ifndef WEFT_ASYNCMAP_INTERNAL_ASYNCMAP_SUPPORT_H_
#define WEFT_ASYNCMAP_INTERNAL_ASYNCMAP_SUPPORT_H_

#include <atomic>
#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <variant>
#include <vector>

namespace weft::internal {

using NTasks = std::variant<int, std::function<int()>>;

// Decides, before each unit is handed out, whether a new task takes it.
class TaskLimit {
 public:
  // Throws std::invalid_argument for a negative number or an empty function.
  TaskLimit(const NTasks& ntasks, std::size_t elements);
  bool start_another(std::size_t running) const;

 private:
  int fixed_ = 0;
  const std::function<int()>* function_ = nullptr;
};

// The first exception a mapping task caught; later ones are dropped.
class MapFailure {
 public:
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  void record(std::exception_ptr error);
  // Only after every task that may record has finished.
  void rethrow_if_failed() const;

 private:
  std::atomic<bool> failed_{false};
  std::exception_ptr error_;
};

// All lengths equal: returns it; else std::invalid_argument listing them.
std::size_t checked_common_length(const std::vector<std::size_t>& lengths);
void check_batch_size(const std::optional<int>& batch_size);
// Batch mode (f takes a vector of tuples) needs a batch_size, element mode must not have one.
void check_batch_mode(bool batch_function, const std::optional<int>& batch_size);
void check_batch_results(std::size_t got, std::size_t want);
void check_results_size(std::size_t have, std::size_t need);
// A single-pass collection went on past results' end.
[[noreturn]] void throw_results_too_small(std::size_t have);

}  // namespace weft::internal

#endif  // WEFT_ASYNCMAP_INTERNAL_ASYNCMAP_SUPPORT_H_
