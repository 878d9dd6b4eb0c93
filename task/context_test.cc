// Tests for weft::internal::Context: values across switches, fresh and
// finished contexts, stack alignment, register preservation (checked at the
// register level by a small assembly helper), deep stacks, exceptions,
// unwinding, and switches that ASan/TSan must follow, across threads too.

#include "weft/task/context.h"

#include <execinfo.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#if WEFT_CONTEXT_TSAN
#include <atomic>
#include <cstdio>
#include <cstdlib>
#endif

namespace weft::internal {
namespace {

// An mmap'd stack with a PROT_NONE guard page below it, so an overflow
// faults instead of silently corrupting a neighbour.
class Stack {
 public:
  explicit Stack(std::size_t size) : size_(size) {
    page_ = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    void* p = mmap(nullptr, size_ + page_, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) std::abort();
    base_ = static_cast<char*>(p);
    mprotect(base_, page_, PROT_NONE);
  }
  ~Stack() { munmap(base_, size_ + page_); }
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  char* lo() const { return base_ + page_; }
  std::size_t size() const { return size_; }
  bool contains(const void* p) const {
    auto* c = static_cast<const char*>(p);
    return c >= lo() && c < lo() + size_;
  }

 private:
  char* base_;
  std::size_t size_;
  std::size_t page_;
};

// A context running a std::function, resumed by whoever calls resume() and
// yielding back to that caller. When the body returns the fiber finishes
// with a final switch.
class Fiber {
 public:
  using Body = std::function<void*(Fiber&, void* first_arg)>;

  explicit Fiber(Body body, std::size_t stack_size = 256 * 1024)
      : stack_(stack_size), body_(std::move(body)) {
    ctx_.init(stack_.lo(), stack_.size(), &Fiber::entry);
  }
  ~Fiber() { ctx_.destroy(); }

  // Runs the fiber from `from` (the running context) until it yields or
  // finishes; returns the value it passed.
  void* resume(Context& from, void* arg) {
    caller_ = &from;
    if (!started_) {
      started_ = true;
      first_arg_ = arg;
      arg = this;
    }
    return from.switch_to(ctx_, arg);
  }
  // Inside the fiber: back to the last resume()r.
  void* yield(void* value) { return ctx_.switch_to(*caller_, value); }

  bool done() const { return done_; }
  const Stack& stack() const { return stack_; }
  Context& context() { return ctx_; }

 private:
  static void entry(void* arg) {
    auto* self = static_cast<Fiber*>(arg);
    void* result = self->body_(*self, self->first_arg_);
    self->done_ = true;
    self->ctx_.switch_to(*self->caller_, result, /*final=*/true);
    std::abort();  // A finished context is never resumed.
  }

  Context ctx_;
  Stack stack_;
  Body body_;
  Context* caller_ = nullptr;
  void* first_arg_ = nullptr;
  bool started_ = false;
  bool done_ = false;
};

// The calling thread's own context, initialised once per thread.
Context& thread_context() {
  thread_local Context ctx;
  thread_local bool ready = false;
  if (!ready) {
    ctx.init_for_thread();
    ready = true;
  }
  return ctx;
}

void* as_ptr(std::uintptr_t v) { return reinterpret_cast<void*>(v); }
std::uintptr_t as_int(void* p) { return reinterpret_cast<std::uintptr_t>(p); }

TEST(Context, PingPongMillionTimesBothWays) {
  constexpr std::uintptr_t kRounds = 1'000'000;
  Context& main = thread_context();
  Fiber fiber([](Fiber& f, void* first) -> void* {
    std::uintptr_t expect = 0;
    void* in = first;
    for (std::uintptr_t i = 0; i < kRounds; ++i) {
      if (as_int(in) != expect) return as_ptr(~std::uintptr_t{0});
      in = f.yield(as_ptr(3 * i + 1));  // Fiber -> main: 3i+1.
      expect = 2 * (i + 1);             // Main -> fiber: 2(i+1).
    }
    return as_ptr(kRounds);
  });
  for (std::uintptr_t i = 0; i < kRounds; ++i) {
    void* back = fiber.resume(main, as_ptr(2 * i));
    ASSERT_EQ(as_int(back), 3 * i + 1) << "round " << i;
  }
  EXPECT_EQ(as_int(fiber.resume(main, as_ptr(2 * kRounds))), kRounds);
  EXPECT_TRUE(fiber.done());
}

// Raw Context use, no helper: the first switch's arg is entry's argument,
// and each later switch_to returns the arg of the switch that resumed it.
Context g_main;
Context g_task;
void* g_entry_arg = nullptr;
void* g_task_got = nullptr;

void round_trip_entry(void* arg) {
  g_entry_arg = arg;
  g_task_got = g_task.switch_to(g_main, as_ptr(0xB0B));
  g_task.switch_to(g_main, as_ptr(0xF1A1), /*final=*/true);
  std::abort();
}

TEST(Context, ArgRoundTripsAndFinalSwitch) {
  Stack stack(64 * 1024);
  g_main.init_for_thread();
  g_task.init(stack.lo(), stack.size(), &round_trip_entry);
  EXPECT_EQ(as_int(g_main.switch_to(g_task, as_ptr(0xA11CE))), 0xB0Bu);
  EXPECT_EQ(as_int(g_entry_arg), 0xA11CEu);
  EXPECT_EQ(as_int(g_main.switch_to(g_task, as_ptr(0xCAFE))), 0xF1A1u);
  EXPECT_EQ(as_int(g_task_got), 0xCAFEu);
  g_task.destroy();

  // The finished context's stack can carry a fresh context.
  g_entry_arg = g_task_got = nullptr;
  g_task.init(stack.lo(), stack.size(), &round_trip_entry);
  EXPECT_EQ(as_int(g_main.switch_to(g_task, as_ptr(7))), 0xB0Bu);
  EXPECT_EQ(as_int(g_main.switch_to(g_task, as_ptr(8))), 0xF1A1u);
  EXPECT_EQ(as_int(g_entry_arg), 7u);
  EXPECT_EQ(as_int(g_task_got), 8u);
  g_task.destroy();
  g_main.destroy();
}

TEST(Context, ManyFibersFinishAndStacksAreReused) {
  Context& main = thread_context();
  for (int round = 0; round < 1000; ++round) {
    Fiber f(
        [round](Fiber& self, void* a) -> void* {
          self.yield(a);
          return as_ptr(static_cast<std::uintptr_t>(round) + 1);
        },
        16 * 1024);
    EXPECT_EQ(f.resume(main, as_ptr(42)), as_ptr(42));
    EXPECT_EQ(as_int(f.resume(main, nullptr)),
              static_cast<std::uintptr_t>(round) + 1);
    EXPECT_TRUE(f.done());
  }
}

// Each level keeps a buffer live across a switch at the bottom, so the
// whole recursion must survive on the 64 KiB stack.
[[gnu::noinline]] std::uint64_t recurse(Fiber& f, int depth,
                                        const Stack& stack) {
  volatile unsigned char buf[96];
  for (unsigned i = 0; i < sizeof buf; ++i)
    buf[i] = static_cast<unsigned char>(depth + i);
  std::uint64_t below = 0;
  if (depth == 0) {
    // (Not &buf: with ASan's use-after-return mode locals live elsewhere.)
    if (!stack.contains(__builtin_frame_address(0))) return 0;
    f.yield(as_ptr(1));  // Suspended at the deepest point.
  } else {
    below = recurse(f, depth - 1, stack);
    if (depth % 50 == 0) f.yield(as_ptr(2));  // And on the way back up.
  }
  std::uint64_t sum = below;
  for (unsigned i = 0; i < sizeof buf; ++i) sum += buf[i];
  return sum;
}

TEST(Context, DeepRecursionOn64KiBStack) {
  constexpr int kDepth = 200;
  Context& main = thread_context();
  std::uint64_t got = 0;
  Fiber fiber(
      [&](Fiber& f, void*) -> void* {
        got = recurse(f, kDepth, f.stack());
        return nullptr;
      },
      64 * 1024);
  int yields = 0;
  while (!fiber.done()) {
    fiber.resume(main, nullptr);
    ++yields;
  }
  std::uint64_t want = 0;
  for (int d = 0; d <= kDepth; ++d)
    for (unsigned i = 0; i < 96; ++i) want += static_cast<unsigned char>(d + i);
  EXPECT_EQ(got, want);
  EXPECT_EQ(yields, 1 + kDepth / 50 + 1);
}

// --- Register preservation -------------------------------------------------
//
// weft_test_call_with_pattern(seed, fn, arg) loads every callee-saved
// register with seed+k, calls fn(arg) (which switches away and back), and
// returns a bit mask of the registers that no longer hold seed+k.
// x86-64: rbx rbp r12-r15 (bits 0-5). AArch64: x19-x29 (bits 0-10) and
// d8-d15 (bits 11-18).
extern "C" std::uint64_t weft_test_call_with_pattern(std::uint64_t seed,
                                                     void (*fn)(void*),
                                                     void* arg);
// clang-format off
#if defined(__x86_64__)
asm(R"(
        .text
        .p2align 4
        .globl  weft_test_call_with_pattern
        .type   weft_test_call_with_pattern, @function
weft_test_call_with_pattern:
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp
        movq    %rdi, (%rsp)
        leaq    1(%rdi), %rbx
        leaq    2(%rdi), %rbp
        leaq    3(%rdi), %r12
        leaq    4(%rdi), %r13
        leaq    5(%rdi), %r14
        leaq    6(%rdi), %r15
        movq    %rdx, %rdi
        call    *%rsi
        movq    (%rsp), %rdx
        xorl    %eax, %eax
        leaq    1(%rdx), %rcx
        cmpq    %rcx, %rbx
        je      1f
        orl     $1, %eax
1:      leaq    2(%rdx), %rcx
        cmpq    %rcx, %rbp
        je      1f
        orl     $2, %eax
1:      leaq    3(%rdx), %rcx
        cmpq    %rcx, %r12
        je      1f
        orl     $4, %eax
1:      leaq    4(%rdx), %rcx
        cmpq    %rcx, %r13
        je      1f
        orl     $8, %eax
1:      leaq    5(%rdx), %rcx
        cmpq    %rcx, %r14
        je      1f
        orl     $16, %eax
1:      leaq    6(%rdx), %rcx
        cmpq    %rcx, %r15
        je      1f
        orl     $32, %eax
1:      addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        ret
        .size   weft_test_call_with_pattern, .-weft_test_call_with_pattern
)");
#elif defined(__aarch64__)
#define WEFT_CHECK_X(reg, k, bit)                 \
  "add x10, x9, #" #k "\n"                        \
  "cmp " #reg ", x10\n"                           \
  "cset x11, ne\n"                                \
  "orr x0, x0, x11, lsl #" #bit "\n"
#define WEFT_CHECK_D(reg, k, bit)                 \
  "add x10, x9, #" #k "\n"                        \
  "fmov x12, " #reg "\n"                          \
  "cmp x12, x10\n"                                \
  "cset x11, ne\n"                                \
  "orr x0, x0, x11, lsl #" #bit "\n"
asm(R"(
        .text
        .p2align 4
        .globl  weft_test_call_with_pattern
        .type   weft_test_call_with_pattern, %function
weft_test_call_with_pattern:
        stp     x29, x30, [sp, #-176]!
        stp     x19, x20, [sp, #16]
        stp     x21, x22, [sp, #32]
        stp     x23, x24, [sp, #48]
        stp     x25, x26, [sp, #64]
        stp     x27, x28, [sp, #80]
        stp     d8,  d9,  [sp, #96]
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        str     x0, [sp, #160]
        add     x19, x0, #1
        add     x20, x0, #2
        add     x21, x0, #3
        add     x22, x0, #4
        add     x23, x0, #5
        add     x24, x0, #6
        add     x25, x0, #7
        add     x26, x0, #8
        add     x27, x0, #9
        add     x28, x0, #10
        add     x29, x0, #11
        add     x9, x0, #12
        fmov    d8, x9
        add     x9, x0, #13
        fmov    d9, x9
        add     x9, x0, #14
        fmov    d10, x9
        add     x9, x0, #15
        fmov    d11, x9
        add     x9, x0, #16
        fmov    d12, x9
        add     x9, x0, #17
        fmov    d13, x9
        add     x9, x0, #18
        fmov    d14, x9
        add     x9, x0, #19
        fmov    d15, x9
        mov     x0, x2
        blr     x1
        ldr     x9, [sp, #160]
        mov     x0, #0
)" WEFT_CHECK_X(x19, 1, 0) WEFT_CHECK_X(x20, 2, 1) WEFT_CHECK_X(x21, 3, 2)
    WEFT_CHECK_X(x22, 4, 3) WEFT_CHECK_X(x23, 5, 4) WEFT_CHECK_X(x24, 6, 5)
    WEFT_CHECK_X(x25, 7, 6) WEFT_CHECK_X(x26, 8, 7) WEFT_CHECK_X(x27, 9, 8)
    WEFT_CHECK_X(x28, 10, 9) WEFT_CHECK_X(x29, 11, 10)
    WEFT_CHECK_D(d8, 12, 11) WEFT_CHECK_D(d9, 13, 12)
    WEFT_CHECK_D(d10, 14, 13) WEFT_CHECK_D(d11, 15, 14)
    WEFT_CHECK_D(d12, 16, 15) WEFT_CHECK_D(d13, 17, 16)
    WEFT_CHECK_D(d14, 18, 17) WEFT_CHECK_D(d15, 19, 18) R"(
        ldp     x19, x20, [sp, #16]
        ldp     x21, x22, [sp, #32]
        ldp     x23, x24, [sp, #48]
        ldp     x25, x26, [sp, #64]
        ldp     x27, x28, [sp, #80]
        ldp     d8,  d9,  [sp, #96]
        ldp     d10, d11, [sp, #112]
        ldp     d12, d13, [sp, #128]
        ldp     d14, d15, [sp, #144]
        ldp     x29, x30, [sp], #176
        ret
        .size   weft_test_call_with_pattern, .-weft_test_call_with_pattern
)");
#else
#error "context_test.cc: no register-pattern helper for this architecture"
#endif
// clang-format on

struct SwitchArgs {
  Context* from;
  Context* to;
};
void switch_between(void* p) {
  auto* a = static_cast<SwitchArgs*>(p);
  a->from->switch_to(*a->to, nullptr);
}

TEST(Context, CalleeSavedRegistersSurviveEverySwitch) {
  constexpr int kRounds = 10000;
  Context& main = thread_context();
  Context task;
  Stack stack(64 * 1024);
  SwitchArgs to_task{&main, &task};
  SwitchArgs to_main{&task, &main};
  std::uint64_t task_bad = 0;
  struct Shared {
    SwitchArgs* to_main;
    std::uint64_t* bad;
  } shared{&to_main, &task_bad};
  static Shared* s_shared;  // entry takes no captures.
  s_shared = &shared;
  task.init(stack.lo(), stack.size(), [](void*) {
    Shared* s = s_shared;
    for (int i = 0; i < kRounds; ++i)
      *s->bad |= weft_test_call_with_pattern(0x2222'0000'0000'0000u + i,
                                             &switch_between, s->to_main);
    std::abort();  // Main never resumes us after the last round.
  });
  std::uint64_t main_bad = 0;
  for (int i = 0; i < kRounds; ++i)
    main_bad |= weft_test_call_with_pattern(0x1111'0000'0000'0000u + i,
                                            &switch_between, &to_task);
  EXPECT_EQ(main_bad, 0u);
  EXPECT_EQ(task_bad, 0u);
  task.destroy();
}

// The compiler's view of the same promise: many doubles and ints live across
// switches at -O2, while the other side churns its own.
template <typename Between>
// clang-format off
[[gnu::always_inline]] inline double long_lived_locals(Between between) {
  double d0 = 1, d1 = 2, d2 = 3, d3 = 4, d4 = 5, d5 = 6, d6 = 7, d7 = 8,
         d8 = 9, d9 = 10, d10 = 11, d11 = 12;
  std::int64_t i0 = 1, i1 = 2, i2 = 3, i3 = 4, i4 = 5, i5 = 6, i6 = 7,
               i7 = 8, i8 = 9, i9 = 10;
  for (int k = 0; k < 200; ++k) {
    // Dyadic steps keep every value exact, so the result does not depend on
    // how the compiler schedules or contracts the arithmetic.
    d0 += 0.5 * k;  d1 += d0 * 0.25; d2 += d1 - d0; d3 += 0.125 + k;
    i0 += k;        i1 ^= i0 << 1;   i2 += i1 & 255; i3 -= i2 >> 2;
    between();
    d4 += d3 * 0.5; d5 += d4 - d2;  d6 += d5 * 0.125; d7 -= d6 * 0.0625;
    i4 += i3 * 3;   i5 ^= i4;       i6 += i5 >> 3;  i7 -= i6 & 1023;
    between();
    d8 += d7 * 0.5; d9 -= d8 * 0.25; d10 += d9 + k; d11 += d10 * 0.5;
    i8 += i7 ^ k;   i9 += i8 >> 1;
    d0 = d0 > 1e9 ? 0.5 : d0;  d1 = d1 > 1e9 ? 0.25 : d1;
    d2 = d2 > 1e9 || d2 < -1e9 ? 0.75 : d2;
    d3 = d3 > 1e9 ? 0.125 : d3;
    d4 = d4 > 1e9 || d4 < -1e9 ? 1.5 : d4;
    d5 = d5 > 1e9 || d5 < -1e9 ? 2.5 : d5;
    d6 = d6 > 1e9 || d6 < -1e9 ? 3.5 : d6;
    d7 = d7 > 1e9 || d7 < -1e9 ? 4.5 : d7;
    d8 = d8 > 1e9 || d8 < -1e9 ? 5.5 : d8;
    d9 = d9 > 1e9 || d9 < -1e9 ? 6.5 : d9;
    d10 = d10 > 1e9 || d10 < -1e9 ? 7.5 : d10;
    d11 = d11 > 1e9 || d11 < -1e9 ? 8.5 : d11;
  }
  return d0 + d1 + d2 + d3 + d4 + d5 + d6 + d7 + d8 + d9 + d10 + d11 +
         static_cast<double>(i0 + i1 + i2 + i3 + i4 + i5 + i6 + i7 + i8 + i9);
}
// clang-format on

[[gnu::noinline]] double long_lived_reference() {
  return long_lived_locals([] { asm volatile("" ::: "memory"); });
}

TEST(Context, FloatingPointAndIntegerLocalsSurviveSwitches) {
  Context& main = thread_context();
  const double want = long_lived_reference();
  double task_result = 0;
  Fiber fiber([&](Fiber& f, void*) -> void* {
    task_result = long_lived_locals([&] { f.yield(nullptr); });
    return nullptr;
  });
  const double got = long_lived_locals([&] {
    if (!fiber.done()) fiber.resume(main, nullptr);
  });
  while (!fiber.done()) fiber.resume(main, nullptr);
  EXPECT_EQ(got, want);
  EXPECT_EQ(task_result, want);
}

// --- Entry conditions ------------------------------------------------------

[[gnu::noinline]] std::uintptr_t frame_address() {
  return reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
}

Context g_align_main;
Context g_align_task;
std::uintptr_t g_entry_frame = 1;
std::uintptr_t g_aligned_local = 1;

void alignment_entry(void*) {
  // The frame pointer a callee sets up is 16-byte aligned only if the stack
  // was 16-byte aligned at the call, i.e. if entry itself was called with an
  // aligned stack.
  g_entry_frame = frame_address();
  alignas(16) volatile double pair[2] = {1.0, 2.0};
  g_aligned_local = reinterpret_cast<std::uintptr_t>(&pair[0]);
  g_align_task.switch_to(g_align_main, nullptr, /*final=*/true);
}

TEST(Context, StackIs16ByteAlignedAtEntry) {
  // Every possible misalignment of the stack's end must come out aligned.
  Stack stack(64 * 1024);
  for (std::size_t trim = 0; trim < 16; ++trim) {
    g_align_main.init_for_thread();
    g_align_task.init(stack.lo(), stack.size() - trim, &alignment_entry);
    g_align_main.switch_to(g_align_task, nullptr);
    EXPECT_EQ(g_entry_frame % 16, 0u) << "trim " << trim;
    EXPECT_EQ(g_aligned_local % 16, 0u) << "trim " << trim;
    EXPECT_TRUE(stack.contains(reinterpret_cast<void*>(g_entry_frame)));
    g_align_task.destroy();
    g_align_main.destroy();
  }
}

// --- Exceptions and unwinding ----------------------------------------------

[[gnu::noinline]] int throws_after_yield(Fiber& f, int depth) {
  if (depth == 0) {
    f.yield(nullptr);
    throw std::runtime_error("from inside the context");
  }
  return throws_after_yield(f, depth - 1) + 1;
}

TEST(Context, ExceptionThrownAndCaughtInsideContext) {
  Context& main = thread_context();
  std::string caught;
  int caught_count = 0;
  Fiber fiber([&](Fiber& f, void*) -> void* {
    for (int i = 0; i < 3; ++i) {
      try {
        throws_after_yield(f, 10);
      } catch (const std::runtime_error& e) {
        caught = e.what();
        ++caught_count;
      }
    }
    return nullptr;
  });
  // Main has a handler of its own active while the fiber throws.
  try {
    while (!fiber.done()) fiber.resume(main, nullptr);
  } catch (...) {
    FAIL() << "exception escaped the context";
  }
  EXPECT_EQ(caught, "from inside the context");
  EXPECT_EQ(caught_count, 3);
}

TEST(Context, BacktraceFromInsideContextEndsAtItsStack) {
  Context& main = thread_context();
  int frames = -1;
  Fiber fiber([&](Fiber&, void*) -> void* {
    void* pcs[64];
    frames = backtrace(pcs, 64);
    return nullptr;
  });
  fiber.resume(main, nullptr);
  EXPECT_TRUE(fiber.done());
  // This lambda, std::function plumbing, Fiber::entry, weft_context_start
  // and the trampoline: a handful, and no walk into the creator's stack.
  EXPECT_GT(frames, 2);
  EXPECT_LT(frames, 20);
}

void returning_entry(void*) {}

void run_returning_entry() {
  Stack stack(64 * 1024);
  Context main;
  Context task;
  main.init_for_thread();
  task.init(stack.lo(), stack.size(), &returning_entry);
  main.switch_to(task, nullptr);
}

TEST(ContextDeathTest, EntryThatReturnsAborts) {
  EXPECT_DEATH(run_returning_entry(), "entry function returned");
}

void throwing_entry(void*) { throw std::runtime_error("escapes entry"); }

void run_throwing_entry() {
  Stack stack(64 * 1024);
  Context main;
  Context task;
  main.init_for_thread();
  task.init(stack.lo(), stack.size(), &throwing_entry);
  main.switch_to(task, nullptr);
}

TEST(ContextDeathTest, ExceptionEscapingEntryTerminates) {
  EXPECT_DEATH(run_throwing_entry(), "terminate");
}

// --- Shared data, many contexts, several threads ---------------------------
// Plain (non-atomic) data handed between contexts only at switches: ASan and
// TSan must both see this as correct, which needs the switch glue.

TEST(Context, RingOfContextsSwitchingDirectlyShareData) {
  constexpr int kFibers = 16;
  constexpr int kLaps = 200;
  Context& main = thread_context();
  std::vector<Context> ctx(kFibers);
  std::vector<std::unique_ptr<Stack>> stacks;
  struct Ring {
    std::vector<Context>* ctx;
    Context* main;
    std::vector<std::uint64_t> log;  // Written by every context.
    std::uint64_t* slot[kFibers];    // Points into each context's stack.
  } ring{&ctx, &main, {}, {}};
  static Ring* s_ring;
  s_ring = &ring;
  for (int i = 0; i < kFibers; ++i) {
    stacks.push_back(std::make_unique<Stack>(32 * 1024));
    ctx[i].init(stacks[i]->lo(), stacks[i]->size(), [](void* arg) {
      Ring& r = *s_ring;
      const int me = static_cast<int>(as_int(arg));
      std::uint64_t mine = 0;  // Lives on this context's stack; others
      r.slot[me] = &mine;      // read it while we are suspended.
      for (int lap = 0; lap < kLaps; ++lap) {
        r.log.push_back(static_cast<std::uint64_t>(me) * 1000 + lap);
        mine += lap;
        if (me > 0) r.log.push_back(*r.slot[me - 1]);
        const int next = (me + 1) % kFibers;
        const bool last = me == kFibers - 1 && lap == kLaps - 1;
        // The first switch into each context gives it its index.
        (*r.ctx)[me].switch_to(last ? *r.main : (*r.ctx)[next],
                               as_ptr(static_cast<std::uintptr_t>(next)));
      }
      // Main restarts the ring once more: each context finishes in turn.
      const int next = (me + 1) % kFibers;
      (*r.ctx)[me].switch_to(me == kFibers - 1 ? *r.main : (*r.ctx)[next],
                             nullptr, /*final=*/true);
      std::abort();
    });
  }
  main.switch_to(ctx[0], as_ptr(0));  // All laps, back from the last one.
  main.switch_to(ctx[0], nullptr);    // Every context finishes.
  EXPECT_EQ(ring.log.size(),
            static_cast<std::size_t>(kFibers * kLaps + (kFibers - 1) * kLaps));
  for (auto& c : ctx) c.destroy();
}

TEST(Context, ContextMigratesBetweenThreads) {
  // A fiber starts on one thread, is suspended, and is resumed and finished
  // on others; it writes plain data each thread reads after joining.
  std::vector<int> data;
  Fiber fiber([&](Fiber& f, void*) -> void* {
    int on_stack = 0;
    for (int step = 0; step < 4; ++step) {
      data.push_back(step);
      on_stack += step;
      f.yield(&on_stack);
    }
    return as_ptr(static_cast<std::uintptr_t>(on_stack));
  });
  int total = 0;
  for (int t = 0; t < 4; ++t) {
    std::thread th([&] {
      void* p = fiber.resume(thread_context(), nullptr);
      total += *static_cast<int*>(p);  // Reads the suspended fiber's stack.
      EXPECT_EQ(data.back(), t);
    });
    th.join();
  }
  std::thread last(
      [&] { EXPECT_EQ(as_int(fiber.resume(thread_context(), nullptr)), 6u); });
  last.join();
  EXPECT_TRUE(fiber.done());
  EXPECT_EQ(total, 0 + 1 + 3 + 6);
  EXPECT_EQ(data, (std::vector<int>{0, 1, 2, 3}));
}

TEST(Context, ThreadsEachRunTheirOwnContexts) {
  std::vector<std::thread> threads;
  std::vector<std::uint64_t> sums(2);
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([t, &sums] {
      Context& main = thread_context();
      std::vector<std::unique_ptr<Fiber>> fibers;
      std::uint64_t shared = 0;  // Touched by this thread's fibers only.
      for (int i = 0; i < 8; ++i)
        fibers.push_back(std::make_unique<Fiber>(
            [&shared](Fiber& f, void*) -> void* {
              for (int k = 0; k < 1000; ++k) {
                shared += k;
                f.yield(nullptr);
              }
              return nullptr;
            },
            32 * 1024));
      bool any = true;
      while (any) {
        any = false;
        for (auto& f : fibers)
          if (!f->done()) {
            f->resume(main, nullptr);
            any = true;
          }
      }
      sums[t] = shared;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(sums[0], 8u * 999 * 1000 / 2);
  EXPECT_EQ(sums[1], 8u * 999 * 1000 / 2);
}

// start_in_place: a context that restarts itself on the stack it runs on, many times over,
// must start each time at the same depth (nothing piles up on the stack), aligned, with its
// argument, able to throw and catch, and still able to switch back at the end.
struct InPlaceRun {
  Context main;
  Context ctx;
  char* lo = nullptr;
  std::size_t size = 0;
  int runs = 0;
  int caught = 0;
  bool misaligned = false;
  std::vector<std::uintptr_t> depths;
};

#if WEFT_CONTEXT_START_IN_PLACE
constexpr int kInPlaceRuns = 1000;

void in_place_entry(void* arg) {
  auto* run = static_cast<InPlaceRun*>(arg);
  alignas(16) volatile char aligned[16] = {};
  aligned[0] = 1;
  if (as_int(const_cast<char*>(aligned)) % 16 != 0) run->misaligned = true;
  run->depths.push_back(as_int(const_cast<char*>(aligned)));
  try {
    if (run->runs % 2 == 0) throw std::runtime_error("in place");
  } catch (const std::runtime_error&) {
    ++run->caught;
  }
  if (++run->runs < kInPlaceRuns) {
    run->ctx.start_in_place(run->lo, run->size, &in_place_entry, run);
  }
  run->ctx.switch_to(run->main, nullptr, /*final=*/true);
  std::abort();
}
#endif

TEST(ContextStartInPlace, RestartsOnItsOwnStackWithoutPilingUp) {
#if WEFT_CONTEXT_START_IN_PLACE
  Stack stack(64 * 1024);
  InPlaceRun run;
  run.lo = stack.lo();
  run.size = stack.size();
  run.main.init_for_thread();
  run.ctx.init(run.lo, run.size, &in_place_entry);
  run.main.switch_to(run.ctx, &run);
  run.ctx.destroy();
  EXPECT_EQ(run.runs, kInPlaceRuns);
  EXPECT_EQ(run.caught, kInPlaceRuns / 2);
  EXPECT_FALSE(run.misaligned);
  ASSERT_EQ(run.depths.size(), static_cast<std::size_t>(kInPlaceRuns));
  for (std::uintptr_t d : run.depths) {
    EXPECT_TRUE(stack.contains(as_ptr(d)));
    // The first run came through a switch, every later one in place: the same frame.
    ASSERT_EQ(d, run.depths[0]);
  }
#else
  GTEST_SKIP() << "start_in_place is not built under ASan/TSan";
#endif
}

// --- Ending by exit_to() --------------------------------------------------

struct ExitRun {
  Context main;
  Context ctx;
  int runs = 0;
};

void exit_to_entry(void* arg) {
  auto* run = static_cast<ExitRun*>(arg);
  ++run->runs;
  run->ctx.exit_to(run->main, as_ptr(0xE000 + run->runs));
}

TEST(ContextExitTo, EndsWithAFinalSwitchToTheNamedContext) {
  Stack stack(64 * 1024);
  ExitRun run;
  run.main.init_for_thread();
  for (int i = 1; i <= 1000; ++i) {
    run.ctx.init(stack.lo(), stack.size(), &exit_to_entry);
    ASSERT_EQ(as_int(run.main.switch_to(run.ctx, &run)), 0xE000u + i);
    run.ctx.destroy();
  }
  EXPECT_EQ(run.runs, 1000);
}

#if WEFT_CONTEXT_TSAN
struct FiberRun {
  Context main;
  Context ctx;
};

void exit_at_once_entry(void* arg) {
  auto* run = static_cast<FiberRun*>(arg);
  run->ctx.exit_to(run->main, nullptr);
}

// Runs one context that ends by returning, on `stack`.
void fiber_of_one_run(Stack& stack) {
  FiberRun run;
  run.main.init_for_thread();
  run.ctx.init(stack.lo(), stack.size(), &exit_at_once_entry);
  run.main.switch_to(run.ctx, &run);
  run.ctx.destroy();
}

// A race seen from a reused fiber. TSan's report names where the racing context's fiber was
// created: in an earlier run (fiber_of_one_run), since it is reused. And it shows the racing
// context's call stack, which must not go on into frames an earlier context left behind.
int racy_value = 0;
std::atomic<bool> other_thread_wrote{false};

[[gnu::noinline]] void racing_write() { racy_value = 2; }

void racing_entry(void* arg) {
  auto* run = static_cast<FiberRun*>(arg);
  // Relaxed on purpose: no happens-before between the two writes.
  while (!other_thread_wrote.load(std::memory_order_relaxed)) {
  }
  racing_write();
  run->ctx.exit_to(run->main, nullptr);
}

void report_race_on_a_reused_fiber() {
  // The report goes to a file this child reads back; its verdict is the exit code.
  char path[] = "/tmp/weft_context_tsan_XXXXXX";
  const int fd = mkstemp(path);
  const int saved_stderr = dup(2);
  dup2(fd, 2);
  Stack stack(64 * 1024);
  for (int i = 0; i < 3; ++i) fiber_of_one_run(stack);
  std::thread other([] {
    racy_value = 1;
    other_thread_wrote.store(true, std::memory_order_relaxed);
  });
  FiberRun run;
  run.main.init_for_thread();
  run.ctx.init(stack.lo(), stack.size(), &racing_entry);
  run.main.switch_to(run.ctx, &run);
  run.ctx.destroy();
  other.join();
  dup2(saved_stderr, 2);
  std::string report;
  char buf[4096];
  lseek(fd, 0, SEEK_SET);
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) report.append(buf, n);
  unlink(path);
  std::fputs(report.c_str(), stderr);
  // The racing access's stack is the report's first block. Below racing_entry only its call
  // site may follow (weft_context_start): frames of the earlier runs would come after it.
  const std::size_t begin = report.find("racing_entry");
  const std::size_t end = report.find("\n\n", begin);
  if (begin == std::string::npos || end == std::string::npos) std::_Exit(2);
  const std::string below = report.substr(begin, end - begin);
  int frames_below = 0;
  for (std::size_t at = below.find("    #"); at != std::string::npos; at = below.find("    #", at + 1)) {
    ++frames_below;
  }
  std::fprintf(stderr, "frames below racing_entry: %d\n", frames_below);
  // "... by thread T<n>:" names the fiber; its "Thread T<n> (...) created by ..." block says
  // where TSan created it.
  const std::size_t by = report.rfind("by thread T", begin);
  if (by == std::string::npos) std::_Exit(2);
  const std::string fiber =
      "Thread " + report.substr(by + 10, report.find(':', by) - (by + 10)) + " (";
  const std::size_t created = report.find(fiber);
  const bool reused = created != std::string::npos &&
                      report.find("fiber_of_one_run", created) < report.find("\n\n", created);
  std::fprintf(stderr, "fiber reused: %s\n", reused ? "yes" : "no");
  std::_Exit(frames_below <= 1 && reused ? 0 : 1);
}

TEST(ContextExitToDeathTest, TsanReusesFibersAndTheirReportsShowOnlyTheirOwnFrames) {
  EXPECT_EXIT(report_race_on_a_reused_fiber(), ::testing::ExitedWithCode(0),
              "data race(.|\n)*racing_write(.|\n)*frames below racing_entry: [01]\n"
              "fiber reused: yes");
}
#endif

}  // namespace
}  // namespace weft::internal
