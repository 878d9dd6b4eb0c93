// Waiting on file descriptors (pipes, socket pairs) and on child processes without blocking a
// worker: readiness, several waiters on one descriptor, timeouts (racing readiness; bad and
// extreme ones, for every timed wait), disconnects, plain threads, descriptors left behind,
// shutdown with such waits, and the clear errors for bad descriptors, bad requests and
// processes that are not children.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/sync/event.h"
#include "weft/sync/fd_wait.h"
#include "weft/sync/sync_scope.h"
#include "weft/sync/timedwait.h"

extern char** environ;

namespace weft {
namespace {

using std::chrono::milliseconds;
using testing::RuntimeTest;
using testing::runtime_with;
using testing::until_waiting_from_thread;
class FdWaitTest : public RuntimeTest {};

constexpr FdInterest kReadable{.readable = true};
constexpr FdInterest kWritable{.writable = true};

struct Pipe {
  Pipe() { EXPECT_EQ(pipe2(fds, O_CLOEXEC | O_NONBLOCK), 0); }
  ~Pipe() {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
  void close_write() {
    ::close(fds[1]);
    fds[1] = -1;
  }
  int read_end() const { return fds[0]; }
  int write_end() const { return fds[1]; }
  int fds[2] = {-1, -1};
};

struct SocketPair {
  SocketPair() { EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds), 0); }
  ~SocketPair() {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
  int fds[2] = {-1, -1};
};

pid_t spawn_shell(const char* script) {
  pid_t pid = -1;
  const char* argv[] = {"/bin/sh", "-c", script, nullptr};
  EXPECT_EQ(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ), 0);
  return pid;
}

TEST_P(FdWaitTest, PipeBecomesReadableWhenWrittenTo) {
  run([] {
    Pipe p;
    std::atomic<bool> written{false};
    auto reader = spawn([&] {
      FdEvent ev = wait(RawFD(p.read_end()), kReadable);
      EXPECT_TRUE(written.load());  // not before the write
      return ev;
    });
    testing::until_waiting(reader);  // parked on the descriptor: the wake path runs
    written = true;
    ASSERT_EQ(::write(p.write_end(), "abc", 3), 3);
    FdEvent ev = fetch(reader);
    EXPECT_TRUE(ev.readable);
    EXPECT_FALSE(ev.timedout);
    EXPECT_EQ(to_string(ev), "FdEvent(readable)");
  });
}

// A schedule() of the waiting task while it ran (its mark is for wait()) does not end the wait
// early: the wait returns the descriptor's readiness, after the write.
TEST_P(FdWaitTest, AScheduleOfTheRunningWaiterDoesNotEndTheWait) {
  run([] {
    Pipe p;
    std::atomic<bool> written{false};
    auto writer = async([&] {
      sleep(0.005);
      written = true;
      EXPECT_EQ(::write(p.write_end(), "abc", 3), 3);
    });
    schedule(current_task());
    FdEvent ev = wait(RawFD(p.read_end()), kReadable);
    EXPECT_TRUE(written.load()) << "the wait returned before the write";
    EXPECT_TRUE(ev.readable);
    wait(writer);
  });
}

// An error scheduled onto the running waiter ends its descriptor wait, which leaves nothing
// behind with the poller: a write after it reaches no stale registration, and the descriptor
// can be waited on again.
TEST_P(FdWaitTest, AnErrorScheduledOntoTheRunningWaiterEndsTheWaitCleanly) {
  run([] {
    Pipe p;
    schedule(current_task(), std::make_exception_ptr(std::runtime_error("stop")),
             {.error = true});
    EXPECT_THROW(wait(RawFD(p.read_end()), kReadable), std::runtime_error);
    ASSERT_EQ(::write(p.write_end(), "abc", 3), 3);
    sleep(0.005);  // time for the poller to see the write
    FdEvent ev = wait(RawFD(p.read_end()), kReadable);
    EXPECT_TRUE(ev.readable);
  });
}

// While a task waits on a descriptor its worker runs other tasks: on one worker, the writer
// below can only run if the reader parked.
TEST_P(FdWaitTest, AWaitingTaskLeavesItsWorkerToOthers) {
  run([] {
    Pipe p;
    auto reader = async([&] { return wait(RawFD(p.read_end()), kReadable).readable; });
    auto writer = async([&] { ASSERT_EQ(::write(p.write_end(), "x", 1), 1); });
    wait(writer);
    EXPECT_TRUE(fetch(reader));
  });
}

TEST_P(FdWaitTest, ManyWaitersOnOneDescriptor) {
  run([] {
    Pipe p;
    std::vector<Task<bool>> readers;
    for (int i = 0; i < 8; ++i) {
      readers.push_back(spawn([&] { return wait(RawFD(p.read_end()), kReadable).readable; }));
    }
    auto writable = spawn([&] { return wait(RawFD(p.write_end()), kWritable).writable; });
    EXPECT_TRUE(fetch(writable));
    for (auto& r : readers) testing::until_waiting(r);  // all parked on the descriptor
    ASSERT_EQ(::write(p.write_end(), "x", 1), 1);
    for (auto& r : readers) EXPECT_TRUE(fetch(r));  // level-triggered: all see it
  });
}

TEST_P(FdWaitTest, WritableAfterAFullPipeDrains) {
  run([] {
    Pipe p;
    char block[4096] = {};
    while (::write(p.write_end(), block, sizeof block) > 0) {
    }
    ASSERT_EQ(errno, EAGAIN);
    FdEvent full = poll_fd(p.write_end(), 0.003, kWritable);
    EXPECT_TRUE(full.timedout);
    EXPECT_EQ(to_string(full), "FdEvent(timedout)");
    auto drainer = spawn([&, main = current_task()] {
      testing::until_waiting(main);  // parked in poll_fd below: the wake path runs
      while (::read(p.read_end(), block, sizeof block) > 0) {
      }
    });
    FdEvent ev = poll_fd(p.write_end(), 5, kWritable);
    EXPECT_TRUE(ev.writable);
    EXPECT_FALSE(ev.timedout);
    wait(drainer);
  });
}

TEST_P(FdWaitTest, ClosedWriteEndIsADisconnect) {
  run([] {
    Pipe p;
    auto reader = spawn([&] { return poll_fd(p.read_end(), 5, kReadable); });
    testing::until_waiting(reader);  // parked on the descriptor when the peer goes
    p.close_write();
    FdEvent ev = fetch(reader);
    EXPECT_TRUE(ev.disconnect);
    EXPECT_FALSE(ev.timedout);
  });
}

TEST_P(FdWaitTest, SocketPairBothDirections) {
  run([] {
    SocketPair s;
    // A fresh socket is writable at once, not readable.
    EXPECT_TRUE(poll_fd(s.fds[0], 1, kWritable).writable);
    EXPECT_TRUE(poll_fd(s.fds[0], 0.002, kReadable).timedout);
    auto a = spawn([&] {
      FdEvent ev = wait(RawFD(s.fds[0]), {.readable = true, .writable = false});
      char c;
      EXPECT_EQ(::read(s.fds[0], &c, 1), 1);
      EXPECT_EQ(::write(s.fds[0], "B", 1), 1);
      return ev.readable && c == 'A';
    });
    auto b = spawn([&] {
      EXPECT_EQ(::write(s.fds[1], "A", 1), 1);
      FdEvent ev = wait(RawFD(s.fds[1]), kReadable);
      char c;
      EXPECT_EQ(::read(s.fds[1], &c, 1), 1);
      return ev.readable && c == 'B';
    });
    EXPECT_TRUE(fetch(a));
    EXPECT_TRUE(fetch(b));
    // Either interest: readable and writable together.
    ASSERT_EQ(::write(s.fds[1], "C", 1), 1);
    FdEvent both = poll_fd(s.fds[0], 1, {.readable = true, .writable = true});
    EXPECT_TRUE(both.readable);
    EXPECT_TRUE(both.writable);
    // Peer closed: a disconnect.
    ::close(s.fds[1]);
    s.fds[1] = -1;
    char c;
    ASSERT_EQ(::read(s.fds[0], &c, 1), 1);
    FdEvent hup = poll_fd(s.fds[0], 1, kReadable);
    EXPECT_TRUE(hup.disconnect);
  });
}

TEST_P(FdWaitTest, TimeoutThenReadiness) {
  run([] {
    Pipe p;
    const auto start = std::chrono::steady_clock::now();
    FdEvent ev = poll_fd(p.read_end(), 0.01, kReadable);
    EXPECT_TRUE(ev.timedout);
    EXPECT_FALSE(ev.readable);
    EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(10));
    ASSERT_EQ(::write(p.write_end(), "x", 1), 1);
    EXPECT_TRUE(poll_fd(p.read_end(), 0, kReadable).readable);  // ready: no wait at all
  });
}

TEST_P(FdWaitTest, PlainThreadWaitsOnAPipe) {
  Pipe p;
  FdEvent ev;
  testing::BlockingThread reader([&] { ev = wait(RawFD(p.read_end()), kReadable); });
  run([&] {
    EXPECT_TRUE(reader.until_blocked()) << "the wait on an empty pipe did not block";
    ASSERT_EQ(::write(p.write_end(), "x", 1), 1);
  });
  reader.join();
  EXPECT_TRUE(ev.readable);
}

TEST_P(FdWaitTest, BadRequestsAreClearErrors) {
  run([] {
    Pipe p;
    try {
      wait(RawFD(p.read_end()), FdInterest{});
      ADD_FAILURE() << "a wait for nothing was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("readable, writable"), std::string::npos);
    }
    int closed = ::dup(p.read_end());
    ::close(closed);
    try {
      poll_fd(closed, 1, kReadable);
      ADD_FAILURE() << "a closed descriptor was accepted";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), EBADF);
      EXPECT_NE(std::string(e.what()).find("fd " + std::to_string(closed)), std::string::npos)
          << e.what();
    }
    EXPECT_THROW(wait(RawFD(-3), kReadable), std::system_error);
    EXPECT_THROW(poll_fd(p.read_end(), std::nan(""), kReadable), std::invalid_argument);
  });
}

TEST_P(FdWaitTest, RegularFilesAreAlwaysReady) {
  run([] {
    char path[] = "/tmp/weft_fd_wait_XXXXXX";
    const int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    ::unlink(path);
    FdEvent ev = poll_fd(fd, 1, {.readable = true, .writable = true});
    EXPECT_TRUE(ev.readable);
    EXPECT_TRUE(ev.writable);
    ::close(fd);
  });
}

// --- processes ---

TEST_P(FdWaitTest, WaitProcessReturnsTheExitCode) {
  run([] {
    pid_t pid = spawn_shell("sleep 0.02; exit 3");
    ProcessStatus status = wait_process(pid);
    EXPECT_TRUE(status.exited());
    EXPECT_EQ(status.exit_code, 3);
    EXPECT_FALSE(status.success());
    // Reaped: a second wait is an error.
    EXPECT_THROW(wait_process(pid), std::system_error);
  });
}

TEST_P(FdWaitTest, WaitProcessReportsTheKillingSignal) {
  run([] {
    pid_t pid = spawn_shell("sleep 30");
    auto waiter = spawn([pid] { return wait(Process(pid)); });
    sleep(0.005);
    ASSERT_EQ(::kill(pid, SIGTERM), 0);
    ProcessStatus status = fetch(waiter);
    EXPECT_FALSE(status.exited());
    EXPECT_EQ(status.term_signal, SIGTERM);
  });
}

TEST_P(FdWaitTest, ManyChildrenAwaitedByTasksConcurrently) {
  run([] {
    std::vector<Task<int>> waiters;
    for (int i = 0; i < 6; ++i) {
      const std::string script = "sleep 0.0" + std::to_string(i + 1) + "; exit " + std::to_string(i);
      pid_t pid = spawn_shell(script.c_str());
      waiters.push_back(spawn([pid] { return wait_process(pid).exit_code; }));
    }
    for (int i = 0; i < 6; ++i) EXPECT_EQ(fetch(waiters[i]), i);
  });
}

TEST_P(FdWaitTest, WaitProcessTimesOutWithoutReaping) {
  run([] {
    pid_t pid = spawn_shell("sleep 30");
    EXPECT_FALSE(wait_process(pid, 0.005).has_value());
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    auto status = wait_process(pid, 10);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->term_signal, SIGKILL);
  });
}

// A negative timeout waits without a deadline, as poll_fd's does; NaN says what is wrong.
TEST_P(FdWaitTest, WaitProcessWithANegativeTimeoutHasNoDeadline) {
  run([] {
    pid_t pid = spawn_shell("exit 3");
    auto status = wait_process(pid, -1);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(status->exit_code, 3);
    EXPECT_THROW(wait_process(pid, std::nan("")), std::invalid_argument);
  });
}

TEST_P(FdWaitTest, WaitingOnANonChildIsAClearError) {
  run([] {
    try {
      wait_process(1);  // init: exists, but is not our child
      ADD_FAILURE() << "waiting on pid 1 was accepted";
    } catch (const std::system_error& e) {
      EXPECT_NE(std::string(e.what()).find("not a child"), std::string::npos) << e.what();
    }
    EXPECT_THROW(wait_process(0), std::invalid_argument);
    EXPECT_THROW(wait_process(-5), std::invalid_argument);
  });
}

// Julia's Process keeps its exit status: every wait on it -- several at once from tasks and a
// plain thread, on copies, and later ones -- returns the status of the one reaping.
TEST_P(FdWaitTest, EveryWaitOnAProcessReturnsItsStatus) {
  for (int round = 0; round < 10; ++round) {
    const Process p(spawn_shell("sleep 0.01; exit 7"));
    EXPECT_FALSE(p.status().has_value());
    auto waiters = run([p] {
      std::vector<Task<int>> tasks;
      for (int i = 0; i < 4; ++i) tasks.push_back(spawn([p] { return wait(p).exit_code; }));
      return tasks;
    });
    int from_thread = -1;
    std::thread plain([copy = p, &from_thread] { from_thread = wait(copy).exit_code; });
    for (auto& t : waiters) EXPECT_EQ(fetch(t), 7) << "round " << round;
    plain.join();
    EXPECT_EQ(from_thread, 7);
    ASSERT_TRUE(p.status().has_value());
    EXPECT_EQ(p.status()->exit_code, 7);
    EXPECT_EQ(wait(p).exit_code, 7);  // long after the reap
    // The bare pid has been reaped, once.
    EXPECT_THROW(wait_process(p.pid()), std::system_error);
  }
  EXPECT_THROW(Process(0), std::invalid_argument);
  EXPECT_THROW(Process(-3), std::invalid_argument);
}

// A Process is a handle: one moved from (into a ProcessChain, say) still names its child and
// shares its record, as a copy does, instead of crashing on status() and reaping the child
// behind the record's back.
TEST_P(FdWaitTest, AMovedFromProcessStillSharesItsStatus) {
  Process p(spawn_shell("exit 3"));
  ProcessChain chain;
  chain.processes.push_back(std::move(p));
  // NOLINTNEXTLINE(bugprone-use-after-move): what this test is about
  EXPECT_FALSE(p.status().has_value());
  EXPECT_EQ(wait(p).exit_code, 3);
  ASSERT_TRUE(chain.processes[0].status().has_value());
  EXPECT_EQ(wait(chain)[0].exit_code, 3);
}

// Julia's wait on a ProcessChain (a pipeline's processes): waits for each, in order.
TEST_P(FdWaitTest, WaitOnAProcessChainWaitsForEveryProcess) {
  run([] {
    ProcessChain chain{{Process(spawn_shell("sleep 0.03; exit 1")), Process(spawn_shell("exit 2")),
                        Process(spawn_shell("sleep 0.01; kill -9 $$"))}};
    std::vector<ProcessStatus> statuses = wait(chain);
    ASSERT_EQ(statuses.size(), 3u);
    EXPECT_EQ(statuses[0].exit_code, 1);
    EXPECT_EQ(statuses[1].exit_code, 2);
    EXPECT_EQ(statuses[2].term_signal, SIGKILL);
    for (const Process& p : chain.processes) EXPECT_TRUE(p.status().has_value());
    EXPECT_EQ(wait(chain)[0].exit_code, 1);
  });
}

int open_fds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  while (readdir(d) != nullptr) ++n;
  closedir(d);
  return n;
}

// Timed-out, failed and completed descriptor waits leave no descriptor behind.
TEST_P(FdWaitTest, DescriptorWaitsLeakNoDescriptors) {
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

// A deadline racing with readiness: exactly one outcome, and nothing left pending on the waiter
// (a later untimed wait would end early on a leftover wake-up). For a task and a plain thread.
void race_readiness_with_the_deadline() {
  for (int round = 0; round < 100; ++round) {
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
}

TEST_P(FdWaitTest, ReadinessRacingTheDeadlineLeavesNothingPending) {
  run(race_readiness_with_the_deadline);
  race_readiness_with_the_deadline();
}

// Two tasks on one descriptor, one with a short deadline: it times out, the other still gets
// the readiness, and a third wait after that finds it at once.
TEST_P(FdWaitTest, TwoWaitersOnOneDescriptorOneTimesOut) {
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

// A runtime shut down with tasks parked on a descriptor and on a child process reports them and
// returns; the descriptor and the process becoming ready afterwards is harmless.
TEST_P(FdWaitTest, ShutdownWithDescriptorAndProcessWaits) {
  auto rt = runtime_with(GetParam());
  auto p = std::make_shared<Pipe>();
  const pid_t pid = spawn_shell("sleep 30");
  auto fd_waiter =
      rt->run([p] { return spawn([p] { return wait(RawFD(p->read_end()), kReadable); }); });
  auto proc_waiter = rt->run([pid] { return spawn([pid] { return wait_process(pid); }); });
  auto timed_fd_waiter =
      rt->run([p] { return spawn([p] { return poll_fd(p->read_end(), 1e12, kReadable); }); });
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

// Bad timeouts are refused with a clear exception; tiny and huge ones work.
TEST_P(FdWaitTest, BadAndExtremeTimeouts) {
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

WEFT_INSTANTIATE_WORKER_COUNTS(FdWaitTest);

}  // namespace
}  // namespace weft
