// MpscNodeQueue: an intrusive FIFO of SchedNodes that any thread may push to and only one
// thread (its owner worker) pops from, without a lock (Vyukov's intrusive MPSC queue).
//
// push() is one atomic exchange plus one store; pop() touches no shared counter and takes no
// lock, which makes it the right queue for work bound to one worker (sticky tasks).
// A pop() that races with an unfinished push() may return nullptr although the node is
// almost there; the pusher then finds the worker idle and wakes it (policy.h's progress rule
// holds because the runtime looks for idle workers only after push() has returned).
// Loads on the pop side are seq_cst: free on x86, and what makes the runtime's sleep/wake
// handshake sound on weaker memory models.
#ifndef WEFT_SCHED_MPSC_NODE_QUEUE_H_
#define WEFT_SCHED_MPSC_NODE_QUEUE_H_

#include <atomic>

#include "weft/task/sched_node.h"

namespace weft {

class MpscNodeQueue {
 public:
  MpscNodeQueue() : head_(&stub_), tail_(&stub_) {}
  MpscNodeQueue(const MpscNodeQueue&) = delete;
  MpscNodeQueue& operator=(const MpscNodeQueue&) = delete;

  // Any thread.
  void push(SchedNode* n) {
    link(n).store(nullptr, std::memory_order_relaxed);
    SchedNode* prev = head_.exchange(n, std::memory_order_acq_rel);
    link(prev).store(n, std::memory_order_release);
  }

  // Any thread, a hint: false only when the queue was empty at some moment during the call.
  // The stub at the producers' end is not enough to say so: a pop that met a push in flight
  // re-queues the stub behind that push while the consumer's end still holds the node before
  // it, so the consumer's end must be at the stub too. Acquire on the producers' end: a stub
  // seen there was queued by a pop, which published the consumer's end it had moved first.
  bool maybe_nonempty() const {
    return head_.load(std::memory_order_acquire) != &stub_ ||
           tail_.load(std::memory_order_relaxed) != &stub_;
  }

  // Owner thread only: the oldest node, without removing it (nullptr when empty).
  SchedNode* peek() {
    SchedNode* tail = tail_.load(std::memory_order_relaxed);
    if (tail == &stub_) tail = link(tail).load(std::memory_order_seq_cst);
    return tail;
  }

  // Owner thread only.
  SchedNode* pop() {
    SchedNode* tail = tail_.load(std::memory_order_relaxed);
    SchedNode* next = link(tail).load(std::memory_order_seq_cst);
    if (tail == &stub_) {
      if (next == nullptr) return nullptr;
      tail_.store(next, std::memory_order_relaxed);
      tail = next;
      next = link(next).load(std::memory_order_seq_cst);
    }
    if (next != nullptr) {
      tail_.store(next, std::memory_order_relaxed);
      return tail;
    }
    if (tail != head_.load(std::memory_order_seq_cst)) return nullptr;  // a push in flight
    push(&stub_);
    next = link(tail).load(std::memory_order_seq_cst);
    if (next != nullptr) {
      tail_.store(next, std::memory_order_relaxed);
      return tail;
    }
    return nullptr;  // a push got in before the stub; `tail` stays at the consumer's end
  }

 private:
  static std::atomic_ref<SchedNode*> link(SchedNode* n) { return std::atomic_ref<SchedNode*>(n->next); }

  alignas(64) std::atomic<SchedNode*> head_;  // producers' end
  // Consumer's end. Written only by the owner; atomic because maybe_nonempty() reads it from
  // any thread (relaxed: plain moves on the owner's side).
  alignas(64) std::atomic<SchedNode*> tail_;
  SchedNode stub_;
};

}  // namespace weft

#endif  // WEFT_SCHED_MPSC_NODE_QUEUE_H_
