// Timeouts and outside-world waits (sleep, timedwait, poll_fd, wait_process, Event::wait_for):
// bad and extreme timeouts, a deadline racing a descriptor's readiness (one outcome, nothing
// left pending), descriptors left behind by waits that time out or fail, two waiters on one
// descriptor, and a runtime shut down with tasks waiting on a descriptor and a process.
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
class Timeouts : public RuntimeTest {};

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

// Timed-out, failed and completed descriptor waits leave no descriptor behind.
TEST_P(Timeouts, DescriptorWaitsLeakNoDescriptors) {
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
TEST_P(Timeouts, ReadinessRacingTheDeadlineLeavesNothingPending) {
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

TEST_P(Timeouts, PlainThreadReadinessRacingTheDeadline) {
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
TEST_P(Timeouts, BadAndExtremeTimeouts) {
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
TEST_P(Timeouts, ShutdownWithDescriptorAndProcessWaits) {
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
TEST_P(Timeouts, TwoWaitersOnOneDescriptorOneTimesOut) {
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

WEFT_INSTANTIATE_WORKER_COUNTS(Timeouts);

}  // namespace
}  // namespace weft
