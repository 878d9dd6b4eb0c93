// Timing and outside-world waits (sleep, timedwait, poll_fd, wait_process) against deadlock
// detection, shutdown, descriptor accounting, bad input and races between a deadline and a
// descriptor's readiness.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_runtime.h"
#include "weft/channel/channel.h"
#include "weft/sched/deadlock_error.h"
#include "weft/sched/park.h"
#include "weft/sched/scheduling.h"
#include "weft/sync/event.h"
#include "weft/sync/fd_wait.h"
#include "weft/sync/timedwait.h"
#include "weft/task/task.h"

extern char** environ;

namespace weft {
namespace {

using std::chrono::milliseconds;
using testing::RuntimeTest;
class TimersReview : public RuntimeTest {};

constexpr FdInterest kReadable{.readable = true};

struct Pipe {
  Pipe() { EXPECT_EQ(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0); }
  ~Pipe() {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
  int read_end() const { return fds[0]; }
  int write_end() const { return fds[1]; }
  int fds[2] = {-1, -1};
};

int open_fds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n;
}

// A plain thread that sleeps in weft (a timed wait) and then wakes a task is progress: deadlock
// detection must not declare the process deadlocked while it sleeps, even if that thread has
// not otherwise touched weft before.
TEST_P(TimersReview, APlainThreadInWeftSleepIsNotADeadlock) {
  Channel<int> c;
  auto taker = run([&] { return spawn([&] { return take(c); }); });
  std::thread producer([&] {
    weft::sleep(0.8);
    put(c, 5);
  });
  int got = -1;
  try {
    got = fetch(taker);
  } catch (const DeadlockError& e) {
    ADD_FAILURE() << "a deadlock was declared while a plain thread slept in weft::sleep:\n"
                  << e.what();
    producer.join();
    got = fetch(taker);
  }
  EXPECT_EQ(got, 5);
  if (producer.joinable()) producer.join();
}

TEST_P(TimersReview, APlainThreadInTimedwaitIsNotADeadlock) {
  Channel<int> c;
  auto taker = run([&] { return spawn([&] { return take(c); }); });
  std::atomic<bool> never{false};
  std::thread producer([&] {
    EXPECT_EQ(timedwait([&] { return never.load(); }, 0.8, 0.05), TimedWaitResult::kTimedOut);
    put(c, 6);
  });
  int got = -1;
  try {
    got = fetch(taker);
  } catch (const DeadlockError& e) {
    ADD_FAILURE() << "a deadlock was declared while a plain thread polled in timedwait:\n"
                  << e.what();
    producer.join();
    got = fetch(taker);
  }
  EXPECT_EQ(got, 6);
  if (producer.joinable()) producer.join();
}

// Timed-out, failed and completed descriptor waits leave no descriptor behind.
TEST_P(TimersReview, DescriptorWaitsLeakNoDescriptors) {
  run([] {
    Pipe p;
    poll_fd(p.read_end(), 0.001, kReadable);  // starts the poller (its epoll fd)
    const int before = open_fds();
    for (int i = 0; i < 50; ++i) {
      EXPECT_TRUE(poll_fd(p.read_end(), 0.0005, kReadable).timedout);
    }
    for (int i = 0; i < 20; ++i) {
      schedule(current_task(), std::make_exception_ptr(std::runtime_error("x")), {.error = true});
      EXPECT_THROW(wait(RawFD(p.read_end()), kReadable), std::runtime_error);
    }
    EXPECT_EQ(open_fds(), before);
  });
}

// A deadline racing with readiness: exactly one outcome, and nothing left pending on the task
// (a later untimed wait would end early on a leftover wake-up).
TEST_P(TimersReview, ReadinessRacingTheDeadlineLeavesNothingPending) {
  run([] {
    for (int round = 0; round < 300; ++round) {
      Pipe p;
      std::thread writer([&] {
        std::this_thread::sleep_for(std::chrono::microseconds(200 + (round % 7) * 150));
        ASSERT_EQ(::write(p.write_end(), "x", 1), 1);
      });
      FdEvent ev = poll_fd(p.read_end(), 0.0008, kReadable);
      writer.join();
      EXPECT_NE(ev.timedout, ev.readable) << to_string(ev);
      // Nothing pending: an Event nobody sets must time out, not return early.
      Event never;
      EXPECT_FALSE(never.wait_for(0.002)) << "round " << round;
    }
  });
}

TEST_P(TimersReview, PlainThreadReadinessRacingTheDeadline) {
  for (int round = 0; round < 300; ++round) {
    Pipe p;
    std::thread writer([&] {
      std::this_thread::sleep_for(std::chrono::microseconds(200 + (round % 7) * 150));
      ASSERT_EQ(::write(p.write_end(), "x", 1), 1);
    });
    FdEvent ev = poll_fd(p.read_end(), 0.0008, kReadable);
    writer.join();
    EXPECT_NE(ev.timedout, ev.readable) << to_string(ev);
    Event never;
    EXPECT_FALSE(never.wait_for(0.002)) << "round " << round;
  }
}

// Bad timeouts are refused with a clear exception; tiny and huge ones work.
TEST_P(TimersReview, BadAndExtremeTimeouts) {
  auto body = [] {
    EXPECT_THROW(sleep(std::nan("")), std::invalid_argument);
    EXPECT_THROW(sleep(-1.0), std::invalid_argument);
    EXPECT_THROW(sleep(-INFINITY), std::invalid_argument);
    EXPECT_THROW(sleep(absl::Nanoseconds(-1)), std::invalid_argument);
    EXPECT_THROW(sleep(-absl::InfiniteDuration()), std::invalid_argument);
    sleep(1e-300);
    sleep(absl::Nanoseconds(1));
    EXPECT_THROW(timedwait([] { return true; }, std::nan("")), std::invalid_argument);
    EXPECT_THROW(timedwait([] { return true; }, 1, std::nan("")), std::invalid_argument);
    EXPECT_THROW(timedwait([] { return true; }, 1, 0.0009), std::invalid_argument);
    EXPECT_EQ(timedwait([] { return false; }, -5), TimedWaitResult::kTimedOut);
    EXPECT_EQ(timedwait([] { return true; }, INFINITY, INFINITY), TimedWaitResult::kOk);
    int n = 0;
    EXPECT_EQ(timedwait([&] { return ++n == 3; }, INFINITY, 0.001), TimedWaitResult::kOk);
    Pipe p;
    EXPECT_TRUE(poll_fd(p.read_end(), 1e-300, kReadable).timedout);
    EXPECT_TRUE(poll_fd(p.read_end(), 0, kReadable).timedout);
    EXPECT_THROW(poll_fd(p.read_end(), std::nan(""), kReadable), std::invalid_argument);
    ASSERT_EQ(::write(p.write_end(), "x", 1), 1);
    EXPECT_TRUE(poll_fd(p.read_end(), INFINITY, kReadable).readable);
    EXPECT_TRUE(poll_fd(p.read_end(), 1e300, kReadable).readable);
    Event never;
    EXPECT_FALSE(never.wait_until(Clock::time_point::min()));
    EXPECT_THROW(never.wait_for(std::nan("")), std::invalid_argument);
    EXPECT_THROW(never.wait_for(-1), std::invalid_argument);
    EXPECT_FALSE(never.wait_for(1e-300));
  };
  run(body);
  body();  // a plain thread
}

pid_t spawn_shell(const char* script) {
  pid_t pid = -1;
  const char* argv[] = {"/bin/sh", "-c", script, nullptr};
  EXPECT_EQ(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ), 0);
  return pid;
}

std::unique_ptr<Runtime> runtime_with(int workers) {
  RuntimeOptions options;
  options.default_threads = workers;
  options.interactive_threads = 0;
  return std::make_unique<Runtime>(std::move(options));
}

void until_waiting_from_thread(const TaskRef& t) {
  while (t.state() != TaskState::kWaiting) std::this_thread::sleep_for(milliseconds(1));
}

// A runtime shut down with tasks parked on a descriptor and on a child process reports them and
// returns; the descriptor and the process becoming ready afterwards is harmless.
TEST_P(TimersReview, ShutdownWithDescriptorAndProcessWaits) {
  auto rt = runtime_with(GetParam());
  auto p = std::make_shared<Pipe>();
  const pid_t pid = spawn_shell("sleep 30");
  auto fd_waiter = rt->run([p] { return spawn([p] { return wait(RawFD(p->read_end()), kReadable); }); });
  auto proc_waiter = rt->run([pid] { return spawn([pid] { return wait_process(pid); }); });
  auto timed_fd_waiter = rt->run([p] { return spawn([p] { return poll_fd(p->read_end(), 1e12, kReadable); }); });
  until_waiting_from_thread(fd_waiter);
  until_waiting_from_thread(proc_waiter);
  until_waiting_from_thread(timed_fd_waiter);
  ::testing::internal::CaptureStderr();
  const auto start = std::chrono::steady_clock::now();
  rt.reset();
  const auto took = std::chrono::steady_clock::now() - start;
  std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_LT(took, std::chrono::seconds(5));
  EXPECT_NE(err.find("3 tasks still waiting"), std::string::npos) << err;
  EXPECT_NE(err.find("file descriptor"), std::string::npos) << err;
  EXPECT_NE(err.find("process"), std::string::npos) << err;
  ASSERT_EQ(::write(p->write_end(), "x", 1), 1);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_FALSE(istaskdone(fd_waiter));
  EXPECT_FALSE(istaskdone(proc_waiter));
}

// Two tasks on one descriptor, one with a short deadline: it times out, the other still gets
// the readiness, and a third wait after that finds it at once.
TEST_P(TimersReview, TwoWaitersOnOneDescriptorOneTimesOut) {
  run([] {
    Pipe p;
    auto patient = spawn([&] { return wait(RawFD(p.read_end()), kReadable).readable; });
    auto hasty = spawn([&] { return poll_fd(p.read_end(), 0.005, kReadable).timedout; });
    EXPECT_TRUE(fetch(hasty));
    ASSERT_EQ(::write(p.write_end(), "x", 1), 1);
    EXPECT_TRUE(fetch(patient));
    EXPECT_TRUE(poll_fd(p.read_end(), 0.5, kReadable).readable);
  });
}

// Process exit stops the default runtime only if it is idle, so that exit cannot hang
// (Runtime::global). It checks that, then shuts down -- and shutdown() waits for quiescence
// all over again: a task woken in between (here by a descriptor becoming ready just as exit
// begins) that then sleeps, waits with a long timeout or spins holds exit up for as long.
// Each child process exits with the wake landing at a different moment after exit began; any
// child still there after 3 s is killed by its alarm.
std::atomic<bool> g_exiting{false};
int g_write_fd = -1;
int g_delay_us = 0;

TEST(TimersReviewExit, AWakeAsExitBeginsDoesNotHoldUpExit) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  for (int delay_us = 0; delay_us <= 1200; delay_us += 50) {
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

WEFT_INSTANTIATE_WORKER_COUNTS(TimersReview);

}  // namespace
}  // namespace weft
