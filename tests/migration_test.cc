// Migration: non-sticky tasks move between workers and keep their task-local storage; sticky
// tasks (Task(f), @async, and the tasks @async pins) never move, however hungry the other
// workers are.
#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_runtime.h"
#include "weft/sched/runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/task/task.h"
#include "weft/task/task_local_storage.h"

namespace weft {
namespace {

using testing::RuntimeTest;
using SteadyClock = std::chrono::steady_clock;

void spin_for(std::chrono::microseconds d) {
  const auto end = SteadyClock::now() + d;
  while (SteadyClock::now() < end) {
  }
}

class Migration : public RuntimeTest {};

TEST_P(Migration, MigratingTasksKeepTheirTaskLocalStorage) {
  if (GetParam() < 2) GTEST_SKIP() << "migration needs two workers";
  run([] {
    constexpr int kTasks = 8;
    std::atomic<bool> migrated{false};
    std::vector<Task<bool>> tasks;
    for (int i = 0; i < kTasks; ++i) {
      tasks.push_back(spawn([i, &migrated] {
        task_local_storage("id", i);
        std::string name = "task " + std::to_string(i);
        return task_local_storage(
            [&] {
              const int first = threadid();
              const auto deadline = SteadyClock::now() + std::chrono::seconds(10);
              bool intact = true;
              // Until some task has been seen on two workers (then a little longer, so others
              // move too), mixing CPU work, yields and sleeps (timer wake-ups land anywhere).
              for (int k = 0; k < 400 || (!migrated.load() && SteadyClock::now() < deadline);
                   ++k) {
                spin_for(std::chrono::microseconds(20));
                if (k % 10 == 9) {
                  sleep(0.001);
                } else {
                  yield();
                }
                if (threadid() != first) migrated.store(true);
                intact &= std::any_cast<int>(task_local_storage("id")) == i;
                intact &= std::any_cast<std::string>(task_local_storage("name")) == name;
              }
              return intact;
            },
            "name", name);
      }));
    }
    for (int i = 0; i < kTasks; ++i) EXPECT_TRUE(fetch(tasks[i])) << "task " << i;
    EXPECT_TRUE(migrated.load()) << "no task ever ran on a second worker";
  });
}

// Sticky tasks yield, sleep, wait for non-sticky children (woken from whichever worker the
// child finished on) and are woken by tasks on other workers, while those workers look for work
// to steal: each must report the same threadid() throughout.
TEST_P(Migration, StickyTasksNeverMigrate) {
  if (GetParam() < 2) GTEST_SKIP() << "stickiness needs a second worker to stay off";
  run([] {
    std::vector<Task<int>> sticky;
    for (int i = 0; i < 16; ++i) {
      sticky.push_back(async([i] {
        const int id = threadid();
        int moves = 0;
        for (int k = 0; k < 60; ++k) {
          switch ((i + k) % 4) {
            case 0:
              yield();
              break;
            case 1: {
              auto child = spawn([] { spin_for(std::chrono::microseconds(30)); });
              wait(child);
              break;
            }
            case 2: {
              TaskRef me = current_task();
              auto waker = spawn([me] {
                while (me.state() != TaskState::kWaiting) yield();
                schedule(me);
              });
              wait();
              wait(waker);
              break;
            }
            case 3:
              if (k % 16 == 3) sleep(0.001);
              break;
          }
          moves += threadid() != id;
        }
        return moves;
      }));
    }
    // Keep the other worker hungry: short non-sticky tasks that finish, leaving it to steal.
    std::vector<Task<void>> noise;
    for (int i = 0; i < 200; ++i) noise.push_back(spawn([] { yield(); }));
    for (auto& t : sticky) EXPECT_EQ(fetch(t), 0);
    for (auto& t : noise) wait(t);
  });
}

// Task(f) scheduled from a plain thread is sticky too: bound to one worker (round robin).
TEST_P(Migration, StickyTasksFromAPlainThreadStayOnTheirWorker) {
  if (GetParam() < 2) GTEST_SKIP() << "stickiness needs a second worker to stay off";
  std::vector<Task<bool>> tasks;
  for (int i = 0; i < 8; ++i) {
    Task<bool> t([] {
      const int id = threadid();
      for (int k = 0; k < 50; ++k) {
        if (k % 10 == 0) {
          sleep(0.001);
        } else {
          yield();
        }
        if (threadid() != id) return false;
      }
      return true;
    });
    EXPECT_TRUE(t.sticky());
    runtime().submit(t);
    tasks.push_back(t);
  }
  for (auto& t : tasks) EXPECT_TRUE(fetch(t));
}

WEFT_INSTANTIATE_WORKER_COUNTS(Migration);

}  // namespace
}  // namespace weft
