#include "weft/sched/timers.h"

#include <cerrno>
#include <cstdio>
#include <exception>
#include <string>
#include <system_error>
#include <vector>

#include "weft/sched/deadlock.h"
#include "weft/sched/runtime_core.h"
#include "weft/task/errors.h"

namespace weft::internal {

Timers::~Timers() { stop(); }

void Timers::add(Waiter* w, TimePoint deadline) {
  if (__builtin_expect(failing_adds_.load(std::memory_order_relaxed) > 0, 0) &&
      failing_adds_.fetch_sub(1, std::memory_order_relaxed) > 0) {
    throw std::system_error(EAGAIN, std::generic_category(),
                            "timer thread (a failure injected by a test)");
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!started_) {
    thread_ = std::thread([this] { run(); });  // if this throws, the next add tries again
    started_ = true;
  }
  bool earliest = entries_.empty() || deadline < entries_.begin()->first;
  entries_.emplace(deadline, w);
  if (earliest) cv_.notify_one();
}

bool Timers::try_add(Waiter* w, TimePoint deadline) noexcept {
  try {
    add(w, deadline);
    return true;
  } catch (...) {
    if (!failure_reported_.exchange(true, std::memory_order_relaxed)) {
      const std::string why = describe_exception(std::current_exception());
      std::fprintf(stderr,
                   "weft: a timed wait could not register its deadline (%s): it ends at once, "
                   "as timed out (reported once per runtime)\n",
                   why.c_str());
    }
    return false;
  }
}

void Timers::cancel(Waiter* w, TimePoint deadline) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.erase({deadline, w});
}

bool Timers::empty() {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.empty() && firing_ == 0;
}

void Timers::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_ || stopping_) return;
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void Timers::run() {
  mark_service_thread();  // its wake-ups are the timers' (deadlock.h)
  std::vector<Waiter*> due;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (entries_.empty()) {
      cv_.wait(lock);
      continue;
    }
    TimePoint next = entries_.begin()->first;
    if (std::chrono::steady_clock::now() < next) {
      cv_.wait_until(lock, next);
      continue;
    }
    TimePoint now = std::chrono::steady_clock::now();
    while (!entries_.empty() && entries_.begin()->first <= now) {
      Waiter* w = entries_.begin()->second;
      entries_.erase(entries_.begin());
      std::uint32_t armed = kArmed;
      // Losing this race means a waker already delivered; the waiter cancels nothing then.
      if (w->timed.compare_exchange_strong(armed, kFiredTimer, std::memory_order_acq_rel)) {
        due.push_back(w);
      }
    }
    firing_ += static_cast<int>(due.size());
    lock.unlock();
    // Safe outside the lock: a waiter whose token we moved cannot resume until we wake it.
    for (Waiter* w : due) wake_waiter(w, nullptr, nullptr, WakeSource::kTimer);
    lock.lock();
    firing_ -= static_cast<int>(due.size());
    due.clear();
  }
}

}  // namespace weft::internal
