// The C++ side of Context: setting up a fresh stack, the first entry into it,
// and telling ASan/TSan about every switch. The register switch itself is in
// context_<arch>.S; without sanitizers switch_to() never comes here.

#include "weft/task/context.h"

#include <cstdio>
#include <cstdlib>

#if WEFT_CONTEXT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if WEFT_CONTEXT_TSAN
#include <sanitizer/tsan_interface.h>

#include <mutex>
#endif

// For the code between a context's first frame and its final switch after entry returned: the
// fiber's shadow call stack must be as empty when it switches as when it started.
#if defined(__clang__) || defined(__GNUC__)
#define WEFT_NOT_TSAN_INSTRUMENTED __attribute__((no_sanitize("thread")))
#else
#define WEFT_NOT_TSAN_INSTRUMENTED
#endif

// Assembly: writes the initial frame of a fresh context below stack_top and
// returns its saved stack pointer. Switching to it runs
// weft_context_start(arg, self, entry) on that stack.
extern "C" void* weft_context_prepare(void* stack_top, void (*entry)(void*),
                                      void* self) noexcept;
#if WEFT_CONTEXT_START_IN_PLACE
extern "C" [[noreturn]] void weft_context_start_in_place(void* stack_top,
                                                         void (*entry)(void*), void* self,
                                                         void* arg) noexcept;
#endif

namespace weft::internal {

struct ContextGlue {
#if WEFT_CONTEXT_ASAN
  // A thread's own context whose stack bounds ASan has not told us yet. They
  // arrive on the other side of its first switch away, from
  // __sanitizer_finish_switch_fiber. Per thread, because a switch never
  // changes threads.
  static thread_local Context* unlearned_thread_context;

  // Runs on the destination stack right after a switch lands. Out of line
  // so that the thread_local is looked up on the thread we landed on, not on
  // one the compiler remembered from before the switch.
  [[gnu::noinline]] static void asan_landed(void* fake_stack) {
    const void* from_bottom = nullptr;
    std::size_t from_size = 0;
    __sanitizer_finish_switch_fiber(fake_stack, &from_bottom, &from_size);
    if (Context* from = unlearned_thread_context) {
      from->stack_bottom_ = from_bottom;
      from->stack_size_ = from_size;
      unlearned_thread_context = nullptr;
    }
  }
#endif

  // First code to run on a fresh context's stack.
  static void started(Context& self) {
#if WEFT_CONTEXT_ASAN
    asan_landed(self.fake_stack_);  // nullptr: a fresh context has none yet.
#endif
    (void)self;
  }

  // After entry returned: the final switch named by exit_to() under TSan, the end of the
  // process otherwise. Called from the context's first frame, and like it not instrumented by
  // TSan, so no frame of it stays on the fiber's shadow call stack (an instrumented call that
  // never returns would).
  [[noreturn]] WEFT_NOT_TSAN_INSTRUMENTED static void entry_returned(Context& self) {
#if WEFT_CONTEXT_TSAN
    if (Context* to = self.exit_to_) {
      self.fiber_reusable_ = true;
      __tsan_switch_to_fiber(to->fiber_, 0);
      weft_context_switch(&self.sp_, to->sp_, self.exit_arg_);
    }
#endif
    (void)self;
    std::fputs("weft: a context's entry function returned without exit_to()\n", stderr);
    std::abort();
  }

#if WEFT_CONTEXT_TSAN
  // Fibers of contexts that ended by exit_to(), for the next init(): creating one clears and
  // faults in about 830 KB of TSan state, 1.5 ms on these machines, where a short task costs
  // tens of microseconds. Reuse hides no race: a context is destroyed only after its final
  // switch, and the fiber passes through this cache's mutex to the next init(), so everything
  // the old context did happens before the new one starts anyway. Bounded because a cached
  // fiber keeps its memory and counts against TSan's cap on threads plus fibers.
  static constexpr int kCachedFibers = 256;
  static inline std::mutex fiber_mu;
  static inline void* cached_fibers[kCachedFibers];
  static inline int num_cached_fibers = 0;

  static void* take_fiber() {
    {
      std::lock_guard<std::mutex> hold(fiber_mu);
      if (num_cached_fibers > 0) return cached_fibers[--num_cached_fibers];
    }
    return __tsan_create_fiber(0);
  }

  static void give_fiber(void* fiber) {
    {
      std::lock_guard<std::mutex> hold(fiber_mu);
      if (num_cached_fibers < kCachedFibers) {
        cached_fibers[num_cached_fibers++] = fiber;
        return;
      }
    }
    __tsan_destroy_fiber(fiber);
  }
#endif
};

#if WEFT_CONTEXT_ASAN
thread_local Context* ContextGlue::unlearned_thread_context = nullptr;
#endif

}  // namespace weft::internal

// Called by the assembly trampoline, never returns. noexcept: an exception
// escaping entry has nowhere to go (the trampoline ends the stack for the
// unwinder), so it terminates here with a clear std::terminate.
extern "C" [[noreturn, gnu::visibility("hidden")]] WEFT_NOT_TSAN_INSTRUMENTED void
weft_context_start(void* arg, weft::internal::Context* self, void (*entry)(void*)) noexcept {
  weft::internal::ContextGlue::started(*self);
  entry(arg);
  weft::internal::ContextGlue::entry_returned(*self);
}

namespace weft::internal {

void Context::init_for_thread() {
  sp_ = nullptr;
#if WEFT_CONTEXT_ASAN
  stack_bottom_ = nullptr;
  stack_size_ = 0;
  fake_stack_ = nullptr;
#endif
#if WEFT_CONTEXT_TSAN
  fiber_ = __tsan_get_current_fiber();
  owns_fiber_ = false;
#endif
}

void Context::init(void* stack_lo, std::size_t size, void (*entry)(void*)) {
#if WEFT_CONTEXT_ASAN
  // A reused stack still carries the redzones of frames that never returned
  // (a finished context leaves its last frames behind).
  __asan_unpoison_memory_region(stack_lo, size);
  stack_bottom_ = stack_lo;
  stack_size_ = size;
  fake_stack_ = nullptr;
#endif
#if WEFT_CONTEXT_TSAN
  fiber_ = ContextGlue::take_fiber();
  owns_fiber_ = true;
  fiber_reusable_ = false;
  exit_to_ = nullptr;
  exit_arg_ = nullptr;
#endif
  sp_ = weft_context_prepare(static_cast<char*>(stack_lo) + size, entry, this);
}

#if WEFT_CONTEXT_START_IN_PLACE
void Context::start_in_place(void* stack_lo, std::size_t size, void (*entry)(void*),
                             void* arg) {
  sp_ = nullptr;  // running: nothing saved
  weft_context_start_in_place(static_cast<char*>(stack_lo) + size, entry, this, arg);
}
#endif

void Context::destroy() {
#if WEFT_CONTEXT_TSAN
  if (owns_fiber_) {
    if (fiber_reusable_) {
      ContextGlue::give_fiber(fiber_);
    } else {
      __tsan_destroy_fiber(fiber_);
    }
  }
  fiber_ = nullptr;
  owns_fiber_ = false;
  fiber_reusable_ = false;
#endif
  sp_ = nullptr;
}

#if WEFT_CONTEXT_TSAN
void Context::exit_to(Context& to, void* arg) {
  exit_to_ = &to;
  exit_arg_ = arg;
}
#endif

void* Context::switch_to_sanitized(Context& to, void* arg,
                                   [[maybe_unused]] bool final) {
#if WEFT_CONTEXT_ASAN
  if (stack_size_ == 0) ContextGlue::unlearned_thread_context = this;
  // nullptr on a final switch: ASan frees this context's fake stack now.
  __sanitizer_start_switch_fiber(final ? nullptr : &fake_stack_,
                                 to.stack_bottom_, to.stack_size_);
#endif
#if WEFT_CONTEXT_TSAN
  // Flags 0: the switch is a happens-before edge from us to `to`.
  __tsan_switch_to_fiber(to.fiber_, 0);
#endif
  void* result = weft_context_switch(&sp_, to.sp_, arg);
#if WEFT_CONTEXT_ASAN
  ContextGlue::asan_landed(fake_stack_);
#endif
  return result;
}

}  // namespace weft::internal
