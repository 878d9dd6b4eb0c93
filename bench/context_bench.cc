// Raw cost of Context::switch_to, reported as ns_per_switch (one switch, not
// a round trip).
//
// BM_Switch_SameCallSite is the shape the runtime uses: every switch is made
// from one call site (as when all task switches go through the scheduler),
// so the CPU predicts where each switch "returns" to. This is the number to
// quote.
//
// BM_Switch_TwoCallSites ping-pongs between a loop on the thread's stack and
// a different loop in a task: each switch resumes a site other than the one
// the call came from, and pays a return misprediction.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "benchmark/benchmark.h"
#include "weft/bench/switch_pingpong.h"
#include "weft/task/context.h"

namespace weft::internal {
namespace {

constexpr std::size_t kStackSize = 64 * 1024;

void BM_Switch_SameCallSite(benchmark::State& state) {
  bench::SwitchPingPong pp(1000);
  // Each iteration: into the first context, 1000 switches between the two, back here.
  for (auto _ : state) pp.run();
  state.counters["ns_per_switch"] =
      benchmark::Counter(static_cast<double>(pp.switches_per_run()),
                         benchmark::Counter::kIsIterationInvariantRate |
                             benchmark::Counter::kInvert);
}
BENCHMARK(BM_Switch_SameCallSite);

Context g_loop_main;
Context g_loop_task;

void loop_entry(void*) {
  for (;;) g_loop_task.switch_to(g_loop_main, nullptr);
}

void BM_Switch_TwoCallSites(benchmark::State& state) {
  std::vector<char> stack(kStackSize);
  g_loop_main.init_for_thread();
  g_loop_task.init(stack.data(), stack.size(), &loop_entry);
  for (auto _ : state) g_loop_main.switch_to(g_loop_task, nullptr);
  state.counters["ns_per_switch"] =
      benchmark::Counter(2, benchmark::Counter::kIsIterationInvariantRate |
                                benchmark::Counter::kInvert);
  g_loop_task.destroy();
  g_loop_main.destroy();
}
BENCHMARK(BM_Switch_TwoCallSites);

}  // namespace
}  // namespace weft::internal

BENCHMARK_MAIN();
