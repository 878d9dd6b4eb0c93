// Deadlock detection and the plain threads it must account for (internal to the runtime).
//
// A deadlock is declared for a plain thread blocked without a deadline when the whole process
// looks asleep -- every runtime idle with no timer pending and every started task parked, no
// wait for a descriptor or process, every known plain thread blocked in weft without a
// deadline, no ExternalWakeSource -- and stays exactly so (the same progress counters) over
// kDeadlockConfirmations polls kDeadlockPoll apart. The counters are ones the runtime keeps
// anyway or bumps off its hot paths (a worker going to sleep, a plain thread parking), so
// detection costs nothing until a plain thread has been blocked for a poll interval.
//
// Known plain threads: each has a ThreadWaiter, created the first time it waits in weft, wakes
// a waiter or spawns a task from outside a runtime (such a thread may do it again: while it is
// not blocked in weft, nobody is declared deadlocked). A thread that never touched weft is
// invisible: it must hold an ExternalWakeSource if it will wake someone later.
#ifndef WEFT_SCHED_DEADLOCK_H_
#define WEFT_SCHED_DEADLOCK_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "weft/sched/park.h"
#include "weft/sched/task_dump.h"
#include "weft/task/waiter.h"

namespace weft::internal {

inline constexpr std::chrono::milliseconds kDeadlockPoll{100};
inline constexpr int kDeadlockConfirmations = 3;

// A plain thread's Waiter; in the registry of known threads from creation to destruction.
struct ThreadWaiter : Waiter {
  ThreadWaiter();
  ~ThreadWaiter();
  const long tid;
  std::atomic<std::uint64_t> parks{0};    // parks so far (written by its thread): progress
  ThreadWaiter* registry_prev = nullptr;  // guarded by the registry's mutex
  ThreadWaiter* registry_next = nullptr;
};

// The calling plain thread's waiter, created (and so registered) on first use.
ThreadWaiter* thread_waiter();
// The calling thread's waiter if it has one yet, else nullptr (makes nothing).
ThreadWaiter* thread_waiter_if_made();

// A plain thread woke a waiter (whose wait was of kind `woken`) or spawned a task: it may do so
// again, so deadlock detection must see it. Not for the runtime's own threads, nor for wakes
// that end a descriptor or process wait (a poller: those waits are visible by their kind).
void note_outside_waker(WaitKind woken);

// mark_service_thread(): declared in weft/sched/park.h, for the primitives' own threads too.

// False when WEFT_DEADLOCK_DETECTION=0.
bool deadlock_detection_enabled();

// Polled by one blocked plain thread every kDeadlockPoll; true once it is deadlocked.
class DeadlockWatch {
 public:
  bool poll();
  bool reported = false;  // the report for a wait that cannot throw was printed

 private:
  std::uint64_t last_ = 0;
  int same_ = 0;
};

// The DeadlockError message for the calling thread, blocked as `me`; fills `tasks` with every
// runtime's started tasks (waits and backtraces).
std::string deadlock_report(ThreadWaiter* me, std::vector<TaskInfo>* tasks);

// After a DeadlockError: the waiter stays where it waited (a task's list of waiters), so it is
// kept for good, absorbing the wake-up if one ever comes; the thread gets a fresh one.
void abandon_thread_waiter(ThreadWaiter* w);

// "plain threads waiting in weft:" and one line per blocked known thread (for SIGQUIT).
std::string describe_waiting_threads();

}  // namespace weft::internal

#endif  // WEFT_SCHED_DEADLOCK_H_
