#include "weft/sched/runtime_options.h"

#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace weft::internal {
namespace {

// The CPUs this process may run on (its affinity mask, as Julia's "auto" counts them: a
// process pinned to 2 of 64 CPUs gets 2 workers), else every CPU.
int cpu_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    if (const int n = CPU_COUNT(&set); n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

[[noreturn]] void bad(absl::string_view text, const char* source, absl::string_view why) {
  throw std::invalid_argument(
      absl::StrCat(source, "=\"", text, "\" is not valid: ", why,
                   " (expected \"N\", \"N,M\" or \"auto\", e.g. \"4,1\")"));
}

// `automatic`: what "auto" means for this count (Julia: one per CPU for the default pool, 1 for
// the interactive one).
int parse_count(absl::string_view part, absl::string_view text, const char* source, int minimum,
                int automatic) {
  part = absl::StripAsciiWhitespace(part);
  if (part == "auto") return std::min(automatic, kMaxWorkers);
  int n = 0;
  if (!absl::SimpleAtoi(part, &n)) bad(text, source, absl::StrCat("\"", part, "\" is not a number"));
  if (n < minimum || n > kMaxWorkers) {
    bad(text, source, absl::StrCat(n, " is out of range [", minimum, ", ", kMaxWorkers, "]"));
  }
  return n;
}

}  // namespace

ThreadCounts parse_num_threads(absl::string_view text, const char* source) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, ',');
  if (parts.size() > 2) bad(text, source, "more than two counts");
  ThreadCounts counts{parse_count(parts[0], text, source, 1, cpu_count()), 0};
  if (parts.size() == 2) counts.interactive_threads = parse_count(parts[1], text, source, 0, 1);
  return counts;
}

ThreadCounts resolve_thread_counts(const RuntimeOptions& options) {
  ThreadCounts counts{cpu_count(), 0};
  // Read only when the options leave a count to it: a program that sets both is not stopped
  // by a variable it does not use.
  const bool needs_env = options.default_threads == -1 || options.interactive_threads == -1;
  if (const char* env = std::getenv("WEFT_NUM_THREADS");
      needs_env && env != nullptr && *env != '\0') {
    counts = parse_num_threads(env, "WEFT_NUM_THREADS");
  }
  if (options.default_threads != -1) {
    if (options.default_threads < 1 || options.default_threads > kMaxWorkers) {
      throw std::invalid_argument(absl::StrCat("RuntimeOptions::default_threads must be in [1, ",
                                               kMaxWorkers, "], got ", options.default_threads));
    }
    counts.default_threads = options.default_threads;
  }
  if (options.interactive_threads != -1) {
    if (options.interactive_threads < 0 || options.interactive_threads > kMaxWorkers) {
      throw std::invalid_argument(
          absl::StrCat("RuntimeOptions::interactive_threads must be in [0, ", kMaxWorkers,
                       "], got ", options.interactive_threads));
    }
    counts.interactive_threads = options.interactive_threads;
  }
  if (options.spin_before_sleep < 0) {
    throw std::invalid_argument(absl::StrCat(
        "RuntimeOptions::spin_before_sleep must be >= 0, got ", options.spin_before_sleep));
  }
  return counts;
}

bool env_switch(const char* name, bool fallback) {
  const char* env = std::getenv(name);
  if (env == nullptr || *env == '\0') return fallback;
  const absl::string_view text = absl::StripAsciiWhitespace(env);
  if (text == "1") return true;
  if (text == "0") return false;
  throw std::invalid_argument(
      absl::StrCat(name, "=\"", env, "\" is not valid: expected \"0\" (off) or \"1\" (on)"));
}

}  // namespace weft::internal
