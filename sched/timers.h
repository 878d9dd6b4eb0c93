// Timers: deadlines for parked waiters (sleep, timed waits), fired by one thread per runtime.
//
// A waiter arms its Waiter::timed token, registers its deadline and parks. At the deadline the
// timer thread moves the token kArmed -> kFiredTimer and wakes it with "timed out"; a waker
// that gets there first moves it kArmed -> kWokenFirst and the timer does nothing. The token
// moves under the timer lock, and the woken waiter cancels its entry under the same lock, so
// the timer thread never touches a waiter that has already returned.
// Thread safety: all members may be called from any thread. The thread starts on first use.
#ifndef WEFT_SCHED_TIMERS_H_
#define WEFT_SCHED_TIMERS_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "weft/task/waiter.h"

namespace weft::internal {

class Timers {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  Timers() = default;
  ~Timers();

  // Registers w (whose `timed` is kArmed) to be woken at `deadline`. Throws std::bad_alloc,
  // or std::system_error if the timer thread cannot be started (the next add tries again);
  // nothing is registered then.
  void add(Waiter* w, TimePoint deadline);
  // As add(), but false instead of an exception, after saying so on stderr (once per runtime):
  // for a park, which must then not wait for a timer that will never fire.
  bool try_add(Waiter* w, TimePoint deadline) noexcept;
  // For tests: the next `n` calls of add() (on any runtime) throw std::system_error, as when
  // the timer thread cannot be started.
  static void fail_next_adds_for_testing(int n) {
    failing_adds_.store(n, std::memory_order_relaxed);
  }
  // Removes w's entry if it is still there (after a normal wake).
  void cancel(Waiter* w, TimePoint deadline);
  bool empty();
  void stop();

 private:
  void run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::pair<TimePoint, Waiter*>> entries_;
  std::thread thread_;
  bool started_ = false;
  bool stopping_ = false;
  int firing_ = 0;  // waiters taken from entries_ and not yet woken
  std::atomic<bool> failure_reported_{false};
  inline static std::atomic<int> failing_adds_{0};
};

}  // namespace weft::internal

#endif  // WEFT_SCHED_TIMERS_H_
