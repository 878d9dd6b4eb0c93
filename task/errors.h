// Exceptions raised by weft's task API.
//
// TaskFailedException is Julia's: wait(t) or fetch(t) on a task that ended with an exception
// throws it, carrying the original exception and the failed task. TaskStateError is raised for
// operations the task's state forbids (scheduling a finished or already queued task, yieldto a
// finished task, a task waiting on itself, ...); its message names the task and its state.
#ifndef WEFT_TASK_ERRORS_H_
#define WEFT_TASK_ERRORS_H_

#include <exception>
#include <stdexcept>
#include <string>

#include "weft/task/task.h"

namespace weft {

class TaskFailedException : public std::exception {
 public:
  TaskFailedException(TaskRef task, std::exception_ptr cause);

  const char* what() const noexcept override { return message_.c_str(); }
  const TaskRef& task() const { return task_; }
  // The exception the task's body threw.
  const std::exception_ptr& cause() const { return cause_; }
  // Rethrows the cause (for catching it by type).
  [[noreturn]] void rethrow_cause() const { std::rethrow_exception(cause_); }

 private:
  TaskRef task_;
  std::exception_ptr cause_;
  std::string message_;
};

class TaskStateError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// A description of an exception_ptr for messages: what() of a std::exception, else a type note.
std::string describe_exception(const std::exception_ptr& e);

}  // namespace weft

#endif  // WEFT_TASK_ERRORS_H_
