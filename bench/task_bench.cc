// Task-level costs, on every scheduler (the binary links //sched:scheduler):
//   yield ping-pong between two tasks on one worker, spawn+join of trivial tasks (1 and 2
//   workers), and the resident memory a parked task costs.
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "weft/sched/runtime.h"
#include "weft/sched/scheduling.h"

namespace weft {
namespace {

// Two tasks on one worker yield to each other. One iteration is a round trip (our yield and
// the partner's); the counter is per yield, a switch through the policy, as the peers'
// programs and the main job report it.
void BM_YieldPingPong(benchmark::State& state) {
  RuntimeOptions options;
  options.default_threads = 1;
  Runtime rt(std::move(options));
  const std::int64_t n = state.max_iterations;
  rt.run([&] {
    std::atomic<bool> stop{false};
    auto other = async([&] {
      while (!stop.load(std::memory_order_relaxed)) yield();
    });
    yield();  // let the partner start
    for (auto _ : state) yield();
    stop.store(true);
    wait(other);
  });
  (void)n;
  state.counters["ns_per_yield"] = benchmark::Counter(
      2.0 * state.iterations(), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_YieldPingPong)->Unit(benchmark::kNanosecond);

// Spawns N trivial non-sticky tasks, then joins each and drops its handle (which frees the
// task, on the worker that allocated it); reports time per task.
void BM_SpawnJoin(benchmark::State& state) {
  const int workers = static_cast<int>(state.range(0));
  const int n = static_cast<int>(state.range(1));
  RuntimeOptions options;
  options.default_threads = workers;
  Runtime rt(std::move(options));
  std::vector<Task<void>> tasks(n);
  for (auto _ : state) {
    rt.run([&] {
      for (int i = 0; i < n; ++i) tasks[i] = spawn([] { benchmark::ClobberMemory(); });
      for (int i = 0; i < n; ++i) {
        wait(tasks[i]);
        tasks[i] = Task<void>();
      }
    });
  }
  state.SetItemsProcessed(state.iterations() * n);
  state.counters["ns_per_task"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * n,
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_SpawnJoin)
    ->Args({1, 1'000'000})
    ->Args({2, 1'000'000})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

long rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * sysconf(_SC_PAGESIZE);
}

// RSS growth per task while 100k tasks are parked in wait().
void BM_RssPerParkedTask(benchmark::State& state) {
  constexpr int kTasks = 100'000;
  RuntimeOptions options;
  options.default_threads = 1;
  Runtime rt(std::move(options));
  double per_task = 0;
  for (auto _ : state) {
    rt.run([&] {
      std::vector<Task<void>> tasks;
      tasks.reserve(kTasks);
      long before = rss_bytes();
      for (int i = 0; i < kTasks; ++i) tasks.push_back(spawn([] { wait(); }));
      for (auto& t : tasks) {
        while (t.state() != TaskState::kWaiting) yield();
      }
      long after = rss_bytes();
      per_task = static_cast<double>(after - before) / kTasks;
      for (auto& t : tasks) schedule(t);
      for (auto& t : tasks) wait(t);
    });
  }
  state.counters["rss_bytes_per_parked_task"] = per_task;
}
BENCHMARK(BM_RssPerParkedTask)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace weft

BENCHMARK_MAIN();
