// A policy that breaks the contract where the runtime can tell ends the process, naming it,
// instead of the damage surfacing somewhere unrelated (docs/plugins.md):
// - push() or pop() throws: the task being pushed is lost, and the exception would surface in
//   whatever task or worker loop happened to call the policy (a yield, a wake-up, a spawn).
// - pop() returns a task the worker may not run (another's sticky task, another pool's): it
//   would run there silently. Checked in builds with assertions (not NDEBUG).
#include <algorithm>
#include <atomic>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string_view>

#include "gtest/gtest.h"
#include "weft/sched/fifo_policy.h"
#include "weft/sched/policy.h"
#include "weft/sched/runtime.h"
#include "weft/sched/scheduling.h"

namespace weft {
namespace {

// FifoPolicy, except that the push of a spawned task from a task (or every pop, once armed)
// throws.
class ThrowingPolicy final : public Policy {
 public:
  enum class Throws { kPush, kPop };
  explicit ThrowingPolicy(Throws where) : where_(where) {}
  std::string_view name() const override { return "throwing"; }
  void init(const Topology& topology) override { inner_.init(topology); }
  void push(SchedNode* node, const PushInfo& info) override {
    if (where_ == Throws::kPush && info.reason == PushReason::kSpawned && info.from_worker >= 0) {
      throw std::runtime_error("no room in the queue");
    }
    if (where_ == Throws::kPop && info.reason == PushReason::kSpawned && info.from_worker >= 0) {
      armed_ = true;
    }
    inner_.push(node, info);
  }
  SchedNode* pop(int worker) override {
    if (armed_) throw std::runtime_error("queue corrupted");
    return inner_.pop(worker);
  }

 private:
  const Throws where_;
  std::atomic<bool> armed_{false};
  FifoPolicy inner_;
};

void RunWith(ThrowingPolicy::Throws where) {
  RuntimeOptions options;
  options.default_threads = 1;
  options.interactive_threads = 0;
  options.policy = std::make_unique<ThrowingPolicy>(where);
  Runtime rt(std::move(options));
  try {
    rt.run([] { fetch(spawn([] { return 1; })); });
  } catch (...) {
    // Not a death: the test below then fails, showing what the caller saw instead.
  }
}

TEST(PolicyThrowsDeathTest, APushThatThrowsEndsTheProcessNamingThePolicy) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(RunWith(ThrowingPolicy::Throws::kPush),
               "scheduler policy 'throwing' threw from push\\(\\): no room in the queue");
}

TEST(PolicyThrowsDeathTest, APopThatThrowsEndsTheProcessNamingThePolicy) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(RunWith(ThrowingPolicy::Throws::kPop),
               "scheduler policy 'throwing' threw from pop\\(\\): queue corrupted");
}

// A policy that hands each sticky task to a worker it is not bound to (one queue for all, and
// pop(w) skips w's own sticky tasks). Free tasks go anywhere, as they may.
class MisplacingPolicy final : public Policy {
 public:
  std::string_view name() const override { return "misplacing"; }
  void init(const Topology&) override {}
  void push(SchedNode* node, const PushInfo&) override {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(node);
  }
  SchedNode* pop(int worker) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::find_if(queue_.begin(), queue_.end(),
                           [worker](const SchedNode* n) { return n->affinity != worker; });
    if (it == queue_.end()) return nullptr;
    SchedNode* n = *it;
    queue_.erase(it);
    return n;
  }

 private:
  std::mutex mu_;
  std::deque<SchedNode*> queue_;
};

// Builds with assertions (not NDEBUG) check every pop: a task popped on a worker it may not run
// on ends the process naming the policy, instead of running there silently.
TEST(PolicyThrowsDeathTest, ATaskPoppedOnAWorkerItMayNotRunOnEndsTheProcess) {
#ifdef NDEBUG
  GTEST_SKIP() << "the check is in builds with assertions only";
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        RuntimeOptions options;
        options.default_threads = 2;
        options.interactive_threads = 0;
        options.policy = std::make_unique<MisplacingPolicy>();
        // Idle workers never sleep: a push wakes only the worker its task is bound to, which
        // this policy never gives it to, so the other must be polling to pop it.
        options.spin_before_sleep = std::numeric_limits<int>::max();
        Runtime rt(std::move(options));
        // run()'s task is sticky: bound to one worker, popped by the other.
        rt.run([] { return 1; });
      },
      "scheduler policy 'misplacing' returned task [0-9]+, bound to worker [01], "
      "from pop\\([01]\\)");
#endif
}

}  // namespace
}  // namespace weft
