// Task dump internals shared by the public dump (task_dump.cc), deadlock detection and
// shutdown reports (internal to the runtime).
#ifndef WEFT_SCHED_DUMP_H_
#define WEFT_SCHED_DUMP_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "weft/sched/task_dump.h"

namespace weft::internal {

class RuntimeCore;

// The started, unfinished tasks of rt, by id; backtraces of parked ones if asked.
std::vector<TaskInfo> dump_tasks(RuntimeCore* rt, bool backtraces);

// "channel take 0x...", "task 12", "sleep until +35ms". task_id: the id of the task `object`
// is, for kTask and kYieldTo waits, when the caller could find it.
std::string describe_wait(WaitKind kind, const void* object,
                          std::optional<Clock::time_point> deadline,
                          std::optional<std::uint64_t> task_id);

// The header line of format_task_dump(Runtime&) for rt.
std::string describe_runtime(RuntimeCore* rt, std::size_t started);

// Installs the SIGQUIT dump (once per process; see task_dump.h).
void install_sigquit_dump();

}  // namespace weft::internal

#endif  // WEFT_SCHED_DUMP_H_
