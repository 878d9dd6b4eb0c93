#include "weft/sched/futex.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

namespace weft::internal {

bool futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                const Clock::time_point* deadline, const Clock::duration* timeout) {
  timespec ts;
  timespec* tsp = nullptr;
  if (deadline != nullptr || timeout != nullptr) {
    auto left = deadline != nullptr ? *deadline - Clock::now() : *timeout;
    if (left <= Clock::duration::zero()) return false;
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    ts.tv_sec = static_cast<time_t>(ns / 1000000000);
    ts.tv_nsec = static_cast<long>(ns % 1000000000);
    tsp = &ts;
  }
  long r = syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_PRIVATE,
                   expected, tsp, nullptr, 0);
  return !(r == -1 && errno == ETIMEDOUT);
}

void futex_wake(std::atomic<std::uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, 1, nullptr,
          nullptr, 0);
}

}  // namespace weft::internal
