// Backtraces of parked tasks, and turning return addresses into names (internal to the runtime).
//
// A parked task's registers sit on its own stack (context_<arch>.S). Instead of walking frame
// pointers (absent from optimized code), the dumper runs the DWARF unwinder on the parked stack
// itself, below the saved frame, through weft_call_on_parked_stack (parked_stack_<arch>.S),
// whose unwind info makes the parked frames look like its callers.
#ifndef WEFT_SCHED_BACKTRACE_H_
#define WEFT_SCHED_BACKTRACE_H_

#include <cstddef>
#include <string>
#include <vector>

namespace weft::internal {

class TaskCore;

// Free stack below a parked task's saved frame that the unwinder may use: it was measured to
// take about 1.5 KiB on x86-64; the rest is room for a signal arriving meanwhile. A task parked
// with less gets no backtrace.
inline constexpr std::size_t kUnwindStackReserve = 12 * 1024;

// Up to `max` return addresses of parked task t, innermost first; -1 if its stack has too
// little room. The caller must hold t still (Waiter::holds, task_dump.cc), so no worker can
// resume it while the unwinder runs on its stack.
int parked_backtrace(const TaskCore* t, void** pcs, int max);

// One line per return address: "0x... function+0x1a (module+0x2b3c)", the function from the
// module's symbol table (demangled) when there is one.
std::vector<std::string> symbolize(void* const* pcs, int n);

}  // namespace weft::internal

#endif  // WEFT_SCHED_BACKTRACE_H_
