// park_until() without a lock against wakes from other threads: the deadline and a wake have
// exactly one winner. A wake that returned true was delivered and park_until() reports kWoken
// with its value; a wake that returned false delivered nothing and park_until() reports
// kTimedOut. In particular a wake that lands before park_until() is even called (lock-free
// primitives allow that) must not be swallowed by a deadline that fires while the waiter is
// still queued to run again.
//
// WEFT_STRESS=1 runs many more rounds.
#include <any>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/stress_mode.h"
#include "tests/test_runtime.h"
#include "weft/sched/park.h"
#include "weft/sched/runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/sched/spin_lock.h"
#include "weft/sched/timers.h"
#include "weft/sync/event.h"
#include "weft/sync/semaphore.h"
#include "weft/task/errors.h"
#include "weft/task/task.h"

namespace weft {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using testing::RuntimeTest;

int rounds(int normal, int stress) { return testing::stress_mode() ? stress : normal; }

void spin_for(Clock::duration d) {
  const Clock::time_point until = Clock::now() + d;
  while (Clock::now() < until) SpinLock::pause();
}

// Busy until `until`: holds its worker without yielding.
void hold_worker_until(Clock::time_point until) { spin_for(until - Clock::now()); }

std::any take_value(internal::Waiter* me) {
  std::any v = std::move(me->value);
  me->value.reset();
  return v;
}

class TimedParkTest : public RuntimeTest {};

TEST_P(TimedParkTest, WakeBeforeParkUntilIsReportedWokenNotTimedOut) {
  run([] {
    internal::Waiter* me = current_waiter();
    for (int i = 0; i < 5; ++i) {
      // Queued before we park, so it runs while we are parked and keeps the worker long after
      // our deadline has fired: on one worker the timer always fires before we run again.
      auto hog = spawn([] { hold_worker_until(Clock::now() + milliseconds(20)); });
      ASSERT_TRUE(wake(me, i));
      EXPECT_EQ(park_until(Clock::now(), WaitKind::kEvent, &hog), ParkResult::kWoken) << i;
      std::any v = take_value(me);
      ASSERT_TRUE(v.has_value()) << i;
      EXPECT_EQ(std::any_cast<int>(v), i);
      wait(hog);
      // Nothing left over: the next timed park really times out.
      EXPECT_EQ(park_until(Clock::now(), WaitKind::kEvent, &hog), ParkResult::kTimedOut);
      EXPECT_FALSE(take_value(me).has_value());
    }
  });
}

// A timed wait whose deadline cannot be registered (no timer thread could be started, or no
// memory) ends at once as timed out, rather than waiting for a timer that will never fire or
// throwing out of a primitive that has the waiter in its queue; later timed waits are timed
// as usual. Said once on stderr.
TEST_P(TimedParkTest, ADeadlineThatCannotBeRegisteredEndsTheWaitAsTimedOut) {
  ::testing::internal::CaptureStderr();
  run([] {
    Event e;
    internal::Timers::fail_next_adds_for_testing(1);
    const Clock::time_point start = Clock::now();
    EXPECT_FALSE(e.wait_for(30.0));
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(10)) << "it waited for its deadline";
    notify(e);  // the timed-out waiter left the queue: nobody waits, the event stays set
    EXPECT_TRUE(e.isset());
    reset(e);

    Semaphore s(1);
    acquire(s);
    internal::Timers::fail_next_adds_for_testing(1);
    EXPECT_FALSE(s.try_acquire_for(30.0));
    release(s);
    EXPECT_TRUE(s.try_acquire()) << "the permit went to the timed-out waiter";
    release(s);

    // A sleep whose deadline cannot be registered retries until its deadline, letting the
    // worker's other tasks run meanwhile (here, on one worker, the one that counts).
    std::atomic<int> ticks{0};
    auto ticker = async([&ticks] {
      for (int i = 0; i < 5; ++i) {
        ++ticks;
        yield();
      }
    });
    internal::Timers::fail_next_adds_for_testing(1000000);
    sleep(0.02);
    internal::Timers::fail_next_adds_for_testing(0);
    EXPECT_EQ(ticks.load(), 5) << "the sleep kept its worker from running the ticker";
    wait(ticker);

    const Clock::time_point before = Clock::now();
    EXPECT_FALSE(e.wait_for(0.02));  // timers work again
    EXPECT_GE(Clock::now() - before, milliseconds(20));
  });
  internal::Timers::fail_next_adds_for_testing(0);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("could not register its deadline"), std::string::npos) << err;
}

// A task whose deadline could not be registered ends its timed wait at once, and lets its
// worker's other tasks run first: meanwhile it is running (queued behind them), its deadline
// spent. A schedule() from one of them then marks it for its next wait(), as for any running
// task. The spent deadline must not make schedule() take it for a task in a timed wait, nor
// report it "running on another worker" (as it did while schedule() read the token).
TEST_P(TimedParkTest, AScheduleWhileATimedOutWaitLetsOthersRunMarksTheTask) {
  run([] {
    Event e;
    TaskRef me = current_task();
    bool ran = false;
    std::string refused;
    // Sticky (async): it runs on this worker, so only once the wait below lets it.
    auto scheduler = async([me, &ran, &refused] {
      ran = true;
      try {
        schedule(me, 7);
      } catch (const TaskStateError& err) {
        refused = err.what();
      }
    });
    internal::Timers::fail_next_adds_for_testing(1);
    EXPECT_FALSE(e.wait_for(30.0));
    internal::Timers::fail_next_adds_for_testing(0);
    ASSERT_TRUE(ran) << "the timed-out wait did not let the scheduler run first";
    ASSERT_EQ(refused, "");
    wait(scheduler);
    EXPECT_EQ(std::any_cast<int>(wait()), 7);
  });
  internal::Timers::fail_next_adds_for_testing(0);
}

// schedule() from plain threads, as fast as they can, at a task that takes each schedule with
// wait() and then enters a short timed Event wait that nobody notifies. Every schedule lands
// somewhere in that cycle: on the task parked in wait() (it resumes), running (it is marked,
// and the timed wait declines the mark, which the next wait() takes), on its way into the
// timed wait or parked in it (refused: "waiting on a event"), or queued (refused: "already
// scheduled"). So: the timed wait never ends as notified, nor leaves the task in the Event's
// queue (the notify after it would find it); no schedule() is refused as "running"; and each
// accepted schedule is taken by exactly one wait().
TEST_P(TimedParkTest, SchedulesRacingTimedWaitsMarkTheTaskOrAreRefused) {
  const int n = rounds(3000, 200000);
  constexpr int kEnd = -1;
  std::atomic<bool> started{false};
  std::atomic<bool> stop{false};
  std::atomic<bool> task_done{false};  // so that a task that failed is not waited for
  TaskRef target;  // published through `started`
  std::atomic<int> accepted{0};
  std::atomic<int> refused_timed{0};  // refused as waiting on the Event (parked or on its way)
  std::atomic<int> refused_running{0};
  std::string first_running_error;  // guarded by error_mu
  std::mutex error_mu;
  std::atomic<int> received{0};  // schedules taken by a wait() (not kEnd)
  int marked = 0;                // timed waits entered with a mark pending
  int notified = 0;              // timed waits that ended as notified (none should)
  int left_queued = 0;           // timed waits that left the task in the Event's queue

  auto sender = [&] {
    while (!started.load(std::memory_order_acquire)) std::this_thread::yield();
    while (!stop.load(std::memory_order_acquire)) {
      try {
        schedule(target, 1);
        accepted.fetch_add(1, std::memory_order_relaxed);
      } catch (const TaskStateError& err) {
        const std::string what = err.what();
        if (what.find("running") != std::string::npos) {
          if (refused_running.fetch_add(1, std::memory_order_relaxed) == 0) {
            std::lock_guard<std::mutex> l(error_mu);
            first_running_error = what;
          }
        } else if (what.find("waiting on") != std::string::npos) {
          refused_timed.fetch_add(1, std::memory_order_relaxed);
        }
      }
    }
  };
  std::thread s1(sender), s2(sender);
  // Once the task has taken n schedules: stops the senders, then ends the task with one more.
  std::thread closer([&] {
    while (!started.load(std::memory_order_acquire)) std::this_thread::yield();
    while (received.load(std::memory_order_relaxed) < n &&
           !task_done.load(std::memory_order_acquire)) {
      std::this_thread::yield();
    }
    stop.store(true, std::memory_order_release);
    s1.join();
    s2.join();
    while (!task_done.load(std::memory_order_acquire)) {
      try {
        schedule(target, kEnd);
        return;
      } catch (const TaskStateError&) {
        std::this_thread::yield();  // a sender's mark not yet taken, or in the timed wait
      }
    }
  });
  run([&] {
    Event e;
    internal::Waiter* me = current_waiter();
    target = current_task();
    started.store(true, std::memory_order_release);
    try {
      for (;;) {
        if (std::any_cast<int>(wait()) == kEnd) break;
        const int i = received.fetch_add(1, std::memory_order_relaxed);
        // Running a while: room for a schedule to mark it. Every 16th round until one has (up
        // to 5 ms), and every 16th timed wait long (1 ms), so that both races surely run even
        // when the senders get little CPU.
        auto is_marked = [me] {
          return (me->state.load(std::memory_order_acquire) & ~internal::kClaimBit) ==
                 internal::kNotified;
        };
        if (i % 16 == 0) {
          const auto give_up = std::chrono::steady_clock::now() + milliseconds(5);
          while (!is_marked() && std::chrono::steady_clock::now() < give_up) SpinLock::pause();
        } else {
          spin_for(microseconds(i % 5));
        }
        if (is_marked()) ++marked;
        if (e.wait_for(i % 16 == 8 ? 1e-3 : 20e-6)) ++notified;
        notify(e);  // nobody waits: the event stays set
        if (!e.isset()) ++left_queued;
        reset(e);
      }
    } catch (const std::exception& err) {
      // A wait() woken with no value: a wake-up meant for a wait that had ended.
      ADD_FAILURE() << "the task's loop raised: " << err.what();
    }
    task_done.store(true, std::memory_order_release);
  });
  closer.join();
  EXPECT_EQ(notified, 0) << "timed waits that nobody notified ended as notified";
  EXPECT_EQ(left_queued, 0) << "timed waits left the task in the Event's queue";
  EXPECT_EQ(refused_running.load(), 0) << first_running_error;
  EXPECT_EQ(received.load(), accepted.load()) << "accepted schedules not taken by one wait()";
  RecordProperty("accepted", accepted.load());
  RecordProperty("marked", marked);
  RecordProperty("refused_timed", refused_timed.load());
  // Both races ran: schedules marked the running task before a timed wait, and others found it
  // in one (on its way in or parked).
  EXPECT_GT(marked, 0);
  EXPECT_GT(refused_timed.load(), 0);
}

WEFT_INSTANTIATE_WORKER_COUNTS(TimedParkTest);

// What the waker's wake() returned in the current round.
enum Outcome : int { kPending, kDelivered, kRefused };

// How the two sides of round i meet: the waiter's pause between publishing itself and
// park_until(), its deadline, and the waker's pause before wake(). A quarter of the rounds
// wake well before the park, a quarter well after the deadline, the rest near it.
struct Offsets {
  microseconds before_park;
  microseconds deadline;
  microseconds before_wake;
};
Offsets offsets(int i) {
  switch (i % 4) {
    case 0:
      return {microseconds(50), microseconds(0), microseconds(0)};
    case 1:
      return {microseconds(0), microseconds(0), microseconds(1000)};
    default:
      return {microseconds(i * 5 % 20), microseconds(i * 7 % 60), microseconds(i * 13 % 90)};
  }
}

// The waker: takes the waiter from `slot` once per round and wakes it with the round number.
void wake_each_round(int n, std::atomic<internal::Waiter*>* slot, std::atomic<int>* outcome) {
  for (int i = 0; i < n; ++i) {
    internal::Waiter* w;
    for (int spins = 0; (w = slot->exchange(nullptr, std::memory_order_acq_rel)) == nullptr;
         ++spins) {
      if (spins % 256 == 255) std::this_thread::yield();
      SpinLock::pause();
    }
    spin_for(offsets(i).before_wake);
    outcome->store(wake(w, i) ? kDelivered : kRefused, std::memory_order_release);
  }
}

struct Tally {
  int woken = 0;
  int timed_out = 0;
  int wrong = 0;           // rounds where the two sides disagree
  std::string first_wrong;  // what the first of them looked like
  void disagree(int round, const char* what) {
    if (wrong++ == 0) first_wrong = absl::StrCat("round ", round, ": ", what);
  }
};

// A task waiter on a runtime of one worker. A helper task holds that worker from our park
// until the waker's wake() has returned, so we cannot leave park_until() before the wake lands:
// its result and ours must agree exactly.
TEST(TimedParkRaceTest, TaskWaiterAndWakerAgreeOnWhoWon) {
  const int n = rounds(1000, 100000);
  RuntimeOptions options;
  options.default_threads = 1;
  options.interactive_threads = 0;
  Runtime rt(std::move(options));
  std::atomic<internal::Waiter*> slot{nullptr};
  std::atomic<int> outcome{kPending};
  std::thread waker(wake_each_round, n, &slot, &outcome);
  const Tally tally = rt.run([&] {
    Tally t;
    internal::Waiter* me = current_waiter();
    for (int i = 0; i < n; ++i) {
      const Offsets o = offsets(i);
      outcome.store(kPending, std::memory_order_relaxed);
      const Clock::time_point deadline = Clock::now() + o.deadline;
      auto holder = spawn([&outcome, deadline] {
        while (outcome.load(std::memory_order_acquire) == kPending) SpinLock::pause();
        // And past the deadline, so a deadline that won has fired before we run again.
        hold_worker_until(deadline + microseconds(300));
      });
      slot.store(me, std::memory_order_release);
      spin_for(o.before_park);
      const ParkResult r = park_until(deadline, WaitKind::kEvent, &slot);
      wait(holder);
      const int got = outcome.load(std::memory_order_acquire);
      std::any v = take_value(me);
      const bool has_i = v.has_value() && std::any_cast<int>(v) == i;
      if (got == kDelivered) {
        ++t.woken;
        if (r != ParkResult::kWoken) t.disagree(i, "wake() returned true, park_until timed out");
        if (!has_i) t.disagree(i, "wake() returned true, its value did not arrive");
      } else {
        ++t.timed_out;
        if (r != ParkResult::kTimedOut) t.disagree(i, "wake() returned false, park_until woke");
        if (v.has_value()) t.disagree(i, "wake() returned false, yet a value arrived");
      }
    }
    return t;
  });
  waker.join();
  RecordProperty("woken", tally.woken);
  RecordProperty("timed_out", tally.timed_out);
  EXPECT_EQ(tally.wrong, 0) << tally.first_wrong;
  // Both endings were exercised (the offsets make each near-certain).
  EXPECT_GT(tally.woken, 0);
  EXPECT_GT(tally.timed_out, 0);
}

// A plain-thread waiter cannot be held inside park_until(), so a wake may also land after it
// returned kTimedOut: that wake counts for the next park, like any early wake. Either way every
// delivered wake is received exactly once, by a park that reports kWoken with its value, and a
// refused one leaves nothing behind.
TEST(TimedParkRaceTest, PlainThreadWaiterReceivesEveryDeliveredWakeOnce) {
  const int n = rounds(1000, 100000);
  std::atomic<internal::Waiter*> slot{nullptr};
  std::atomic<int> outcome{kPending};
  std::thread waker(wake_each_round, n, &slot, &outcome);
  internal::Waiter* me = current_waiter();
  Tally tally;
  int late = 0;
  for (int i = 0; i < n; ++i) {
    const Offsets o = offsets(i);
    outcome.store(kPending, std::memory_order_relaxed);
    const Clock::time_point deadline = Clock::now() + o.deadline;
    slot.store(me, std::memory_order_release);
    spin_for(o.before_park);
    ParkResult r = park_until(deadline, WaitKind::kEvent, &slot);
    int got;
    while ((got = outcome.load(std::memory_order_acquire)) == kPending) SpinLock::pause();
    // Landed after we returned: owed, so this park returns at once.
    if (r == ParkResult::kTimedOut && got == kDelivered) {
      ++late;
      r = park_until(Clock::now(), WaitKind::kEvent, &slot);
    }
    std::any v = take_value(me);
    const bool has_i = v.has_value() && std::any_cast<int>(v) == i;
    if (got == kDelivered) {
      ++tally.woken;
      if (r != ParkResult::kWoken) tally.disagree(i, "wake() returned true, the wake was lost");
      if (!has_i) tally.disagree(i, "wake() returned true, its value did not arrive");
    } else {
      ++tally.timed_out;
      if (r != ParkResult::kTimedOut) tally.disagree(i, "wake() returned false, park_until woke");
      if (v.has_value()) tally.disagree(i, "wake() returned false, yet a value arrived");
      // Nothing stray either: another timed park times out.
      if (park_until(Clock::now(), WaitKind::kEvent, &slot) != ParkResult::kTimedOut) {
        tally.disagree(i, "wake() returned false, yet the next park was woken");
        take_value(me);
      }
    }
  }
  waker.join();
  RecordProperty("woken", tally.woken);
  RecordProperty("timed_out", tally.timed_out);
  RecordProperty("late", late);
  EXPECT_EQ(tally.wrong, 0) << tally.first_wrong;
  // Wakes landed both inside park_until() and after it had timed out. (A refused wake needs
  // the waker to land between the timeout and park_until()'s return: possible, but rare.)
  EXPECT_GT(tally.woken - late, 0);
  EXPECT_GT(late, 0);
}

}  // namespace
}  // namespace weft
