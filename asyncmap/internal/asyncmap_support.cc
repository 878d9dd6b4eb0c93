#include "weft/asyncmap/internal/asyncmap_support.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace weft::internal {

namespace {
// Julia's default: one task per element, up to 100.
constexpr std::size_t kDefaultMaxTasks = 100;
}  // namespace

TaskLimit::TaskLimit(const NTasks& ntasks, std::size_t elements) {
  if (const int* n = std::get_if<int>(&ntasks)) {
    if (*n < 0) {
      throw std::invalid_argument(absl::StrCat(
          "asyncmap: ntasks must be a positive integer (0: one task per element, up to 100) or "
          "a function returning one; ntasks=",
          *n));
    }
    fixed_ = *n != 0 ? *n
                     : static_cast<int>(std::max<std::size_t>(
                           1, std::min(kDefaultMaxTasks, elements)));
    return;
  }
  function_ = &std::get<std::function<int()>>(ntasks);
  if (!*function_) throw std::invalid_argument("asyncmap: ntasks is an empty std::function");
}

bool TaskLimit::start_another(std::size_t running) const {
  if (function_ == nullptr) return running < static_cast<std::size_t>(fixed_);
  const int want = (*function_)();
  // At least one task, whatever the function says (Julia starts one when it returns 0).
  if (running == 0) return true;
  return want > 0 && running < static_cast<std::size_t>(want);
}

void MapFailure::record(std::exception_ptr error) {
  bool expected = false;
  if (failed_.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) {
    error_ = std::move(error);
  }
}

void MapFailure::rethrow_if_failed() const {
  if (failed()) std::rethrow_exception(error_);
}

std::size_t checked_common_length(const std::vector<std::size_t>& lengths) {
  const std::size_t first = lengths.front();
  for (std::size_t n : lengths) {
    if (n != first) {
      throw std::invalid_argument(
          absl::StrCat("asyncmap: the collections must have equal lengths, got ",
                       absl::StrJoin(lengths, ", ")));
    }
  }
  return first;
}

void check_batch_size(const std::optional<int>& batch_size) {
  if (batch_size.has_value() && *batch_size < 1) {
    throw std::invalid_argument(absl::StrCat(
        "asyncmap: batch_size must be a positive integer; batch_size=", *batch_size));
  }
}

void check_batch_mode(bool batch_function, const std::optional<int>& batch_size) {
  check_batch_size(batch_size);
  if (batch_function && !batch_size.has_value()) {
    throw std::invalid_argument(
        "asyncmap: f takes a vector of argument tuples (batch mode) but no batch_size was given");
  }
  if (!batch_function && batch_size.has_value()) {
    throw std::invalid_argument(absl::StrCat(
        "asyncmap: batch_size=", *batch_size,
        " needs f to take a std::vector of argument tuples (and not single elements; give a "
        "generic lambda its parameter type)"));
  }
}

void check_batch_results(std::size_t got, std::size_t want) {
  if (got != want) {
    throw std::invalid_argument(absl::StrCat("asyncmap: the batch function returned ", got,
                                             " results for a batch of ", want));
  }
}

void check_results_size(std::size_t have, std::size_t need) {
  if (have < need) {
    throw std::invalid_argument(absl::StrCat("asyncmap_into: results holds ", have,
                                             " elements, the collections have ", need));
  }
}

void throw_results_too_small(std::size_t have) {
  throw std::invalid_argument(absl::StrCat("asyncmap_into: results holds ", have,
                                           " elements, the collections have more"));
}

}  // namespace weft::internal
