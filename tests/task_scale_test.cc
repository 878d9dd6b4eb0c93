// Scale: a million switches between two tasks, and a hundred thousand tasks parked at once.
#include <atomic>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_runtime.h"
#include "weft/sched/scheduling.h"

namespace weft {
namespace {

using testing::RuntimeTest;
class TaskScale : public RuntimeTest {};

// Under the sanitizers a tenth as many: every switch there goes through the sanitizer's fiber
// hooks, and these runs are about what the hooks see, which the first switches show as well as
// the millionth; the plain and optimized runs make the full million.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int kSwitchRounds = 50'000;
#else
constexpr int kSwitchRounds = 500'000;
#endif

TEST_P(TaskScale, MillionSwitchesBetweenTwoTasks) {
  run([] {
    constexpr int kRounds = kSwitchRounds;  // two switches per round
    // Both players are @async tasks, sticky on this worker, and the only ones that run here:
    // a working yield() hands the turn to the other player each time, so each yields about
    // once per round. The rounds alone cannot tell (a player stops only at kRounds); a yield
    // that came back without running the other would spin here, and the cap turns that into
    // a failure with a count instead of a watchdog hang.
    constexpr long kMaxYields = 2L * kRounds;
    std::atomic<int> turn{0};
    struct Count {
      int rounds = 0;
      long yields = 0;
    };
    auto player = [&turn](int me) {
      return async([&turn, me] {
        Count c;
        while (c.rounds < kRounds && c.yields < kMaxYields) {
          if (turn.load(std::memory_order_acquire) == me) {
            turn.store(1 - me, std::memory_order_release);
            ++c.rounds;
          }
          yield();
          ++c.yields;
        }
        return c;
      });
    };
    auto a = player(0);
    auto b = player(1);
    for (const Count& c : {fetch(a), fetch(b)}) {
      EXPECT_EQ(c.rounds, kRounds) << "after " << c.yields << " yields";
      // A couple of yields more than rounds at most: the one that finds the turn not yet
      // passed at the start, and the last round's.
      EXPECT_LE(c.yields, kRounds + 2L);
    }
  });
}

// TSan models each task as a fiber and allows at most 8128 of those alive at once; each costs
// it about 830 KB and 1.5 ms to create (weft/task/context.h reuses them, but these are all
// alive together). Under ASan a task here takes ~80 us, which made this one test a quarter of
// the ASan run's test time; a fifth as many still fill over a hundred stack slabs.
#if defined(__SANITIZE_THREAD__)
constexpr int kParkedTasks = 2'000;
#elif defined(__SANITIZE_ADDRESS__)
constexpr int kParkedTasks = 20'000;
#else
constexpr int kParkedTasks = 100'000;
#endif

TEST_P(TaskScale, HundredThousandParkedTasks) {
  run([] {
    constexpr int kTasks = kParkedTasks;
    std::vector<Task<int>> tasks;
    tasks.reserve(kTasks);
    for (int i = 0; i < kTasks; ++i) {
      tasks.push_back(spawn([i] { return std::any_cast<int>(wait()) + i; }));
    }
    // Let every task start and park in wait(). One that could get no stack has failed (on a
    // kernel without MADV_GUARD_INSTALL, past vm.max_map_count): fetch says why.
    for (auto& t : tasks) {
      while (t.state() != TaskState::kWaiting) {
        if (istaskdone(t)) fetch(t);
        yield();
      }
    }
    for (int i = 0; i < kTasks; ++i) schedule(tasks[i], 1);
    long long sum = 0;
    for (auto& t : tasks) sum += fetch(t);
    EXPECT_EQ(sum, static_cast<long long>(kTasks) * (kTasks - 1) / 2 + kTasks);
  });
}

WEFT_INSTANTIATE_WORKER_COUNTS(TaskScale);

}  // namespace
}  // namespace weft
