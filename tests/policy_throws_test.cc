// A policy whose push() or pop() throws breaks the runtime's bookkeeping: the task being pushed
// is lost, and the exception would surface in whatever task or worker loop happened to call the
// policy (a yield, a wake-up, a spawn), as if that task had failed. The runtime ends the process
// at once instead, with a message that names the policy and the call (docs/plugins.md).
#include <atomic>
#include <memory>
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

}  // namespace
}  // namespace weft
