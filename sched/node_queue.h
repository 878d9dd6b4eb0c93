// NodeQueue: an intrusive FIFO of SchedNodes (through SchedNode::next), for policies.
// Not synchronized: guard it with a lock (SpinLock) when several threads use it. O(1) push and
// pop, no allocation: a queued node costs nothing beyond the task it belongs to.
#ifndef WEFT_SCHED_NODE_QUEUE_H_
#define WEFT_SCHED_NODE_QUEUE_H_

#include <cstddef>

#include "weft/task/sched_node.h"

namespace weft {

class NodeQueue {
 public:
  bool empty() const { return head_ == nullptr; }
  std::size_t size() const { return size_; }
  SchedNode* front() const { return head_; }

  void push_back(SchedNode* n) {
    n->next = nullptr;
    if (tail_ == nullptr) {
      head_ = n;
    } else {
      tail_->next = n;
    }
    tail_ = n;
    ++size_;
  }

  void push_front(SchedNode* n) {
    n->next = head_;
    head_ = n;
    if (tail_ == nullptr) tail_ = n;
    ++size_;
  }

  SchedNode* pop_front() {
    SchedNode* n = head_;
    if (n == nullptr) return nullptr;
    head_ = n->next;
    if (head_ == nullptr) tail_ = nullptr;
    n->next = nullptr;
    --size_;
    return n;
  }

 private:
  SchedNode* head_ = nullptr;
  SchedNode* tail_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace weft

#endif  // WEFT_SCHED_NODE_QUEUE_H_
