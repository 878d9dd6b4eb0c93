// CompositeException: Julia's CompositeException, the exception a sync scope (@sync) throws to
// report every failure of the tasks it waited for, not only the first.
//
// It holds the collected exceptions in the order they were found (for tasks, each one a
// TaskFailedException naming the task and carrying its cause); what() lists them all.
#ifndef WEFT_SYNC_COMPOSITE_EXCEPTION_H_
#define WEFT_SYNC_COMPOSITE_EXCEPTION_H_

#include <cstddef>
#include <exception>
#include <string>
#include <vector>

namespace weft {

class CompositeException : public std::exception {
 public:
  explicit CompositeException(std::vector<std::exception_ptr> exceptions);

  const char* what() const noexcept override { return message_.c_str(); }
  const std::vector<std::exception_ptr>& exceptions() const { return exceptions_; }
  std::size_t size() const { return exceptions_.size(); }
  auto begin() const { return exceptions_.begin(); }
  auto end() const { return exceptions_.end(); }

 private:
  std::vector<std::exception_ptr> exceptions_;
  std::string message_;
};

}  // namespace weft

#endif  // WEFT_SYNC_COMPOSITE_EXCEPTION_H_
