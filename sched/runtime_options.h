// How many workers each pool gets: RuntimeOptions first, then WEFT_NUM_THREADS, then defaults.
//
// WEFT_NUM_THREADS follows JULIA_NUM_THREADS: "N" (N default-pool workers), "N,M" (plus M
// interactive workers), "auto" for N (one per CPU the process may run on: its affinity mask)
// and for M (1). Anything else throws std::invalid_argument naming the variable and its value;
// a RuntimeOptions that sets both counts does not read it.
#ifndef WEFT_SCHED_RUNTIME_OPTIONS_H_
#define WEFT_SCHED_RUNTIME_OPTIONS_H_

#include "absl/strings/string_view.h"

#include "weft/sched/runtime.h"

namespace weft::internal {

struct ThreadCounts {
  int default_threads;
  int interactive_threads;
};

inline constexpr int kMaxWorkers = 1024;

ThreadCounts parse_num_threads(absl::string_view text, const char* source);
ThreadCounts resolve_thread_counts(const RuntimeOptions& options);

// An on/off environment variable: "1" on, "0" off, unset or empty `fallback`; anything else
// throws std::invalid_argument naming the variable and its value.
bool env_switch(const char* name, bool fallback);

}  // namespace weft::internal

#endif  // WEFT_SCHED_RUNTIME_OPTIONS_H_
