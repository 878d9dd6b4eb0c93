// HeldSlot: one runnable task held for the worker that woke it (Go's runnext), for policies
// that implement Policy::holds_for_pusher / holds_back.
//
// The task a worker just woke (a join, a notify, a channel hand-off) runs on that worker as
// soon as the waking task blocks, instead of crossing to another CPU; a pair of tasks handing
// work back and forth then stays on one worker and its cache. Other workers leave a held task
// alone until they have seen the same one sit there for a hold time (steal_if_held), so a
// task whose owner keeps running still runs elsewhere soon.
//
// Each slot carries an order word of the policy's choosing (an arrival stamp, a priority key),
// written by the owner with the task and read only by the owner: the task itself may be taken
// and freed by a thief at any time, so the owner never reads the held node, only the word.
//
// Thread safety: put/take/order from the owner worker's thread only; occupied() and
// steal_if_held() from any worker; the _unshared forms only where no other thread uses the slot.
// Cost: the owner's put and take are plain loads and stores (no read-modify-write), which is
// only sound on the owner's thread (a policy's push from_worker is always the calling worker);
// a thief's attempt on a task held past the hold time makes every thread of the process pass a
// memory barrier (membarrier(2): from ~1 us to ~20 us here, and one interrupt for each CPU
// running the process), whether or not it then gets the task; the hold time keeps that rare.
#ifndef WEFT_SCHED_HELD_SLOT_H_
#define WEFT_SCHED_HELD_SLOT_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

#include "weft/sched/asymmetric_fence.h"
#include "weft/sched/policy.h"
#include "weft/sched/spin_lock.h"
#include "weft/task/sched_node.h"

namespace weft {

class HeldSlot {
 public:
  // What a thief remembers of one slot: which of the owner's puts it saw there, and since when.
  struct Sighting {
    std::uint32_t put = 0;
    std::chrono::steady_clock::time_point since;
  };

  // Owner: holds `node` with its order word; returns the task it displaced (nullptr if none),
  // which the caller must queue elsewhere.
  SchedNode* put(SchedNode* node, std::uint64_t order) {
    // Counted first: a thief that sees the new task sees the new count too.
    puts_.store(puts_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    order_ = order;
    if (!enter()) return node_.exchange(node, std::memory_order_acq_rel);
    SchedNode* old = node_.load(std::memory_order_relaxed);
    node_.store(node, std::memory_order_release);  // a thief's CAS then sees the node's fields
    leave();
    return old;
  }

  // put() and take() for a slot no other thread reads: a worker alone in its pool, which no
  // thief visits. No read-modify-write.
  SchedNode* put_unshared(SchedNode* node, std::uint64_t order) {
    order_ = order;
    SchedNode* old = node_.load(std::memory_order_relaxed);
    node_.store(node, std::memory_order_relaxed);
    return old;
  }
  SchedNode* take_unshared() {
    SchedNode* n = node_.load(std::memory_order_relaxed);
    if (n != nullptr) node_.store(nullptr, std::memory_order_relaxed);
    return n;
  }

  // Owner: whether it (probably) holds a task, and that task's order word. A thief may empty
  // the slot at any moment: take() then returns nullptr.
  bool maybe_held() const { return node_.load(std::memory_order_relaxed) != nullptr; }
  std::uint64_t order() const { return order_; }

  // Owner: the held task, or nullptr.
  SchedNode* take() {
    if (node_.load(std::memory_order_relaxed) == nullptr) return nullptr;
    if (!enter()) return node_.exchange(nullptr, std::memory_order_acq_rel);
    SchedNode* n = node_.load(std::memory_order_relaxed);
    node_.store(nullptr, std::memory_order_relaxed);
    leave();
    return n;
  }

  // Any thread: whether a task is held (for Policy::holds_back).
  bool occupied() const { return node_.load(std::memory_order_acquire) != nullptr; }

  // Another worker: takes the held task if `seen` shows it has sat there, the same one, for at
  // least `hold`; otherwise records the sighting and returns nullptr.
  SchedNode* steal_if_held(Sighting& seen, std::chrono::steady_clock::duration hold) {
    SchedNode* n = node_.load(std::memory_order_seq_cst);
    if (n == nullptr) return nullptr;
    const std::uint32_t put = puts_.load(std::memory_order_relaxed);
    const auto now = std::chrono::steady_clock::now();
    if (seen.put != put || seen.since == std::chrono::steady_clock::time_point()) {
      // A task we have not seen waiting yet: its owner is about to run it.
      seen.put = put;
      seen.since = now;
      return nullptr;
    }
    if (now - seen.since < hold) return nullptr;
    // One thief at a time: the owner is kept to read-modify-writes while we are at it.
    if (thief_.exchange(true, std::memory_order_acq_rel)) return nullptr;
    // The rare side of the Dekker pair with enter(): now either the owner sees thief_, or we
    // see it inside, wait for it to leave, and see what it did there.
    internal::heavy_fence();
    for (int pauses = 0; owner_inside_.load(std::memory_order_acquire);) {
      SpinLock::wait_step(pauses);
    }
    // Only the task we timed: if the owner took it meanwhile (and perhaps held another), it is
    // no longer ours to take. (Unless the one it holds now has the same address, a core freed
    // and reused at once: then we take that one, which is as good a task to run.)
    const bool taken = node_.compare_exchange_strong(n, nullptr, std::memory_order_acq_rel,
                                                     std::memory_order_acquire);
    thief_.store(false, std::memory_order_release);  // the owner's next plain take sees ours
    return taken ? n : nullptr;
  }

 private:
  // The owner's put() and take() cost no read-modify-write (two of them for each task a worker
  // wakes and runs) although thieves may take the slot's task: an asymmetric Dekker pair
  // (weft/sched/asymmetric_fence.h), as in BiasedLock. The owner marks itself inside and looks
  // for a thief behind a light fence; a thief marks itself and makes every thread fence before
  // it looks for the owner. A steal happens only after a task sat in the slot for a hold time,
  // so the rare side's system call is rare. False: a thief is at the slot (not inside: use
  // read-modify-writes).
  bool enter() {
    owner_inside_.store(true, std::memory_order_relaxed);
    internal::light_fence();
    if (thief_.load(std::memory_order_acquire)) {
      owner_inside_.store(false, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  void leave() { owner_inside_.store(false, std::memory_order_release); }

  std::atomic<SchedNode*> node_{nullptr};
  // Puts so far: written by the owner only, read by thieves, which tell a task that has waited
  // there from a new one by it.
  std::atomic<std::uint32_t> puts_{0};
  std::uint64_t order_ = 0;  // owner-only
  std::atomic<bool> owner_inside_{false};  // the owner is in a plain put() or take()
  std::atomic<bool> thief_{false};         // a thief is taking the task (steal_if_held)
};

// How long a worker that has work of its own leaves another worker's held task alone before it
// takes it (an idle one waits only the policy's hold time, some microseconds). Taking it costs
// a membarrier, which an idle worker can afford and a busy one should pay only for a task that
// is stuck: held while its worker runs one task for a millisecond or more.
inline constexpr std::chrono::microseconds kBusyWorkerHold{1000};
// How often, in its own pops, a busy worker looks at the other workers' held tasks: rarely, as
// each look reads cache lines their owners write on every put and take (looking every 61 pops
// made fib(30) with a task per call ~7% slower on two workers). A take needs two looks at least
// kBusyWorkerHold apart, so a policy that paces its looks by this count alone (FIFO, work
// stealing) takes a stuck task after up to twice as many of its own pops (more, if that many
// pops take less than kBusyWorkerHold): 2048 tasks of 20 us are 41 ms. The priority policy,
// whose high levels are there for latency, paces its looks by the clock (priority_policy.h).
inline constexpr std::uint32_t kBusyHeldCheckPops = 1024;

// For a policy with one HeldSlot per worker: `slot_of(v)` is worker v's, and the pool of
// `worker` is workers [first, first + count).

// Whether another worker of the pool holds a task (Policy::holds_back).
template <typename SlotOf>
bool pool_holds_back(int worker, int first, int count, SlotOf slot_of) {
  for (int v = first; v < first + count; ++v) {
    if (v != worker && slot_of(v).occupied()) return true;
  }
  return false;
}

// A task another worker of the pool has held for at least `hold` (`seen`: worker's sightings,
// indexed by worker), reported to the trace as a steal; nullptr if none.
template <typename SlotOf>
SchedNode* steal_held_in_pool(int worker, int first, int count,
                              std::vector<HeldSlot::Sighting>& seen,
                              std::chrono::steady_clock::duration hold, SlotOf slot_of) {
  for (int v = first; v < first + count; ++v) {
    if (v == worker) continue;
    if (SchedNode* n = slot_of(v).steal_if_held(seen[static_cast<std::size_t>(v)], hold)) {
      trace_steal(n, v, worker);
      return n;
    }
  }
  return nullptr;
}

}  // namespace weft

#endif  // WEFT_SCHED_HELD_SLOT_H_
