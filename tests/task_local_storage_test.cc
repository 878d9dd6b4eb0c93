// Task-local storage: per-task isolation, the scoped form, and storage following a task that
// migrates between workers.
#include <any>
#include <set>
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

TEST_P(TaskLocalStorageTest, SurvivesMigrationBetweenWorkers) {
  run([] {
    std::vector<Task<bool>> tasks;
    for (int i = 0; i < 20; ++i) {
      tasks.push_back(spawn([i] {
        task_local_storage("id", i);
        std::set<int> workers;
        for (int k = 0; k < 200; ++k) {
          workers.insert(threadid());
          yield();
          if (std::any_cast<int>(task_local_storage("id")) != i) return false;
        }
        return true;
      }));
    }
    for (auto& t : tasks) EXPECT_TRUE(fetch(t));
  });
}

TEST(TaskLocalStoragePlainThread, ThreadHasItsOwnTable) {
  task_local_storage("k", 3);
  EXPECT_EQ(std::any_cast<int>(task_local_storage("k")), 3);
}

WEFT_INSTANTIATE_WORKER_COUNTS(TaskLocalStorageTest);

}  // namespace
}  // namespace weft
