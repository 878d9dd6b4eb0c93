// weft/sync: Julia's synchronization primitives for tasks, in one include.
//
//   Condition              Base.Condition (edge-triggered, for tasks of one thread)
//   threads::Condition     Threads.Condition (with its ReentrantLock)
//   Event                  Threads.Event([autoreset])
//   Semaphore              Base.Semaphore(n)
//   ReentrantLock          ReentrantLock (lock, unlock, trylock, islocked, lock(f, l))
//   sync_scope, SyncScope  @sync (with CompositeException)
//   timedwait              timedwait(testcb, timeout; pollint)
//   poll_fd, wait(RawFD), wait(Process), wait_process   FileWatching / Process waits
//   Future                 Distributed.Future within one process (write-once value)
//
// All of them are built on weft/sched/park.h alone, so they work with every scheduler, from
// tasks and from plain threads alike.
#ifndef WEFT_SYNC_SYNC_H_
#define WEFT_SYNC_SYNC_H_

#include "weft/sync/composite_exception.h"
#include "weft/sync/condition.h"
#include "weft/sync/event.h"
#include "weft/sync/fd_wait.h"
#include "weft/sync/future.h"
#include "weft/sync/lock.h"
#include "weft/sync/semaphore.h"
#include "weft/sync/sync_scope.h"
#include "weft/sync/threads_condition.h"
#include "weft/sync/timedwait.h"

#endif  // WEFT_SYNC_SYNC_H_
