// A task that overflows its stack dies with "stack overflow in task <id>", not a bare SIGSEGV.
#include <string>

#include "gtest/gtest.h"
#include "weft/sched/runtime.h"
#include "weft/sched/scheduling.h"

namespace weft {
namespace {

// Recursion the optimizer cannot turn into a loop.
int deep(volatile char* prev, int n) {
  volatile char frame[512];
  frame[0] = static_cast<char>(n);
  if (prev != nullptr) frame[1] = prev[0];
  return n == 0 ? frame[0] : deep(frame, n - 1) + frame[1];
}

TEST(StackOverflowDeathTest, ReportsTheTask) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_DEATH(
      {
        RuntimeOptions options;
        options.default_threads = 1;
        Runtime rt(std::move(options));
        auto t = make_task([] { return deep(nullptr, 1 << 20); });
        t.set_stack_size(64 * 1024);
        rt.submit(t);
        fetch(t);
      },
      "stack overflow in task [0-9]+");
}

}  // namespace
}  // namespace weft
