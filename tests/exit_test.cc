// Process exit and the default runtime: exit stops it once it is idle and never waits for it
// again, so that a task woken as exit begins cannot hold exit up (Runtime::global).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>
#include <vector>

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

// In a child: a task waits for a pipe to become readable, then does `after_wake`; the process
// exits, and a thread makes the pipe readable g_delay_us after exit began. Returns only by
// exiting (0 once the runtime's exit handler returned).
[[noreturn]] void exit_as_a_wake_lands(void (*after_wake)()) {
  // Registered before the default runtime starts, so it runs after the runtime's exit handler:
  // once that returned, exit has not hung. (_Exit: no leak check of the test harness's own
  // allocations under ASan.)
  std::atexit([] { std::_Exit(0); });
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) std::_Exit(3);
  g_write_fd = fds[1];
  const int read_fd = fds[0];
  auto t = spawn([read_fd, after_wake] {
    wait(RawFD(read_fd), kReadable);
    after_wake();
  });
  while (t.state() != TaskState::kWaiting) std::this_thread::sleep_for(milliseconds(1));
  std::thread writer([] {
    while (!g_exiting.load()) {
    }
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(g_delay_us);
    while (std::chrono::steady_clock::now() < until) {
    }
    [[maybe_unused]] ssize_t w = ::write(g_write_fd, "x", 1);
  });
  writer.detach();
  // Registered after the default runtime's handler: runs just before it.
  std::atexit([] { g_exiting.store(true); });
  std::exit(0);
}

TEST(ExitTest, AWakeAsExitBeginsDoesNotHoldUpExit) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  for (int delay_us = 0; delay_us <= 1200; delay_us += 100) {
    g_delay_us = delay_us;
    EXPECT_EXIT(
        {
          alarm(3);
          exit_as_a_wake_lands([] {
            sleep(3600);  // e.g. a poll_fd with a long timeout, or a retry loop's sleep
          });
        },
        ::testing::ExitedWithCode(0), "")
        << "exit did not end (in 3 s) with the wake " << delay_us << " us after exit began";
  }
}

// The same with a task that, once woken, never returns to its worker (it computes, or yields in
// a loop): exit stops the workers once it found the runtime idle, but a wake landing just after
// (before a worker has stopped) makes that worker run the task, and waiting to join it held exit
// up for good. Children are forked directly (no exec: this process runs no weft thread), all at
// once, each with the wake a little later after exit began; those still there after 1.5 s are
// killed.
TEST(ExitTest, AWakeAsExitBeginsOfATaskThatNeverParksDoesNotHoldUpExit) {
  std::vector<std::pair<pid_t, int>> children;
  for (int delay_us = 0; delay_us <= 1200; delay_us += 40) {
    g_delay_us = delay_us;
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      const int devnull = ::open("/dev/null", O_WRONLY);
      if (devnull >= 0) dup2(devnull, STDERR_FILENO);  // the runtime's notes on exiting busy
      exit_as_a_wake_lands([] {
        // Never back to the worker (sleeping, not spinning, so the children share the CPUs).
        for (;;) std::this_thread::sleep_for(milliseconds(1));
      });
    }
    children.emplace_back(child, delay_us);
  }
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  std::string hung;
  for (auto [child, delay_us] : children) {
    int status = 0;
    while (waitpid(child, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() >= give_up) {
        kill(child, SIGKILL);
        waitpid(child, &status, 0);
        hung += " " + std::to_string(delay_us);
        break;
      }
      std::this_thread::sleep_for(milliseconds(1));
    }
  }
  EXPECT_EQ(hung, "") << "exit hung with the wake this many us after exit began:" << hung;
}

}  // namespace
}  // namespace weft
