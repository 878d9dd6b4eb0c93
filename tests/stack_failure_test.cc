// A task that gets no stack when it is to run for the first time (none can be mapped: out of
// memory, or of mappings: weft/task/stack.h) fails with that error, as if its body had thrown
// it, and nothing else is disturbed: the task or worker that was switching to it carries on,
// its waiters wake, its bound channels close, and every other task runs.
// fail_stack_allocations_for_testing() stands in for the exhausted system.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_runtime.h"
#include "weft/channel/channel.h"
#include "weft/sched/runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/sync/event.h"
#include "weft/task/errors.h"
#include "weft/task/stack.h"

namespace weft {
namespace {

using testing::RuntimeTest;

// No other test asks for this size, so no stack of it is ever pooled.
constexpr std::size_t kNoStackSize = 320 * 1024;

class StackFailure : public RuntimeTest {
 protected:
  void SetUp() override {
    RuntimeTest::SetUp();
    internal::fail_stack_allocations_for_testing(kNoStackSize);
  }
  void TearDown() override {
    internal::fail_stack_allocations_for_testing(0);
    RuntimeTest::TearDown();
  }
};

SpawnOptions without_stack() {
  SpawnOptions options;
  options.stack_size = kNoStackSize;
  return options;
}

// t failed for want of a stack: fetch raises TaskFailedException for t, carrying the
// std::system_error (ENOMEM) that names it.
void expect_failed_for_want_of_a_stack(const Task<int>& t) {
  try {
    fetch(t);
    ADD_FAILURE() << "fetch returned for a task that had no stack";
  } catch (const TaskFailedException& e) {
    EXPECT_EQ(e.task(), t);
    try {
      e.rethrow_cause();
    } catch (const std::system_error& cause) {
      EXPECT_EQ(cause.code().value(), ENOMEM);
      EXPECT_NE(std::string(cause.what()).find("no stack of 327680 bytes for task " +
                                               std::to_string(t.id())),
                std::string::npos)
          << cause.what();
    } catch (...) {
      ADD_FAILURE() << "the cause is not the std::system_error of the stack allocation";
    }
  }
  EXPECT_TRUE(istaskstarted(t));
  EXPECT_TRUE(istaskdone(t));
  EXPECT_TRUE(istaskfailed(t));
}

TEST_P(StackFailure, TheTaskFailsAndItsWaitersWake) {
  run([] {
    auto doomed = spawn([] { return 1; }, without_stack());
    std::atomic<int> woken{0};
    std::vector<Task<void>> waiters;
    for (int i = 0; i < 3; ++i) {
      waiters.push_back(spawn([&] {
        try {
          wait(doomed);
        } catch (const TaskFailedException&) {
          woken.fetch_add(1);
        }
      }));
    }
    for (auto& w : waiters) wait(w);
    EXPECT_EQ(woken.load(), 3);
    expect_failed_for_want_of_a_stack(doomed);
    EXPECT_EQ(fetch(spawn([] { return 7; })), 7);  // other sizes still get stacks
  });
}

TEST_P(StackFailure, WhoeverSwitchesToItCarriesOn) {
  run([] {
    // Queued ahead of everything else, so that the yield, the park in wait() and the finishing
    // tasks below each switch to one of them first.
    std::vector<Task<int>> doomed;
    for (int i = 0; i < 30; ++i) doomed.push_back(spawn([] { return 1; }, without_stack()));
    yield();
    Event go;
    auto parked = spawn([&] {
      wait(go);
      return 2;
    });
    for (int i = 0; i < 30; ++i) doomed.push_back(spawn([] { return 1; }, without_stack()));
    std::vector<Task<int>> fine;
    for (int i = 0; i < 10; ++i) fine.push_back(spawn([i] { return i; }));
    go.notify();
    EXPECT_EQ(fetch(parked), 2);
    int sum = 0;
    for (auto& t : fine) sum += fetch(t);
    EXPECT_EQ(sum, 45);
    for (auto& t : doomed) expect_failed_for_want_of_a_stack(t);
  });
}

TEST_P(StackFailure, AChannelBoundToItClosesWithTheFailure) {
  run([] {
    Channel<int> c(4);
    auto doomed = spawn([&] {
      c.put(1);
      return 1;
    }, without_stack());
    c.bind(doomed);
    EXPECT_THROW(c.take(), TaskFailedException);
    EXPECT_FALSE(c.isopen());
    expect_failed_for_want_of_a_stack(doomed);
  });
}

// Submitted from a plain thread, the task is started by a worker's own loop, not by a task.
TEST_P(StackFailure, AWorkerLoopThatStartsItCarriesOn) {
  Task<int> doomed = make_task([] { return 1; });
  doomed.set_stack_size(kNoStackSize);
  runtime().submit(doomed);
  expect_failed_for_want_of_a_stack(doomed);
  EXPECT_EQ(run([] { return fetch(spawn([] { return 5; })); }), 5);
}

WEFT_INSTANTIATE_WORKER_COUNTS(StackFailure);

// With WEFT_STACK_SIZE invalid, no runtime starts: the error names the setting, rather than
// every task of the default size failing with it at its first run. In a child process: the
// setting is read once.
TEST(StackSettingDeathTest, AnInvalidDefaultIsRefusedWhenARuntimeStarts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv("WEFT_STACK_SIZE", "lots", 1);
        RuntimeOptions options;
        options.default_threads = 1;
        options.interactive_threads = 0;
        try {
          Runtime rt(std::move(options));
        } catch (const std::invalid_argument& e) {
          std::fprintf(stderr, "%s\n", e.what());
          _exit(0);
        }
        _exit(1);
      },
      ::testing::ExitedWithCode(0), "WEFT_STACK_SIZE=\"lots\"");
}

}  // namespace
}  // namespace weft
