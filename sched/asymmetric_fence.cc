#include "weft/sched/asymmetric_fence.h"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace weft::internal {
namespace {

long membarrier(int cmd) { return ::syscall(SYS_membarrier, cmd, 0, 0); }

bool register_membarrier() {
  const long supported = membarrier(MEMBARRIER_CMD_QUERY);
  if (supported < 0 || !(supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED)) return false;
  return membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
}

}  // namespace

std::atomic<bool> g_membarrier_ready{false};

bool membarrier_ready() {
  static const bool ready = [] {
    const bool ok = register_membarrier();
    g_membarrier_ready.store(ok, std::memory_order_release);
    return ok;
  }();
  return ready;
}

// Registered before main (or when the library is loaded), so that by the time a heavy fence
// runs, the mode is settled: heavy_fence() never falls back to a plain fence while some
// light_fence() already trusts membarrier.
[[maybe_unused]] const bool g_membarrier_registered = membarrier_ready();

void heavy_fence() {
  if (!membarrier_ready()) {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return;
  }
  if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0) {
    // Registered, so this cannot fail; if it did, light fences elsewhere would be unsound.
    std::perror("weft: membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) failed after registration");
    std::abort();
  }
}

}  // namespace weft::internal
