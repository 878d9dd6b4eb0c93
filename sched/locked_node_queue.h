// LockedNodeQueue: an intrusive FIFO of SchedNodes (through SchedNode::next) behind a SpinLock,
// with a size readable without the lock, so that a policy can skip an empty queue without
// touching its lock (or its cache line, beyond a read).
//
// Thread safety: every member may be called from any thread. The size is a hint that may be
// stale by the time it is used, except that a push is visible in it before push() returns;
// pop() on a queue that looks empty returns nullptr without locking.
#ifndef WEFT_SCHED_LOCKED_NODE_QUEUE_H_
#define WEFT_SCHED_LOCKED_NODE_QUEUE_H_

#include <atomic>
#include <cstdint>
#include <mutex>

#include "weft/sched/spin_lock.h"
#include "weft/task/sched_node.h"

namespace weft {

class LockedNodeQueue {
 public:
  void push(SchedNode* n) {
    n->next = nullptr;
    push_chain(n, n, 1);
  }

  // push_chain() appends `count` nodes linked through `next` from first to last (last->next
  // must be nullptr), in order, under one lock.
  void push_chain(SchedNode* first, SchedNode* last, std::int64_t count) {
    std::lock_guard<SpinLock> guard(lock_);
    if (tail_ == nullptr) {
      head_ = first;
    } else {
      tail_->next = first;
    }
    tail_ = last;
    count_ += count;
    size_.store(count_, std::memory_order_release);
  }

  SchedNode* pop() {
    if (size_.load(std::memory_order_seq_cst) == 0) return nullptr;
    std::lock_guard<SpinLock> guard(lock_);
    SchedNode* n = head_;
    if (n == nullptr) return nullptr;
    head_ = n->next;
    if (head_ == nullptr) tail_ = nullptr;
    n->next = nullptr;
    --count_;
    size_.store(count_, std::memory_order_release);
    return n;
  }

  std::int64_t size_hint() const { return size_.load(std::memory_order_seq_cst); }

 private:
  SpinLock lock_;
  SchedNode* head_ = nullptr;  // guarded by lock_, as are tail_ and count_
  SchedNode* tail_ = nullptr;
  std::int64_t count_ = 0;
  std::atomic<std::int64_t> size_{0};  // count_, for readers without the lock
};

}  // namespace weft

#endif  // WEFT_SCHED_LOCKED_NODE_QUEUE_H_
