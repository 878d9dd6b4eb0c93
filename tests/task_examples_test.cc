// The examples of the spec's "Tasks" and "Scheduling" sections, as tests.
#include <numeric>
#include <stdexcept>

#include "gtest/gtest.h"
#include "tests/test_runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/task/task.h"

namespace weft {
namespace {

using testing::RuntimeTest;

int sum_to_1000() {
  int s = 0;
  for (int i = 1; i <= 1000; ++i) s += i;
  return s;
}

class TaskExamples : public RuntimeTest {};

// julia> a() = sum(i for i in 1:1000); b = Task(a)  -- runnable, not started.
TEST_P(TaskExamples, TaskIsCreatedNotStarted) {
  run([] {
    Task<int> b(sum_to_1000);
    EXPECT_FALSE(istaskstarted(b));
    EXPECT_FALSE(istaskdone(b));
    EXPECT_EQ(b.state(), TaskState::kCreated);
  });
}

// @task; istaskstarted(b) == false; schedule(b); yield(); istaskdone(b) == true
TEST_P(TaskExamples, AtTaskScheduleYieldDone) {
  run([] {
    auto b = make_task([] { return sum_to_1000(); });
    EXPECT_FALSE(istaskstarted(b));
    schedule(b);
    yield();
    EXPECT_TRUE(istaskdone(b));
    EXPECT_EQ(fetch(b), 500500);
  });
}

// istaskdone example: b = Task(a2); istaskdone(b) false; schedule; yield; true.
TEST_P(TaskExamples, IsTaskDone) {
  run([] {
    Task<int> b(sum_to_1000);
    EXPECT_FALSE(istaskdone(b));
    schedule(b);
    yield();
    EXPECT_TRUE(istaskdone(b));
  });
}

// istaskfailed example: a4() = error("task failed").
TEST_P(TaskExamples, IsTaskFailed) {
  run([] {
    Task<void> b([] { throw std::runtime_error("task failed"); });
    EXPECT_FALSE(istaskfailed(b));
    schedule(b);
    yield();
    EXPECT_TRUE(istaskfailed(b));
    EXPECT_EQ(b.state(), TaskState::kFailed);
  });
}

// schedule example: istaskstarted false; schedule; yield; istaskstarted and istaskdone true.
TEST_P(TaskExamples, ScheduleStartsTask) {
  run([] {
    Task<int> b(sum_to_1000);
    EXPECT_FALSE(istaskstarted(b));
    schedule(b);
    yield();
    EXPECT_TRUE(istaskstarted(b));
    EXPECT_TRUE(istaskdone(b));
  });
}

WEFT_INSTANTIATE_WORKER_COUNTS(TaskExamples);

}  // namespace
}  // namespace weft
