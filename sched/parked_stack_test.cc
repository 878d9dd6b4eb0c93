// weft_call_on_parked_stack (parked_stack_<arch>.S) on its own, without a runtime: a function
// it runs on a parked context's stack unwinds, past its own frame, into exactly the frames the
// context parked in -- what task dumps rely on (backtrace.cc). Also built for AArch64 and run
// under qemu (//sched:parked_stack_aarch64_test).
#include <sys/mman.h>
#include <unwind.h>

#include <cstdint>
#include <cstdlib>

#include "gtest/gtest.h"
#include "weft/sched/parked_stack.h"
#include "weft/task/context.h"

namespace weft::internal {
namespace {

Context g_main;
Context g_parked;
// The return address of each call on the way to the switch, innermost first: what an unwinder
// must find on the parked stack, after the switch's own resume address.
void* g_calls[3];
int g_resumed = 0;

[[gnu::noinline]] void park_here() {
  g_calls[0] = __builtin_return_address(0);
  g_parked.switch_to(g_main, nullptr);
  ++g_resumed;
  asm volatile("" ::: "memory");  // a real frame, not a tail call
}

[[gnu::noinline]] void level_two() {
  g_calls[1] = __builtin_return_address(0);
  park_here();
  asm volatile("" ::: "memory");
}

[[gnu::noinline]] void level_one() {
  g_calls[2] = __builtin_return_address(0);
  level_two();
  asm volatile("" ::: "memory");
}

void entry(void*) {
  level_one();
  g_parked.exit_to(g_main, nullptr);
}

struct Unwind {
  void* pcs[16];
  int n = 0;
  bool past_call = false;  // the frames after weft_call_on_parked_stack's own are the parked ones
};

// These run on the parked stack, which the sanitizers do not know as the running one.
__attribute__((no_sanitize_address, no_sanitize_thread)) _Unwind_Reason_Code collect(
    _Unwind_Context* context, void* arg) {
  auto* u = static_cast<Unwind*>(arg);
  const std::uintptr_t ip = _Unwind_GetIP(context);
  if (ip == 0) return _URC_END_OF_STACK;
  if (!u->past_call) {
    u->past_call = ip > reinterpret_cast<std::uintptr_t>(&weft_call_on_parked_stack) &&
                   ip <= reinterpret_cast<std::uintptr_t>(weft_call_on_parked_stack_end);
    return _URC_NO_REASON;
  }
  u->pcs[u->n++] = reinterpret_cast<void*>(ip);
  return u->n == 16 ? _URC_END_OF_STACK : _URC_NO_REASON;
}

__attribute__((noinline, no_sanitize_address, no_sanitize_thread)) void unwind_here(void* arg) {
  _Unwind_Backtrace(&collect, arg);
}

TEST(ParkedStackTest, UnwindsIntoTheFramesTheContextParkedIn) {
  constexpr std::size_t kSize = 256 * 1024;
  void* stack = mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(stack, MAP_FAILED);
  g_main.init_for_thread();
  g_parked.init(stack, kSize, &entry);
  g_main.switch_to(g_parked, nullptr);  // runs until park_here() switches back

  Unwind u;
  weft_call_on_parked_stack(g_parked.saved_sp(), &unwind_here, &u);
  ASSERT_TRUE(u.past_call) << "the unwinder never reached weft_call_on_parked_stack's frame";
  // First where the switch resumes, and the frames of Context::switch_to and its sanitizer
  // glue where they are not inlined; then each call on the way there, in turn.
  int at = 0;
  while (at < u.n && u.pcs[at] != g_calls[0]) ++at;
  ASSERT_LT(at, u.n) << "park_here's caller is not among the " << u.n << " frames found";
  EXPECT_GE(at, 1);
  EXPECT_LE(at, 3);
  ASSERT_LT(at + 2, u.n);
  EXPECT_EQ(u.pcs[at + 1], g_calls[1]);
  EXPECT_EQ(u.pcs[at + 2], g_calls[2]);

  // The excursion left the parked context as it was: it resumes and finishes.
  g_main.switch_to(g_parked, nullptr);
  EXPECT_EQ(g_resumed, 1);
  g_parked.destroy();
  munmap(stack, kSize);
}

}  // namespace
}  // namespace weft::internal
