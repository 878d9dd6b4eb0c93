// timedwait: Julia's timedwait(testcb, timeout; pollint), polling a condition with a deadline.
//
// Calls testcb() at once and then every `pollint` seconds until it returns true (kOk) or
// `timeout` seconds have passed (kTimedOut; testcb is polled one last time at the deadline).
// Between polls the caller sleeps: a task parks (its worker runs other tasks), a plain thread
// sleeps. A negative timeout polls once, as 0 does.
// Errors: as in Julia, a pollint under 1 ms throws (std::invalid_argument, Julia's
// ArgumentError), as does a NaN timeout or pollint; what testcb throws propagates.
#ifndef WEFT_SYNC_TIMEDWAIT_H_
#define WEFT_SYNC_TIMEDWAIT_H_

#include "absl/functional/function_ref.h"

namespace weft {

// Julia's :ok and :timed_out.
enum class TimedWaitResult { kOk, kTimedOut };
const char* to_string(TimedWaitResult result);  // "ok" / "timed_out"

TimedWaitResult timedwait(absl::FunctionRef<bool()> testcb, double timeout,
                          double pollint = 0.1);

}  // namespace weft

#endif  // WEFT_SYNC_TIMEDWAIT_H_
