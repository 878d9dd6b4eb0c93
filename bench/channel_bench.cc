// Channel costs on every scheduler (the binary links //sched:scheduler; swap it with
// --//sched:scheduler=//sched:<policy>), each on 1 and on 2 workers:
//   unbuffered ping-pong: two tasks pass an item back and forth over two unbuffered channels;
//                         time per round trip (two rendezvous).
//   buffered(1024):       a producer task puts, the benchmark's task takes; time per item.
//   unbounded:            the same through Channel(kUnbounded). On 1 worker the producer runs
//                         ahead and buffers everything: it measures memory more than the channel.
//   bind:                 a channel bound to a task that ends at once, until the channel is
//                         seen closed: the spawn, the task's end and bind()'s on_done callback.
//   bind to a live task:  bind() alone (its callback's registration; the close it runs at the
//                         task's end amortized over 1024 binds).
// Two-worker figures on 2-CPU machines are bimodal (a cache line's round trip between the CPUs
// flips between two levels): compare them only within one run.
#include <cstdint>
#include <tuple>
#include <utility>

#include "benchmark/benchmark.h"
#include "weft/channel/channel.h"
#include "weft/sched/runtime.h"
#include "weft/sched/scheduling.h"

namespace weft {
namespace {

RuntimeOptions workers(int n) {
  RuntimeOptions options;
  options.default_threads = n;
  options.interactive_threads = 0;
  return options;
}

void BM_UnbufferedPingPong(benchmark::State& state) {
  Runtime rt(workers(static_cast<int>(state.range(0))));
  state.SetLabel(rt.policy_name());
  rt.run([&state] {
    Channel<std::int64_t> ping, pong;
    const std::int64_t n = static_cast<std::int64_t>(state.max_iterations);
    auto partner = spawn([ping, pong, n] {
      for (std::int64_t i = 0; i < n; ++i) put(pong, take(ping) + 1);
    });
    std::int64_t v = 0;
    for (auto _ : state) {
      put(ping, v);
      v = take(pong);
    }
    wait(partner);
    if (v != n) state.SkipWithError("ping-pong lost an item");
  });
  state.counters["ns_per_round_trip"] = benchmark::Counter(
      static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_UnbufferedPingPong)->Arg(1)->Arg(2)->ArgName("workers")->UseRealTime();

// A producer task fills the channel; the benchmark's task drains it, one item per iteration.
void producer_consumer(benchmark::State& state, std::int64_t size) {
  Runtime rt(workers(static_cast<int>(state.range(0))));
  state.SetLabel(rt.policy_name());
  rt.run([&state, size] {
    Channel<std::int64_t> c(size);
    const std::int64_t n = static_cast<std::int64_t>(state.max_iterations);
    auto producer = spawn([c, n] {
      for (std::int64_t i = 0; i < n; ++i) put(c, i);
    });
    std::int64_t sum = 0;
    for (auto _ : state) sum += take(c);
    wait(producer);
    if (sum != n * (n - 1) / 2) state.SkipWithError("wrong checksum");
  });
  state.counters["ns_per_item"] = benchmark::Counter(
      static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_Buffered1024(benchmark::State& state) { producer_consumer(state, 1024); }
BENCHMARK(BM_Buffered1024)->Arg(1)->Arg(2)->ArgName("workers")->UseRealTime();

void BM_Unbounded(benchmark::State& state) { producer_consumer(state, kUnbounded); }
BENCHMARK(BM_Unbounded)->Arg(1)->Arg(2)->ArgName("workers")->UseRealTime();

// Channel + bind + the task's end + the close observed by a take.
void BM_BindUntilClosed(benchmark::State& state) {
  Runtime rt(workers(static_cast<int>(state.range(0))));
  state.SetLabel(rt.policy_name());
  rt.run([&state] {
    for (auto _ : state) {
      Channel<int> c(1);
      auto t = spawn([] {});
      c.bind(t);
      try {
        take(c);
      } catch (const InvalidStateException&) {
      }
    }
  });
}
BENCHMARK(BM_BindUntilClosed)->Arg(1)->Arg(2)->ArgName("workers")->UseRealTime();

// bind() alone: one open channel bound again and again to a task that is still running; every
// 1024 binds the task is released (running the 1024 callbacks) and a new one started.
void BM_BindToLiveTask(benchmark::State& state) {
  Runtime rt(workers(static_cast<int>(state.range(0))));
  state.SetLabel(rt.policy_name());
  rt.run([&state] {
    constexpr int kBatch = 1024;
    auto start = [] {
      Channel<int> go;
      return std::make_pair(go, spawn([go] { take(go); }));
    };
    auto [go, task] = start();
    Channel<int> c(1);
    int bound = 0;
    for (auto _ : state) {
      c.bind(task);
      if (++bound == kBatch) {
        put(go, 1);
        wait(task);
        if (isopen(c)) state.SkipWithError("the task's end left the channel open");
        std::tie(go, task) = start();
        c = Channel<int>(1);
        bound = 0;
      }
    }
    put(go, 1);
    wait(task);
  });
}
BENCHMARK(BM_BindToLiveTask)->Arg(1)->Arg(2)->ArgName("workers")->UseRealTime();

}  // namespace
}  // namespace weft
