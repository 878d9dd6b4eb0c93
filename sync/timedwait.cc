#include "weft/sync/timedwait.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "weft/sched/park.h"
#include "weft/sched/scheduling.h"
#include "weft/sync/deadline.h"

namespace weft {

const char* to_string(TimedWaitResult result) {
  return result == TimedWaitResult::kOk ? "ok" : "timed_out";
}

TimedWaitResult timedwait(absl::FunctionRef<bool()> testcb, double timeout, double pollint) {
  // Julia: pollint >= 1e-3 || throw(ArgumentError("pollint must be ≥ 1 millisecond")).
  if (std::isnan(pollint) || pollint < 1e-3) {
    throw std::invalid_argument(absl::StrCat(
        "timedwait: pollint must be at least 1 millisecond (0.001 seconds), not ", pollint));
  }
  // A timeout already past (negative) still polls once, as Julia's does; deadline_after()
  // refuses NaN.
  const Clock::time_point deadline =
      internal::deadline_after(timeout < 0 ? 0.0 : timeout, "timedwait");
  const Clock::duration interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(std::min(pollint, 1e9)));
  if (testcb()) return TimedWaitResult::kOk;
  for (;;) {
    const Clock::time_point now = Clock::now();
    if (now >= deadline) return TimedWaitResult::kTimedOut;
    sleep(absl::FromChrono(std::min<Clock::duration>(interval, deadline - now)));
    if (testcb()) return TimedWaitResult::kOk;
  }
}

}  // namespace weft
