// DeadlockError: what a plain thread waiting for a task gets when nothing can ever wake it.
//
// Deadlock detection (on by default; RuntimeOptions::detect_deadlocks, WEFT_DEADLOCK_DETECTION=0)
// watches plain threads blocked without a deadline in wait(t), fetch(t) or Runtime::run: if,
// over ~300 ms, every worker of every runtime stays idle, every started task stays parked,
// no timer is pending, nobody waits for a file descriptor or process, every other thread known
// to the runtime is itself blocked in weft without a deadline and no ExternalWakeSource
// (weft/sched/park.h) exists, the waiting thread's wait throws DeadlockError listing every
// waiting task and thread -- weft's "all goroutines are asleep". Tasks are never woken by it:
// they stay parked (a primitive's queue still holds them); the error goes to the thread.
// A thread blocked directly on a primitive (a channel, a lock) in such a deadlock gets the same
// report on stderr but keeps waiting: the primitive still points into its stack, so it cannot
// be released safely.
// A thread that got a DeadlockError counts as running from then on (it may go on to wake the
// others), until it blocks in weft again: if several threads share one deadlock and the first
// released then blocks elsewhere (joins another), the rest are not reported. No false report
// is preferred over every report.
#ifndef WEFT_SCHED_DEADLOCK_ERROR_H_
#define WEFT_SCHED_DEADLOCK_ERROR_H_

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "weft/sched/task_dump.h"

namespace weft {

class DeadlockError : public std::runtime_error {
 public:
  DeadlockError(const std::string& message, std::vector<TaskInfo> tasks)
      : std::runtime_error(message),
        tasks_(std::make_shared<const std::vector<TaskInfo>>(std::move(tasks))) {}

  // Every started task of every runtime when the deadlock was found, with waits and backtraces.
  const std::vector<TaskInfo>& tasks() const { return *tasks_; }

 private:
  std::shared_ptr<const std::vector<TaskInfo>> tasks_;  // shared: copying the error never throws
};

}  // namespace weft

#endif  // WEFT_SCHED_DEADLOCK_ERROR_H_
