// Which task is running on the calling thread, and which thread that is: the per-thread state
// the task layer keeps. The runtime sets the task on every switch; everything else reads it.
//
// Every function is out of line on purpose: a task can resume on another thread after a
// switch, and a compiler that inlined the thread-local access could keep using the address of
// the first thread's variable (it assumes a function never changes threads).
#ifndef WEFT_TASK_CURRENT_TASK_H_
#define WEFT_TASK_CURRENT_TASK_H_

#include <cstdint>

#include "weft/task/task_core.h"

// What keeps a function that reads or writes this thread's variables out of its callers:
// not inlined, and (gcc) no inter-procedural assumptions about it either. clang has no noipa;
// there noinline is what it takes.
#if defined(__clang__)
#define WEFT_THREAD_STATE_ACCESSOR __attribute__((noinline))
#else
#define WEFT_THREAD_STATE_ACCESSOR __attribute__((noinline, noipa))
#endif

namespace weft::internal {

// The task running on this thread, or nullptr on a plain thread (or a worker between tasks).
TaskCore* current_task_core();
void set_current_task_core(TaskCore* core);

// A number naming the calling thread: never reused, never 0 or 1 (locks keep those for their
// own markers). A lock biased to one thread compares it (weft/sched/biased_lock.h).
std::uint64_t current_thread_number();

// The caller as a Waiter: the running task, else the plain thread's own Waiter as registered
// below, else nullptr (a plain thread that has not waited yet: the scheduler makes one).
Waiter* current_self();
// Registered by the scheduler, which owns plain threads' Waiters: w from its creation on,
// nullptr before it goes away (or is abandoned).
void set_current_thread_waiter(Waiter* w);

// Who holds a ReentrantLock (weft/sync/lock.h): a token naming the calling task or plain thread
// that no other task or thread will ever have, where an address may be given again to a task
// or thread made after this one ended (a lock left held by a finished task would then seem held
// by its successor), or change (a plain thread's Waiter is replaced after a DeadlockError).
// Odd for a task (from its id), even for a plain thread (from its number); never 0 or 1, which
// the lock keeps for its own markers. With the thread's number, which the lock's bias compares:
// one call for both (a call each was ~1 ns of the ~7 ns a lock+unlock takes).
struct LockIds {
  std::uint64_t owner;
  std::uint64_t thread_number;
};
LockIds current_lock_ids();
// current_lock_ids().owner alone.
std::uint64_t current_lock_owner();
// Whether a lock-owner token names a plain thread (rather than a task).
inline bool names_a_thread(std::uint64_t lock_owner) { return (lock_owner & 1) == 0; }

}  // namespace weft::internal

#endif  // WEFT_TASK_CURRENT_TASK_H_
