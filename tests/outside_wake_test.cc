// A plain thread's wake() against the destruction of the woken task's runtime. wake() queues the
// task (RuntimeCore::push) and then looks for an idle worker to run it; in between, the task may
// run and finish, and its owner may destroy the runtime. The runtime must outlive the call.
//
// The interleaving is forced, not hoped for: a policy wrapping the linked one holds the waking
// thread inside push(), after the task is queued, until the owner has started destroying the
// runtime, and records whether ~Runtime returned while the thread was still held. Without the
// guard that happens every time (and ASan reports the use after free that follows).
#include <atomic>
#include <chrono>
#include <memory>
#include <string_view>
#include <thread>

#include "gtest/gtest.h"
#include "tests/test_runtime.h"
#include "weft/sched/park.h"
#include "weft/sched/policy.h"
#include "weft/sched/runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/sched/spin_lock.h"
#include "weft/task/task.h"

namespace weft {
namespace {

using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

// Shared by the held push and the test body. Globals, not policy members: the policy dies with
// the runtime, possibly while the push is held.
std::atomic<bool> g_hold_next_outside_wake{false};
std::atomic<bool> g_held{false};
std::atomic<bool> g_destroying{false};
std::atomic<bool> g_destroyed{false};
std::atomic<bool> g_destroyed_while_held{false};

bool await_flag(const std::atomic<bool>& flag, milliseconds limit) {
  const SteadyClock::time_point until = SteadyClock::now() + limit;
  while (!flag.load(std::memory_order_acquire)) {
    if (SteadyClock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  return true;
}

// Runs inside push() with the woken task already queued.
void hold_outside_wake() {
  g_held.store(true, std::memory_order_release);
  if (!await_flag(g_destroying, milliseconds(20000))) return;
  // An unguarded shutdown takes about a millisecond: 300 ms is plenty to see it finish.
  if (await_flag(g_destroyed, milliseconds(300))) {
    g_destroyed_while_held.store(true, std::memory_order_release);
  }
}

class HoldingPolicy : public Policy {
 public:
  HoldingPolicy() : inner_(make_default_policy()) {}
  std::string_view name() const override { return inner_->name(); }
  void init(const Topology& topology) override { inner_->init(topology); }
  void push(SchedNode* node, const PushInfo& info) override {
    inner_->push(node, info);
    if (info.from_worker < 0 && info.reason == PushReason::kWoken &&
        g_hold_next_outside_wake.exchange(false, std::memory_order_acq_rel)) {
      hold_outside_wake();  // touches nothing of ours: we may be destroyed by the time it returns
    }
  }
  SchedNode* pop(int worker) override { return inner_->pop(worker); }
  void on_worker_start(int worker) override { inner_->on_worker_start(worker); }
  void on_worker_stop(int worker) override { inner_->on_worker_stop(worker); }

 private:
  std::unique_ptr<Policy> inner_;
};

class OutsideWakeTest : public ::testing::TestWithParam<int> {};

TEST_P(OutsideWakeTest, RuntimeOutlivesAPlainThreadWakingItsLastTask) {
  for (int round = 0; round < 2; ++round) {
    g_held = false;
    g_destroying = false;
    g_destroyed = false;
    g_destroyed_while_held = false;
    RuntimeOptions options;
    options.default_threads = GetParam();
    options.interactive_threads = 0;
    options.policy = std::make_unique<HoldingPolicy>();
    auto rt = std::make_unique<Runtime>(std::move(options));

    SpinLock lock;
    internal::Waiter* parked = nullptr;  // guarded by lock
    auto sleeper = make_task([&] {
      lock.lock();
      parked = current_waiter();
      park(lock, WaitKind::kEvent, &parked);
    });
    sleeper.set_sticky(false);
    // Keeps a worker polling the queue: the held push has not woken a sleeping worker yet, so
    // without it nobody would run the woken task while the push is held.
    std::atomic<bool> stop{false};
    auto poller = make_task([&] {
      while (!stop.load(std::memory_order_acquire)) yield();
    });
    poller.set_sticky(false);
    rt->submit(poller);
    rt->submit(sleeper);

    std::thread waker([&] {
      while (sleeper.state() != TaskState::kWaiting) {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
      lock.lock();
      internal::Waiter* w = parked;
      lock.unlock();
      g_hold_next_outside_wake = true;
      EXPECT_TRUE(wake(w));
    });
    wait(sleeper);  // returns while the waker is still held inside push()
    stop = true;
    wait(poller);
    g_destroying = true;
    rt.reset();
    g_destroyed = true;
    waker.join();
    EXPECT_TRUE(g_held) << "the wake did not come through push() from a plain thread";
    EXPECT_FALSE(g_destroyed_while_held)
        << "~Runtime returned while a plain thread was still inside its push()";
  }
}

INSTANTIATE_TEST_SUITE_P(Workers, OutsideWakeTest, ::testing::Values(1, 2),
                         ::weft::testing::WorkerCountName);

}  // namespace
}  // namespace weft
