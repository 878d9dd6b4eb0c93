// A wake-up that lands on a worker already taking other work is passed on.
//
// Two workers, W and V, and two tasks pushed from a plain thread, T1 then T2. W is between its
// last look for work as a busy worker and its first as an idle one when T1 comes, so T1's push
// finds only V idle and wakes it; W then takes T1 in that first idle look, before V gets
// there. V finds nothing and goes back to sleep. T2's push then finds W still marked idle (it
// is about to run T1) and spends its wake-up on W. Unless W, leaving idleness with a task
// after a waker claimed it, passes the wake-up on (Policy::has_work_for_others), T2 waits with
// V asleep for as long as T1 runs: here T1 spins until T2 has run, so the test sees it at once.
//
// The interleaving is forced, not hoped for: a policy wrapping the linked one holds each
// worker inside pop() at the steps above (so the linked policy's own pops run unchanged), and
// the test checks that each step happened (W marked idle when it took T1, W's mark taken by
// T2's push, V's looks empty) before it judges. Found by TSan runs, where it happened about
// once in a hundred runs of IdleWake.APairFromAPlainThreadRunsSideBySide.
#include <atomic>
#include <chrono>
#include <memory>
#include <string_view>
#include <thread>

#include "gtest/gtest.h"
#include "tests/test_runtime.h"
#include "weft/sched/policy.h"
#include "weft/sched/runtime.h"
#include "weft/sched/runtime_core.h"
#include "weft/sched/scheduling.h"
#include "weft/task/task.h"

namespace weft {
namespace {

using std::chrono::milliseconds;
using testing::spin_until;
using testing::submit_free;
using SteadyClock = std::chrono::steady_clock;

constexpr int kW = 0;  // the first worker a push from outside tries (see the test)
constexpr int kV = 1;
constexpr milliseconds kStepLimit{5000};

bool await(const std::atomic<bool>& flag) {
  const auto until = SteadyClock::now() + kStepLimit;
  while (!flag.load(std::memory_order_acquire)) {
    if (SteadyClock::now() >= until) return false;
    std::this_thread::yield();
  }
  return true;
}

// The steps, shared by the wrapping policy (on the workers' threads) and the test body.
struct Script {
  internal::RuntimeCore* core = nullptr;
  std::atomic<bool> armed{false};      // U has run on W: count W's pops from here
  std::atomic<int> w_pops{0};
  std::atomic<bool> w_held_busy{false};  // W in its last busy look, which found nothing
  std::atomic<bool> t1_pushing{false};  // V's looks are scripted from here on
  std::atomic<bool> v_looking{false};    // V, woken for T1, is looking
  std::atomic<bool> w_took{false};       // W took T1 in its first idle look
  std::atomic<bool> w_was_idle{false};   // ...while marked idle
  std::atomic<int> v_empty_looks{0};
  std::atomic<bool> t2_pushed{false};
  std::atomic<const char*> timed_out{nullptr};  // the step the script gave up waiting for

  void step_timed_out(const char* step) {
    const char* none = nullptr;
    timed_out.compare_exchange_strong(none, step);
  }
};

class ScriptedPolicy : public Policy {
 public:
  explicit ScriptedPolicy(Script* script) : inner_(make_default_policy()), s_(script) {}
  std::string_view name() const override { return inner_->name(); }
  void init(const Topology& topology) override { inner_->init(topology); }
  void push(SchedNode* node, const PushInfo& info) override { inner_->push(node, info); }
  bool holds_for_pusher(const SchedNode& node, const PushInfo& info) const override {
    return inner_->holds_for_pusher(node, info);
  }
  bool holds_back(int worker) const override { return inner_->holds_back(worker); }
  bool has_work_for_others(int worker) const override {
    return inner_->has_work_for_others(worker);
  }
  void on_worker_start(int worker) override { inner_->on_worker_start(worker); }
  void on_worker_stop(int worker) override { inner_->on_worker_stop(worker); }

  SchedNode* pop(int worker) override {
    if (!s_->armed.load(std::memory_order_acquire) || s_->timed_out.load() != nullptr) {
      return inner_->pop(worker);
    }
    if (worker == kW) return pop_w();
    return pop_v();
  }

 private:
  // After U: the look as U leaves (switch.cc), the worker loop's look, then the first look
  // marked idle (spin_before_sleep = 0).
  SchedNode* pop_w() {
    const int n = s_->w_pops.fetch_add(1) + 1;
    SchedNode* got = inner_->pop(kW);
    if (n == 2 && got == nullptr) {
      // Its last busy look found nothing; T1 comes now and wakes V.
      s_->w_held_busy.store(true, std::memory_order_release);
      if (!await(s_->v_looking)) s_->step_timed_out("V woken for T1");
    } else if (n == 3 && got != nullptr) {
      s_->w_was_idle.store(s_->core->workers[kW]->idle.load(), std::memory_order_relaxed);
      s_->w_took.store(true, std::memory_order_release);
      if (!await(s_->t2_pushed)) s_->step_timed_out("T2 pushed");
    }
    return got;
  }

  SchedNode* pop_v() {
    if (!s_->t1_pushing.load(std::memory_order_acquire)) return inner_->pop(kV);
    s_->v_looking.store(true, std::memory_order_release);
    if (!await(s_->w_took)) s_->step_timed_out("W took T1");
    SchedNode* got = inner_->pop(kV);
    if (got == nullptr && !s_->t2_pushed.load(std::memory_order_acquire)) {
      s_->v_empty_looks.fetch_add(1, std::memory_order_release);
    }
    return got;
  }

  std::unique_ptr<Policy> inner_;
  Script* s_;
};

TEST(PassedWake, AWakeUpSpentOnAWorkerTakingOtherWorkIsPassedOn) {
  Script script;
  RuntimeOptions options;
  options.default_threads = 2;
  options.interactive_threads = 0;
  options.spin_before_sleep = 0;
  options.policy = std::make_unique<ScriptedPolicy>(&script);
  Runtime rt(std::move(options));
  script.core = rt.core();
  // A push from outside tries the workers from next_binding (0: no sticky task bound from
  // outside yet), so W first, and so both T1's push (W busy: then V) and T2's (W marked idle).
  ASSERT_EQ(rt.core()->next_binding.load() % 2, 0u);
  // Both workers idle (slow to start under TSan or on a loaded machine), then asleep.
  const auto idle_by = SteadyClock::now() + kStepLimit;
  while (rt.core()->idle_count.load() != 2 && SteadyClock::now() < idle_by) {
    std::this_thread::sleep_for(milliseconds(1));
  }
  ASSERT_EQ(rt.core()->idle_count.load(), 2) << "the workers never went idle";
  std::this_thread::sleep_for(milliseconds(20));

  std::atomic<int> u_worker{-1};
  auto u = submit_free(rt, [&] {
    u_worker = threadid() - 1;
    script.armed.store(true, std::memory_order_release);
  });
  wait(u);
  ASSERT_EQ(u_worker.load(), kW) << "U's push woke worker " << u_worker << ", not W";
  ASSERT_TRUE(await(script.w_held_busy)) << "W never made its last busy look";

  std::atomic<bool> second_ran{false};
  std::atomic<bool> in_time{false};
  script.t1_pushing.store(true, std::memory_order_release);  // V looks from here on
  auto t1 = submit_free(rt, [&] { in_time = spin_until(second_ran, milliseconds(2000)); });
  // V's look after its wake-up and the one it makes marked idle again, before it sleeps.
  const auto until = SteadyClock::now() + kStepLimit;
  while (script.v_empty_looks.load(std::memory_order_acquire) < 2 &&
         script.timed_out.load() == nullptr &&
         SteadyClock::now() < until) {
    std::this_thread::yield();
  }
  const int v_empty_looks = script.v_empty_looks.load();
  auto t2 = submit_free(rt, [&] { second_ran.store(true, std::memory_order_release); });
  const bool w_mark_taken = !rt.core()->workers[kW]->idle.load();
  script.t2_pushed.store(true, std::memory_order_release);
  wait(t1);
  wait(t2);
  script.armed.store(false, std::memory_order_release);

  ASSERT_EQ(script.timed_out.load(), nullptr)
      << "the script stalled waiting for: " << script.timed_out.load();
  ASSERT_TRUE(script.w_was_idle.load()) << "W took T1 in a look not marked idle";
  ASSERT_EQ(v_empty_looks, 2) << "V did not look twice in vain before T2 came";
  ASSERT_TRUE(w_mark_taken) << "T2's push did not spend its wake-up on W";
  EXPECT_TRUE(in_time.load()) << "T2 waited, with V asleep, while W ran T1";
}

}  // namespace
}  // namespace weft
