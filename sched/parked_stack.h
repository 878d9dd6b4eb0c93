// Running a function on a parked context's stack, so that an unwinder started inside it walks
// on into the frames the context parked in (parked_stack_<arch>.S; internal to the runtime,
// whose task dumps use it: backtrace.cc).
//
// weft_call_on_parked_stack(parked_sp, fn, arg) calls fn(arg) with the stack pointer at
// parked_sp, a suspended Context's saved_sp(): fn's frames go below the parked frame, whose
// saved registers and resume address the unwind information describes as fn's callers. The
// caller must keep the context from being resumed meanwhile and leave room below parked_sp.
// weft_call_on_parked_stack_end marks the function's end, so that an unwinder can tell the
// parked frames (those after it) from the caller's.
#ifndef WEFT_SCHED_PARKED_STACK_H_
#define WEFT_SCHED_PARKED_STACK_H_

extern "C" void weft_call_on_parked_stack(void* parked_sp, void (*fn)(void*), void* arg);
extern "C" char weft_call_on_parked_stack_end[];

#endif  // WEFT_SCHED_PARKED_STACK_H_
