// Task-local storage: per-task isolation, the scoped form, and storage following a task that
// migrates between workers.
#include <any>
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/task/task_local_storage.h"

namespace weft {
namespace {

using testing::RuntimeTest;
class TaskLocalStorageTest : public RuntimeTest {};

TEST_P(TaskLocalStorageTest, EachTaskHasItsOwn) {
  run([] {
    task_local_storage("who", std::string("parent"));
    std::vector<Task<std::string>> kids;
    for (int i = 0; i < 50; ++i) {
      kids.push_back(spawn([i] {
        EXPECT_FALSE(task_local_storage().contains("who"));  // not inherited, as in Julia
        task_local_storage("who", "kid" + std::to_string(i));
        for (int k = 0; k < 10; ++k) yield();
        return std::any_cast<std::string>(task_local_storage("who"));
      }));
    }
    for (int i = 0; i < 50; ++i) EXPECT_EQ(fetch(kids[i]), "kid" + std::to_string(i));
    EXPECT_EQ(std::any_cast<std::string>(task_local_storage("who")), "parent");
  });
}

TEST_P(TaskLocalStorageTest, MissingKeyNamesTheKey) {
  run([] {
    try {
      task_local_storage("absent");
      FAIL();
    } catch (const std::out_of_range& e) {
      EXPECT_NE(std::string(e.what()).find("absent"), std::string::npos);
    }
  });
}

// The reference task_local_storage(key) returns stays valid while other keys are stored.
TEST_P(TaskLocalStorageTest, AReferenceSurvivesStoringOtherKeys) {
  run([] {
    std::any& first = task_local_storage("first", std::string("kept"));
    for (int i = 0; i < 1000; ++i) task_local_storage("key " + std::to_string(i), i);
    EXPECT_EQ(&first, &task_local_storage("first"));
    EXPECT_EQ(std::any_cast<std::string>(first), "kept");
  });
}

TEST_P(TaskLocalStorageTest, ScopedFormRestoresPreviousValueOrAbsence) {
  run([] {
    int seen = task_local_storage([] { return std::any_cast<int>(task_local_storage("x")); },
                                  "x", 1);
    EXPECT_EQ(seen, 1);
    EXPECT_FALSE(task_local_storage().contains("x"));

    task_local_storage("x", 5);
    EXPECT_THROW(task_local_storage([]() -> int { throw std::runtime_error("body"); }, "x", 6),
                 std::runtime_error);
    EXPECT_EQ(std::any_cast<int>(task_local_storage("x")), 5);
  });
}

// Storage follows a task that moves between workers: each task moves itself a few times and
// checks its storage after each move; fails if a task never moved. One task at a time: the
// spinning tasks of two moving at once could hold both workers.
TEST_P(TaskLocalStorageTest, SurvivesMigrationBetweenWorkers) {
  if (GetParam() < 2) GTEST_SKIP() << "migration needs two workers";
  run([] {
    for (int i = 0; i < 4; ++i) {
      auto t = spawn([i] {
        task_local_storage("id", i);
        int moves = 0;
        for (int k = 0; k < 5; ++k) {
          moves += testing::move_to_another_worker();
          if (std::any_cast<int>(task_local_storage("id")) != i) return -1;
        }
        return moves;
      });
      EXPECT_GT(fetch(t), 0) << "task " << i << " never moved (-1: its storage changed)";
    }
  });
}

// A task's storage goes when the task ends, not with the task's core: a value that holds the
// task's own handle (here current_task() itself; as easily an object that keeps the task, or a
// TaskFailedException naming it) would otherwise keep the core alive, and the core the value:
// neither ever freed (ASan's leak check), and nothing else the table holds destroyed.
TEST_P(TaskLocalStorageTest, ValuesGoWhenTheTaskEndsEvenOneHoldingTheTask) {
  run([] {
    auto gone = std::make_shared<std::atomic<bool>>(false);
    auto t = spawn([gone] {
      task_local_storage("self", current_task());
      task_local_storage("sentinel", std::shared_ptr<void>(nullptr, [gone](void*) {
                           gone->store(true, std::memory_order_release);
                         }));
    });
    wait(t);
    t = Task<void>();  // the last handle
    const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!gone->load(std::memory_order_acquire) && std::chrono::steady_clock::now() < limit) {
      sleep(0.001);  // the runtime drops its reference once the task's stack is released
    }
    EXPECT_TRUE(gone->load(std::memory_order_acquire))
        << "the ended task's storage (and the task) were never freed";
  });
}

TEST(TaskLocalStoragePlainThread, ThreadHasItsOwnTable) {
  task_local_storage("k", 3);
  EXPECT_EQ(std::any_cast<int>(task_local_storage("k")), 3);
}

WEFT_INSTANTIATE_WORKER_COUNTS(TaskLocalStorageTest);

}  // namespace
}  // namespace weft
