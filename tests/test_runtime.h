// Test helpers: run a test body as a task in a runtime of 1 or 2 workers using the scheduler
// the test binary links (each test target links exactly one; see weft_sched_test).
#ifndef WEFT_TESTS_TEST_RUNTIME_H_
#define WEFT_TESTS_TEST_RUNTIME_H_

#include <atomic>
#include <chrono>
#include <memory>
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

// Spins (holding its worker or thread: never parks nor yields) until `flag` is set; false if
// `limit` passes first.
inline bool spin_until(const std::atomic<bool>& flag, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!flag.load(std::memory_order_acquire)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
  }
  return true;
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
