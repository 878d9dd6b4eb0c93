#include "weft/task/errors.h"

#include <typeinfo>

#include "absl/strings/str_cat.h"

namespace weft {

std::string describe_exception(const std::exception_ptr& e) {
  if (e == nullptr) return "no exception";
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}

TaskFailedException::TaskFailedException(TaskRef task, std::exception_ptr cause)
    : task_(std::move(task)),
      cause_(std::move(cause)),
      message_(absl::StrCat("TaskFailedException: ",
                            task_.valid() ? absl::StrCat("task ", task_.id()) : "a task",
                            " failed: ", describe_exception(cause_))) {}

}  // namespace weft
