// PolicyOrder<P, N>: a GoogleTest fixture for checking a policy's order without a runtime. It
// holds N nodes (task ids 0..N-1) and a policy P initialized for three workers: 0 and 1 in the
// default pool, 2 in the interactive pool. push_node() pushes from outside the workers, and
// drain(w) lists the ids worker w pops until it gets nothing. Test-only, single-threaded.
#ifndef WEFT_PLUGINS_TESTING_POLICY_ORDER_H_
#define WEFT_PLUGINS_TESTING_POLICY_ORDER_H_

#include <vector>

#include "gtest/gtest.h"
#include "weft/sched/policy.h"

namespace weft::testing {

template <typename P, int N>
class PolicyOrder : public ::testing::Test {
 protected:
  static constexpr int kNodes = N;

  void SetUp() override {
    topology_.pool_of = {Pool::kDefault, Pool::kDefault, Pool::kInteractive};
    policy_.init(topology_);
    for (int i = 0; i < kNodes; ++i) nodes_[i].task_id = i;
  }

  void push_node(int i, PushReason reason, int affinity, Pool pool) {
    nodes_[i].affinity = affinity;
    nodes_[i].pool = pool;
    policy_.push(&nodes_[i], PushInfo{reason, -1});
  }

  std::vector<int> drain(int w) {
    std::vector<int> ids;
    while (SchedNode* n = policy_.pop(w)) ids.push_back(static_cast<int>(n->task_id));
    return ids;
  }

  Topology topology_;
  P policy_;
  SchedNode nodes_[kNodes];
};

}  // namespace weft::testing

#endif  // WEFT_PLUGINS_TESTING_POLICY_ORDER_H_
