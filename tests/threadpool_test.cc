// Threads.@spawn and threadpools: spawn into a pool (non-sticky), nthreads(pool), threadid(),
// threadpool(), pool sizes from RuntimeOptions and from WEFT_NUM_THREADS, the error for a pool
// with no threads, priorities in the task API, and the pool rule (a task runs only on its
// pool's workers; a flood of default-pool work cannot hold up the interactive pool).
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_runtime.h"
#include "weft/sched/runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/task/task.h"

namespace weft {
namespace {

using testing::RuntimeTest;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

// A runtime with `defaults` default-pool workers and `interactive` interactive ones.
std::unique_ptr<Runtime> make_runtime(int defaults, int interactive) {
  RuntimeOptions options;
  options.default_threads = defaults;
  options.interactive_threads = interactive;
  return std::make_unique<Runtime>(std::move(options));
}

// Sets an environment variable for one scope, restoring the previous value (or absence).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    had_old_ = std::getenv(name) != nullptr;
    if (value == nullptr) {
      unsetenv(name);
    } else {
      setenv(name, value, 1);
    }
  }
  ~ScopedEnv() {
    if (had_old_) {
      setenv(name_, old_.c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::string old_;
  bool had_old_ = false;
};

class ThreadpoolTest : public RuntimeTest {};

TEST_P(ThreadpoolTest, SpawnIsNonStickyInTheDefaultPool) {
  const int workers = GetParam();
  run([workers] {
    auto t = spawn([workers] {
      EXPECT_EQ(threadpool(), Pool::kDefault);
      EXPECT_GE(threadid(), 1);
      EXPECT_LE(threadid(), workers);
      return threadid();
    });
    EXPECT_FALSE(t.sticky());
    EXPECT_EQ(threadpool(t), Pool::kDefault);
    EXPECT_EQ(t.pool(), Pool::kDefault);
    const int id = fetch(t);
    EXPECT_GE(id, 1);
    EXPECT_LE(id, workers);
    EXPECT_EQ(nthreads(), workers);
    EXPECT_EQ(nthreads(Pool::kDefault), workers);
    EXPECT_EQ(nthreads(Pool::kInteractive), 0);
  });
}

// nthreads of a Pool value that names no pool is refused, as every other call taking a Pool
// refuses it (Julia: nthreads(:bogus) is an error), rather than answering 0 threads.
TEST_P(ThreadpoolTest, NthreadsRefusesAPoolOutOfRange) {
  run([] {
    try {
      const int n = nthreads(static_cast<Pool>(7));
      ADD_FAILURE() << "nthreads(7) answered " << n;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("7 is not a pool"), std::string::npos) << e.what();
    }
  });
}

TEST_P(ThreadpoolTest, PlainThreadHasNoThreadId) {
  EXPECT_EQ(threadid(), 0);
  EXPECT_EQ(threadpool(), Pool::kDefault);
}

TEST_P(ThreadpoolTest, InteractiveTasksRunOnInteractiveWorkers) {
  const int defaults = GetParam();
  auto rt = make_runtime(defaults, 1);
  EXPECT_EQ(rt->topology().count(Pool::kDefault), defaults);
  EXPECT_EQ(rt->topology().count(Pool::kInteractive), 1);
  rt->run([defaults] {
    EXPECT_EQ(nthreads(Pool::kDefault), defaults);
    EXPECT_EQ(nthreads(Pool::kInteractive), 1);
    std::vector<Task<int>> tasks;
    for (int i = 0; i < 50; ++i) {
      tasks.push_back(spawn(
          [] {
            EXPECT_EQ(threadpool(), Pool::kInteractive);
            yield();
            EXPECT_EQ(threadpool(), Pool::kInteractive);
            return threadid();
          },
          {.pool = Pool::kInteractive}));
    }
    for (auto& t : tasks) {
      EXPECT_EQ(threadpool(t), Pool::kInteractive);
      EXPECT_FALSE(t.sticky());
      // Workers are numbered default pool first; threadid() is 1-based.
      EXPECT_EQ(fetch(t), defaults + 1);
    }
  });
}

TEST_P(ThreadpoolTest, SpawnIntoAPoolWithNoThreadsRaisesAClearError) {
  run([] {
    try {
      spawn([] {}, {.pool = Pool::kInteractive});
      ADD_FAILURE() << "spawn into an empty pool did not throw";
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("interactive"), std::string::npos) << what;
      EXPECT_NE(what.find("no threads"), std::string::npos) << what;
    }
  });
}

TEST_P(ThreadpoolTest, PriorityIsVisibleInTheTaskApi) {
  run([] {
    auto plain = spawn([] {});
    EXPECT_EQ(plain.priority(), kDefaultPriority);
    auto urgent = spawn([] { return current_task().priority(); }, {.priority = 2});
    EXPECT_EQ(urgent.priority(), 2);
    EXPECT_EQ(fetch(urgent), 2);
    Task<void> later([] {});
    later.set_priority(-1);
    EXPECT_EQ(later.priority(), -1);
    schedule(later);
    wait(later);
    wait(plain);
    EXPECT_THROW(later.set_priority(1), TaskStateError);  // only before the first schedule
  });
}

// The pool rule under every scheduler: while the only default worker is busy, a queued
// default-pool task waits for it; the idle interactive worker does not pick it up.
TEST_P(ThreadpoolTest, InteractiveWorkersNeverRunDefaultPoolTasks) {
  auto rt = make_runtime(GetParam(), 1);
  std::atomic<bool> release{false};
  std::atomic<int> blockers_running{0};
  std::vector<Task<void>> blockers;
  for (int i = 0; i < GetParam(); ++i) {
    auto t = make_task([&] {
      blockers_running.fetch_add(1);
      while (!release.load()) std::this_thread::sleep_for(milliseconds(1));
    });
    t.set_sticky(false);
    rt->submit(t);
    blockers.push_back(t);
  }
  while (blockers_running.load() < GetParam()) std::this_thread::sleep_for(milliseconds(1));
  std::atomic<int> ran_in{-1};
  auto queued = make_task([&] { ran_in.store(static_cast<int>(threadpool())); });
  queued.set_sticky(false);
  rt->submit(queued);
  std::this_thread::sleep_for(milliseconds(30));
  EXPECT_EQ(ran_in.load(), -1) << "a default-pool task ran while every default worker was busy";
  release.store(true);
  wait(queued);
  EXPECT_EQ(ran_in.load(), static_cast<int>(Pool::kDefault));
  for (auto& t : blockers) wait(t);
}

// A flood of CPU-bound default-pool tasks (never yielding while they run) cannot keep an
// interactive task from running.
TEST_P(ThreadpoolTest, DefaultPoolFloodDoesNotStarveInteractiveTasks) {
  auto rt = make_runtime(GetParam(), 1);
  std::atomic<bool> stop{false};
  std::vector<Task<void>> flood;
  for (int i = 0; i < 8 * GetParam(); ++i) {
    auto t = make_task([&] {
      while (!stop.load(std::memory_order_relaxed)) {
      }
    });
    t.set_sticky(false);
    rt->submit(t);
    flood.push_back(t);
  }
  const auto start = SteadyClock::now();
  for (int i = 0; i < 20; ++i) {
    auto t = make_task([] { return threadpool(); });
    t.set_sticky(false);
    t.set_pool(Pool::kInteractive);
    rt->submit(t);
    EXPECT_EQ(fetch(t), Pool::kInteractive);
  }
  EXPECT_LT(SteadyClock::now() - start, std::chrono::seconds(5));
  stop.store(true);
  for (auto& t : flood) wait(t);
}

WEFT_INSTANTIATE_WORKER_COUNTS(ThreadpoolTest);

// Pool sizes: RuntimeOptions first, then WEFT_NUM_THREADS ("N" or "N,M", as
// JULIA_NUM_THREADS), then one default worker per CPU.
TEST(ThreadpoolSizes, FromTheEnvironment) {
  ScopedEnv env("WEFT_NUM_THREADS", "4,1");
  Runtime rt;  // -1 for both: read the variable
  EXPECT_EQ(rt.topology().count(Pool::kDefault), 4);
  EXPECT_EQ(rt.topology().count(Pool::kInteractive), 1);
  EXPECT_EQ(rt.topology().num_workers(), 5);
  rt.run([] {
    EXPECT_EQ(nthreads(Pool::kDefault), 4);
    EXPECT_EQ(nthreads(Pool::kInteractive), 1);
    auto t = spawn([] { return threadid(); }, {.pool = Pool::kInteractive});
    EXPECT_EQ(fetch(t), 5);
  });
}

TEST(ThreadpoolSizes, DefaultPoolOnlyFromTheEnvironment) {
  ScopedEnv env("WEFT_NUM_THREADS", "3");
  Runtime rt;
  EXPECT_EQ(rt.topology().count(Pool::kDefault), 3);
  EXPECT_EQ(rt.topology().count(Pool::kInteractive), 0);
}

TEST(ThreadpoolSizes, OptionsOverrideTheEnvironment) {
  ScopedEnv env("WEFT_NUM_THREADS", "4,1");
  RuntimeOptions options;
  options.default_threads = 2;
  options.interactive_threads = 0;
  Runtime rt(std::move(options));
  EXPECT_EQ(rt.topology().count(Pool::kDefault), 2);
  EXPECT_EQ(rt.topology().count(Pool::kInteractive), 0);
}

// "auto", as Julia counts it: one default worker per CPU the process may run on (its affinity
// mask), and one interactive worker.
TEST(ThreadpoolSizes, AutoMeansOnePerCpuItMayRunOnAndOneInteractive) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  ASSERT_EQ(sched_getaffinity(0, sizeof(allowed), &allowed), 0);
  {
    ScopedEnv env("WEFT_NUM_THREADS", "auto");
    Runtime rt;
    EXPECT_EQ(rt.topology().count(Pool::kDefault), CPU_COUNT(&allowed));
    EXPECT_EQ(rt.topology().count(Pool::kInteractive), 0);
  }
  {
    ScopedEnv env("WEFT_NUM_THREADS", "2,auto");
    Runtime rt;
    EXPECT_EQ(rt.topology().count(Pool::kDefault), 2);
    EXPECT_EQ(rt.topology().count(Pool::kInteractive), 1);
  }
  // Pinned to one CPU (set on this thread, read by the runtime as the process's: the calling
  // thread's mask is what sched_getaffinity(0) returns).
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &allowed)) {
      CPU_SET(cpu, &one);
      break;
    }
  }
  ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
  {
    ScopedEnv env("WEFT_NUM_THREADS", "auto");
    Runtime rt;
    EXPECT_EQ(rt.topology().count(Pool::kDefault), 1);
  }
  ASSERT_EQ(sched_setaffinity(0, sizeof(allowed), &allowed), 0);
}

// A program that sets both counts is not stopped by a malformed variable it does not read.
TEST(ThreadpoolSizes, BothCountsSetIgnoreTheEnvironment) {
  ScopedEnv env("WEFT_NUM_THREADS", "not a number");
  RuntimeOptions options;
  options.default_threads = 1;
  options.interactive_threads = 0;
  EXPECT_NO_THROW(Runtime rt(std::move(options)));
}

TEST(ThreadpoolSizes, MalformedValueNamesTheVariable) {
  for (const char* bad : {"x", "4,", "-1", "2,y"}) {
    ScopedEnv env("WEFT_NUM_THREADS", bad);
    try {
      Runtime rt;
      ADD_FAILURE() << "WEFT_NUM_THREADS=\"" << bad << "\" was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("WEFT_NUM_THREADS"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace weft
