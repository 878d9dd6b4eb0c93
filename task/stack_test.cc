#include "weft/task/stack.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#endif

#if defined(__SANITIZE_THREAD__)
#define WEFT_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define WEFT_TEST_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(WEFT_TEST_TSAN)
#define WEFT_TEST_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_TEST_SANITIZER 1
#endif
#endif

namespace weft::internal {
namespace {

std::size_t page() { return static_cast<std::size_t>(sysconf(_SC_PAGESIZE)); }

bool page_aligned(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % page() == 0; }

// Death tests re-execute the binary, so each child starts with a fresh pool,
// no handler installed and an unread WEFT_STACK_SIZE.
void use_fresh_process_for_death_tests() { GTEST_FLAG_SET(death_test_style, "threadsafe"); }

// ---- running code on an allocated stack (test only: the runtime has its own
// context switch; ucontext is just the shortest way to get onto a stack).

ucontext_t g_caller;
ucontext_t g_on_stack;

[[gnu::noinline]] int recurse(int depth) {
  volatile char pad[256];
  pad[0] = static_cast<char>(depth);
  if (depth > 1'000'000'000) return 0;  // never: keeps the compiler from proving endless recursion
  int r = recurse(depth + 1);
  asm volatile("" : : "r"(pad) : "memory");  // not a tail call, frame stays live
  return r + pad[0];
}

void overflow_entry() { recurse(0); }

void run_on_stack(const Stack& s, void (*fn)()) {
  ASSERT_EQ(getcontext(&g_on_stack), 0);
  g_on_stack.uc_stack.ss_sp = s.lo;
  g_on_stack.uc_stack.ss_size = s.size;
  g_on_stack.uc_link = &g_caller;
  makecontext(&g_on_stack, fn, 0);
  ASSERT_EQ(swapcontext(&g_caller, &g_on_stack), 0);
}

// A frame of 32 KiB that its function never probes (code built without
// -fstack-clash-protection): the stack pointer moves that far below the stack's bottom at once,
// and the first touch is there.
char* g_unprobed_target = nullptr;

void unprobed_big_frame_entry() {
#if defined(__x86_64__)
  asm volatile("mov %0, %%rsp\n\tmovb $0, (%%rsp)" : : "r"(g_unprobed_target) : "memory");
#elif defined(__aarch64__)
  asm volatile("mov sp, %0\n\tstrb wzr, [sp]" : : "r"(g_unprobed_target) : "memory");
#endif
  std::fprintf(stderr, "the frame landed outside the guard, in another stack\n");
  std::abort();
}

void overflow_stack_of_task(std::size_t size, std::uint64_t owner, bool relabel_to_99 = false) {
  install_stack_overflow_handler();
  ensure_signal_stack();
  Stack s = allocate_stack(size, owner);
  if (relabel_to_99) set_stack_owner(s, 99);
  run_on_stack(s, overflow_entry);
}

// ---- allocation ---------------------------------------------------------------

TEST(StackTest, AllocationIsUsableWritableAndPageAligned) {
  Stack s = allocate_stack(0, 1);
  ASSERT_TRUE(s);
  EXPECT_EQ(s.size, default_stack_size());
  EXPECT_TRUE(page_aligned(s.lo));
  EXPECT_TRUE(page_aligned(s.hi()));
  std::memset(s.lo, 0xab, s.size);
  EXPECT_EQ(static_cast<unsigned char*>(s.hi())[-1], 0xab);
  release_stack(s);
}

TEST(StackTest, CustomSizesAreRoundedToPagesAndMinimum) {
  struct Case {
    std::size_t asked, expect;
  };
  const std::size_t pg = page();
  const Case cases[] = {
      {1, kMinStackSize},
      {kMinStackSize - 1, kMinStackSize},
      {20000, (20000 + pg - 1) / pg * pg},
      {256 * 1024, 256 * 1024},
      {8 << 20, 8 << 20},
  };
  for (const Case& c : cases) {
    Stack s = allocate_stack(c.asked, 5);
    EXPECT_EQ(s.size, c.expect) << "asked " << c.asked;
    EXPECT_TRUE(page_aligned(s.lo));
    std::memset(s.lo, 1, s.size);
    release_stack(s);
  }
  EXPECT_THROW(allocate_stack(kMaxStackSize + 1, 5), std::invalid_argument);
}

TEST(StackTest, ReleaseThenAllocateReusesTheStack) {
  Stack a = allocate_stack(0, 1);
  void* lo = a.lo;
  release_stack(a);
  Stack b = allocate_stack(0, 2);
  EXPECT_EQ(b.lo, lo);
  release_stack(b);

  Stack c = allocate_stack(96 * 1024, 3);  // non-default sizes pool globally
  lo = c.lo;
  release_stack(c);
  Stack d = allocate_stack(96 * 1024, 4);
  EXPECT_EQ(d.lo, lo);
  release_stack(d);
}

TEST(StackTest, ReleaseFromAnotherThread) {
  constexpr int kN = 100;
  std::vector<Stack> stacks;
  for (int i = 0; i < kN; ++i) {
    stacks.push_back(allocate_stack(0, i));
    std::memset(stacks.back().lo, 1, 64);
  }
  std::set<void*> released;
  for (const Stack& s : stacks) released.insert(s.lo);
  const std::size_t pooled_before = stack_pool_stats().pooled;
  std::thread t([&] {
    for (const Stack& s : stacks) release_stack(s);
  });
  t.join();
  // The thread's cache went back to the global pool when it exited.
  EXPECT_GE(stack_pool_stats().pooled, pooled_before + kN);

  std::vector<Stack> again;
  int reused = 0;
  for (int i = 0; i < kN + 64; ++i) {
    again.push_back(allocate_stack(0, i));
    if (released.count(again.back().lo) != 0) ++reused;
    std::memset(static_cast<char*>(again.back().hi()) - 64, 2, 64);
  }
  EXPECT_EQ(reused, kN);
  for (const Stack& s : again) release_stack(s);
}

#ifdef __SANITIZE_ADDRESS__
TEST(StackTest, ReleaseClearsAsanPoisonLeftOnTheStack) {
  Stack s = allocate_stack(0, 1);
  // What a task abandoned mid-run leaves behind: redzones of live frames.
  ASAN_POISON_MEMORY_REGION(static_cast<char*>(s.hi()) - 512, 64);
  void* lo = s.lo;
  release_stack(s);
  Stack t = allocate_stack(0, 2);
  ASSERT_EQ(t.lo, lo);
  EXPECT_EQ(__asan_region_is_poisoned(t.lo, t.size), nullptr);
  release_stack(t);
}
#endif

std::size_t mapping_count() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  std::size_t n = 0;
  while (std::getline(maps, line)) ++n;
  return n;
}

TEST(StackTest, HundredThousandStacksAtOnce) {
  constexpr std::size_t kN = 100'000;
  std::vector<Stack> stacks;
  stacks.reserve(kN);
  const std::size_t maps_before = mapping_count();
  for (std::size_t i = 0; i < kN; ++i) stacks.push_back(allocate_stack(0, i));
  const std::size_t maps_after = mapping_count();
  std::printf("100k stacks: %zu -> %zu mappings (vm.max_map_count is 65530 by default)\n",
              maps_before, maps_after);
  // With MADV_GUARD_INSTALL (kernel 6.13 on) the guard pages split no mapping; without it each
  // stack's guard is a mapping of its own, next to the stack's (tools/setup.sh raises
  // vm.max_map_count for that).
  const bool mprotect_guards = stack_pool_stats().mprotect_guards;
  const std::size_t allowed = mprotect_guards ? 2 * kN + 5000 : 5000;
  EXPECT_LT(maps_after - std::min(maps_before, maps_after), allowed)
      << (mprotect_guards ? "with mprotect guards" : "with guard advice");

  std::vector<Stack> sorted = stacks;
  std::sort(sorted.begin(), sorted.end(),
            [](const Stack& a, const Stack& b) { return a.lo < b.lo; });
  for (std::size_t i = 1; i < kN; ++i) {
    ASSERT_LE(static_cast<char*>(sorted[i - 1].hi()) + page(), static_cast<char*>(sorted[i].lo))
        << "stacks overlap or share a guard";
  }
  for (const Stack& s : stacks) static_cast<char*>(s.hi())[-1] = 1;
  for (const Stack& s : stacks) release_stack(s);

  const StackPoolStats st = stack_pool_stats();
  std::printf("after release: %zu pooled, %zu of them trimmed, %zu slabs\n", st.pooled,
              st.pooled_trimmed, st.slabs);
  EXPECT_GT(st.pooled_trimmed, kN / 2) << "the pool should return most pages of a burst";
}

long status_kib(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + std::strlen(key));
  }
  return -1;
}

long rss_bytes() {
  long size = 0, resident = 0;
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return -1;
  if (std::fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
  std::fclose(f);
  return resident * static_cast<long>(page());
}

TEST(StackTest, RssPerStackTouchingOnePage) {
  constexpr std::size_t kN = 100'000;
  // A size class no other test uses, so every stack and page table is fresh.
  const std::size_t size = 64 * 1024 + page();
  std::vector<Stack> stacks;
  stacks.reserve(kN);
  const long rss0 = rss_bytes();
  const long pte0 = status_kib("VmPTE:");
  for (std::size_t i = 0; i < kN; ++i) {
    stacks.push_back(allocate_stack(size, i));
    static_cast<char*>(stacks.back().hi())[-16] = 1;  // stacks grow down: the top page
  }
  const long rss1 = rss_bytes();
  const long pte1 = status_kib("VmPTE:");
  const double rss_per = static_cast<double>(rss1 - rss0) / kN;
  const double pte_per = static_cast<double>(pte1 - pte0) * 1024 / kN;
  std::printf("per stack touching one page: %.0f B RSS + %.0f B page tables\n", rss_per, pte_per);
#ifndef WEFT_TEST_TSAN  // TSan's shadow memory roughly doubles what a touched page costs
  EXPECT_LT(rss_per + pte_per, 8 * 1024);
#endif
  for (const Stack& s : stacks) release_stack(s);
}

// ---- guard pages and the overflow handler ------------------------------------

TEST(StackDeathTest, OverflowIsReportedWithTaskId) {
  use_fresh_process_for_death_tests();
  EXPECT_DEATH(overflow_stack_of_task(0, 42), "stack overflow in task 42\n");
}

// The guard is larger than a page (64 KiB): a frame of up to that size that skips the guard
// page by page still lands in the guard, and is reported, instead of in the stack below.
TEST(StackDeathTest, AnUnprobedBigFrameLandsInTheGuard) {
  use_fresh_process_for_death_tests();
  EXPECT_DEATH(
      {
        install_stack_overflow_handler();
        ensure_signal_stack();
        Stack below = allocate_stack(0, 1);  // so that the next stack has a neighbour below
        Stack s = allocate_stack(0, 43);
        static_cast<void>(below);
        g_unprobed_target = static_cast<char*>(s.lo) - 32 * 1024;
        run_on_stack(s, unprobed_big_frame_entry);
      },
      "stack overflow in task 43\n");
}

TEST(StackDeathTest, OverflowDiesWithSigsegv) {
  use_fresh_process_for_death_tests();
  EXPECT_EXIT(overflow_stack_of_task(0, 7), testing::KilledBySignal(SIGSEGV),
              "stack overflow in task 7\n");
}

TEST(StackDeathTest, OverflowOfCustomSizeAndRelabelledStack) {
  use_fresh_process_for_death_tests();
  EXPECT_DEATH(overflow_stack_of_task(1 << 20, 18446744073709551615u),
               "stack overflow in task 18446744073709551615\n");
  EXPECT_DEATH(overflow_stack_of_task(0, 1, /*relabel_to_99=*/true), "stack overflow in task 99\n");
}

TEST(StackDeathTest, OverflowWithMprotectGuardFallback) {
  use_fresh_process_for_death_tests();
  EXPECT_DEATH(
      {
        force_mprotect_guards_for_testing();
        overflow_stack_of_task(40 * 1024, 77);
      },
      "stack overflow in task 77\n");
}

TEST(StackDeathTest, MprotectFallbackNamesMaxMapCountWhenExhausted) {
#ifdef WEFT_TEST_TSAN
  GTEST_SKIP() << "TSan maps shadow memory as the stacks grow and runs out of mappings first";
#endif
  use_fresh_process_for_death_tests();
  EXPECT_EXIT(
      {
        force_mprotect_guards_for_testing();
        std::vector<Stack> held;
        try {
          for (int i = 0; i < 200'000; ++i) held.push_back(allocate_stack(kMinStackSize, i));
        } catch (const std::system_error& e) {
          std::fprintf(stderr, "%zu stacks, then: %s\n", held.size(), e.what());
          _exit(std::strstr(e.what(), "vm.max_map_count") != nullptr ? 0 : 2);
        }
        _exit(1);
      },
      testing::ExitedWithCode(0), "vm.max_map_count");
}

char* protected_page() {
  void* p = mmap(nullptr, page(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return static_cast<char*>(p);
}

void on_segv_previous(int) {
  static const char msg[] = "previous handler ran\n";
  (void)!write(STDERR_FILENO, msg, sizeof msg - 1);
  _exit(3);
}

void install_previous_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_segv_previous;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, nullptr);
}

TEST(StackDeathTest, OtherFaultsGoToThePreviousHandler) {
  use_fresh_process_for_death_tests();
  EXPECT_EXIT(
      {
        install_previous_handler();
        install_stack_overflow_handler();
        ensure_signal_stack();
        Stack s = allocate_stack(0, 5);  // a slab exists, the fault is elsewhere
        (void)s;
        *reinterpret_cast<volatile char*>(protected_page()) = 1;
      },
      testing::ExitedWithCode(3), "previous handler ran");
}

TEST(StackDeathTest, StrayWriteIntoAGuardIsNotAnOverflow) {
  use_fresh_process_for_death_tests();
  EXPECT_EXIT(
      {
        install_previous_handler();
        install_stack_overflow_handler();
        ensure_signal_stack();
        Stack s = allocate_stack(0, 5);
        // From this thread's own stack, far from s: a wild pointer, not an overflow.
        static_cast<volatile char*>(s.lo)[-1] = 1;
      },
      testing::ExitedWithCode(3), "previous handler ran");
}

#if defined(__x86_64__)
// A frame allocated without stack-clash probes can leave sp in the guard while
// its first access lands elsewhere; sp then tells which stack overflowed.
TEST(StackDeathTest, OverflowRecognisedByStackPointerInGuard) {
  use_fresh_process_for_death_tests();
  EXPECT_DEATH(
      {
        install_stack_overflow_handler();
        ensure_signal_stack();
        Stack s = allocate_stack(0, 31);
        char* sp_in_guard = static_cast<char*>(s.lo) - 64;
        char* elsewhere = protected_page();
        asm volatile("movq %0, %%rsp\n\tmovb $1, (%1)" : : "r"(sp_in_guard), "r"(elsewhere)
                     : "memory");
      },
      "stack overflow in task 31\n");
}
#endif

TEST(StackDeathTest, OtherFaultsWithoutPreviousHandlerDieAsUsual) {
#ifdef WEFT_TEST_SANITIZER
  GTEST_SKIP() << "under a sanitizer the previous SIGSEGV handler is the sanitizer's, which "
                  "reports the fault and exits instead of dying by the signal";
#endif
  use_fresh_process_for_death_tests();
  EXPECT_EXIT(
      {
        install_stack_overflow_handler();
        *reinterpret_cast<volatile char*>(protected_page()) = 1;
      },
      testing::KilledBySignal(SIGSEGV), "^$");
  EXPECT_EXIT(
      {
        install_stack_overflow_handler();
        raise(SIGSEGV);  // sent, not a fault: must not be swallowed
        _exit(0);
      },
      testing::KilledBySignal(SIGSEGV), "^$");
}

// //task:stack_test_no_guard_advice runs these tests as on a kernel without MADV_GUARD_INSTALL
// and says so: the pool must then have fallen back to mprotect guards.
TEST(StackTest, GuardsFallBackToMprotectWhereTheAdviceIsMissing) {
  release_stack(allocate_stack(0, 3));
  if (std::getenv("WEFT_TEST_EXPECT_MPROTECT_GUARDS") != nullptr) {
    EXPECT_TRUE(stack_pool_stats().mprotect_guards);
  } else {
    GTEST_SKIP() << "which guards a kernel gives is its own affair; only the fallback is checked";
  }
}

// The page below a stack is a guard the kernel will not read either, whether the
// advice installed it or, where advice is accepted and ignored (qemu-user),
// the mprotect fallback did; an ordinary page it reads.
TEST(StackTest, TheGuardBelowAStackIsUnreadableAndTheStackIsNot) {
  for (std::size_t size : {std::size_t{0}, std::size_t{192 * 1024}}) {
    Stack s = allocate_stack(size, 3);
    char* lo = static_cast<char*>(s.lo);
    lo[0] = 1;
    EXPECT_FALSE(kernel_refuses_to_read(lo)) << "size " << size;
    EXPECT_TRUE(kernel_refuses_to_read(lo - 1)) << "size " << size;
    EXPECT_TRUE(kernel_refuses_to_read(lo - page())) << "size " << size;
    release_stack(s);
  }
  void* m = mmap(nullptr, page(), PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(m, MAP_FAILED);
  EXPECT_TRUE(kernel_refuses_to_read(m));
  ASSERT_EQ(mprotect(m, page(), PROT_READ), 0);
  EXPECT_FALSE(kernel_refuses_to_read(m));
  munmap(m, page());
}

TEST(StackTest, InstallIsIdempotentAndSignalStackIsPerThread) {
  install_stack_overflow_handler();
  install_stack_overflow_handler();
  std::thread t([] {
    // A sanitizer may give every new thread an alternate stack of its own (ASan does, sized
    // from the CPU's signal frame: 54016 bytes on a Zen 3): ensure_signal_stack keeps it.
    stack_t before;
    ASSERT_EQ(sigaltstack(nullptr, &before), 0);
    ensure_signal_stack();
    stack_t first;
    ASSERT_EQ(sigaltstack(nullptr, &first), 0);
    EXPECT_EQ(first.ss_flags & SS_DISABLE, 0);
    if ((before.ss_flags & SS_DISABLE) == 0) {
      EXPECT_EQ(first.ss_sp, before.ss_sp);
    } else {
      EXPECT_GE(first.ss_size, 64u * 1024);
    }
    ensure_signal_stack();
    stack_t second;
    ASSERT_EQ(sigaltstack(nullptr, &second), 0);
    EXPECT_EQ(first.ss_sp, second.ss_sp);
  });
  t.join();
}

// ---- WEFT_STACK_SIZE ------------------------------------------------------

TEST(StackSizeSettingTest, ValidValues) {
  const std::size_t pg = page();
  EXPECT_EQ(parse_stack_size_setting(nullptr), 64u * 1024);
  EXPECT_EQ(parse_stack_size_setting(""), 64u * 1024);
  EXPECT_EQ(parse_stack_size_setting("65536"), 64u * 1024);
  EXPECT_EQ(parse_stack_size_setting("128K"), 128u * 1024);
  EXPECT_EQ(parse_stack_size_setting("128k"), 128u * 1024);
  EXPECT_EQ(parse_stack_size_setting("2M"), 2u << 20);
  EXPECT_EQ(parse_stack_size_setting("1024M"), std::size_t{1} << 30);
  EXPECT_EQ(parse_stack_size_setting("70000"), (70000 + pg - 1) / pg * pg);
  EXPECT_EQ(parse_stack_size_setting("1000"), kMinStackSize);
}

TEST(StackSizeSettingTest, InvalidValuesNameTheVariableAndValue) {
  for (const char* bad : {"abc", "12Q", "-5", "0", "0K", "K", " 64K", "64K ", "64KB", "1.5M",
                          "2048M", "99999999999999999999999"}) {
    try {
      parse_stack_size_setting(bad);
      ADD_FAILURE() << "accepted \"" << bad << "\"";
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("WEFT_STACK_SIZE"), std::string::npos) << what;
      EXPECT_NE(what.find(std::string("\"") + bad + "\""), std::string::npos) << what;
    }
  }
}

TEST(StackSizeSettingDeathTest, EnvironmentSetsTheDefault) {
  use_fresh_process_for_death_tests();
  setenv("WEFT_STACK_SIZE", "256K", 1);
  EXPECT_EXIT(
      {
        Stack s = allocate_stack(0, 1);
        _exit(default_stack_size() == 256 * 1024 && s.size == 256 * 1024 ? 0 : 1);
      },
      testing::ExitedWithCode(0), "");
  setenv("WEFT_STACK_SIZE", "lots", 1);
  EXPECT_EXIT(
      {
        try {
          allocate_stack(0, 1);
        } catch (const std::invalid_argument& e) {
          std::fprintf(stderr, "%s\n", e.what());
          _exit(0);
        }
        _exit(1);
      },
      testing::ExitedWithCode(0), "WEFT_STACK_SIZE=\"lots\"");
  unsetenv("WEFT_STACK_SIZE");
}

}  // namespace
}  // namespace weft::internal
