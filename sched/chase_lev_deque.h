// ChaseLevDeque: a growable work-stealing deque of SchedNodes (Chase and Lev, "Dynamic
// Circular Work-Stealing Deque", 2005, with the C11 orderings of Le, Pop, Cohen and Zappa
// Nardelli, 2013).
//
// One owner thread pushes and pops at the bottom (LIFO: the newest node, hottest in cache);
// any thread steals from the top (FIFO: the oldest node, usually the root of the most work).
// Lock-free: an owner's push and pop are a few plain loads and stores plus one locked
// instruction in pop; a steal is one compare-and-swap. The owner and a thief race only for the
// last node, and exactly one of them gets it.
//
// The nodes live in a ring that the owner doubles when it is full (copying the live range), so
// a push never fails. Outgrown rings are kept until the deque is destroyed: a thief may still
// be reading one, and what it reads there is either still right or loses its compare-and-swap.
// They add up to less than the current ring, so memory stays within twice the most nodes the
// deque ever held (16 bytes a node).
//
// Orderings are put on the operations themselves rather than on standalone fences, so that
// ThreadSanitizer, which does not model fences, sees every happens-before edge: a push
// release-stores `bottom`, a thief acquire-loads it before reading the ring and the slot, and
// the owner/thief race is decided by sequentially consistent operations on `bottom` and `top`.
// Every store to `bottom` is a release (C++20 no longer lets a later relaxed store carry an
// earlier release), and slots are atomics because a thief may read a slot the owner is
// overwriting (it then loses its compare-and-swap and discards what it read).
#ifndef WEFT_SCHED_CHASE_LEV_DEQUE_H_
#define WEFT_SCHED_CHASE_LEV_DEQUE_H_

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "weft/sched/spin_lock.h"
#include "weft/task/sched_node.h"

namespace weft {

class ChaseLevDeque {
 public:
  static constexpr std::int64_t kInitialCapacity = 1024;  // a power of two

  ChaseLevDeque() : ring_(Ring::make(kInitialCapacity, nullptr)) {}
  ~ChaseLevDeque() {
    for (Ring* r = ring_.load(std::memory_order_relaxed); r != nullptr;) {
      Ring* older = r->older;
      Ring::destroy(r);
      r = older;
    }
  }
  ChaseLevDeque(const ChaseLevDeque&) = delete;
  ChaseLevDeque& operator=(const ChaseLevDeque&) = delete;

  // push() adds n at the bottom, growing the ring if it is full. Owner only.
  void push(SchedNode* n) {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    Ring* r = ring_.load(std::memory_order_relaxed);
    if (b - cached_top_ >= r->capacity) {
      // `top` only grows, so a stale copy can only make the deque look fuller than it is.
      cached_top_ = top_.load(std::memory_order_acquire);
      if (b - cached_top_ >= r->capacity) r = grow(r, cached_top_, b);
    }
    r->slot(b).store(n, std::memory_order_relaxed);
    bottom_.store(b + 1, std::memory_order_release);
  }

  // pop() takes the newest node, or nullptr when empty. Owner only.
  SchedNode* pop() {
    std::int64_t b = bottom_.load(std::memory_order_relaxed);
    // Only the owner adds nodes, so a deque that looks empty to it is empty: skip the barrier.
    if (b <= top_.load(std::memory_order_relaxed)) return nullptr;
    --b;
    Ring* r = ring_.load(std::memory_order_relaxed);
    // Claim slot b before looking at `top` (the store-load order both sides rely on).
    bottom_.exchange(b, std::memory_order_seq_cst);
    std::int64_t t = top_.load(std::memory_order_seq_cst);
    if (t > b) {  // a thief took the last node
      bottom_.store(b + 1, std::memory_order_release);
      return nullptr;
    }
    SchedNode* n = r->slot(b).load(std::memory_order_relaxed);
    prefetch_ahead(r, b, t);
    if (t == b) {  // the last node: thieves may be after it too
      if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
        n = nullptr;
      }
      bottom_.store(b + 1, std::memory_order_release);
    }
    return n;
  }

  // steal() takes the oldest node, or nullptr when empty. Any thread (the owner too, for its
  // oldest node). A lost race with another thief or the owner is retried, so nullptr really
  // means "was empty".
  SchedNode* steal() {
    for (;;) {
      std::int64_t t = top_.load(std::memory_order_seq_cst);
      const std::int64_t b = bottom_.load(std::memory_order_seq_cst);
      if (t >= b) return nullptr;
      // Read after `bottom`: the ring that holds slot t is this one or a newer one.
      Ring* r = ring_.load(std::memory_order_acquire);
      SchedNode* n = r->slot(t).load(std::memory_order_relaxed);
      if (top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                       std::memory_order_relaxed)) {
        return n;
      }
      SpinLock::pause();
    }
  }

  // pop() for a deque no other thread ever touches (the owner is the only worker of its pool,
  // so there are no thieves): plain loads and stores, no locked instruction.
  SchedNode* pop_unshared() {
    const std::int64_t b = bottom_.load(std::memory_order_relaxed) - 1;
    if (b < top_.load(std::memory_order_relaxed)) return nullptr;
    bottom_.store(b, std::memory_order_release);
    Ring* r = ring_.load(std::memory_order_relaxed);
    prefetch_ahead(r, b, top_.load(std::memory_order_relaxed));
    return r->slot(b).load(std::memory_order_relaxed);
  }

  // How many pops ahead the owner prefetches a task: one pop ahead is too late to hide a miss
  // to memory behind a trivial task (spawn+join of 1M tasks on one worker ran 125 ns a task
  // with 1 or 2, 109 with 8 to 10, 111 with 16).
  static constexpr std::int64_t kPrefetchDistance = 8;

  // A snapshot, exact only when no one else is using the deque. Any thread.
  bool empty() const { return size() == 0; }
  std::int64_t size() const {
    return std::max<std::int64_t>(
        0, bottom_.load(std::memory_order_seq_cst) - top_.load(std::memory_order_seq_cst));
  }
  // The ring's current size (it only grows). Any thread.
  std::int64_t capacity() const { return ring_.load(std::memory_order_acquire)->capacity; }

 private:
  struct Ring {
    std::int64_t capacity;  // a power of two
    Ring* older;            // the ring this one replaced, kept for late thieves
    std::atomic<SchedNode*>* slots;

    std::atomic<SchedNode*>& slot(std::int64_t i) { return slots[i & (capacity - 1)]; }

    static Ring* make(std::int64_t capacity, Ring* older) {
      auto slots = std::make_unique<std::atomic<SchedNode*>[]>(static_cast<std::size_t>(capacity));
      for (std::int64_t i = 0; i < capacity; ++i) {
        slots[i].store(nullptr, std::memory_order_relaxed);
      }
      auto* ring = new Ring{capacity, older, slots.get()};
      slots.release();  // the ring owns them now (destroy)
      return ring;
    }
    static void destroy(Ring* r) {
      delete[] r->slots;
      delete r;
    }
  };

  // Prefetches the task the owner will pop kPrefetchDistance pops after taking slot b, if the
  // deque (last seen with top t) holds it. A thief may take that node meanwhile: a wasted
  // prefetch, nothing more (the slot is an atomic, and prefetch_task never faults).
  static void prefetch_ahead(Ring* r, std::int64_t b, std::int64_t t) {
    if (b - kPrefetchDistance >= t) {
      prefetch_task(r->slot(b - kPrefetchDistance).load(std::memory_order_relaxed));
    }
  }

  // Moves the live range [t, b) into a ring twice as big and publishes it. Owner only.
  Ring* grow(Ring* r, std::int64_t t, std::int64_t b) {
    Ring* bigger = Ring::make(2 * r->capacity, r);
    for (std::int64_t i = t; i < b; ++i) {
      bigger->slot(i).store(r->slot(i).load(std::memory_order_relaxed), std::memory_order_relaxed);
    }
    ring_.store(bigger, std::memory_order_release);
    return bigger;
  }

  // Thieves write `top`; the owner writes `bottom` and `ring`: separate cache lines.
  alignas(64) std::atomic<std::int64_t> top_{0};
  alignas(64) std::atomic<std::int64_t> bottom_{0};
  std::atomic<Ring*> ring_;
  std::int64_t cached_top_ = 0;  // the owner's last look at top_ (a lower bound)
};

}  // namespace weft

#endif  // WEFT_SCHED_CHASE_LEV_DEQUE_H_
