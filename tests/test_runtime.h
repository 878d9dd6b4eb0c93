// Test helpers: run a test body as a task in a runtime of 1 or 2 workers using the scheduler
// the test binary links (each test target links exactly one; see weft_sched_test).
#ifndef WEFT_TESTS_TEST_RUNTIME_H_
#define WEFT_TESTS_TEST_RUNTIME_H_

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "gtest/gtest.h"
#include "weft/sched/runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/task/task.h"

namespace weft::testing {

// Parameterized on the number of default-pool workers.
class RuntimeTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    RuntimeOptions options;
    options.default_threads = GetParam();
    options.interactive_threads = 0;
    runtime_ = std::make_unique<Runtime>(std::move(options));
  }
  void TearDown() override { runtime_.reset(); }

  // Runs f as a task in this test's runtime and waits for it.
  template <typename F>
  auto run(F&& f) {
    return runtime_->run(std::forward<F>(f));
  }

  Runtime& runtime() { return *runtime_; }

 private:
  std::unique_ptr<Runtime> runtime_;
};

inline std::string WorkerCountName(const ::testing::TestParamInfo<int>& info) {
  return std::to_string(info.param) + (info.param == 1 ? "_worker" : "_workers");
}

// Yields until `t` is parked (in a wait): a test's way to know a waiter is in place.
inline void until_waiting(const TaskRef& t) {
  while (t.state() != TaskState::kWaiting) yield();
}
// As until_waiting, from a plain thread (sleeping a millisecond between looks).
inline void until_waiting_from_thread(const TaskRef& t) {
  while (t.state() != TaskState::kWaiting) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// A runtime of its own with `workers` default workers and no interactive one, for a test that
// destroys it (shutdown with tasks left waiting).
inline std::unique_ptr<Runtime> runtime_with(int workers) {
  RuntimeOptions options;
  options.default_threads = workers;
  options.interactive_threads = 0;
  return std::make_unique<Runtime>(std::move(options));
}

// A plain thread running `op`, whose blocking a test can wait for: until_blocked() returns once
// the thread sits in a futex wait (how weft blocks a plain thread: sched/futex.h), as
// /proc/self/task/<tid>/syscall shows, or once op has returned. A test calls it before the
// operation that would release the thread, to be sure the blocking path runs rather than
// sleeping for a guess. (A futex wait for something else, such as a sanitizer's internal lock,
// ends it early too, as does a system without that file, where it sleeps for a guess: then the
// run tests less, never wrongly.) Joined on destruction.
class BlockingThread {
 public:
  template <typename F>
  explicit BlockingThread(F op)
      : thread_([this, op = std::move(op)]() mutable {
          tid_.store(gettid(), std::memory_order_release);
          op();
          done_.store(true, std::memory_order_release);
        }) {}
  ~BlockingThread() { join(); }
  BlockingThread(const BlockingThread&) = delete;
  BlockingThread& operator=(const BlockingThread&) = delete;

  // Yields (a task) until the thread blocks or op returns; true if it blocked, false if op
  // returned first (did not block) -- tests expect true.
  bool until_blocked() const {
    for (;;) {
      const pid_t tid = tid_.load(std::memory_order_acquire);
      if (done_.load(std::memory_order_acquire)) return false;
      if (tid != 0) {
        std::ifstream f("/proc/self/task/" + std::to_string(tid) + "/syscall");
        long nr = -1;
        if (!f.is_open()) {
          // The thread publishes done before it ends, so here it is alive: this kernel or
          // sandbox has no such file. Give the thread time to block, as a guess.
          if (done_.load(std::memory_order_acquire)) return false;
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
          return !done_.load(std::memory_order_acquire);
        }
        if (f >> nr && nr == SYS_futex) return true;  // else "running", or another call
      }
      yield();
    }
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<pid_t> tid_{0};
  std::atomic<bool> done_{false};
  std::thread thread_;  // last: it starts once the fields above exist
};

// Spins (holding its worker or thread: never parks nor yields) until `flag` is set; false if
// `limit` passes first.
inline bool spin_until(const std::atomic<bool>& flag, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!flag.load(std::memory_order_acquire)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
  }
  return true;
}

// Moves the calling task (not sticky) to another worker of its pool; true if it resumed on
// another. A lone task may well stay on one worker, so: yield(hog) runs a new sticky task here
// at once (binding it to this worker) and queues the caller, and the hog spins until the caller
// runs again, which only another worker can then do. (With no other worker, the hog gives up
// after 5 s and the caller comes back here: false.)
inline bool move_to_another_worker() {
  const int before = threadid();
  auto back = std::make_shared<std::atomic<bool>>(false);
  Task<void> hog([back] { spin_until(*back, std::chrono::milliseconds(5000)); });
  yield(hog);
  back->store(true, std::memory_order_release);
  return threadid() != before;
}

// Submits f to rt as a task free to run on any worker of its pool (not sticky), from a plain
// thread: the push comes from outside the runtime.
template <typename F>
Task<void> submit_free(Runtime& rt, F&& f) {
  Task<void> t(std::forward<F>(f));
  t.set_sticky(false);
  rt.submit(t);
  return t;
}

#define WEFT_INSTANTIATE_WORKER_COUNTS(Suite) \
  INSTANTIATE_TEST_SUITE_P(Workers, Suite, ::testing::Values(1, 2), ::weft::testing::WorkerCountName)

}  // namespace weft::testing

#endif  // WEFT_TESTS_TEST_RUNTIME_H_
