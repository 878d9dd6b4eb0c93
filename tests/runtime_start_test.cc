// A Runtime whose worker threads cannot all be started (out of threads or memory: a container's
// pids limit, ulimit -u): the constructor throws std::system_error naming the worker, with the
// workers that did start stopped, instead of hanging in the shutdown its unwinding runs.
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <system_error>
#include <utility>

#include "gtest/gtest.h"
#include "weft/sched/runtime.h"

namespace weft {
namespace {

// Gives new threads 4 GiB stacks (reserved, not touched) and limits the address space to what
// the process maps now plus room for two of them and 1 GiB for everything else: a worker or two
// start (the first thread's malloc arena takes its share), the next cannot. The first starting
// is what matters: a Runtime that fails with none running never hung.
void leave_room_for_two_threads() {
  constexpr std::size_t kStack = std::size_t{4} << 30;
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0 || pthread_attr_setstacksize(&attr, kStack) != 0 ||
      pthread_setattr_default_np(&attr) != 0) {
    std::_Exit(3);
  }
  long pages = 0;
  std::ifstream("/proc/self/statm") >> pages;
  const rlim_t limit =
      static_cast<rlim_t>(pages) * sysconf(_SC_PAGESIZE) + 2 * kStack + (std::size_t{1} << 30);
  const rlimit r{limit, limit};
  if (setrlimit(RLIMIT_AS, &r) != 0) std::_Exit(3);
}

TEST(RuntimeStartDeathTest, AWorkerThatCannotStartFailsTheConstructorWithoutHanging) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "it limits the address space, which the sanitizer's shadow memory needs";
#endif
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        leave_room_for_two_threads();
        try {
          RuntimeOptions options;
          options.default_threads = 64;
          options.interactive_threads = 0;
          Runtime rt(std::move(options));
          std::fprintf(stderr, "all 64 workers started: the limit did not bite\n");
          std::_Exit(2);
        } catch (const std::system_error& e) {
          std::fprintf(stderr, "%s\n", e.what());
          std::_Exit(0);
        }
      },
      ::testing::ExitedWithCode(0), "Runtime: could not start worker thread [2-9][0-9]* of 64");
}

}  // namespace
}  // namespace weft
