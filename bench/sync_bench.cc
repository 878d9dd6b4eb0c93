// Synchronization costs (issue #4), on every scheduler (the binary links //sched:scheduler):
//   * uncontended ReentrantLock lock+unlock (in a task, and from a plain thread), next to
//     std::mutex and uncontended Semaphore acquire+release;
//   * a wait/notify round trip between two tasks on one worker (Event autoreset pair,
//     Condition, Threads.Condition);
//   * a contended counter: 100 tasks on 1 or 2 workers incrementing one counter under a
//     ReentrantLock, next to a channel's lock(c), std::mutex used the same way by the same
//     tasks, and std::mutex from as many plain threads as workers. Reported per lock+unlock
//     pair.
// Run: bazel run -c opt --config=opt //bench:sync_bench -- --benchmark_repetitions=5
//        --benchmark_report_aggregates_only=true
#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"
#include "weft/channel/channel.h"
#include "weft/sched/runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/sync/sync.h"

namespace weft {
namespace {

RuntimeOptions workers(int n) {
  RuntimeOptions options;
  options.default_threads = n;
  options.interactive_threads = 0;
  return options;
}

// ns per iteration, whatever thread ran the loop.
void per_iteration(benchmark::State& state, const char* name, double per_iter = 1.0) {
  state.counters[name] = benchmark::Counter(static_cast<double>(state.iterations()) * per_iter,
                                            benchmark::Counter::kIsRate |
                                                benchmark::Counter::kInvert);
}

// --- uncontended ---

void BM_ReentrantLockUncontendedTask(benchmark::State& state) {
  Runtime rt(workers(1));
  ReentrantLock l;
  rt.run([&] {
    for (auto _ : state) {
      l.lock();
      l.unlock();
    }
  });
  per_iteration(state, "ns_per_lock_unlock");
}
BENCHMARK(BM_ReentrantLockUncontendedTask)->UseRealTime();

void BM_ReentrantLockUncontendedThread(benchmark::State& state) {
  ReentrantLock l;
  for (auto _ : state) {
    l.lock();
    l.unlock();
  }
  per_iteration(state, "ns_per_lock_unlock");
}
BENCHMARK(BM_ReentrantLockUncontendedThread)->UseRealTime();

void BM_ReentrantLockRecursiveTask(benchmark::State& state) {
  Runtime rt(workers(1));
  ReentrantLock l;
  rt.run([&] {
    l.lock();
    for (auto _ : state) {
      l.lock();
      l.unlock();
    }
    l.unlock();
  });
  per_iteration(state, "ns_per_lock_unlock");
}
BENCHMARK(BM_ReentrantLockRecursiveTask)->UseRealTime();

void BM_StdMutexUncontended(benchmark::State& state) {
  std::mutex m;
  for (auto _ : state) {
    m.lock();
    m.unlock();
  }
  per_iteration(state, "ns_per_lock_unlock");
}
BENCHMARK(BM_StdMutexUncontended)->UseRealTime();

void BM_SemaphoreUncontendedTask(benchmark::State& state) {
  Runtime rt(workers(1));
  Semaphore s(1);
  rt.run([&] {
    for (auto _ : state) {
      s.acquire();
      s.release();
    }
  });
  per_iteration(state, "ns_per_acquire_release");
}
BENCHMARK(BM_SemaphoreUncontendedTask)->UseRealTime();

// --- wait/notify round trips between two tasks on one worker ---

void BM_EventRoundTrip(benchmark::State& state) {
  Runtime rt(workers(1));
  rt.run([&] {
    Event ping(true), pong(true);
    std::atomic<bool> stop{false};
    auto partner = async([&] {
      for (;;) {
        wait(ping);
        if (stop.load(std::memory_order_relaxed)) return;
        notify(pong);
      }
    });
    for (auto _ : state) {
      notify(ping);
      wait(pong);
    }
    stop.store(true);
    notify(ping);
    wait(partner);
  });
  per_iteration(state, "ns_per_round_trip");
}
BENCHMARK(BM_EventRoundTrip)->UseRealTime();

void BM_ConditionRoundTrip(benchmark::State& state) {
  Runtime rt(workers(1));
  rt.run([&] {
    Condition c;
    bool stop = false;
    auto partner = async([&] {
      while (!stop) {
        notify(c);
        wait(c);
      }
    });
    wait(c);  // the partner runs first and waits
    for (auto _ : state) {
      notify(c);
      wait(c);
    }
    stop = true;
    notify(c);
    wait(partner);
  });
  per_iteration(state, "ns_per_round_trip");
}
BENCHMARK(BM_ConditionRoundTrip)->UseRealTime();

void BM_ThreadsConditionRoundTrip(benchmark::State& state) {
  Runtime rt(workers(1));
  rt.run([&] {
    threads::Condition c;
    std::int64_t turn = 0;
    bool stop = false;
    auto partner = async([&] {
      lock(c);
      for (;;) {
        while (turn % 2 == 0 && !stop) wait(c);
        if (stop) break;
        ++turn;
        notify(c);
      }
      unlock(c);
    });
    lock(c);
    for (auto _ : state) {
      ++turn;
      notify(c);
      while (turn % 2 == 1) wait(c);
    }
    stop = true;
    notify(c);
    unlock(c);
    wait(partner);
  });
  per_iteration(state, "ns_per_round_trip");
}
BENCHMARK(BM_ThreadsConditionRoundTrip)->UseRealTime();

void BM_SemaphoreRoundTrip(benchmark::State& state) {
  Runtime rt(workers(1));
  rt.run([&] {
    Semaphore to_partner(1), to_main(1);
    to_partner.acquire();
    to_main.acquire();
    std::atomic<bool> stop{false};
    auto partner = async([&] {
      for (;;) {
        to_partner.acquire();
        if (stop.load(std::memory_order_relaxed)) return;
        to_main.release();
      }
    });
    for (auto _ : state) {
      to_partner.release();
      to_main.acquire();
    }
    stop.store(true);
    to_partner.release();
    wait(partner);
  });
  per_iteration(state, "ns_per_round_trip");
}
BENCHMARK(BM_SemaphoreRoundTrip)->UseRealTime();

// --- contended counter: 100 tasks, one lock ---

constexpr int kTasks = 100;
constexpr std::int64_t kPairsPerRun = 1'000'000;

template <typename Lock>
void contended_counter(benchmark::State& state) {
  Runtime rt(workers(static_cast<int>(state.range(0))));
  for (auto _ : state) {
    Lock l;
    std::int64_t counter = 0;
    rt.run([&] {
      std::vector<Task<void>> tasks;
      tasks.reserve(kTasks);
      for (int t = 0; t < kTasks; ++t) {
        tasks.push_back(spawn([&] {
          for (std::int64_t i = 0; i < kPairsPerRun / kTasks; ++i) {
            l.lock();
            ++counter;
            l.unlock();
          }
        }));
      }
      for (auto& t : tasks) wait(t);
    });
    if (counter != kPairsPerRun) state.SkipWithError("lost increments");
  }
  per_iteration(state, "ns_per_lock_unlock", static_cast<double>(kPairsPerRun));
}

void BM_ContendedReentrantLock(benchmark::State& state) {
  contended_counter<ReentrantLock>(state);
}
BENCHMARK(BM_ContendedReentrantLock)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

// A channel's lock(c) (Julia 1.7's lock on a channel) taken the same way.
void BM_ContendedChannelLock(benchmark::State& state) { contended_counter<Channel<int>>(state); }
BENCHMARK(BM_ContendedChannelLock)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

// std::mutex taken by the same 100 tasks: a waiting task blocks its worker thread.
void BM_ContendedStdMutexInTasks(benchmark::State& state) { contended_counter<std::mutex>(state); }
BENCHMARK(BM_ContendedStdMutexInTasks)
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// The baseline the issue names: a std::mutex-protected counter with the same number of threads.
void BM_ContendedStdMutexThreads(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  for (auto _ : state) {
    std::mutex m;
    std::int64_t counter = 0;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        for (std::int64_t i = 0; i < kPairsPerRun / threads; ++i) {
          m.lock();
          ++counter;
          m.unlock();
        }
      });
    }
    for (auto& t : pool) t.join();
    if (counter != kPairsPerRun) state.SkipWithError("lost increments");
  }
  per_iteration(state, "ns_per_lock_unlock", static_cast<double>(kPairsPerRun));
}
BENCHMARK(BM_ContendedStdMutexThreads)
    ->Arg(1)
    ->Arg(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace weft
