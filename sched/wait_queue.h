// WaitQueue: a FIFO of parked Waiters, linked through the waiters' own wq_* fields
// (weft/task/waiter.h), so queueing never allocates and removal from the middle (a timed-out
// waiter leaving) is O(1). The queue every primitive keeps -- sync/, channel/, and primitives
// users write on the park/wake line (weft/sched/park.h).
//
// Not synchronized: the owning primitive's lock guards it. A waiter taken out of it
// (pop_front, remove, take_all) belongs to whoever took it until they wake it.
#ifndef WEFT_SCHED_WAIT_QUEUE_H_
#define WEFT_SCHED_WAIT_QUEUE_H_

#include <cstddef>

#include "weft/task/waiter.h"

namespace weft {

class WaitQueue {
 public:
  using Waiter = internal::Waiter;

  bool empty() const { return head_ == nullptr; }
  std::size_t size() const { return size_; }
  Waiter* front() const { return head_; }

  void push_back(Waiter* w) {
    w->wq_next = nullptr;
    w->wq_prev = tail_;
    if (tail_ == nullptr) {
      head_ = w;
    } else {
      tail_->wq_next = w;
    }
    tail_ = w;
    w->wq_linked = true;
    ++size_;
  }

  // Julia's wait(c; first=true): the waiter goes ahead of the others.
  void push_front(Waiter* w) {
    w->wq_prev = nullptr;
    w->wq_next = head_;
    if (head_ == nullptr) {
      tail_ = w;
    } else {
      head_->wq_prev = w;
    }
    head_ = w;
    w->wq_linked = true;
    ++size_;
  }

  // The oldest waiter, unlinked; nullptr when empty.
  Waiter* pop_front() {
    Waiter* w = head_;
    if (w != nullptr) remove(w);
    return w;
  }

  // w must be linked in this queue.
  void remove(Waiter* w) {
    if (w->wq_prev == nullptr) {
      head_ = w->wq_next;
    } else {
      w->wq_prev->wq_next = w->wq_next;
    }
    if (w->wq_next == nullptr) {
      tail_ = w->wq_prev;
    } else {
      w->wq_next->wq_prev = w->wq_prev;
    }
    w->wq_next = nullptr;
    w->wq_prev = nullptr;
    w->wq_linked = false;
    --size_;
  }

  // Unlinks every waiter; returns them oldest first as a chain through wq_next (read a
  // waiter's wq_next before waking it: a woken waiter may reuse its links at once).
  Waiter* take_all() {
    Waiter* chain = head_;
    for (Waiter* w = chain; w != nullptr; w = w->wq_next) w->wq_linked = false;
    head_ = tail_ = nullptr;
    size_ = 0;
    return chain;
  }

 private:
  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace weft

#endif  // WEFT_SCHED_WAIT_QUEUE_H_
