// Process exit and the default runtime: exit stops it once it is idle and never waits for it
// again, so that a task woken as exit begins cannot hold exit up (Runtime::global).
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "gtest/gtest.h"
#include "weft/sched/scheduling.h"
#include "weft/sync/fd_wait.h"
#include "weft/task/task.h"

namespace weft {
namespace {

using std::chrono::milliseconds;

constexpr FdInterest kReadable{.readable = true};

// Process exit stops the default runtime only if it is idle, so that exit cannot hang
// (Runtime::global). It checks that, then shuts down -- and shutdown() waits for quiescence
// all over again: a task woken in between (here by a descriptor becoming ready just as exit
// begins) that then sleeps, waits with a long timeout or spins holds exit up for as long.
// Each child process exits with the wake landing at a different moment after exit began; any
// child still there after 3 s is killed by its alarm.
std::atomic<bool> g_exiting{false};
int g_write_fd = -1;
int g_delay_us = 0;

TEST(ExitTest, AWakeAsExitBeginsDoesNotHoldUpExit) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  for (int delay_us = 0; delay_us <= 1200; delay_us += 100) {
    g_delay_us = delay_us;
    EXPECT_EXIT(
        {
          // Registered before the default runtime starts, so it runs after the runtime's exit
          // handler: once that returned, exit has not hung. (_Exit: no leak check of the test
          // harness's own allocations under ASan.)
          std::atexit([] { std::_Exit(0); });
          int fds[2];
          if (pipe2(fds, O_CLOEXEC) != 0) std::_Exit(3);
          g_write_fd = fds[1];
          const int read_fd = fds[0];
          auto t = spawn([read_fd] {
            wait(RawFD(read_fd), kReadable);
            sleep(3600);  // e.g. a poll_fd with a long timeout, or a retry loop's sleep
          });
          while (t.state() != TaskState::kWaiting) std::this_thread::sleep_for(milliseconds(1));
          std::thread writer([] {
            while (!g_exiting.load()) {
            }
            const auto until =
                std::chrono::steady_clock::now() + std::chrono::microseconds(g_delay_us);
            while (std::chrono::steady_clock::now() < until) {
            }
            [[maybe_unused]] ssize_t w = ::write(g_write_fd, "x", 1);
          });
          writer.detach();
          // Registered after the default runtime's handler: runs just before it.
          std::atexit([] { g_exiting.store(true); });
          alarm(3);
          std::exit(0);
        },
        ::testing::ExitedWithCode(0), "")
        << "exit did not end (in 3 s) with the wake " << delay_us << " us after exit began";
  }
}

}  // namespace
}  // namespace weft
