// Stack pool costs: the hot-path allocate+release pair (per-thread cache), the
// batch path through the global pool, and resident memory per stack whose
// task touched a single page.

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "weft/task/stack.h"

namespace {

using weft::internal::allocate_stack;
using weft::internal::release_stack;
using weft::internal::Stack;

long resident_bytes() {
  long size = 0, resident = 0;
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  if (std::fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
  std::fclose(f);
  return resident * sysconf(_SC_PAGESIZE);
}

long page_table_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmPTE:", 0) == 0) return std::atol(line.c_str() + 6) * 1024;
  }
  return 0;
}

// Registered first so that it sees a fresh pool: every stack is new.
void BM_RssPerStackTouchingOnePage(benchmark::State& state) {
  const std::size_t n = static_cast<std::size_t>(state.range(0));
  std::vector<Stack> stacks;
  stacks.reserve(n);
  double rss = 0, pte = 0;
  for (auto _ : state) {
    const long rss0 = resident_bytes();
    const long pte0 = page_table_bytes();
    for (std::size_t i = 0; i < n; ++i) {
      stacks.push_back(allocate_stack(0, i));
      static_cast<char*>(stacks.back().hi())[-16] = 1;  // the top page, as a task would
    }
    rss = static_cast<double>(resident_bytes() - rss0) / n;
    pte = static_cast<double>(page_table_bytes() - pte0) / n;
    for (const Stack& s : stacks) release_stack(s);
    stacks.clear();
  }
  state.counters["rss_B_per_stack"] = rss;
  state.counters["pte_B_per_stack"] = pte;
}
BENCHMARK(BM_RssPerStackTouchingOnePage)->Arg(100'000)->Iterations(1)->Unit(benchmark::kMillisecond);

void BM_AllocReleasePair(benchmark::State& state) {
  std::uint64_t id = 0;
  for (auto _ : state) {
    Stack s = allocate_stack(0, ++id);
    benchmark::DoNotOptimize(s.lo);
    release_stack(s);
  }
}
BENCHMARK(BM_AllocReleasePair)->Threads(1)->Threads(2);

// Holding `batch` stacks at once overflows the per-thread cache, so most of
// this goes through the global pool (the pattern of stacks allocated on one
// thread and released on another).
void BM_AllocReleaseBatch(benchmark::State& state) {
  const std::size_t batch = static_cast<std::size_t>(state.range(0));
  std::vector<Stack> stacks(batch);
  std::uint64_t id = 0;
  for (auto _ : state) {
    for (Stack& s : stacks) s = allocate_stack(0, ++id);
    for (const Stack& s : stacks) release_stack(s);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch));
}
BENCHMARK(BM_AllocReleaseBatch)->Arg(256)->Threads(1)->Threads(2);

}  // namespace

BENCHMARK_MAIN();
