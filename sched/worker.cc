// A worker thread's loop: run what the policy hands out, spin briefly when there is nothing,
// then sleep on a futex until a push wakes exactly this worker.

#include <cstdio>
#include <system_error>

#include "weft/sched/asymmetric_fence.h"
#include "weft/sched/futex.h"
#include "weft/sched/runtime_core.h"
#include "weft/sched/spin_lock.h"
#include "weft/task/current_task.h"
#include "weft/task/stack.h"

namespace weft::internal {
namespace {

thread_local Worker* tls_worker = nullptr;

// How often an idle worker looks again while a policy holds work back for another worker.
constexpr Clock::duration kHeldBackPoll = std::chrono::microseconds(50);

// Leaves this idle period: exactly one of the worker and a waker (RuntimeCore::wake_one) turns
// `idle` back to false, and that one uncounts it. Returns whether a waker did.
bool leave_idle(Worker* w) {
  if (w->idle.exchange(false, std::memory_order_acq_rel)) {
    w->rt->idle_count.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

// The worker leaves its idle period with a task, and a waker had claimed its wake-up: that
// waker pushed work and counted on this worker to run it, but the task it found may be other
// work (taken in its last look while the waker was still choosing whom to wake), or the work
// may have been hidden behind a push in flight until a second wake-up. Either way the other
// worker that could have run the waker's task may be asleep with it queued, each wake-up
// having been spent on this one worker. So if work is left for others, the wake-up is passed
// on. The exchange that told us a waker claimed the wake-up acquired what it pushed, so the
// policy sees that work.
void pass_on_wake_up(Worker* w) {
  RuntimeCore* rt = w->rt;
  if (rt->pool_size[static_cast<int>(w->pool)] > 1 && rt->policy->has_work_for_others(w->index)) {
    rt->wake_one(-1, w->pool);
  }
}

// An idle worker that polls for work a policy holds for another worker (Policy::holds_back)
// instead of sleeping until a push: counted in its pool's `pollers`, so that pushes of held
// work need not wake anyone (RuntimeCore::push). It polls while it has seen held work within
// kPollLinger: tasks handing work back and forth keep a task held most of the time, and a
// worker that slept in between would have to be woken (a system call for the pusher) every
// time it is needed.
class HeldWorkPoll {
 public:
  explicit HeldWorkPoll(Worker* w) : w_(w) {}
  HeldWorkPoll(const HeldWorkPoll&) = delete;
  HeldWorkPoll& operator=(const HeldWorkPoll&) = delete;
  ~HeldWorkPoll() {
    if (active_) counter().fetch_sub(1, std::memory_order_relaxed);
  }

  // The worker leaves its idle period to run a task. It may have been the one to see to work
  // held for another worker: a push of held work woke it (pollers were 0), or saw it polling and
  // woke nobody. If that work is still held and nobody else polls, a sleeping worker takes over
  // the watch (as Go's spinning M that finds work wakes another); otherwise the held task would
  // wait for its owner while a worker sleeps.
  void leave_with_work() {
    const bool was_polling = active_;
    if (was_polling) {
      active_ = false;
      counter().fetch_sub(1, std::memory_order_seq_cst);
    }
    RuntimeCore* rt = w_->rt;
    // In a pool of two the other worker is the one holding the work: nobody to hand over to.
    if (rt->pool_size[static_cast<int>(w_->pool)] <= 2) return;
    // A push that saw us polling: "stop, then look for held work" against its "push, then look
    // at the pollers" (see should_poll). Work whose push woke us is visible without: it was
    // published before the wake.
    if (was_polling) heavy_fence();
    if (counter().load(std::memory_order_seq_cst) == 0 && rt->policy->holds_back(w_->index)) {
      rt->wake_one(-1, w_->pool);
    }
  }

  // After a pop found nothing: whether to poll (a timed sleep) rather than sleep for good.
  bool should_poll() {
    const auto now = Clock::now();
    if (w_->rt->policy->holds_back(w_->index)) {
      last_seen_ = now;
      if (!active_) {
        active_ = true;
        counter().fetch_add(1, std::memory_order_relaxed);
      }
      return true;
    }
    if (!active_) return false;
    if (now - last_seen_ < kPollLinger) return true;
    // Stop, then look once more: a push of held work that still saw us polling woke nobody.
    // Against the pusher's "push, then look at pollers" (light fence): a fence on both sides.
    active_ = false;
    counter().fetch_sub(1, std::memory_order_seq_cst);
    heavy_fence();
    return should_poll();
  }

 private:
  static constexpr Clock::duration kPollLinger = std::chrono::milliseconds(1);
  std::atomic<int>& counter() { return w_->rt->pollers[static_cast<int>(w_->pool)]; }

  Worker* const w_;
  bool active_ = false;
  Clock::time_point last_seen_;
};

// Idles until there is work (returned) or the runtime stops (nullptr).
TaskCore* find_work_or_sleep(Worker* w) {
  RuntimeCore* rt = w->rt;
  for (int i = 0; i < rt->spin_before_sleep; ++i) {
    SpinLock::pause();
    if (TaskCore* t = rt->pop(w->index)) return t;
  }
  HeldWorkPoll poll(w);
  for (;;) {
    rt->release_deferred(w);  // references kept for a task dump (task_registry.h)
    // A read-modify-write, not a store: a waker's signal may land just before it (a waker that
    // took the flag while a late signal had woken us, the flag still set, so no fence below).
    // A plain store could then overwrite that signal while the pop below, which a CPU may run
    // ahead of the store, misses the waker's task: asleep, with the wake-up spent. Reading the
    // signal (acquire) sees the task it was raised for; a signal that comes after stays set.
    w->wake_signal.exchange(0, std::memory_order_acquire);
    // Counted once per idle period, by whoever sets the flag. A waker raises wake_signal a
    // little after it took the flag, so its signal can land after this worker has left that
    // period (found work by itself) and started the next one; such a late signal wakes us for
    // nothing, with our flag still set: counting again would leave idle_count above the number
    // of workers for good, and shutdown waits for them to be equal.
    if (!w->idle.load(std::memory_order_relaxed)) {
      // Counted before the flag is published: a waker that takes the flag uncounts it
      // (wake_one), and had it come first, idle_count would read one too few meanwhile -- 0
      // with another worker asleep, whose wake-ups wake_one would then drop for good. Release:
      // the waker's exchange that reads the flag sees the count too.
      rt->idle_count.fetch_add(1, std::memory_order_seq_cst);
      w->idle.store(true, std::memory_order_release);
      // Publish idleness, then look once more: a pusher publishes its task, then looks for
      // idle workers (RuntimeCore::wake_one). With a fence on both sides one of us sees the
      // other. Once published and fenced, later looks need no fence while the flag stays set.
      heavy_fence();  // pairs with the pusher's light fence (RuntimeCore::wake_one)
    }
    TaskCore* t = rt->pop(w->index);
    if (t != nullptr || rt->stopping.load(std::memory_order_acquire)) {
      // A waker that got here first raises wake_signal for nothing: harmless.
      const bool woken = leave_idle(w);
      if (t != nullptr) {
        if (woken) pass_on_wake_up(w);
        poll.leave_with_work();
      }
      return t;
    }
    if (poll.should_poll()) {
      if (w->wake_signal.load(std::memory_order_acquire) == 0) {
        futex_wait(&w->wake_signal, 0, nullptr, &kHeldBackPoll);
      }
    } else {
      w->sleeps.store(w->sleeps.load(std::memory_order_relaxed) + 1, std::memory_order_release);
      while (w->wake_signal.load(std::memory_order_acquire) == 0) futex_wait(&w->wake_signal, 0);
    }
    // Woken: by a waker that took our flag, or by a late signal (flag still ours). Either way
    // a worker that runs a task must not stay counted idle.
    if (TaskCore* t2 = rt->pop(w->index)) {
      if (leave_idle(w)) pass_on_wake_up(w);
      poll.leave_with_work();
      return t2;
    }
    if (rt->stopping.load(std::memory_order_acquire)) return nullptr;
  }
}

}  // namespace

WEFT_THREAD_STATE_ACCESSOR Worker* current_worker() { return tls_worker; }

void Worker::loop() {
  tls_worker = this;
  try {
    ensure_signal_stack();
  } catch (const std::system_error& e) {
    // Not fatal: tasks run as well without it; only a stack overflow on this worker would die
    // without naming its task. Escaping this thread, the error would end the process.
    std::fprintf(stderr, "weft: worker %d runs without an alternate signal stack: %s\n", index,
                 e.what());
  }
  loop_context.init_for_thread();
  eh_globals = thread_eh_globals();
  rt->policy->on_worker_start(index);
  for (;;) {
    TaskCore* t = rt->pop(index);
    if (t == nullptr) t = find_work_or_sleep(this);
    if (t == nullptr) break;
    run_on_worker(this, t);
  }
  rt->policy->on_worker_stop(index);
  tls_worker = nullptr;
  rt->workers_stopped.fetch_add(1, std::memory_order_release);
}

}  // namespace weft::internal
