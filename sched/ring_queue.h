// RingQueue: a FIFO of SchedNode pointers in a growable power-of-two ring, for a queue that
// only one thread touches (a worker's own runnable list).
//
// Why not NodeQueue: a list linked through the nodes cannot name the node it will hand out k
// pops from now without visiting the k-1 before it, each a cache miss when tasks are cold (a
// program that spawns 1M tasks before they run). The ring can, so pop_front() prefetches the
// task kPrefetchDistance pops ahead (prefetch_task), as the work-stealing deque does.
//
// Costs: 8 bytes of ring per queued node. The ring doubles when full and goes back to its
// initial size once a pop empties it while it is above kKeepCapacity, so a burst of a million
// spawns leaves no 8 MB behind. Not synchronized: owner-only, or under a lock.
#ifndef WEFT_SCHED_RING_QUEUE_H_
#define WEFT_SCHED_RING_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "weft/task/sched_node.h"

namespace weft {

class RingQueue {
 public:
  static constexpr std::size_t kInitialCapacity = 64;
  // Emptied above this, the ring shrinks back to kInitialCapacity (512 KiB of slots).
  static constexpr std::size_t kKeepCapacity = std::size_t{1} << 16;
  // How many pops ahead pop_front() prefetches (see ChaseLevDeque::kPrefetchDistance).
  static constexpr std::size_t kPrefetchDistance = 8;

  RingQueue() : slots_(new SchedNode*[kInitialCapacity]), mask_(kInitialCapacity - 1) {}
  RingQueue(const RingQueue&) = delete;
  RingQueue& operator=(const RingQueue&) = delete;

  bool empty() const { return head_ == tail_; }
  std::size_t size() const { return static_cast<std::size_t>(tail_ - head_); }
  std::size_t capacity() const { return mask_ + 1; }
  SchedNode* front() const { return empty() ? nullptr : slots_[head_ & mask_]; }

  void push_back(SchedNode* n) {
    if (__builtin_expect(tail_ - head_ > mask_, 0)) grow();
    slots_[tail_++ & mask_] = n;
  }

  SchedNode* pop_front() {
    if (empty()) return nullptr;
    SchedNode* n = slots_[head_++ & mask_];
    if (tail_ - head_ >= kPrefetchDistance) {
      prefetch_task(slots_[(head_ + kPrefetchDistance - 1) & mask_]);
    } else if (__builtin_expect(head_ == tail_ && mask_ >= kKeepCapacity, 0)) {
      shrink();
    }
    return n;
  }

 private:
  [[gnu::noinline]] void grow() {
    const std::size_t n = capacity();
    std::unique_ptr<SchedNode*[]> bigger(new SchedNode*[2 * n]);
    for (std::size_t i = 0; i < n; ++i) bigger[i] = slots_[(head_ + i) & mask_];
    slots_ = std::move(bigger);
    mask_ = 2 * n - 1;
    head_ = 0;
    tail_ = n;
  }

  [[gnu::noinline, gnu::cold]] void shrink() {
    slots_.reset(new SchedNode*[kInitialCapacity]);
    mask_ = kInitialCapacity - 1;
    head_ = tail_ = 0;
  }

  std::unique_ptr<SchedNode*[]> slots_;
  std::size_t mask_;
  // Positions since the ring was last rebuilt; slot = position & mask_.
  std::uint64_t head_ = 0;
  std::uint64_t tail_ = 0;
};

}  // namespace weft

#endif  // WEFT_SCHED_RING_QUEUE_H_
