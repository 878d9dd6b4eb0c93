#include "weft/sync/deadline.h"

#include <chrono>
#include <cmath>
#include <stdexcept>

#include "absl/strings/str_cat.h"

namespace weft::internal {

Clock::time_point deadline_after(double seconds, const char* what) {
  if (std::isnan(seconds) || seconds < 0) {
    throw std::invalid_argument(absl::StrCat(
        what, ": the timeout must be a non-negative number of seconds, not ", seconds));
  }
  if (seconds > 1e9) return Clock::time_point::max();
  return Clock::now() +
         std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

}  // namespace weft::internal
