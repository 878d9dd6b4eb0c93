// compare: the scheduler comparison. Runs every workload against every policy (FIFO, work
// stealing, priority), on 1 worker and on all cores, prints a table (median, spread, ratio to
// FIFO) and writes a chart of the same as SVG.
//
//   bazel run -c opt --config=opt //bench:compare [-- --quick] [--chart=PATH] [--table=PATH]
//
// One binary, explicit runtimes: each benchmark builds `Runtime rt({.default_threads = N,
// .policy = std::make_unique<P>()})`, so the schedulers run the same code side by side. Google
// Benchmark runs the repetitions (interleaved at random across benchmarks, so a slow phase of
// the machine does not land on one scheduler). Each workload runs in a process of its own (this
// binary again, with --workload_child): what one workload leaves in the heap and the stack pool
// (FIFO's fib parks 1.3M tasks at once) would otherwise tax the next, which inflated spawn+join
// on 2 workers from ~100 to ~210 ns/task. Given any Google Benchmark flag (--benchmark_filter,
// --benchmark_out=x.json, ...), everything runs in this one process instead, and the flags work
// as usual. --quick shrinks every workload for a smoke run.
// The chart goes to PATH (default bench_results/compare.svg in the workspace under bazel run,
// else in the current directory), the table also to PATH with .md (or --table=PATH).
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <spawn.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "benchmark/benchmark.h"
#include "bench/compare_chart.h"
#include "weft/bench/switch_pingpong.h"
#include "weft/channel/channel.h"
#include "weft/plugins/edf_policy.h"
#include "weft/plugins/lifo_policy.h"
#include "weft/sched/fifo_policy.h"
#include "weft/sched/priority_policy.h"
#include "weft/sched/runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/sched/work_stealing_policy.h"

namespace weft::bench {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// ---- Sizes ----------------------------------------------------------------------------------

struct Sizes {
  std::int64_t yields;          // yield ping-pong: yields in all
  std::int64_t spawn_tasks;     // spawn+join
  std::int64_t skynet_leaves;   // a power of 10
  int fib_n;                    // parallel fib, a task per call
  std::int64_t pipeline_items;  // producer -> 2 stages -> consumer
  int latency_samples;          // wake-ups measured per run
  int repetitions;
  // Once a cell (workload x policy x workers) has used this much time, its remaining
  // repetitions are skipped: FIFO runs fib breadth-first and needs ~10 s a run, which 5 times
  // over, on 2 policies and 2 worker counts, would triple the whole comparison.
  double cell_budget_seconds;
};

constexpr Sizes kFull{1'000'000, 1'000'000, 1'000'000, 30, 1'000'000, 200, 5, 12};
constexpr Sizes kQuick{100'000, 100'000, 100'000, 22, 50'000, 40, 2, 3};

// A raw context switch (SwitchPingPong) where the aims and PEERS.md's figures were measured:
// 3.0 ns as first reported, when the harness counted a round trip as one switch.
constexpr double kReferenceSwitchNs = 1.5;
Sizes g_sizes = kFull;

// ---- Policies -------------------------------------------------------------------------------

struct PolicyEntry {
  const char* name;
  std::unique_ptr<Policy> (*make)();
};

const PolicyEntry kPolicies[] = {
    {"fifo", [] { return std::unique_ptr<Policy>(new FifoPolicy()); }},
    {"work_stealing", [] { return std::unique_ptr<Policy>(new WorkStealingPolicy()); }},
    {"priority", [] { return std::unique_ptr<Policy>(new PriorityPolicy()); }},
    // The plugins, written outside sched/ the way a user writes one (plugins/).
    {"lifo", [] { return std::unique_ptr<Policy>(new plugins::LifoPolicy()); }},
    {"edf", [] { return std::unique_ptr<Policy>(new plugins::EdfPolicy()); }},
};

// --policies=a,b: only these (empty: all).
std::vector<std::string> g_chosen_policies;

bool policy_chosen(const char* name) {
  return g_chosen_policies.empty() || std::find(g_chosen_policies.begin(),
                                                g_chosen_policies.end(),
                                                name) != g_chosen_policies.end();
}

std::unique_ptr<Runtime> make_runtime(const PolicyEntry& policy, int workers,
                                      int interactive = 0) {
  RuntimeOptions options;
  options.default_threads = workers;
  options.interactive_threads = interactive;
  options.policy = policy.make();
  return std::make_unique<Runtime>(std::move(options));
}

// Starts f as a non-sticky task on rt from this plain thread (weft::spawn would use the
// default runtime, not rt).
template <typename F>
auto start_in(Runtime& rt, F&& f, Pool pool = Pool::kDefault, int priority = kDefaultPriority) {
  auto t = make_task(std::forward<F>(f));
  t.set_sticky(false);
  t.set_pool(pool);
  t.set_priority(priority);
  rt.submit(t);
  return t;
}

// ---- Workloads ------------------------------------------------------------------------------
// Each runs once inside a benchmark iteration and returns its metrics (name -> value).

using Metrics = std::map<std::string, double>;

// 2 tasks per worker, each yielding yields/(2*workers) times: on 1 worker the classic
// ping-pong; on N workers N pairs (ideally one per worker). Metric: wall time per yield.
Metrics yield_pingpong(Runtime& rt, int workers) {
  const int tasks = 2 * workers;
  const std::int64_t per_task = g_sizes.yields / tasks;
  const auto t0 = Clock::now();
  rt.run([&] {
    std::vector<Task<void>> ts;
    for (int i = 0; i < tasks; ++i) {
      ts.push_back(spawn([per_task] {
        for (std::int64_t j = 0; j < per_task; ++j) yield();
      }));
    }
    for (auto& t : ts) wait(t);
  });
  return {{"ns_per_yield", seconds_since(t0) * 1e9 / static_cast<double>(per_task * tasks)}};
}

// Spawns n trivial tasks, then joins each (fetch) and drops its handle, which frees the task:
// the whole life of a task, as the peers' figures count it. Metric: wall time per task. Each
// task returns 1 and the joins add them up, which checks that every task ran without a counter
// shared by all tasks: on two workers its cache line would bounce between the CPUs for every
// task and measure the benchmark, not the scheduler.
// The handles are dropped inside the run, on a worker: dropped on the main thread after it,
// outside the clock, they were freed across threads, and mimalloc made the next repetition's
// spawns collect those frees, a cold list walk per task that the clock did see (it added ~30
// ns a task on one worker, less on two, and so flattered the 2-worker speedup).
Metrics spawn_join(Runtime& rt, int) {
  const std::int64_t n = g_sizes.spawn_tasks;
  std::vector<Task<int>> tasks(n);
  const auto t0 = Clock::now();
  const std::int64_t ran = rt.run([&] {
    for (std::int64_t i = 0; i < n; ++i) tasks[i] = spawn([] { return 1; });
    std::int64_t sum = 0;
    for (std::int64_t i = 0; i < n; ++i) {
      sum += fetch(tasks[i]);
      tasks[i] = Task<int>();
    }
    return sum;
  });
  const double s = seconds_since(t0);
  if (ran != n) throw std::runtime_error("spawn+join: some task did not run");
  return {{"ns_per_task", s * 1e9 / static_cast<double>(n)}};
}

// skynet: a tree of tasks, 10 children per node, the leaves return their number, every node
// fetches its children and returns the sum.
std::int64_t skynet(std::int64_t num, std::int64_t size) {
  if (size == 1) return num;
  const std::int64_t sub = size / 10;
  Task<std::int64_t> children[10];
  for (int i = 0; i < 10; ++i) {
    children[i] = spawn([num, sub, i] { return skynet(num + i * sub, sub); });
  }
  std::int64_t sum = 0;
  for (auto& c : children) sum += fetch(c);
  return sum;
}

Metrics skynet_run(Runtime& rt, int) {
  const std::int64_t n = g_sizes.skynet_leaves;
  const auto t0 = Clock::now();
  const std::int64_t sum = rt.run([n] { return skynet(0, n); });
  const double s = seconds_since(t0);
  if (sum != n * (n - 1) / 2) throw std::runtime_error("skynet: wrong sum");
  return {{"ms", s * 1e3}};
}

// fib(n) with a task for every call: each call spawns both subcalls and fetches them.
std::int64_t fib(int n) {
  if (n < 2) return n;
  auto a = spawn([n] { return fib(n - 1); });
  auto b = spawn([n] { return fib(n - 2); });
  return fetch(a) + fetch(b);
}

Metrics fib_run(Runtime& rt, int) {
  const int n = g_sizes.fib_n;
  const auto t0 = Clock::now();
  const std::int64_t r = rt.run([n] { return fib(n); });
  const double s = seconds_since(t0);
  std::int64_t a = 0, b = 1;
  for (int i = 0; i < n; ++i) b = std::exchange(a, b) + b;
  if (r != a) throw std::runtime_error("fib: wrong result");
  return {{"ms", s * 1e3}};
}

// A producer, two transforming stages and a consumer, joined by buffered channels (32 items).
// Metric: wall time per item through the whole pipeline.
Metrics pipeline(Runtime& rt, int) {
  const std::int64_t n = g_sizes.pipeline_items;
  const auto t0 = Clock::now();
  const std::int64_t sum = rt.run([n] {
    Channel<std::int64_t> a(32), b(32), c(32);
    auto producer = spawn([a, n] {
      for (std::int64_t i = 0; i < n; ++i) a.put(i);
      a.close();
    });
    auto stage1 = spawn([a, b] {
      for (std::int64_t v : a) b.put(v * 3);
      b.close();
    });
    auto stage2 = spawn([b, c] {
      for (std::int64_t v : b) c.put(v + 1);
      c.close();
    });
    std::int64_t total = 0;
    for (std::int64_t v : c) total += v;
    wait(producer);
    wait(stage1);
    wait(stage2);
    return total;
  });
  const double s = seconds_since(t0);
  if (sum != 3 * (n * (n - 1) / 2) + n) throw std::runtime_error("pipeline: wrong sum");
  return {{"ns_per_item", s * 1e9 / static_cast<double>(n)}};
}

// Interactive latency under load. The default pool is saturated: 16 CPU-bound tasks per worker,
// each computing for 20 us and then yielding, for as long as the measurement runs. A probe task
// (priority +2) waits in wait(); this (plain) thread wakes it with schedule() about every
// 300-600 us, stamping the time just before; the probe records how long it took to run. The
// waker sleeps in between (sleep_for, then a blocking wait for the probe's record).
//   shared pool:      the probe is a default-pool task: it competes with the flood for the
//                     same workers, and the policy decides how long it waits.
//   interactive pool: the runtime also has 1 interactive worker and the probe runs there: no
//                     policy lets default work in front of it (the pool rule); what is left is
//                     the OS waking that thread next to busy ones.
constexpr auto kFloodChunk = std::chrono::microseconds(20);
constexpr int kFloodTasksPerWorker = 16;

Metrics latency(Runtime& rt, int workers, Pool probe_pool) {
  std::atomic<bool> stop{false};
  std::vector<Task<void>> flood;
  for (int i = 0; i < kFloodTasksPerWorker * workers; ++i) {
    flood.push_back(start_in(rt, [&stop] {
      while (!stop.load(std::memory_order_relaxed)) {
        const auto end = Clock::now() + kFloodChunk;
        while (Clock::now() < end) {
        }
        yield();
      }
    }));
  }
  const int samples = g_sizes.latency_samples;
  std::vector<double> latencies_us(samples);
  std::atomic<std::int64_t> woken_at{0};
  std::atomic<int> recorded{0};
  auto now_ns = [] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
        .count();
  };
  auto probe = start_in(
      rt,
      [&] {
        for (int k = 0; k < samples; ++k) {
          wait();
          latencies_us[k] = static_cast<double>(now_ns() - woken_at.load()) / 1e3;
          recorded.store(k + 1, std::memory_order_release);
          recorded.notify_one();
        }
      },
      probe_pool, PriorityPolicy::kHighestPriority);
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // let the flood fill the queues
  std::minstd_rand rng(42);
  std::uniform_int_distribution<int> gap_us(300, 600);
  for (int k = 0; k < samples; ++k) {
    std::this_thread::sleep_for(std::chrono::microseconds(gap_us(rng)));
    while (probe.state() != TaskState::kWaiting) std::this_thread::yield();
    woken_at.store(now_ns());
    schedule(probe);
    // Block, not spin: on a machine with as many cores as workers a spinning waker would
    // take CPU time from the very workers whose latency is being measured.
    for (int r = recorded.load(std::memory_order_acquire); r <= k;
         r = recorded.load(std::memory_order_acquire)) {
      recorded.wait(r, std::memory_order_acquire);
    }
  }
  stop.store(true);
  wait(probe);
  for (auto& t : flood) wait(t);
  std::sort(latencies_us.begin(), latencies_us.end());
  auto pct = [&](double p) {
    return latencies_us[std::min<std::size_t>(samples - 1, static_cast<std::size_t>(p * samples))];
  };
  return {{"p50_us", pct(0.50)}, {"p99_us", pct(0.99)}};
}

// ---- The table's rows -----------------------------------------------------------------------

struct Workload {
  std::string id;
  std::function<Metrics(Runtime&, int)> run;
  int interactive_threads = 0;
};

struct Row {
  std::string workload_id;
  std::string metric;  // key in Metrics
  std::string title;   // with unit
  bool is_latency = false;
};

std::vector<Workload> workloads() {
  return {
      {"yield", yield_pingpong},
      {"spawn_join", spawn_join},
      {"skynet", skynet_run},
      {"fib", fib_run},
      {"pipeline", pipeline},
      {"latency_shared", [](Runtime& rt, int w) { return latency(rt, w, Pool::kDefault); }},
      {"latency_interactive",
       [](Runtime& rt, int w) { return latency(rt, w, Pool::kInteractive); }, 1},
  };
}

std::vector<Row> rows() {
  const Sizes& s = g_sizes;
  return {
      {"yield", "ns_per_yield", "yield ping-pong, ns/yield"},
      {"spawn_join", "ns_per_task", absl::StrCat("spawn+join ", s.spawn_tasks, " tasks, ns/task")},
      {"skynet", "ms", absl::StrCat("skynet ", s.skynet_leaves, " leaves, ms")},
      {"fib", "ms", absl::StrCat("fib(", s.fib_n, ") task per call, ms")},
      {"pipeline", "ns_per_item",
       absl::StrCat("pipeline ", s.pipeline_items, " items, 4 tasks, ns/item")},
      {"latency_shared", "p50_us", "latency p50, shared pool, us", true},
      {"latency_shared", "p99_us", "latency p99, shared pool, us", true},
      {"latency_interactive", "p50_us", "latency p50, interactive pool, us", true},
      {"latency_interactive", "p99_us", "latency p99, interactive pool, us", true},
  };
}

// ---- Results --------------------------------------------------------------------------------

struct Key {
  std::string workload, policy;
  int workers;
  bool operator<(const Key& o) const {
    return std::tie(workload, policy, workers) < std::tie(o.workload, o.policy, o.workers);
  }
};

std::map<std::string, Key> g_benchmarks;           // benchmark name -> what it measures
std::map<Key, std::vector<Metrics>> g_results;     // one Metrics per repetition
std::map<Key, double> g_cell_seconds;              // time spent on each cell so far
constexpr char kOverBudget[] = "skipped: the cell used its time budget";
// Repetitions that failed (a workload threw): the child's exit status says so (kSomeFailed).
int g_failed_repetitions = 0;
constexpr int kSomeFailed = 3;

struct Summary {
  double median = NAN, min = NAN, max = NAN;
  int n = 0;
  double spread() const { return n > 1 && median > 0 ? (max - min) / median : 0; }
};

Summary summarize(const Key& key, const std::string& metric) {
  Summary s;
  auto it = g_results.find(key);
  if (it == g_results.end()) return s;
  std::vector<double> v;
  for (const Metrics& m : it->second) {
    if (auto f = m.find(metric); f != m.end()) v.push_back(f->second);
  }
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.n = static_cast<int>(v.size());
  s.min = v.front();
  s.max = v.back();
  s.median = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  return s;
}

// The benchmarks of the workloads in `only` (all of them if it is empty).
void register_benchmarks(const std::vector<int>& worker_counts,
                         const std::vector<std::string>& only) {
  for (const Workload& w : workloads()) {
    if (!only.empty() && std::find(only.begin(), only.end(), w.id) == only.end()) continue;
    for (int workers : worker_counts) {
      for (const PolicyEntry& p : kPolicies) {
        if (!policy_chosen(p.name)) continue;
        const std::string name = absl::StrCat(w.id, "/", p.name, "/workers:", workers);
        const Key key{w.id, p.name, workers};
        g_benchmarks[name] = key;
        benchmark::RegisterBenchmark(
            name.c_str(),
            [w, &p, workers, key](benchmark::State& state) {
              if (!g_results[key].empty() &&
                  g_cell_seconds[key] >= g_sizes.cell_budget_seconds) {
                // An empty iteration first: Google Benchmark's statistics want every
                // repetition of a benchmark to have the same iteration count, errors included.
                for (auto _ : state) {
                }
                state.SkipWithError(kOverBudget);
                return;
              }
              const auto t0 = Clock::now();
              auto rt = make_runtime(p, workers, w.interactive_threads);
              Metrics m;
              for (auto _ : state) {
                try {
                  m = w.run(*rt, workers);
                } catch (const std::exception& e) {
                  ++g_failed_repetitions;
                  state.SkipWithError(e.what());
                  return;
                }
              }
              rt.reset();
              g_cell_seconds[key] += seconds_since(t0);
              for (const auto& [k, v] : m) state.counters[k] = v;
              g_results[key].push_back(m);
            })
            ->Iterations(1)
            ->Repetitions(g_sizes.repetitions)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
}

// Prints one line per benchmark as it completes (instead of Google Benchmark's table).
class ProgressReporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override {
    std::string what;
    for (const auto& [name, key] : g_benchmarks) {
      what = what.empty() || what == key.workload ? key.workload : "all workloads";
    }
    std::printf("Running %s: %zu benchmarks x %d repetitions (interleaved)...\n", what.c_str(),
                g_benchmarks.size(), g_sizes.repetitions);
    std::fflush(stdout);
    return true;
  }
  void ReportRuns(const std::vector<Run>& runs) override {
    bool iterations = false;
    int skipped = 0;
    for (const Run& r : runs) {
      if (r.run_type != Run::RT_Iteration) continue;
      iterations = true;
      if (r.error_occurred && r.error_message == kOverBudget) {
        ++skipped;
        continue;
      }
      if (r.error_occurred) {
        std::printf("  %-44s ERROR: %s\n", r.run_name.function_name.c_str(),
                    r.error_message.c_str());
        std::fflush(stdout);
        return;
      }
    }
    if (!iterations) return;  // the aggregates, reported separately: nothing new
    const std::string& name = runs.front().run_name.function_name;
    std::string line = absl::StrFormat("  %-44s", name);
    auto it = g_benchmarks.find(name);
    if (it != g_benchmarks.end()) {
      for (const Row& row : rows()) {
        if (row.workload_id != it->second.workload) continue;
        Summary s = summarize(it->second, row.metric);
        absl::StrAppendFormat(&line, "  %s %.4g (spread %.0f%%)", row.metric, s.median,
                              100 * s.spread());
      }
    }
    if (skipped > 0) {
      absl::StrAppendFormat(&line, "  [%d repetition(s) skipped: time budget]", skipped);
    }
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }
};

// ---- One process per workload -----------------------------------------------------------------

// A child's results, one line per repetition and metric: workload, policy, workers, repetition,
// metric, value (tab-separated).
bool write_results(const std::string& path) {
  std::ofstream f(path);
  for (const auto& [key, reps] : g_results) {
    for (std::size_t r = 0; r < reps.size(); ++r) {
      for (const auto& [metric, value] : reps[r]) {
        f << key.workload << '\t' << key.policy << '\t' << key.workers << '\t' << r << '\t'
          << metric << '\t' << absl::StrFormat("%.17g", value) << '\n';
      }
    }
  }
  return static_cast<bool>(f);
}

bool read_results(const std::string& path) {
  std::ifstream f(path);
  if (!f) return false;
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    Key key;
    std::size_t rep = 0;
    std::string metric;
    double value = 0;
    if (!(in >> key.workload >> key.policy >> key.workers >> rep >> metric >> value)) {
      return false;
    }
    std::vector<Metrics>& reps = g_results[key];
    if (reps.size() <= rep) reps.resize(rep + 1);
    reps[rep][metric] = value;
  }
  return true;
}

// Runs `workload` in a fresh process of this binary and adds its results to g_results. Its
// progress lines go straight to our stdout. False if it failed: the process did not end well
// (its cells stay empty), or some repetitions failed (those cells have fewer). A process still
// running after the time limit is taken for a hang (a lost wake-up) and killed.
bool run_workload_child(const std::string& workload, const std::vector<std::string>& flags) {
  const std::string out = (std::filesystem::temp_directory_path() /
                           absl::StrCat("weft_compare_", getpid(), "_", workload, ".txt"))
                              .string();
  std::vector<std::string> args{"compare"};
  args.insert(args.end(), flags.begin(), flags.end());
  args.push_back(absl::StrCat("--workload=", workload));
  args.push_back(absl::StrCat("--workload_child=", out));
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(stdout);
  pid_t pid = 0;
  if (const int err = posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ);
      err != 0) {
    std::fprintf(stderr, "compare: cannot start a process for %s: %s\n", workload.c_str(),
                 std::strerror(err));
    return false;
  }
  const double limit_s = std::max(600.0, 50 * g_sizes.cell_budget_seconds);
  const auto deadline = Clock::now() + std::chrono::duration<double>(limit_s);
  int status = 0;
  bool hung = false;
  for (;;) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) break;
    if (Clock::now() > deadline) {
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      hung = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const bool exited = !hung && WIFEXITED(status);
  const bool some_failed = exited && WEXITSTATUS(status) == kSomeFailed;
  const bool read_ok = exited && (WEXITSTATUS(status) == 0 || some_failed) && read_results(out);
  std::error_code ec;
  std::filesystem::remove(out, ec);
  if (!read_ok || some_failed) {
    const std::string why =
        hung          ? absl::StrFormat("still running after %.0f s: killed (a hang?)", limit_s)
        : some_failed ? std::string("some repetitions failed (the errors are above)")
        : exited && WEXITSTATUS(status) == 0 ? std::string("its results were unreadable")
        : WIFSIGNALED(status) ? absl::StrCat("killed by ", strsignal(WTERMSIG(status)))
                              : absl::StrCat("exit status ", WEXITSTATUS(status));
    std::fprintf(stderr, "compare: the %s workload's process failed: %s\n", workload.c_str(),
                 why.c_str());
  }
  return read_ok && !some_failed;
}

// ---- Table, aims, chart ---------------------------------------------------------------------

std::string format_value(double v) {
  if (std::isnan(v)) return "-";
  if (v >= 100) return absl::StrFormat("%.0f", v);
  if (v >= 10) return absl::StrFormat("%.1f", v);
  return absl::StrFormat("%.2f", v);
}

std::string make_table(const std::vector<int>& worker_counts) {
  std::string out;
  absl::StrAppend(&out, "| workload | workers |");
  for (const PolicyEntry& p : kPolicies) absl::StrAppend(&out, " ", p.name, " |");
  absl::StrAppend(&out, "\n|---|---|");
  for (size_t i = 0; i < std::size(kPolicies); ++i) absl::StrAppend(&out, "---|");
  absl::StrAppend(&out, "\n");
  for (const Row& row : rows()) {
    for (int workers : worker_counts) {
      const Summary fifo = summarize({row.workload_id, "fifo", workers}, row.metric);
      absl::StrAppend(&out, "| ", row.title, " | ", workers, " |");
      for (const PolicyEntry& p : kPolicies) {
        const Summary s = summarize({row.workload_id, p.name, workers}, row.metric);
        if (s.n == 0) {
          absl::StrAppend(&out, " - |");
          continue;
        }
        absl::StrAppend(&out, " ", format_value(s.median), " ±",
                        absl::StrFormat("%.0f%%", 100 * s.spread()));
        if (s.n < g_sizes.repetitions) absl::StrAppend(&out, " n=", s.n);
        if (std::string(p.name) != "fifo" && fifo.n > 0) {
          absl::StrAppend(&out, absl::StrFormat(" (%.2fx)", fifo.median / s.median));
        }
        absl::StrAppend(&out, " |");
      }
      absl::StrAppend(&out, "\n");
    }
  }
  return out;
}

std::string make_aims(int all) {
  std::string out;
  auto med = [](const char* w, const char* p, int n, const char* m) {
    return summarize({w, p, n}, m).median;
  };
  auto line = [&out](const std::string& what, double value, const std::string& unit,
                     bool met) {
    if (std::isnan(value)) {
      absl::StrAppend(&out, "  [ n/a ] ", what, "\n");
      return;
    }
    absl::StrAppend(&out, met ? "  [ met ] " : "  [ MISS] ", what, ": ", format_value(value),
                    unit, "\n");
  };
  const char* ws = "work_stealing";
  for (auto [w, m] : {std::pair{"spawn_join", "ns_per_task"}, std::pair{"skynet", "ms"},
                      std::pair{"fib", "ms"}}) {
    // One CPU: no second worker count to compare with (n/a, not a miss).
    const double speedup =
        all > 1 ? med(w, ws, 1, m) / med(w, ws, all, m) : std::numeric_limits<double>::quiet_NaN();
    line(absl::StrCat("work_stealing ", w, ", ", all, " workers vs 1: >= 1.8x"), speedup, "x",
         speedup >= 1.8);
  }
  if (g_sizes.skynet_leaves == kFull.skynet_leaves) {
    const double v = med("skynet", ws, 2, "ms");
    line("work_stealing skynet 1M, 2 workers: < 150 ms (Go 462 ms)", v, " ms", v < 150);
  }
  if (g_sizes.fib_n == kFull.fib_n) {
    const double v = med("fib", ws, 2, "ms");
    line("work_stealing fib(30), 2 workers: < 160 ms (Go 404 ms)", v, " ms", v < 160);
  }
  {
    const double v = med("spawn_join", ws, 2, "ns_per_task");
    line("work_stealing spawn+join, 2 workers: < 60 ns/task (Go 138 ns)", v, " ns", v < 60);
  }
  for (int n : {1, all}) {
    const double r = med("latency_shared", "fifo", n, "p99_us") /
                     med("latency_shared", "priority", n, "p99_us");
    line(absl::StrCat("priority p99 latency >= 10x lower than fifo, saturated, ", n,
                      n == 1 ? " worker" : " workers"),
         r, "x", r >= 10);
    if (n == all) break;
  }
  return out;
}

ChartData make_chart(const std::vector<int>& worker_counts) {
  ChartData chart;
  chart.title = "weft: schedulers compared (median of repetitions, whiskers min-max; "
                "lower is better)";
  for (const PolicyEntry& p : kPolicies) chart.series.push_back(p.name);
  for (int workers : worker_counts) {
    chart.groups.push_back(absl::StrCat(workers, workers == 1 ? " worker" : " workers"));
  }
  for (const Row& row : rows()) {
    ChartPanel panel;
    panel.title = row.title;
    for (int workers : worker_counts) {
      std::vector<ChartBar> bars;
      for (const PolicyEntry& p : kPolicies) {
        const Summary s = summarize({row.workload_id, p.name, workers}, row.metric);
        bars.push_back({s.median, s.min, s.max});
      }
      panel.bars.push_back(bars);
    }
    chart.panels.push_back(panel);
  }
  return chart;
}

std::string default_chart_path() {
  const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  std::filesystem::path dir = ws != nullptr ? ws : ".";
  return (dir / "bench_results" / "compare.svg").string();
}

bool write_file(const std::string& path, const std::string& text) {
  std::error_code ec;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  std::ofstream f(path);
  f << text;
  return static_cast<bool>(f);
}

int main_impl(int argc, char** argv) {
  std::string chart_path = default_chart_path();
  std::string table_path;
  int repetitions = 0;  // 0: the size set's
  bool interleave_given = false;
  std::vector<std::string> chosen;     // --workloads=a,b: only these (default: all)
  std::string only_workload;           // --workload (a workload's process)
  std::string child_results;           // --workload_child: where that process writes results
  std::vector<std::string> own_flags;  // passed on to the workloads' processes
  std::vector<char*> args{argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      g_sizes = kQuick;
      own_flags.push_back(a);
    } else if (a.rfind("--workload_child=", 0) == 0) {
      child_results = a.substr(17);
    } else if (a.rfind("--workload=", 0) == 0) {
      only_workload = a.substr(11);
    } else if (a.rfind("--workloads=", 0) == 0) {
      for (absl::string_view id : absl::StrSplit(a.substr(12), ',', absl::SkipEmpty())) {
        chosen.emplace_back(id);
      }
      const std::vector<Workload> all = workloads();
      std::string known;
      for (const Workload& w : all) absl::StrAppend(&known, known.empty() ? "" : ", ", w.id);
      for (const std::string& id : chosen) {
        if (std::none_of(all.begin(), all.end(), [&](const Workload& w) { return w.id == id; })) {
          std::fprintf(stderr, "compare: no workload named \"%s\" (there are: %s)\n", id.c_str(),
                       known.c_str());
          return 2;
        }
      }
      if (chosen.empty()) {
        std::fprintf(stderr, "compare: --workloads needs at least one name (there are: %s)\n",
                     known.c_str());
        return 2;
      }
    } else if (a.rfind("--policies=", 0) == 0) {
      std::string known;
      for (const PolicyEntry& p : kPolicies) absl::StrAppend(&known, known.empty() ? "" : ", ", p.name);
      for (absl::string_view id : absl::StrSplit(a.substr(11), ',', absl::SkipEmpty())) {
        if (std::none_of(std::begin(kPolicies), std::end(kPolicies),
                         [&](const PolicyEntry& p) { return id == p.name; })) {
          std::fprintf(stderr, "compare: no policy named \"%s\" (there are: %s)\n",
                       std::string(id).c_str(), known.c_str());
          return 2;
        }
        g_chosen_policies.emplace_back(id);
      }
      if (g_chosen_policies.empty()) {
        std::fprintf(stderr, "compare: --policies needs at least one name (there are: %s)\n",
                     known.c_str());
        return 2;
      }
      own_flags.push_back(a);
    } else if (a.rfind("--repetitions=", 0) == 0) {
      repetitions = std::atoi(a.c_str() + 14);
      if (repetitions < 1) {
        std::fprintf(stderr, "compare: --repetitions needs a number >= 1\n");
        return 2;
      }
      own_flags.push_back(a);
    } else if (a.rfind("--chart=", 0) == 0) {
      chart_path = a.substr(8);
    } else if (a.rfind("--table=", 0) == 0) {
      table_path = a.substr(8);
    } else if (a == "--help" || a == "-h") {
      std::printf(
          "compare: every workload x every scheduler policy x {1 worker, all cores}.\n"
          "  --quick        small sizes and 2 repetitions (a smoke run)\n"
          "  --repetitions=N  repetitions per cell (default 5, --quick 2)\n"
          "  --chart=PATH   SVG chart (default %s)\n"
          "  --table=PATH   markdown table (default: the chart path with .md)\n"
          "  --workloads=A,B  only these workloads (yield, spawn_join, skynet, fib, pipeline,\n"
          "                 latency_shared, latency_interactive)\n"
          "  --policies=A,B   only these policies (fifo, work_stealing, priority, lifo, edf)\n"
          "and Google Benchmark's flags (--benchmark_filter=REGEX, --benchmark_out=FILE, ...);\n"
          "without them each workload runs in a fresh process of its own, with them all run\n"
          "in this one.\n",
          default_chart_path().c_str());
      return 0;
    } else {
      if (a.rfind("--benchmark_enable_random_interleaving", 0) == 0) interleave_given = true;
      args.push_back(argv[i]);
    }
  }
  if (repetitions > 0) g_sizes.repetitions = repetitions;
  const bool benchmark_flags_given = args.size() > 1;
  static char interleave[] = "--benchmark_enable_random_interleaving=true";
  if (!interleave_given) args.push_back(interleave);
  if (table_path.empty()) {
    table_path = std::filesystem::path(chart_path).replace_extension(".md").string();
  }

  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<int> worker_counts{1};
  if (cores > 1) worker_counts.push_back(cores);
  if (child_results.empty() != only_workload.empty()) {
    std::fprintf(stderr, "compare: --workload and --workload_child go together\n");
    return 2;
  }
  std::vector<std::string> failed_workloads;
  if (child_results.empty() && !benchmark_flags_given) {
    for (const Workload& w : workloads()) {
      if (chosen.empty() || std::find(chosen.begin(), chosen.end(), w.id) != chosen.end()) {
        if (!run_workload_child(w.id, own_flags)) failed_workloads.push_back(w.id);
      }
    }
  } else {
    register_benchmarks(worker_counts,
                        only_workload.empty() ? chosen : std::vector<std::string>{only_workload});
    int bargc = static_cast<int>(args.size());
    args.push_back(nullptr);
    benchmark::Initialize(&bargc, args.data());
    if (benchmark::ReportUnrecognizedArguments(bargc, args.data())) return 2;
    ProgressReporter progress;
    benchmark::RunSpecifiedBenchmarks(&progress);
    benchmark::Shutdown();
    if (!child_results.empty()) {
      if (write_results(child_results)) return g_failed_repetitions == 0 ? 0 : kSomeFailed;
      std::fprintf(stderr, "compare: cannot write results to %s\n", child_results.c_str());
      return 1;
    }
  }

  const std::string table = make_table(worker_counts);
  const std::string aims = make_aims(worker_counts.back());
  // The aims and PEERS.md's figures come from a machine where this took 1.5 ns. It tells how
  // this CPU switches stacks, not how fast it runs a scheduler: on a machine where it took
  // 2.75 ns, Go ran PEERS.md's rows about as fast as PEERS.md says (README, "Against the peers").
  const double switch_ns = measure_switch_ns();
  const std::string setup = absl::StrCat(
      absl::StrFormat("Raw context switch: %.2f ns on this machine now (//bench:context_bench), "
                      "%.2fx the 1.5 ns where the aims and PEERS.md's figures were measured; "
                      "other work need not scale alike (tools/peers.sh runs the peers here).\n",
                      switch_ns, switch_ns / kReferenceSwitchNs),
      "Cells: median ± spread ((max-min)/median) over ", g_sizes.repetitions,
      " repetitions (n=K: only K, the cell's time budget of ", g_sizes.cell_budget_seconds,
      " s ran out, or some failed: see the errors); (Nx) = FIFO's median / this one: above 1 is "
      "better than FIFO.\n"
      "Latency: default pool saturated by ", kFloodTasksPerWorker,
      " CPU-bound tasks per worker (", kFloodChunk.count(),
      " us of work, then yield); a probe task (priority +2) is woken from a plain thread; "
      "time from the wake to the probe running. Shared pool: the probe is a default-pool "
      "task. Interactive pool: the runtime has 1 interactive worker more, the probe runs "
      "there.\n");
  std::printf("\n%s\n%s\nAims:\n%s", table.c_str(), setup.c_str(), aims.c_str());

  bool wrote = true;
  const std::string svg = render_chart_svg(make_chart(worker_counts));
  if (write_file(chart_path, svg)) {
    std::printf("\nChart: %s\n", chart_path.c_str());
  } else {
    std::fprintf(stderr, "compare: cannot write the chart to %s\n", chart_path.c_str());
    wrote = false;
  }
  if (write_file(table_path, absl::StrCat(table, "\n", setup, "\nAims:\n", aims))) {
    std::printf("Table: %s\n", table_path.c_str());
  } else {
    std::fprintf(stderr, "compare: cannot write the table to %s\n", table_path.c_str());
    wrote = false;
  }
  if (!failed_workloads.empty()) {
    std::fprintf(stderr, "compare: FAILED workloads (their cells are missing or short): %s\n",
                 absl::StrJoin(failed_workloads, ", ").c_str());
    return 1;
  }
  return wrote ? 0 : 1;
}

}  // namespace
}  // namespace weft::bench

int main(int argc, char** argv) { return weft::bench::main_impl(argc, argv); }
