// A task that overflows its stack dies with "stack overflow in task <id>", not a bare SIGSEGV.
#include <cstdint>
#include <cstdio>
#include <regex>
#include <string>

#include "gmock/gmock.h"
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

RuntimeOptions one_worker() {
  RuntimeOptions options;
  options.default_threads = 1;
  return options;
}

TEST(StackOverflowDeathTest, ReportsTheTask) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_DEATH(
      {
        Runtime rt(one_worker());
        auto t = make_task([] { return deep(nullptr, 1 << 20); });
        t.set_stack_size(64 * 1024);
        rt.submit(t);
        fetch(t);
      },
      "stack overflow in task [0-9]+");
}

// A task that never ran may start on the stack of the task that just finished before it
// (switch.cc); overflowing that stack must still name the task running on it. Task a notes
// where its stack is and schedules task b, the only task left to run on the one worker once a
// finishes; b says which task it is when it finds itself on that same stack, then overflows it.
std::uintptr_t g_stack_of_a = 0;

TEST(StackOverflowDeathTest, ReportsTheTaskRunningOnAnInheritedStack) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // ASan and TSan builds never hand stacks over (weft/task/context.h: start_in_place), and
  // ASan keeps locals on fake stacks besides.
  GTEST_SKIP() << "no stack hand-over under ASan/TSan";
#endif
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";
  EXPECT_DEATH(
      {
        Runtime rt(one_worker());
        auto b = make_task([] {
          volatile char here = 0;
          const std::uintptr_t mine = reinterpret_cast<std::uintptr_t>(&here);
          const std::uintptr_t distance =
              mine > g_stack_of_a ? mine - g_stack_of_a : g_stack_of_a - mine;
          if (distance < 4096) {
            std::fprintf(stderr, "on the stack of the task before: task %llu\n",
                         static_cast<unsigned long long>(current_task().id()));
          }
          return deep(nullptr, 1 << 20);
        });
        // a schedules b: when a finishes, b is all there is to run, whatever the policy.
        auto a = make_task([&b] {
          volatile char here = 0;
          g_stack_of_a = reinterpret_cast<std::uintptr_t>(&here);
          schedule(b);
          return int{here};
        });
        a.set_stack_size(64 * 1024);
        b.set_stack_size(64 * 1024);
        rt.submit(a);
        fetch(b);
      },
      ::testing::Truly([](const std::string& output) {
        // ECMAScript (std::regex), unlike gtest's POSIX regexes, has back-references.
        static const std::regex kSameTask(
            "on the stack of the task before: task ([0-9]+)\n[\\s\\S]*"
            "stack overflow in task \\1[^0-9]");
        return std::regex_search(output, kSameTask);
      }));
}

}  // namespace
}  // namespace weft
