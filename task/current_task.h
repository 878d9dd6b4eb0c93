// Which task is running on the calling thread: the one piece of per-thread state the task layer
// keeps. The runtime sets it on every switch; everything else reads it.
//
// Both functions are out of line on purpose: a task can resume on another thread after a
// switch, and a compiler that inlined the thread-local access could keep using the address of
// the first thread's variable (it assumes a function never changes threads).
#ifndef WEFT_TASK_CURRENT_TASK_H_
#define WEFT_TASK_CURRENT_TASK_H_

#include "weft/task/task_core.h"

namespace weft::internal {

// The task running on this thread, or nullptr on a plain thread (or a worker between tasks).
TaskCore* current_task_core();
void set_current_task_core(TaskCore* core);

}  // namespace weft::internal

#endif  // WEFT_TASK_CURRENT_TASK_H_
