// A user's program: a producer task feeds a channel, workers square what they take with at most
// two of them inside the "expensive" section at once (a semaphore), results come back on a
// second channel. Prints the sum and exits 0 when it is right.
#include <cstdio>
#include <vector>

#include "weft/channel/channel.h"
#include "weft/channel/make_channel.h"
#include "weft/sched/scheduling.h"
#include "weft/sync/semaphore.h"

int main() {
  constexpr int kItems = 1000;
  constexpr int kWorkers = 8;
  weft::Channel<int> numbers = weft::make_channel<int>(
      [](weft::Channel<int> out) {
        for (int i = 1; i <= kItems; ++i) out.put(i);
      },
      16, {.spawn = true});
  weft::Channel<long> squares(weft::kUnbounded);
  weft::Semaphore expensive(2);
  std::vector<weft::Task<void>> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.push_back(weft::spawn([numbers, squares, &expensive]() mutable {
      for (int n : numbers) {
        long sq = weft::acquire([n] { return static_cast<long>(n) * n; }, expensive);
        squares.put(sq);
      }
    }));
  }
  for (auto& w : workers) weft::wait(w);
  squares.close();
  long sum = 0;
  for (long s : squares) sum += s;
  const long expected = static_cast<long>(kItems) * (kItems + 1) * (2 * kItems + 1) / 6;
  std::printf("sum of squares 1..%d = %ld (%s)\n", kItems, sum, sum == expected ? "ok" : "WRONG");
  return sum == expected ? 0 : 1;
}
