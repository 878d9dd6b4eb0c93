// SpinLock: a test-and-test-and-set lock for critical sections of a few instructions (a policy's
// queue operations), where a futex-based mutex's bookkeeping would cost more than the work.
// Waiters spin with a pause, then yield the CPU between looks: with more runnable threads than
// cores the holder may have been preempted, and spinning through our timeslice only keeps it
// off the CPU longer. Never hold it across anything that can block or switch tasks.
// Built on std::atomic so that ThreadSanitizer sees the synchronization.
#ifndef WEFT_SCHED_SPIN_LOCK_H_
#define WEFT_SCHED_SPIN_LOCK_H_

#include <atomic>
#include <thread>

namespace weft {

class SpinLock {
 public:
  void lock() {
    if (__builtin_expect(!locked_.exchange(true, std::memory_order_acquire), 1)) return;
    lock_contended();
  }
  bool try_lock() {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() { locked_.store(false, std::memory_order_release); }
  // Acquire: a false read sees everything the last holder did under the lock.
  bool is_locked() const { return locked_.load(std::memory_order_acquire); }

  // One step of waiting for another thread to finish a few instructions: a pause, or, past
  // kPausesBeforeYield of them (that thread was most likely preempted), a yield of the CPU.
  static void wait_step(int& pauses) {
    if (pauses < kPausesBeforeYield) {
      ++pauses;
      pause();
    } else {
      std::this_thread::yield();
    }
  }

  static void pause() {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }

 private:
  // Half a microsecond to a few, by CPU (a pause costs 10 to 150 cycles): far longer than a
  // running holder keeps the lock, so past it the holder has most likely been preempted.
  static constexpr int kPausesBeforeYield = 128;

  [[gnu::noinline, gnu::cold]] void lock_contended() {
    int pauses = 0;
    do {
      while (locked_.load(std::memory_order_relaxed)) wait_step(pauses);
    } while (locked_.exchange(true, std::memory_order_acquire));
  }

  std::atomic<bool> locked_{false};
};

}  // namespace weft

#endif  // WEFT_SCHED_SPIN_LOCK_H_
