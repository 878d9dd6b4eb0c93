// Task dumps: every started, unfinished task of a runtime with its state, where it runs, what
// it waits on and (when parked) its backtrace -- weft's counterpart of Go's goroutine dump.
//
//   for (const weft::TaskInfo& t : weft::task_dump(runtime)) ...
//   std::fputs(weft::format_task_dump(runtime).c_str(), stderr);
//
// The same text is printed on SIGQUIT (kill -QUIT <pid>, Ctrl-\) for every runtime of the
// process; unlike Go, the process then carries on. The handler is installed by the first
// runtime created with RuntimeOptions::sigquit_dump (the default) unless WEFT_SIGQUIT_DUMP=0,
// and only if SIGQUIT still has its default action (a handler of the program's own wins).
//
// What is listed: tasks that have started (run at least once) and not finished. Tasks queued
// but never started are only counted (format_task_dump says how many). A parked task is held
// still for the few microseconds its backtrace takes: a waker meanwhile spins on it.
// Backtraces are symbolized from the binary's symbol table (static functions included), with
// module+offset for addr2line; a parked task with under 12 KiB of free stack gets a line
// saying so instead.
// Thread safety: any thread or task, at any time; a snapshot, not an atomic one.
#ifndef WEFT_SCHED_TASK_DUMP_H_
#define WEFT_SCHED_TASK_DUMP_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "weft/sched/park.h"
#include "weft/sched/runtime.h"
#include "weft/task/task.h"

namespace weft {

struct TaskInfo {
  std::uint64_t id = 0;
  TaskState state = TaskState::kQueued;  // kQueued (runnable), kRunning or kWaiting
  Pool pool = Pool::kDefault;
  int worker = -1;  // the worker it runs on (kRunning) or last ran on; 0-based, -1: none yet
  WaitKind wait_kind = WaitKind::kNone;  // kWaiting only
  const void* wait_object = nullptr;     // the primitive (or task) it waits on
  // E.g. "task 12", "channel take 0x5581c2a0", "sleep until +35ms", "lock 0x... until +2s".
  std::string wait_description;
  std::optional<Clock::time_point> wait_deadline;  // timed waits
  // Innermost frame first: "0x... function+0x1a (module+0x2b3c)". Parked tasks only.
  std::vector<std::string> backtrace;
};

// The started, unfinished tasks of `runtime`, by id.
std::vector<TaskInfo> task_dump(Runtime& runtime = Runtime::global());

// One paragraph per task: a header line with its state and wait, then its backtrace.
std::string format_task_dump(const std::vector<TaskInfo>& tasks);
// A header naming the runtime and counting tasks not started yet, then the tasks.
std::string format_task_dump(Runtime& runtime = Runtime::global());

}  // namespace weft

#endif  // WEFT_SCHED_TASK_DUMP_H_
