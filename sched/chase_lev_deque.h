// ChaseLevDeque: a fixed-capacity work-stealing deque of SchedNodes (Chase and Lev, 2005, with
// the C11 orderings of Le, Pop, Cohen and Zappa Nardelli, 2013).
//
// One owner thread pushes and pops at the bottom (LIFO: the newest node, hottest in cache);
// any thread steals from the top (FIFO: the oldest node, usually the root of the most work).
// Lock-free: an owner's push and pop are a few plain loads and stores plus one locked
// instruction in pop; a steal is one compare-and-swap. The owner and a thief race only for the
// last node, and exactly one of them gets it.
//
// Capacity is fixed (kCapacity): push() reports a full deque instead of growing, and the owner
// moves its oldest nodes elsewhere with pop_oldest() (WorkStealingPolicy sends them to its
// global queue). No allocation, ever.
//
// Orderings are put on the operations themselves rather than on standalone fences, so that
// ThreadSanitizer, which does not model fences, sees every happens-before edge: a push
// release-stores `bottom`, a thief acquire-loads it before reading the slot, and the
// owner/thief race is decided by sequentially consistent operations on `bottom` and `top`.
// Every store to `bottom` is a release (C++20 no longer lets a later relaxed store carry an
// earlier release), and slots are atomics because a thief may read a slot the owner is
// overwriting (it then loses its compare-and-swap and discards what it read).
#ifndef WEFT_SCHED_CHASE_LEV_DEQUE_H_
#define WEFT_SCHED_CHASE_LEV_DEQUE_H_

#include <algorithm>
#include <atomic>
#include <cstdint>

#include "weft/sched/spin_lock.h"
#include "weft/task/sched_node.h"

namespace weft {

class ChaseLevDeque {
 public:
  static constexpr std::int64_t kCapacity = 1024;  // a power of two

  ChaseLevDeque() {
    for (auto& s : slots_) s.store(nullptr, std::memory_order_relaxed);
  }
  ChaseLevDeque(const ChaseLevDeque&) = delete;
  ChaseLevDeque& operator=(const ChaseLevDeque&) = delete;

  // push() adds n at the bottom; false (and nothing changed) when the deque is full. Owner only.
  bool push(SchedNode* n) {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    if (b - cached_top_ >= kCapacity) {
      // `top` only grows, so a stale copy can only make the deque look fuller than it is.
      cached_top_ = top_.load(std::memory_order_acquire);
      if (b - cached_top_ >= kCapacity) return false;
    }
    slots_[b & kMask].store(n, std::memory_order_relaxed);
    bottom_.store(b + 1, std::memory_order_release);
    return true;
  }

  // pop() takes the newest node, or nullptr when empty. Owner only.
  SchedNode* pop() {
    std::int64_t b = bottom_.load(std::memory_order_relaxed);
    // Only the owner adds nodes, so a deque that looks empty to it is empty: skip the barrier.
    if (b <= top_.load(std::memory_order_relaxed)) return nullptr;
    --b;
    // Claim slot b before looking at `top` (the store-load order both sides rely on).
    bottom_.exchange(b, std::memory_order_seq_cst);
    std::int64_t t = top_.load(std::memory_order_seq_cst);
    if (t > b) {  // a thief took the last node
      bottom_.store(b + 1, std::memory_order_release);
      return nullptr;
    }
    SchedNode* n = slots_[b & kMask].load(std::memory_order_relaxed);
    if (t == b) {  // the last node: thieves may be after it too
      if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
        n = nullptr;
      }
      bottom_.store(b + 1, std::memory_order_release);
    }
    return n;
  }

  // The same two ends for a deque no other thread ever touches (the owner is the only worker
  // of its pool, so there are no thieves): plain loads and stores, no locked instruction.
  SchedNode* pop_unshared() {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed) - 1;
    if (b < top_.load(std::memory_order_relaxed)) return nullptr;
    bottom_.store(b, std::memory_order_release);
    return slots_[b & kMask].load(std::memory_order_relaxed);
  }
  SchedNode* pop_oldest_unshared() {
    const std::int64_t t = top_.load(std::memory_order_relaxed);
    if (t >= bottom_.load(std::memory_order_relaxed)) return nullptr;
    top_.store(t + 1, std::memory_order_release);
    return slots_[t & kMask].load(std::memory_order_relaxed);
  }

  // pop_oldest() claims up to `max` of the oldest nodes and returns how many; they are linked
  // oldest first through SchedNode::next from *first to *last. Owner only (it relies on no
  // concurrent push() or pop()).
  int pop_oldest(int max, SchedNode** first, SchedNode** last) {
    for (;;) {
      std::int64_t t = top_.load(std::memory_order_acquire);
      const std::int64_t b = bottom_.load(std::memory_order_relaxed);
      const std::int64_t k = std::min<std::int64_t>(max, b - t);
      if (k <= 0) return 0;
      if (top_.compare_exchange_strong(t, t + k, std::memory_order_seq_cst,
                                       std::memory_order_relaxed)) {
        // Slots [t, t + k) are ours now: thieves claim a slot only through `top`, and only the
        // owner (this thread) writes slots, so their nodes may be relinked.
        SchedNode* prev = nullptr;
        for (std::int64_t i = t; i < t + k; ++i) {
          SchedNode* n = slots_[i & kMask].load(std::memory_order_relaxed);
          if (prev == nullptr) {
            *first = n;
          } else {
            prev->next = n;
          }
          prev = n;
        }
        prev->next = nullptr;
        *last = prev;
        cached_top_ = t + k;
        return static_cast<int>(k);
      }
      SpinLock::pause();  // a thief moved `top`: look again
    }
  }

  // steal() takes the oldest node, or nullptr when empty. Any thread. A lost race with another
  // thief or the owner is retried, so nullptr really means "was empty".
  SchedNode* steal() {
    for (;;) {
      std::int64_t t = top_.load(std::memory_order_seq_cst);
      const std::int64_t b = bottom_.load(std::memory_order_seq_cst);
      if (t >= b) return nullptr;
      SchedNode* n = slots_[t & kMask].load(std::memory_order_relaxed);
      if (top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                       std::memory_order_relaxed)) {
        return n;
      }
      SpinLock::pause();
    }
  }

  // A snapshot, exact only when no one else is using the deque. Any thread.
  bool empty() const {
    return bottom_.load(std::memory_order_seq_cst) <= top_.load(std::memory_order_seq_cst);
  }
  std::int64_t size() const {
    return std::max<std::int64_t>(
        0, bottom_.load(std::memory_order_seq_cst) - top_.load(std::memory_order_seq_cst));
  }

 private:
  static constexpr std::int64_t kMask = kCapacity - 1;
  static_assert((kCapacity & kMask) == 0, "kCapacity must be a power of two");

  // Thieves write `top`; the owner writes `bottom`: separate cache lines.
  alignas(64) std::atomic<std::int64_t> top_{0};
  alignas(64) std::atomic<std::int64_t> bottom_{0};
  std::int64_t cached_top_ = 0;  // the owner's last look at top_ (a lower bound)
  alignas(64) std::atomic<SchedNode*> slots_[kCapacity];
};

}  // namespace weft

#endif  // WEFT_SCHED_CHASE_LEV_DEQUE_H_
