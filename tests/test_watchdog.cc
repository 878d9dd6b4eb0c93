// The scheduling tests' watchdog: a test that has not finished WEFT_TEST_TIMEOUT seconds after
// it started (default 60; 0 turns the watchdog off) is reported on stderr and the process exits
// with status 1 at once.
//
// Why: a scheduler that loses a task (or a wake-up) leaves whoever waits for it blocked forever,
// and a runtime with a blocked task can be neither finished nor torn down. Without this the
// test would sit until Bazel's timeout kills it minutes later, saying nothing about why; with it
// the conformance suite fails fast and names the test, which is what a plugin author needs.
// Every test that weft_sched_test builds links it (alwayslink: it registers itself).
//
// std::_Exit, not abort or exit: the runtime's threads are stuck in an unknown state, so no
// destructor, atexit handler or core dump should run; stdout is flushed first so the test log
// shows how far gtest got, and weft's task dump (SIGQUIT) is printed when it is installed.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace weft::testing {
namespace {

constexpr double kDefaultTimeoutSeconds = 60;
constexpr double kNoLimitAbove = 365.0 * 24 * 3600;

double timeout_seconds() {
  const char* env = std::getenv("WEFT_TEST_TIMEOUT");
  if (env == nullptr || *env == '\0') return kDefaultTimeoutSeconds;
  char* end = nullptr;
  const double seconds = std::strtod(env, &end);
  if (*end != '\0' || !(seconds >= 0)) {
    std::fprintf(stderr, "weft test watchdog: WEFT_TEST_TIMEOUT=\"%s\" is not a number of "
                 "seconds >= 0; using %g\n", env, kDefaultTimeoutSeconds);
    return kDefaultTimeoutSeconds;
  }
  // More than a year (inf included) is no limit: as a clock duration it would overflow into a
  // deadline already past.
  return seconds > kNoLimitAbove ? 0 : seconds;
}

// What the listener and the watching thread share. Allocated once and never freed: gtest
// deletes its listeners at exit while the detached thread may still be waiting on `cv`.
struct WatchState {
  double seconds = kDefaultTimeoutSeconds;
  std::mutex mu;
  std::condition_variable cv;
  bool armed = false;
  std::string test_name;
  std::chrono::steady_clock::time_point deadline;
};

// What every task and blocked thread waits on says which wake-up was lost. weft's SIGQUIT
// handler prints exactly that (weft/sched/task_dump.h) from its own thread; it is installed by
// the first runtime unless SIGQUIT had another handler. Give it a moment, then go.
void dump_tasks_if_possible() {
  struct sigaction current {};
  if (sigaction(SIGQUIT, nullptr, &current) != 0 || current.sa_handler == SIG_DFL ||
      current.sa_handler == SIG_IGN) {
    return;
  }
  std::fprintf(stderr, "weft test watchdog: the tasks and threads at this moment:\n");
  std::fflush(stderr);
  std::raise(SIGQUIT);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  std::fflush(stderr);
}

// WEFT_WATCHDOG_GDB=1: also every thread's stack, from gdb attached to this process (a thread
// spinning or blocked outside weft's waits does not show in the task dump).
void print_thread_stacks_if_asked() {
  const char* env = std::getenv("WEFT_WATCHDOG_GDB");
  if (env == nullptr || std::string(env) != "1") return;
  const std::string command = "gdb -p " + std::to_string(getpid()) +
                              " -batch -nx -ex 'thread apply all bt 30' 1>&2 2>/dev/null";
  if (std::system(command.c_str()) != 0) {
    std::fprintf(stderr, "weft test watchdog: could not run gdb for the thread stacks\n");
  }
}

[[noreturn]] void watch(WatchState* s) {
  std::unique_lock<std::mutex> lock(s->mu);
  for (;;) {
    s->cv.wait(lock, [s] { return s->armed; });
    const auto deadline = s->deadline;
    if (s->cv.wait_until(lock, deadline, [&] { return !s->armed || s->deadline != deadline; })) {
      continue;  // finished in time, or the next test re-armed it
    }
    std::fflush(stdout);
    std::fprintf(stderr,
                 "\nweft test watchdog: %s did not finish within %g s: a lost wake-up or a "
                 "dropped task? (a task that never runs again leaves its waiters blocked "
                 "forever; WEFT_TEST_TIMEOUT sets the limit)\n",
                 s->test_name.c_str(), s->seconds);
    std::fflush(stderr);
    dump_tasks_if_possible();
    print_thread_stacks_if_asked();
    std::_Exit(1);
  }
}

class Watchdog final : public ::testing::EmptyTestEventListener {
 public:
  explicit Watchdog(WatchState* state) : s_(state) {}

  void OnTestStart(const ::testing::TestInfo& info) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    s_->test_name = std::string(info.test_suite_name()) + "." + info.name();
    s_->deadline = std::chrono::steady_clock::now() +
                   std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                       std::chrono::duration<double>(s_->seconds));
    s_->armed = true;
    if (!thread_started_) {
      thread_started_ = true;
      std::thread(watch, s_).detach();
    }
    s_->cv.notify_one();
  }

  void OnTestEnd(const ::testing::TestInfo& /*info*/) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    s_->armed = false;
    s_->cv.notify_one();
  }

 private:
  WatchState* const s_;
  bool thread_started_ = false;  // gtest calls listeners from the main thread only
};

// Registered before main: gtest's UnitTest is a function-local singleton, safe to reach from a
// static initializer, and InitGoogleTest keeps listeners added before it.
const bool kRegistered = [] {
  const double seconds = timeout_seconds();
  if (seconds > 0) {
    auto* state = new WatchState;
    state->seconds = seconds;
    ::testing::UnitTest::GetInstance()->listeners().Append(new Watchdog(state));
  }
  return true;
}();

}  // namespace
}  // namespace weft::testing
