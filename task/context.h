// weft::internal::Context — the machine-level half of a task switch.
//
// A Context is a suspended execution: the stack pointer it stopped at (its
// callee-saved registers and resume address sit on that stack), plus what
// ASan and TSan need to follow a stack switch. switch_to() saves the running
// execution into one Context and resumes another, handing a void* across.
// It knows nothing of tasks, scheduling or stack allocation: the runtime owns
// those and decides who runs next.
//
// Promises
//   * A switch preserves everything the calling convention says a call
//     preserves (x86-64: rbx rbp r12-r15 rsp; AArch64: x19-x29 lr sp d8-d15).
//     It does NOT save or restore the floating-point environment (MXCSR and
//     the x87 control word on x86-64, FPCR on AArch64): weft assumes tasks do
//     not change rounding modes or exception masks across a switch. A task
//     that changes them must restore them before it switches away.
//   * The first switch into a fresh context runs entry(arg) on its stack with
//     the stack aligned as a normal call would be. The sanitizer half of that
//     first switch is completed by weft's own start-up code before entry
//     runs, so entry has nothing to call first (there is no
//     "context_entered").
//   * Cost: without sanitizers switch_to() is an inlined direct call to 16
//     instructions of assembly, no other memory traffic than the saved
//     registers and the stack pointer: 1.4 ns per switch on the x86-64
//     development machine when every switch goes through the same call site,
//     9.3 ns when it does not (see "Call sites"). Under ASan/TSan it is an
//     out-of-line call into the sanitizer runtime.
//
// Thread safety
//   A Context is used by one thread at a time. Switching into a context that
//   is running, or that another thread is switching into, is undefined; the
//   runtime prevents it (a task is resumed by exactly one worker). A context
//   may be suspended on one thread and resumed on another. Contexts are
//   address-stable objects: do not move or copy one after init().
//
// Call sites
//   A switch "returns" into the resumed context at the place where that
//   context last called switch_to(). CPUs predict returns from a stack of
//   call sites, so a switch is cheapest when every context switches from the
//   same call site (e.g. one scheduler function that all task switches go
//   through, as in Julia's jl_switch). Resuming a context that was suspended
//   from a different site costs a return misprediction (+6.5 ns here).
//
// Per-thread state
//   A task may migrate between threads across a switch. The compiler may
//   keep the address of a thread_local (or errno, whose accessor is declared
//   const) in a register across the call to switch_to(), so code that can
//   migrate must re-read thread-locals through a non-inlined function after
//   a switch. The C++ runtime's per-thread exception state (the caught-
//   exception stack behind `throw;` and std::current_exception, and
//   std::uncaught_exceptions) is not switched here either: a runtime that
//   lets tasks switch inside a catch block must save and restore it.
//
// Build
//   The sanitizer fields below exist only in ASan/TSan builds, so every
//   translation unit that includes this header must be built with the same
//   sanitizer flags as context.cc (the normal state of a sanitizer build).

#pragma once

#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define WEFT_CONTEXT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_CONTEXT_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define WEFT_CONTEXT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_CONTEXT_TSAN 1
#endif
#endif

#if WEFT_CONTEXT_ASAN || WEFT_CONTEXT_TSAN
#define WEFT_CONTEXT_START_IN_PLACE 0
#else
#define WEFT_CONTEXT_START_IN_PLACE 1
#endif

namespace weft::internal {

// Assembly (context_<arch>.S): saves the callee-saved registers on the
// current stack, stores the stack pointer to *save_sp, switches to new_sp,
// restores what was saved there and returns `arg` — from the point of view of
// the resumed side, its own earlier call returns `arg`.
extern "C" void* weft_context_switch(void** save_sp, void* new_sp,
                                     void* arg) noexcept;

class Context {
 public:
  Context() = default;
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Makes this the context of the calling thread's own stack. Call once per
  // thread, on that thread, before switching away from it for the first time.
  // Such a context can only ever be resumed on its own thread.
  void init_for_thread();

  // A fresh context on the stack [stack_lo, stack_lo + size). The first
  // switch into it calls entry(arg) on that stack, where arg is the value
  // passed to that switch. entry ends the context by exit_to() or by
  // switching away with final = true (returning otherwise aborts; an
  // exception escaping entry calls std::terminate). The start-up frames take
  // under 128 bytes of the stack; entry's needs come on top, and no guard
  // page is added. The stack may carry another init() once this context has
  // finished and been destroyed. Any thread may call init(); `this` must not
  // move afterwards.
  void init(void* stack_lo, std::size_t size, void (*entry)(void*));

  // Releases sanitizer state (the TSan fiber). The context must not be
  // running, so call it from another context after the final switch. No-op
  // in non-sanitizer builds; the stack memory stays the caller's. Call it
  // promptly under TSan, which caps live threads plus fibers (8128 with
  // gcc 12). A context destroyed while suspended (never finished) leaks its
  // ASan fake stack.
  void destroy();

  // Ends this context: its final switch, to `to` with `arg`. Under TSan the
  // switch is made only once entry returns -- call this last, then return
  // from entry -- from below every instrumented frame, so that the fiber's
  // shadow call stack is empty again and a later init() can reuse the fiber
  // (creating one costs about a millisecond there, most of what a short task
  // costs; a fiber left by a final switch_to() is destroyed instead).
  // Elsewhere it switches at once and does not return.
  void exit_to(Context& to, void* arg);
  // Whether exit_to() returns (and entry must then return) in this build.
#if WEFT_CONTEXT_TSAN
  static constexpr bool kExitReturns = true;
#else
  static constexpr bool kExitReturns = false;
#endif

#if WEFT_CONTEXT_START_IN_PLACE
  // Starts this context afresh on [stack_lo, stack_lo + size) at once, running entry(arg) as
  // the first switch into a context made by init() would -- without saving the running
  // execution, which is abandoned. Its frames may lie on that very stack: a task that has
  // finished can hand the stack it runs on to a task that has never run, which then needs no
  // initial frame, no stack from the pool and no switch (whose return, into a fresh context,
  // the CPU cannot predict). Never returns. Not in ASan/TSan builds, which follow every stack
  // as a fiber of its own (WEFT_CONTEXT_START_IN_PLACE is 0 there).
  [[noreturn]] void start_in_place(void* stack_lo, std::size_t size, void (*entry)(void*),
                                   void* arg);
#endif

  // Saves the running execution into *this and resumes `to`, passing `arg`.
  // Returns the arg of whichever switch later resumes *this. *this must be
  // the context that is running now (the thread's own, or the one whose
  // entry/switch_to we are in). With final = true *this is never resumed
  // again: ASan drops its fake stack at once instead of keeping it.
  void* switch_to(Context& to, void* arg, bool final = false);

  // The stack pointer a suspended context stopped at: its saved registers
  // and resume address sit there (the frame drawn in context_<arch>.S). For
  // diagnostics (backtraces of parked tasks); meaningless while it runs.
  void* saved_sp() const { return sp_; }

 private:
  friend struct ContextGlue;  // context.cc: first entry and sanitizer glue.
  void* switch_to_sanitized(Context& to, void* arg, bool final);

  void* sp_ = nullptr;  // Valid while suspended; written by the assembly.
#if WEFT_CONTEXT_ASAN
  const void* stack_bottom_ = nullptr;  // For a thread's own context these
  std::size_t stack_size_ = 0;          // are learned at its first switch.
  void* fake_stack_ = nullptr;          // ASan fake stack while suspended.
#endif
#if WEFT_CONTEXT_TSAN
  void* fiber_ = nullptr;
  bool owns_fiber_ = false;      // A thread's own fiber belongs to TSan.
  bool fiber_reusable_ = false;  // Its shadow call stack is empty: it ended by exit_to().
  // Set by exit_to(); the first frame switches there once entry returns.
  Context* exit_to_ = nullptr;
  void* exit_arg_ = nullptr;
#endif
};

inline void* Context::switch_to(Context& to, void* arg,
                                [[maybe_unused]] bool final) {
#if WEFT_CONTEXT_ASAN || WEFT_CONTEXT_TSAN
  return switch_to_sanitized(to, arg, final);
#else
  return weft_context_switch(&sp_, to.sp_, arg);
#endif
}

#if !WEFT_CONTEXT_TSAN
inline void Context::exit_to(Context& to, void* arg) {
  switch_to(to, arg, /*final=*/true);
  __builtin_unreachable();
}
#endif

}  // namespace weft::internal
