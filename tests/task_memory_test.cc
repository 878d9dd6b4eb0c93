// Where task cores live: mimalloc's huge-page option, which a runtime turns on, and the core's
// layout, which keeps joining and freeing a cold task to few cache lines (task_core.h).
#include <mimalloc.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "gtest/gtest.h"
#include "weft/sched/runtime.h"
#include "weft/task/task.h"
#include "weft/task/task_core.h"

namespace weft {
namespace {

using internal::TaskCore;

TEST(TaskMemoryTest, ARuntimeAsksMimallocForHugePages) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "sanitized builds allocate cores with the C++ allocator, not mimalloc";
#else
  if (std::getenv("MIMALLOC_LARGE_OS_PAGES") != nullptr) {
    GTEST_SKIP() << "MIMALLOC_LARGE_OS_PAGES is set: the environment decides";
  }
  RuntimeOptions options;
  options.default_threads = 1;
  Runtime rt(std::move(options));
  EXPECT_TRUE(mi_option_is_enabled(mi_option_large_os_pages));
  EXPECT_EQ(rt.run([] { return fetch(spawn([] { return 7; })); }), 7);
#endif
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"
constexpr std::size_t kLine = 64;
std::size_t line_of(std::size_t offset) { return offset / kLine; }

TEST(TaskMemoryTest, JoiningAndFreeingReadTwoLines) {
  // wait(t) and fetch(t) read done_waiters, exception and the typed result stored right after
  // the core; the destructor reads the vtable pointer, the Waiter's payload, done_callbacks,
  // exception and local_storage (and mimalloc writes into the first line as it frees the
  // block). So a join touches the core's last line and its first, none in between.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "sanitized builds add fields to the context (task/context.h), which moves "
                  "the join fields; the layout is arranged for unsanitized builds";
#endif
  const std::size_t join_line = line_of(offsetof(TaskCore, done_waiters));
  EXPECT_EQ(line_of(offsetof(TaskCore, exception)), join_line);
  EXPECT_EQ(line_of(offsetof(TaskCore, done_callbacks)), join_line);
  EXPECT_EQ(line_of(offsetof(TaskCore, local_storage)), join_line);
  EXPECT_EQ(line_of(offsetof(TaskCore, local_storage) + sizeof(void*) - 1), join_line);
  using Result = internal::TaskResult<std::int64_t>;
  EXPECT_EQ(line_of(offsetof(Result, value)), join_line);
  EXPECT_EQ(line_of(offsetof(Result, value) + sizeof(Result::value) - 1), join_line);
  EXPECT_EQ(line_of(offsetof(TaskCore, error)), 0u);
  EXPECT_EQ(line_of(offsetof(TaskCore, value)), 0u);
  EXPECT_EQ(line_of(offsetof(TaskCore, pending_payload)), 0u);
  EXPECT_EQ(line_of(sizeof(TaskCore) - 1), join_line);  // nothing of the core after it
}
#pragma GCC diagnostic pop

}  // namespace
}  // namespace weft
