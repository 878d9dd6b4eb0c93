// SpinLock: a test-and-test-and-set lock for critical sections of a few instructions (a policy's
// queue operations), where a futex-based mutex's bookkeeping would cost more than the work.
// Waiters spin with a pause; never hold it across anything that can block or switch tasks.
// Built on std::atomic so that ThreadSanitizer sees the synchronization.
#ifndef WEFT_SCHED_SPIN_LOCK_H_
#define WEFT_SCHED_SPIN_LOCK_H_

#include <atomic>

namespace weft {

class SpinLock {
 public:
  void lock() {
    while (locked_.exchange(true, std::memory_order_acquire)) {
      while (locked_.load(std::memory_order_relaxed)) pause();
    }
  }
  bool try_lock() {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() { locked_.store(false, std::memory_order_release); }
  bool is_locked() const { return locked_.load(std::memory_order_relaxed); }

  static void pause() {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace weft

#endif  // WEFT_SCHED_SPIN_LOCK_H_
