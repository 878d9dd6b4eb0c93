// Waiter: one who can block, either a task or a plain thread, as sync primitives see it.
//
// Primitives (sync/, channel/) keep waiters in intrusive queues and wake them through
// weft/sched/park.h; they never care whether a waiter is a task (parks without holding its
// worker thread) or a plain thread (blocks on a futex). A waiter waits on one thing at a time,
// so one pair of queue links is enough and waiting never allocates.
//
// The fields below the links belong to whoever owns the queue the waiter is in (guarded by that
// primitive's lock) or to the park/wake protocol in sched:runtime; nothing else touches them.
#ifndef WEFT_TASK_WAITER_H_
#define WEFT_TASK_WAITER_H_

#include <any>
#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>

namespace weft {

// What a parked waiter is waiting on: shown in task dumps and used to refuse a schedule() that
// would steal a primitive's wake-up.
enum class WaitKind : std::uint8_t {
  kNone,         // running or runnable
  kExplicit,     // wait() with no argument: only schedule() or yieldto() restarts it
  kYieldTo,      // switched away from by yieldto(): same as kExplicit
  kTask,         // wait(t) / fetch(t)
  kCondition,
  kEvent,
  kSemaphore,
  kLock,
  kChannelPut,
  kChannelTake,
  kSleep,
  kFd,
  kProcess,
  kChannelLock,  // lock(c) on a channel, or an operation waiting for another's lock(c)
};

const char* to_string(WaitKind kind);

namespace internal {

// States of a Waiter's `state` word; transitions are described in sched/park.cc.
enum WaiterState : std::uint32_t {
  kCreated = 0,   // task only: not yet scheduled
  kQueued = 1,    // task only: in a policy's queue
  kRunning = 2,
  kNotified = 3,  // a wake-up arrived while running or parking: the next park returns at once
  kParked = 4,
  kDone = 5,      // task only: finished (successfully or not)
  kArming = 6,    // task only: running, on its way into a timed park (not yet parked)
  kClaimBit = 0x100,  // a waker is writing the wake value; readers spin until it clears
};

// Timed-wait token: exactly one of the waker and the timer moves it out of kArmed. A waker that
// comes before the waiter armed it claims it instead (kUntimed -> kWokenFirst: park.cc).
enum TimedState : std::uint32_t { kUntimed = 0, kArmed = 1, kFiredTimer = 2, kWokenFirst = 3 };

// Values of Waiter::owned_park.
enum OwnedPark : std::uint8_t { kNotOwned = 0, kOwnedParked = 1, kOwnedWoken = 2 };

struct WakePayload {
  std::any value;
  std::exception_ptr error;
};

struct Waiter {
  enum class Kind : std::uint8_t { kTask, kThread };
  explicit Waiter(Kind k) : kind(k) {}
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  // Ordered by when the fields are touched: a task core joins and frees its Waiter's first
  // cache line (state, payload) long after the task ran, when it is cold (task_core.h).
  std::atomic<std::uint32_t> state{kCreated};
  std::atomic<std::uint32_t> timed{kUntimed};
  const Kind kind;
  // Read by other threads (schedule(), task dumps) while the waiter may change them: atomics,
  // relaxed, since they are diagnostics and a guard, not synchronization.
  std::atomic<WaitKind> wait_kind{WaitKind::kNone};
  bool wq_linked = false;  // in a wait queue; owned, like the links below, by its lock
  // Task only: how many task dumps are reading it (its stack, its wait); it must not resume
  // until they are done (sched/task_dump.cc).
  std::atomic<std::uint8_t> holds{0};
  // Task only: an owned park (park.cc) -- kOwnedParked once its context is saved, kOwnedWoken
  // once the waker that unlinked it has queued it, back to kNotOwned when it resumes. The
  // state word does not change for such a park.
  std::atomic<std::uint8_t> owned_park{0};

  // The wake payload: written only by the waker that won the state transition, read by the
  // waiter after it resumes.
  std::exception_ptr error;
  std::any value;
  // The payload of a wake that found the waiter running (kNotified): kept apart, since the
  // waiter may still be reading `value` from the wake that ended its last park; moved there by
  // whoever consumes the wake-up (sched/park.cc). Rare, hence allocated.
  std::unique_ptr<WakePayload> pending_payload;

  std::atomic<const void*> wait_object{nullptr};
  // Intrusive links for the one wait queue this waiter is in; owned by that queue's lock.
  Waiter* wq_next = nullptr;
  Waiter* wq_prev = nullptr;
  // Free for the primitive that queued the waiter (e.g. Condition's "first" flag, a channel
  // slot pointer); owned by that primitive's lock.
  void* wq_data = nullptr;
};

}  // namespace internal
}  // namespace weft

#endif  // WEFT_TASK_WAITER_H_
