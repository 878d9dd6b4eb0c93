// Stress: random graphs of tasks that spawn (non-sticky, sticky, into the interactive pool),
// yield, sleep, wait for some of their children, and park to be woken by a helper. Every task
// must run exactly once and every wait must end (a hang is failed by the test watchdog).
//
// Short by default (a few thousand tasks per graph). WEFT_STRESS=1 runs the long version:
// larger graphs, several rounds, for soak runs (e.g. under --config=tsan with a long timeout:
// bazel test //tests:stress_test --test_env=WEFT_STRESS=1 --test_timeout=3600
// --test_env=WEFT_TEST_TIMEOUT=0). Under TSan the long version runs many more rounds of graphs
// no bigger than the short ones: TSan gives every task's stack (a fiber) a thread context and
// dies once 8128 of them are alive, and a graph can hold every one of its tasks alive at once.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "tests/stress_mode.h"
#include "tests/test_runtime.h"
#include "weft/sched/runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/task/task.h"

namespace weft {
namespace {

using testing::RuntimeTest;
using testing::stress_mode;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr std::int64_t kShortTasks = 1'500;
#else
constexpr std::int64_t kShortTasks = 6'000;
#endif
#if defined(__SANITIZE_THREAD__)
constexpr std::int64_t kLongTasks = kShortTasks;
constexpr int kLongRounds = 100;
#else
constexpr std::int64_t kLongTasks = 200'000;
constexpr int kLongRounds = 10;
#endif
constexpr int kShortRounds = 2;

struct Graph {
  Graph(std::int64_t max, bool interactive, int round)
      : max_tasks(max), has_interactive(interactive), round(round), runs(max) {
    for (auto& r : runs) r.store(0, std::memory_order_relaxed);
  }

  const std::int64_t max_tasks;
  const bool has_interactive;
  const int round;  // mixed into every node's seed: each round a different graph
  std::atomic<std::int64_t> created{1};  // id 0 is the root
  std::vector<std::atomic<int>> runs;    // per id: how many times its body started
  std::atomic<std::int64_t> wrong_results{0};
  std::mutex mu;
  std::vector<Task<std::int64_t>> unjoined;  // guarded by mu; joined by the root at the end
};

// A node of the graph; returns its own id (checked by whoever fetches it).
std::int64_t node(Graph& g, std::int64_t id, int depth) {
  g.runs[id].fetch_add(1, std::memory_order_relaxed);
  std::minstd_rand rng(static_cast<std::uint32_t>(id * 2654435761u + depth) ^
                       (static_cast<std::uint32_t>(g.round) * 0x85EBCA6Bu));
  // Wide at the root, then 0-4 children (2 on average) until the task budget runs out.
  const int fanout = depth == 0 ? 32 : depth < 16 ? static_cast<int>(rng() % 5) : 0;
  std::vector<std::pair<Task<std::int64_t>, std::int64_t>> children;
  for (int c = 0; c < fanout; ++c) {
    const std::int64_t cid = g.created.fetch_add(1, std::memory_order_relaxed);
    if (cid >= g.max_tasks) break;
    // (Passed as copies: Task's constructor takes its callable as an rvalue.)
    auto body = [&g, cid, depth] { return node(g, cid, depth + 1); };
    using Body = decltype(body);
    Task<std::int64_t> child;
    switch (rng() % 10) {
      case 0:
      case 1:
        child = async(Body(body));  // sticky, and pins this task
        break;
      case 2:
        if (g.has_interactive) {
          child = spawn(Body(body), {.pool = Pool::kInteractive});
          break;
        }
        [[fallthrough]];
      case 3: {
        Task<std::int64_t> t{Body(body)};  // Julia's Task(f): sticky, scheduled explicitly
        schedule(t);
        child = t;
        break;
      }
      default:
        child = spawn(Body(body), {.priority = static_cast<int>(rng() % 5) - 2});
    }
    children.emplace_back(child, cid);
  }
  switch (rng() % 8) {
    case 0:
    case 1:
      yield();
      break;
    case 2: {
      // Park and be woken by a helper task.
      TaskRef me = current_task();
      auto helper = spawn([me] {
        while (me.state() != TaskState::kWaiting) yield();
        schedule(me, 7);
      });
      if (std::any_cast<int>(wait()) != 7) g.wrong_results.fetch_add(1);
      wait(helper);
      break;
    }
    case 3:
      if (rng() % 16 == 0) sleep(0.001);
      break;
    default:
      break;
  }
  for (auto& [child, cid] : children) {
    if (rng() % 3 == 0) {
      std::lock_guard<std::mutex> lock(g.mu);
      g.unjoined.push_back(child);
    } else if (fetch(child) != cid) {
      g.wrong_results.fetch_add(1);
    }
  }
  return id;
}

void run_graph(Runtime& rt, std::int64_t max_tasks, bool interactive, int round) {
  Graph g(max_tasks, interactive, round);
  const std::int64_t root = rt.run([&g] {
    const std::int64_t r = node(g, 0, 0);
    // Join what the nodes left behind (joining may add more: loop until nothing is left).
    for (;;) {
      std::vector<Task<std::int64_t>> batch;
      {
        std::lock_guard<std::mutex> lock(g.mu);
        batch.swap(g.unjoined);
      }
      if (batch.empty()) break;
      for (auto& t : batch) wait(t);
    }
    return r;
  });
  EXPECT_EQ(root, 0);
  EXPECT_EQ(g.wrong_results.load(), 0);
  const std::int64_t n = std::min(g.created.load(), g.max_tasks);
  std::int64_t never = 0, twice = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const int r = g.runs[i].load();
    never += r == 0;
    twice += r > 1;
  }
  EXPECT_EQ(never, 0) << "tasks that never ran, of " << n;
  EXPECT_EQ(twice, 0) << "tasks that ran more than once, of " << n;
  // The graph must be a real one: most of the budget spent.
  EXPECT_GT(n, g.max_tasks / 2) << "the random graph stayed small";
}

class Stress : public RuntimeTest {};

TEST_P(Stress, RandomGraphsRunEveryTaskExactlyOnce) {
  const int rounds = stress_mode() ? kLongRounds : kShortRounds;
  const std::int64_t tasks = stress_mode() ? kLongTasks : kShortTasks;
  for (int round = 0; round < rounds; ++round) run_graph(runtime(), tasks, false, round);
}

TEST_P(Stress, RandomGraphsWithAnInteractivePool) {
  RuntimeOptions options;
  options.default_threads = GetParam();
  options.interactive_threads = 1;
  Runtime rt(std::move(options));
  const int rounds = stress_mode() ? kLongRounds : kShortRounds;
  const std::int64_t tasks = stress_mode() ? kLongTasks : kShortTasks;
  for (int round = 0; round < rounds; ++round) run_graph(rt, tasks, true, round);
}

WEFT_INSTANTIATE_WORKER_COUNTS(Stress);

}  // namespace
}  // namespace weft
