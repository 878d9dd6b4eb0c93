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
#include "weft/task/context.h"

namespace weft::internal {
namespace {

constexpr std::size_t kStackSize = 64 * 1024;

// One side of a same-call-site ping-pong. Both sides run play(), so both
// switch from the same instruction.
struct Player {
  Context ctx;
  Context* other = nullptr;
  Context* main = nullptr;
  std::size_t batch = 0;  // Switches to `other` before going back to main.
};

[[gnu::noinline]] void play(Player* p) {
  for (;;) {
    for (std::size_t i = p->batch; i != 0; --i) p->ctx.switch_to(*p->other, p);
    p->ctx.switch_to(*p->main, p);
  }
}

void play_entry(void* arg) { play(static_cast<Player*>(arg)); }

void BM_Switch_SameCallSite(benchmark::State& state) {
  constexpr std::size_t kBatch = 1000;  // Even: the batch ends back in a.
  std::vector<char> stack_a(kStackSize), stack_b(kStackSize);
  Context main;
  main.init_for_thread();
  Player a, b;
  a.ctx.init(stack_a.data(), stack_a.size(), &play_entry);
  b.ctx.init(stack_b.data(), stack_b.size(), &play_entry);
  a.other = &b.ctx;
  b.other = &a.ctx;
  a.main = b.main = &main;
  a.batch = kBatch;
  // Start b with an empty batch so that it returns to main at once; from
  // then on it only ever bounces back to a.
  b.batch = 0;
  main.switch_to(b.ctx, &b);
  b.batch = SIZE_MAX;
  main.switch_to(a.ctx, &a);  // First batch, untimed.
  // Each iteration: main -> a, kBatch switches between a and b, a -> main.
  for (auto _ : state) main.switch_to(a.ctx, nullptr);
  state.counters["ns_per_switch"] =
      benchmark::Counter(static_cast<double>(kBatch + 2),
                         benchmark::Counter::kIsIterationInvariantRate |
                             benchmark::Counter::kInvert);
  a.ctx.destroy();  // Both stay suspended; their stacks are just memory.
  b.ctx.destroy();
  main.destroy();
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
