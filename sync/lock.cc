// ReentrantLock's slow paths: spinning, queueing, waking, and the starvation hand-off.
//
// State: owner_ (who holds it), wake_needed_ (unlocks must wake someone), and under qlock_ the
// queue of parked waiters and woken_in_flight_. A locker that gives up spinning queues itself,
// sets wake_needed_ (under qlock_), and then -- before it parks -- must make sure the holder
// cannot have released the lock without noticing it. The unlock fast path is a plain store of
// owner_ = kReleasing followed by a read of wake_needed_ (and then owner_ = 0, its last touch
// of the lock); the locker's side is "publish wake_needed_, then read owner_". That is
// Dekker's pattern, which needs a store-load fence on both sides; the unlock gets away with a
// compiler barrier because the parking locker runs a heavy fence (membarrier: every running
// thread passes a full barrier) between its two steps. So either the unlock sees wake_needed_
// and wakes someone, or the locker sees owner_ released (0 or kReleasing) and does not park.
// Every uncontended lock+unlock thus costs one atomic read-modify-write instead of two; the
// heavy fence (~0.1-2 us) is paid only by a locker that is about to park anyway.
//
// While a woken waiter is on its way to retry (woken_in_flight_), unlocks wake nobody else: it
// is bound to retry, and waking more would only make them fight. A woken waiter that loses to a
// barging locker re-queues at the head; when it has waited longer than kStarvationThreshold, the
// next unlock hands it the lock instead of releasing it.
#include "weft/sync/lock.h"

#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "weft/sched/scheduling.h"
#include "weft/task/errors.h"

namespace weft {
namespace {

// Spinning: a few reads of owner_ with exponential back-off in between (511 pauses in all, about
// 5.5 us on the machines measured). The back-off matters as much as the spinning: every read
// pulls the holder's cache line over, and a holder that re-locks at once in a tight loop would
// pay a cache miss for each. The length is set by what parking costs: a locker that parks runs
// a heavy fence, an IPI that also stalls the holder's CPU, and is woken through the scheduler
// later. 100 tasks on 2 workers contending for one counter (bench/sync_bench, medians, old and
// new binaries alternating): 127 pauses 37.7 ns a lock+unlock under FIFO, 35.9 priority, 14.8
// work-stealing; 255 pauses 30; 511 pauses 22.2, 23.4 and 13.5; 767 pauses 19.7 under FIFO. A
// longer spin gains little more and holds a worker longer on a lock held for long.
constexpr int kSpinRounds = 10;
constexpr int kMaxBackoffPauses = 128;

// Spinning pays only when the holder can be running elsewhere right now: never on a runtime
// with a single worker (the holder is then parked or queued behind us).
bool worth_spinning() {
  if (threadid() == 0) return true;  // a plain thread: the holder runs on some other thread
  return nthreads(Pool::kDefault) + nthreads(Pool::kInteractive) > 1;
}

std::string caller_name() {
  TaskRef t = current_task();
  return t.valid() ? absl::StrCat("task ", t.id()) : std::string("a plain thread");
}

}  // namespace

bool ReentrantLock::acquire_shared(std::uint64_t mine, std::uint64_t me) {
  // A plain thread that takes the lock will wake whoever queues behind it when it unlocks, so
  // deadlock detection must count it among the threads that may still wake someone, though it
  // has not waited, woken or spawned in weft (its waiter, made once, registers it). Here, off
  // the biased path: a thread's first lock of each lock comes this way.
  if (internal::names_a_thread(mine)) current_waiter();
  std::uint64_t bias = bias_.load(std::memory_order_acquire);
  while (bias != kRevoked) {
    if (bias == kUnbiased) {
      // The first locker takes the bias.
      if (bias_.compare_exchange_weak(bias, me, std::memory_order_acq_rel)) {
        return acquire_if_free(mine, me);
      }
      continue;
    }
    if (bias == me) return acquire_if_free(mine, me);  // taken by us meanwhile (cannot happen twice)
    // Another thread's: revoke it for good. It may be between its check and its plain store
    // without a fence: make every thread fence, then wait for it to be out.
    if (bias_.compare_exchange_weak(bias, kRevoked, std::memory_order_acq_rel)) {
      internal::heavy_fence();
      while (busy_.load(std::memory_order_acquire)) SpinLock::pause();
      revoked_done_.store(true, std::memory_order_release);
      break;
    }
  }
  while (!revoked_done_.load(std::memory_order_acquire)) SpinLock::pause();
  std::uint64_t owner = 0;
  return owner_.compare_exchange_strong(owner, mine, std::memory_order_acquire,
                                        std::memory_order_relaxed);
}

void ReentrantLock::throw_count_overflow(std::uint32_t count) {
  throw TaskStateError(absl::StrCat("lock: ReentrantLock locked recursively ", count,
                                    " times by ", caller_name(), "; the count would overflow"));
}

void ReentrantLock::relock() {
  if (count_ == std::numeric_limits<std::uint32_t>::max()) throw_count_overflow(count_);
  ++count_;
}

bool ReentrantLock::trylock() {
  const std::uint64_t mine = internal::current_lock_owner();
  const std::uint64_t owner = owner_.load(std::memory_order_relaxed);
  if (owner == mine) {
    relock();
    return true;
  }
  if (owner != 0 || !acquire_if_free(mine)) return false;
  count_ = 1;
  return true;
}

bool ReentrantLock::spin_for_it(std::uint64_t mine) {
  int backoff = 1;
  for (int round = 0; round < kSpinRounds; ++round) {
    for (int i = 0; i < backoff; ++i) SpinLock::pause();
    if (owner_.load(std::memory_order_relaxed) == 0 && acquire_if_free(mine)) return true;
    if (backoff < kMaxBackoffPauses) backoff *= 2;
  }
  return false;
}

void ReentrantLock::publish_wake_needed() {
  wake_needed_.store(!queue_.empty() && !woken_in_flight_, std::memory_order_relaxed);
}

void ReentrantLock::lock_slow(std::uint64_t mine) {
  internal::Waiter* const me = current_waiter();  // before qlock_: a thread's is made on first use
  const bool spin = worth_spinning();
  internal::WaitTicket ticket;
  ticket.since = Clock::now();
  ticket.owner = mine;
  bool woken = false;  // an unlock woke us (and set woken_in_flight_ for us)
  for (;;) {
    if (spin && spin_for_it(mine)) {
      if (woken) {
        qlock_.lock();
        woken_in_flight_ = false;
        publish_wake_needed();
        qlock_.unlock();
      }
      count_ = 1;
      return;
    }
    qlock_.lock();
    if (woken) woken_in_flight_ = false;
    if (acquire_if_free(mine)) {
      publish_wake_needed();
      qlock_.unlock();
      count_ = 1;
      return;
    }
    if (ticket.losses > 0 || woken) {
      // Beaten by a barging locker after a wake: keep our place at the head of the line.
      ticket.losses += woken ? 1 : 0;
      queue_.push_front(me);
    } else {
      queue_.push_back(me);
    }
    me->wq_data = &ticket;
    publish_wake_needed();
    // qlock_ stays held from here until the park has saved our context: no unlock can take us
    // off the queue in between, so the park is an owned one (park.h), which only that unlock's
    // wake ends. A park without the lock could also end on a schedule() of this running task
    // (scheduling.h), with the task still queued here, and return into a loop that would then
    // leave it queued or clear another waiter's woken_in_flight_.
    internal::heavy_fence();  // pairs with unlock()'s light fence (see the top of this file)
    if (owner_.load(std::memory_order_relaxed) <= kReleasing) {
      // Released while we queued, possibly by an unlock that did not see us: don't sleep.
      queue_.remove(me);
      publish_wake_needed();
      qlock_.unlock();
      woken = false;
      continue;
    }
    park(qlock_, WaitKind::kLock, this);
    if (ticket.granted) {  // handed over by the unlocker: we own it now
      count_ = 1;
      return;
    }
    woken = true;
  }
}

void ReentrantLock::unlock_slow() {
  qlock_.lock();
  internal::Waiter* next = woken_in_flight_ ? nullptr : queue_.pop_front();
  if (next != nullptr) {
    internal::WaitTicket* ticket = internal::ticket_of(next);
    if (ticket->losses > 0 && Clock::now() - ticket->since >= kStarvationThreshold) {
      ticket->granted = true;
      owner_.store(ticket->owner, std::memory_order_release);
    } else {
      woken_in_flight_ = true;
      owner_.store(0, std::memory_order_release);
    }
  } else {
    owner_.store(0, std::memory_order_release);
  }
  publish_wake_needed();
  qlock_.unlock();
  // `next` cannot leave before this wake (lock waits have no timeout), so waking it outside
  // qlock_ is safe and keeps the critical section short.
  if (next != nullptr) wake(next);
}

void ReentrantLock::wake_after_release() {
  qlock_.lock();
  internal::Waiter* next = woken_in_flight_ ? nullptr : queue_.pop_front();
  if (next != nullptr) woken_in_flight_ = true;
  publish_wake_needed();
  qlock_.unlock();
  // The unlock's last touch of the lock, before the wake: that touches only `next` (which
  // cannot leave before it), and were it to throw, the lock is released all the same.
  owner_.store(0, std::memory_order_release);
  if (next != nullptr) wake(next);
}

void ReentrantLock::not_owner(const char* op) const {
  const std::string who = caller_name();
  throw TaskStateError(absl::StrCat(
      op, ": ",
      islocked() ? absl::StrCat("the ReentrantLock is held by another task or thread, not by ", who)
                 : absl::StrCat("the ReentrantLock is not locked (", who, " does not hold it)"),
      "; each unlock must match a lock by the same task"));
}

std::uint32_t ReentrantLock::unlock_all() {
  if (!held_by_caller()) not_owner("wait");
  const std::uint32_t saved = count_;
  count_ = 1;
  unlock();
  return saved;
}

void ReentrantLock::relock_all(std::uint32_t count) {
  lock();
  count_ = count;
}

}  // namespace weft
