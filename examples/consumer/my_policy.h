// MyPolicy: this workspace's own scheduler, written against weft's public policy interface only.
// Tasks bound to a worker wait in that worker's lock-free queue; the rest share one locked FIFO
// per pool; each worker alternates between the two so neither can starve the other.
// Any thread may push; only worker w calls pop(w).
#ifndef CONSUMER_MY_POLICY_H_
#define CONSUMER_MY_POLICY_H_

#include <memory>
#include <mutex>

#include "weft/sched/mpsc_node_queue.h"
#include "weft/sched/node_queue.h"
#include "weft/sched/policy.h"
#include "weft/sched/spin_lock.h"

namespace consumer {

class MyPolicy final : public weft::Policy {
 public:
  std::string_view name() const override { return "consumer-mine"; }

  void init(const weft::Topology& topology) override {
    topology_ = topology;
    bound_ = std::make_unique<Bound[]>(topology.num_workers());
  }

  void push(weft::SchedNode* node, const weft::PushInfo&) override {
    if (node->affinity >= 0) {
      bound_[node->affinity].queue.push(node);
      return;
    }
    Shared& s = shared_[static_cast<int>(node->pool)];
    std::lock_guard<weft::SpinLock> guard(s.lock);
    s.queue.push_back(node);
  }

  // Asked after a worker woken from idle found a task: whether to wake another for what is
  // left. Another worker can take only what is in the shared queue.
  bool has_work_for_others(int worker) const override {
    Shared& s = shared_[static_cast<int>(topology_.pool_of[worker])];
    std::lock_guard<weft::SpinLock> guard(s.lock);
    return !s.queue.empty();
  }

  weft::SchedNode* pop(int worker) override {
    Bound& mine = bound_[worker];
    mine.shared_turn = !mine.shared_turn;
    if (mine.shared_turn) {
      if (weft::SchedNode* n = pop_shared(worker)) return n;
      return mine.queue.pop();
    }
    if (weft::SchedNode* n = mine.queue.pop()) return n;
    return pop_shared(worker);
  }

 private:
  weft::SchedNode* pop_shared(int worker) {
    Shared& s = shared_[static_cast<int>(topology_.pool_of[worker])];
    std::lock_guard<weft::SpinLock> guard(s.lock);
    return s.queue.pop_front();
  }

  struct alignas(64) Bound {
    weft::MpscNodeQueue queue;
    bool shared_turn = false;  // owner-only
  };
  struct Shared {
    weft::SpinLock lock;
    weft::NodeQueue queue;
  };
  weft::Topology topology_;
  std::unique_ptr<Bound[]> bound_;
  mutable Shared shared_[weft::kNumPools];  // mutable: has_work_for_others() takes the lock
};

}  // namespace consumer

#endif  // CONSUMER_MY_POLICY_H_
