// DroppingPolicy: a deliberately broken scheduler plugin, for testing the conformance suite.
// It is weft's FifoPolicy, except that every kDropEvery-th push is silently thrown away: the
// task never runs again, and whoever waits for it waits forever. A suite that passes with this
// policy linked would pass broken plugins too; //plugins/testing:suite_catches_dropped_task_test
// checks that it fails instead, quickly and without hanging.
//
// Thread safety: as FifoPolicy's (the Policy contract).
#ifndef WEFT_PLUGINS_TESTING_DROPPING_POLICY_H_
#define WEFT_PLUGINS_TESTING_DROPPING_POLICY_H_

#include <atomic>
#include <cstdint>
#include <string_view>

#include "weft/sched/fifo_policy.h"
#include "weft/sched/policy.h"

namespace weft::plugins {

class DroppingPolicy final : public Policy {
 public:
  static constexpr std::uint64_t kDropEvery = 1000;

  std::string_view name() const override { return "dropping"; }
  void init(const Topology& topology) override { inner_.init(topology); }
  void push(SchedNode* node, const PushInfo& info) override {
    if (pushes_.fetch_add(1, std::memory_order_relaxed) % kDropEvery == kDropEvery - 1) return;
    inner_.push(node, info);
  }
  SchedNode* pop(int worker) override { return inner_.pop(worker); }

 private:
  FifoPolicy inner_;
  std::atomic<std::uint64_t> pushes_{0};
};

}  // namespace weft::plugins

#endif  // WEFT_PLUGINS_TESTING_DROPPING_POLICY_H_
