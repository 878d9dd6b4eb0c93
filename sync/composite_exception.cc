#include "weft/sync/composite_exception.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "weft/task/errors.h"

namespace weft {

CompositeException::CompositeException(std::vector<std::exception_ptr> exceptions)
    : exceptions_(std::move(exceptions)) {
  message_ = absl::StrCat("CompositeException (", exceptions_.size(),
                          exceptions_.size() == 1 ? " exception):" : " exceptions):");
  for (std::size_t i = 0; i < exceptions_.size(); ++i) {
    absl::StrAppend(&message_, "\n  [", i + 1, "] ", describe_exception(exceptions_[i]));
  }
}

}  // namespace weft
