// Stack pool and stack-overflow reporting; see stack.h for the contract.
//
// Layout: a slab is one anonymous mapping of `per_slab` slots; slot k is
// [guard][usable stack] at base + k * stride (the guard: kGuardBytes, below). One mapping per slab keeps
// the VMA count tiny (100k default stacks ~ 1600 slabs, and adjacent slabs
// usually merge into one VMA). Slabs are never unmapped: their address range
// is cheap, and the overflow handler reads the slab registry without locks,
// which is only safe if entries never go away.
//
// Pooling: the default size has a per-thread cache (no lock, no syscall);
// misses move stacks in batches to and from a global pool under a std::mutex.
// Released stacks keep their touched pages: the next task will touch the same
// top pages again, and dropping them would cost a syscall plus page faults per
// task. To keep a burst of deep or many stacks from pinning memory forever, the
// global pool keeps at most `warm_limit` stacks as they are (about 16 MiB of
// stack range per size class); beyond twice that, the oldest are trimmed with
// MADV_DONTNEED (outside the lock, one call per run of neighbouring stacks)
// and kept as "cold" stacks that cost no memory until reused. Thread caches
// hold at most kCacheCap stacks each and are not trimmed.

#include "weft/task/stack.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define WEFT_STACK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_STACK_ASAN 1
#endif
#endif
#ifdef WEFT_STACK_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/lsan_interface.h>
#endif

namespace weft::internal {
namespace {

// Not in glibc 2.36 headers; the value is the kernel's ABI.
constexpr int kMadvGuardInstall = 102;

constexpr std::size_t kDefaultStackSize = 64 * 1024;
constexpr std::size_t kCacheCap = 32;   // per-thread cache, default size only
constexpr std::size_t kBatch = 16;      // stacks moved per cache refill/flush
constexpr std::size_t kMaxSlabs = std::size_t{1} << 16;
constexpr std::size_t kSlabTargetBytes = 8u << 20;
// Stack::slot is (slab index << kSlotBits) | slot within the slab.
constexpr unsigned kSlotBits = 6;
constexpr std::size_t kMaxPerSlab = std::size_t{1} << kSlotBits;
static_assert((kMaxSlabs << kSlotBits) - 1 <= UINT32_MAX);
static_assert(kMaxStackSize <= UINT32_MAX);
constexpr std::size_t kWarmBytes = 16u << 20;
constexpr std::size_t kAltStackSize = 128 * 1024;

std::size_t page_size() {
  static const std::size_t p = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return p;
}

// Below each stack: not one page but 64 KiB. A function whose frame is larger than the guard
// and that does not probe its stack as it grows it (code built without
// -fstack-clash-protection: Debian 12's libraries; or with GCC's AArch64 default, which assumes
// 64 KiB guards) would step over a one-page guard into the stack below, where an overflow
// corrupts another task silently instead of being reported. The guard costs address space
// only, and no more mappings than a page: it is one marked range (or one PROT_NONE mapping).
constexpr std::size_t kGuardBytes = 64 * 1024;

std::size_t guard_size() {
  static const std::size_t g = std::max(kGuardBytes, page_size());
  return g;
}

std::size_t round_size(std::size_t n) {
  const std::size_t pg = page_size();
  n = std::max(n, kMinStackSize);
  return (n + pg - 1) / pg * pg;
}

// ---- slab registry, read by the signal handler -------------------------

// Written once under the pool mutex, then published by g_slab_count (release);
// the handler reads up to g_slab_count (acquire) and never takes a lock.
struct SlabRecord {
  std::uintptr_t base;
  std::size_t stride;
  std::size_t guard;
  std::size_t count;
  std::atomic<std::uint64_t>* owners;
};
SlabRecord g_slabs[kMaxSlabs];
std::atomic<std::size_t> g_slab_count{0};

std::atomic<std::uint64_t>& owner_cell(const Stack& s) {
  return g_slabs[s.slot >> kSlotBits].owners[s.slot & (kMaxPerSlab - 1)];
}

struct GuardHit {
  std::uint64_t owner;
  std::uintptr_t stack_lo;  // bottom of the usable stack above the guard
  std::size_t guard;        // guard size (guard_size())
};

// Which slab slot's guard page holds `addr`; false if none.
bool find_guard(std::uintptr_t addr, GuardHit* hit) {
  const std::size_t n = g_slab_count.load(std::memory_order_acquire);
  for (std::size_t i = 0; i < n; ++i) {
    const SlabRecord& r = g_slabs[i];
    if (addr < r.base || addr - r.base >= r.stride * r.count) continue;
    const std::size_t off = addr - r.base;
    if (off % r.stride >= r.guard) return false;
    hit->owner = r.owners[off / r.stride].load(std::memory_order_relaxed);
    hit->stack_lo = r.base + off / r.stride * r.stride + r.guard;
    hit->guard = r.guard;
    return true;
  }
  return false;
}

// ---- the global pool ---------------------------------------------------

struct ClassPool {
  std::size_t size = 0;
  std::size_t stride = 0;
  std::size_t per_slab = 0;
  std::size_t warm_limit = 0;
  std::vector<Stack> warm;  // pages kept; back = most recently released
  std::vector<Stack> cold;  // pages returned to the kernel
  std::size_t slab = kMaxSlabs;  // registry index being carved
  std::size_t next_slot = 0;
};

struct GlobalPool {
  std::mutex mu;
  std::map<std::size_t, ClassPool> classes;
  std::size_t stacks_carved = 0;
  bool mprotect_guards = false;
  bool guard_checked = false;  // the first guard installed by advice was checked (install_guard)
};

// Leaked so that thread caches flushed during exit still find it.
GlobalPool& pool() {
  static GlobalPool* const p = new GlobalPool;
  return *p;
}

ClassPool& class_for(GlobalPool& g, std::size_t size) {
  ClassPool& c = g.classes[size];
  if (c.size == 0) {
    c.size = size;
    c.stride = size + guard_size();
    c.per_slab = std::clamp<std::size_t>(kSlabTargetBytes / c.stride, 1, kMaxPerSlab);
    c.warm_limit = std::max<std::size_t>(kBatch, kWarmBytes / size);
  }
  return c;
}

std::string max_map_count_text() {
  std::string v = "unknown";
  if (FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r")) {
    char buf[32];
    if (std::fgets(buf, sizeof buf, f)) {
      v = buf;
      while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
    }
    std::fclose(f);
  }
  return v;
}

// MADV_GUARD_INSTALL (Linux >= 6.13) turns the page into a guard without
// splitting the mapping. EINVAL means an older kernel (or mlock'd memory); we
// then fall back to mprotect(PROT_NONE) for good. That fallback splits the
// mapping around every guard (two VMAs per stack), so it runs into
// vm.max_map_count at roughly 32k stacks. The first guard installed by advice
// is checked (`*checked`): an emulator can accept advice it does not know and
// ignore it (qemu-user does), and a guard that does not guard would let an
// overflow run silently into the stack below. Such a page is readable, so the
// fallback takes over from it on.
void install_guard(char* p, std::size_t len, bool* use_mprotect, bool* checked) {
  for (int tries = 0; !*use_mprotect; ++tries) {
    if (madvise(p, len, kMadvGuardInstall) == 0) {
      if (*checked) return;
      *checked = true;
      if (kernel_refuses_to_read(p)) return;
      *use_mprotect = true;
      break;
    }
    if ((errno == EINTR || errno == EAGAIN) && tries < 100) continue;
    if (errno == EINVAL) {
      *use_mprotect = true;
      break;
    }
    throw std::system_error(errno, std::generic_category(),
                            "weft: madvise(MADV_GUARD_INSTALL) on a stack guard page failed");
  }
  if (mprotect(p, len, PROT_NONE) == 0) return;
  const int err = errno;
  if (err == ENOMEM) {
    throw std::system_error(
        err, std::generic_category(),
        "weft: cannot protect a stack guard page: without MADV_GUARD_INSTALL (Linux < 6.13, "
        "or an emulator that ignores it), "
        "each stack costs two memory mappings, and the process has reached "
        "vm.max_map_count (" + max_map_count_text() +
        "); raise it (sysctl vm.max_map_count) or keep fewer stacks alive");
  }
  throw std::system_error(err, std::generic_category(),
                          "weft: mprotect(PROT_NONE) on a stack guard page failed");
}

// Maps and registers a new slab for `c`. Caller holds g.mu.
void add_slab(GlobalPool& g, ClassPool& c) {
  const std::size_t index = g_slab_count.load(std::memory_order_relaxed);
  if (index == kMaxSlabs) {
    throw std::system_error(ENOMEM, std::generic_category(),
                            "weft: stack slab registry is full (" + std::to_string(kMaxSlabs) +
                                " slabs); too many task stacks alive");
  }
  const std::size_t bytes = c.stride * c.per_slab;
  void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (m == MAP_FAILED) {
    const int err = errno;
    throw std::system_error(err, std::generic_category(),
                            "weft: mmap of a " + std::to_string(bytes) +
                                "-byte stack slab failed (out of address space or memory, or "
                                "vm.max_map_count=" + max_map_count_text() + " reached)");
  }
  char* base = static_cast<char*>(m);
  // With THP "always", one touched page could otherwise fault in 2 MiB.
  // Errors are harmless (THP may be compiled out).
  madvise(base, bytes, MADV_NOHUGEPAGE);
  try {
    for (std::size_t k = 0; k < c.per_slab; ++k) {
      install_guard(base + k * c.stride, guard_size(), &g.mprotect_guards, &g.guard_checked);
    }
  } catch (...) {
    munmap(base, bytes);
    throw;
  }
  auto* owners = new std::atomic<std::uint64_t>[c.per_slab]();
  g_slabs[index] = SlabRecord{reinterpret_cast<std::uintptr_t>(base), c.stride, guard_size(),
                              c.per_slab, owners};
  g_slab_count.store(index + 1, std::memory_order_release);
  c.slab = index;
  c.next_slot = 0;
}

// Moves up to `want` stacks of class `size` into `out`, at least one. Throws
// only if none could be had.
std::size_t take(std::size_t size, Stack* out, std::size_t want) {
  GlobalPool& g = pool();
  std::lock_guard<std::mutex> lock(g.mu);
  ClassPool& c = class_for(g, size);
  std::size_t got = 0;
  for (; got < want && !c.warm.empty(); ++got) {
    out[got] = c.warm.back();
    c.warm.pop_back();
  }
  for (; got < want && !c.cold.empty(); ++got) {
    out[got] = c.cold.back();
    c.cold.pop_back();
  }
  while (got < want) {
    if (c.slab == kMaxSlabs || c.next_slot == c.per_slab) {
      try {
        add_slab(g, c);
      } catch (...) {
        if (got == 0) throw;
        break;
      }
    }
    const SlabRecord& r = g_slabs[c.slab];
    const std::size_t k = c.next_slot++;
    out[got++] = Stack{reinterpret_cast<void*>(r.base + k * r.stride + r.guard),
                       static_cast<std::uint32_t>(c.size),
                       static_cast<std::uint32_t>(c.slab << kSlotBits | k)};
    ++g.stacks_carved;
  }
  return got;
}

// Returns the pages of `v` to the kernel, one madvise per run of adjacent slots.
void trim(std::vector<Stack>& v) {
  std::sort(v.begin(), v.end(), [](const Stack& a, const Stack& b) { return a.lo < b.lo; });
  const std::size_t guard = guard_size();
  std::size_t i = 0;
  while (i < v.size()) {
    char* start = static_cast<char*>(v[i].lo);
    char* end = start + v[i].size;
    std::size_t j = i + 1;
    while (j < v.size() && static_cast<char*>(v[j].lo) == end + guard) {
      end = static_cast<char*>(v[j].lo) + v[j].size;
      ++j;
    }
    // Guard markers survive MADV_DONTNEED, so the range may span them.
    // A failure only means the memory stays resident.
    madvise(start, static_cast<std::size_t>(end - start), MADV_DONTNEED);
    i = j;
  }
}

void give(const Stack* in, std::size_t n) {
  if (n == 0) return;
  GlobalPool& g = pool();
  std::vector<Stack> excess;
  {
    std::lock_guard<std::mutex> lock(g.mu);
    ClassPool& c = class_for(g, in[0].size);
    c.warm.insert(c.warm.end(), in, in + n);
    if (c.warm.size() <= 2 * c.warm_limit) return;
    const auto cut = c.warm.begin() + static_cast<std::ptrdiff_t>(c.warm.size() - c.warm_limit);
    excess.assign(c.warm.begin(), cut);
    c.warm.erase(c.warm.begin(), cut);
  }
  trim(excess);
  std::lock_guard<std::mutex> lock(g.mu);
  ClassPool& c = class_for(g, in[0].size);
  c.cold.insert(c.cold.end(), excess.begin(), excess.end());
}

// ---- per-thread cache ---------------------------------------------------

// Constant-initialised and trivially destructible, so the hot path reaches it
// with a plain TLS access. limit == 0 sends every release to the slow path,
// which arms the cache (registers CacheReaper) on first use. allocate_stack and release_stack,
// which reach it, are never inlined (gnu::noinline), not even by link-time optimization: the
// runtime calls them on both sides of a switch, which may change threads (context.h).
struct ThreadCache {
  std::size_t count = 0;
  std::size_t limit = 0;
  bool exited = false;
  Stack items[kCacheCap];
};
constinit thread_local ThreadCache tl_cache;

std::atomic<std::size_t> g_default_size{0};

struct CacheReaper {
  bool armed = false;
  ~CacheReaper() {
    ThreadCache& c = tl_cache;
    c.exited = true;  // later releases on this thread bypass the cache
    c.limit = 0;
    give(c.items, c.count);
    c.count = 0;
  }
};
thread_local CacheReaper tl_reaper;

bool arm_cache(ThreadCache& c) {
  if (c.exited) return false;
  if (c.limit == 0) {
    tl_reaper.armed = true;
    c.limit = kCacheCap;
  }
  return true;
}

#ifdef WEFT_STACK_ASAN
// A task abandoned mid-run (or a frame that never returns) leaves ASan
// redzone poison on its stack; the next task on it would see false reports.
void unpoison(const Stack& s) {
  if (void* p = __asan_region_is_poisoned(s.lo, s.size)) {
    __asan_unpoison_memory_region(p, static_cast<std::size_t>(static_cast<char*>(s.hi()) -
                                                              static_cast<char*>(p)));
  }
}
#else
void unpoison(const Stack&) {}
#endif

std::atomic<std::size_t> g_failing_size{0};  // fail_stack_allocations_for_testing()

[[gnu::noinline]] Stack allocate_slow(std::size_t size, std::uint64_t owner_id) {
  if (size > kMaxStackSize) {
    throw std::invalid_argument("weft: stack size " + std::to_string(size) +
                                " exceeds the maximum of " + std::to_string(kMaxStackSize));
  }
  const std::size_t d = size == 0 ? default_stack_size() : g_default_size.load();
  const std::size_t n = size == 0 ? d : round_size(size);
  if (__builtin_expect(n == g_failing_size.load(std::memory_order_relaxed), 0)) {
    throw std::system_error(ENOMEM, std::generic_category(),
                            "weft: no stack of " + std::to_string(n) + " bytes for task " +
                                std::to_string(owner_id) + " (fail_stack_allocations_for_testing)");
  }
  Stack s;
  ThreadCache& c = tl_cache;
  if (n == d && arm_cache(c)) {
    if (c.count == 0) c.count = take(n, c.items, kBatch);
    s = c.items[--c.count];
  } else {
    take(n, &s, 1);
  }
  owner_cell(s).store(owner_id, std::memory_order_relaxed);
  return s;
}

[[gnu::noinline]] void release_slow(Stack s) {
  ThreadCache& c = tl_cache;
  if (s.size == g_default_size.load(std::memory_order_relaxed) && arm_cache(c)) {
    if (c.count == c.limit) {
      c.count -= kBatch;
      give(c.items + c.count, kBatch);
    }
    c.items[c.count++] = s;
    return;
  }
  give(&s, 1);
}

// ---- overflow signal handler ---------------------------------------------

struct sigaction g_prev_segv;
struct sigaction g_prev_bus;
std::once_flag g_handler_once;

void write_all(const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = write(STDERR_FILENO, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

void report_overflow(std::uint64_t owner) {
  char buf[64] = "stack overflow in task ";
  std::size_t len = sizeof("stack overflow in task ") - 1;
  char digits[24];
  std::size_t nd = 0;
  do {
    digits[nd++] = static_cast<char>('0' + owner % 10);
    owner /= 10;
  } while (owner != 0);
  while (nd > 0) buf[len++] = digits[--nd];
  buf[len++] = '\n';
  write_all(buf, len);
}

void set_default_action(int sig) {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, nullptr);
}

std::uintptr_t interrupted_sp(void* ctx) {
  if (ctx == nullptr) return 0;
  const auto* uc = static_cast<const ucontext_t*>(ctx);
#if defined(__x86_64__)
  return static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RSP]);
#elif defined(__aarch64__)
  return static_cast<std::uintptr_t>(uc->uc_mcontext.sp);
#else
  (void)uc;
  return 0;
#endif
}

// Async-signal-safe: reads the lock-free registry, write(2), sigaction(2).
void on_fault(int sig, siginfo_t* info, void* ctx) {
  const int saved_errno = errno;
  GuardHit hit{};
  const std::uintptr_t sp = interrupted_sp(ctx);
  // si_code > 0: raised by the kernel for a fault, so si_addr is meaningful.
  // An overflow faults in the guard page: with -fstack-clash-protection (which
  // the build uses) frames larger than a page are probed page by page, so the
  // first touch below a stack is always in its guard. Without probing, a big
  // frame could jump the guard into the stack below, which no handler can see.
  // Stack accesses are at most a red zone (128 bytes on x86-64) below sp, so a
  // real overflow has sp in the guard or at most a little above it; a guard hit
  // with sp elsewhere -- below it, on the stack of the slot underneath, or on
  // some other stack, which may lie above or below the slabs -- is a stray
  // pointer into a guard, not an overflow. And if the frame allocation left sp
  // inside a guard while the access fell elsewhere (unprobed large frame), sp
  // alone identifies the stack.
  const bool overflow =
      info != nullptr && info->si_code > 0 &&
      ((find_guard(reinterpret_cast<std::uintptr_t>(info->si_addr), &hit) &&
        (sp == 0 || (sp >= hit.stack_lo - hit.guard && sp < hit.stack_lo + hit.guard))) ||
       find_guard(sp, &hit));
  if (overflow) {
    report_overflow(hit.owner);
    // Returning re-executes the faulting access, which now kills the process
    // with SIGSEGV (and a core dump) like any other crash.
    set_default_action(sig);
    errno = saved_errno;
    return;
  }
  const struct sigaction& prev = sig == SIGBUS ? g_prev_bus : g_prev_segv;
  errno = saved_errno;
  // SA_SIGINFO with SIG_DFL or SIG_IGN in the union (a handler that was reset, say) is no
  // function to call: the cases below handle those.
  if ((prev.sa_flags & SA_SIGINFO) != 0 && prev.sa_handler != SIG_DFL &&
      prev.sa_handler != SIG_IGN) {
    prev.sa_sigaction(sig, info, ctx);
    return;
  }
  if (prev.sa_handler != SIG_DFL && prev.sa_handler != SIG_IGN) {
    prev.sa_handler(sig);
    return;
  }
  const bool sent = info == nullptr || info->si_code <= 0;  // kill(), raise(), ...
  if (prev.sa_handler == SIG_IGN && sent) return;
  // A real fault cannot be ignored (it would repeat forever): default action.
  set_default_action(sig);
  if (sent) raise(sig);  // blocked until we return, then delivered
  errno = saved_errno;
}

// ---- per-thread alternate signal stack -------------------------------------

struct AltStack {
  char* map = nullptr;
  std::size_t bytes = 0;
  ~AltStack() {
    if (map == nullptr) return;
    stack_t cur;
    if (sigaltstack(nullptr, &cur) != 0) return;
    // Someone else may have replaced it, or we may be running on it; leaking
    // beats pulling a stack out from under a handler.
    if (cur.ss_sp != map + page_size() || (cur.ss_flags & SS_ONSTACK) != 0) return;
    stack_t off{};
    off.ss_flags = SS_DISABLE;
    if (sigaltstack(&off, nullptr) == 0) munmap(map, bytes);
  }
};
thread_local AltStack tl_alt_stack;

}  // namespace

// ---- public API ---------------------------------------------------------

std::size_t parse_stack_size_setting(const char* text) {
  if (text == nullptr || *text == '\0') return round_size(kDefaultStackSize);
  auto bad = [&](const char* why) {
    return std::invalid_argument(std::string("weft: WEFT_STACK_SIZE=\"") + text +
                                 "\" is not a valid stack size (" + why +
                                 "); expected bytes with an optional K or M suffix, "
                                 "e.g. 65536, 256K or 1M");
  };
  const char* p = text;
  std::size_t value = 0;
  if (*p < '0' || *p > '9') throw bad("no number");
  for (; *p >= '0' && *p <= '9'; ++p) {
    value = value * 10 + static_cast<std::size_t>(*p - '0');
    if (value > kMaxStackSize) throw bad("more than 1G");
  }
  std::size_t unit = 1;
  if (*p == 'K' || *p == 'k') {
    unit = 1024;
    ++p;
  } else if (*p == 'M' || *p == 'm') {
    unit = 1024 * 1024;
    ++p;
  }
  if (*p != '\0') throw bad("unexpected characters after the number");
  if (value == 0) throw bad("zero");
  if (value > kMaxStackSize / unit) throw bad("more than 1G");
  return round_size(value * unit);
}

std::size_t default_stack_size_if_known() {
  return g_default_size.load(std::memory_order_acquire);
}

std::size_t default_stack_size() {
  std::size_t d = g_default_size.load(std::memory_order_acquire);
  if (d != 0) return d;
  // Racing first callers compute the same value.
  d = parse_stack_size_setting(std::getenv("WEFT_STACK_SIZE"));
  g_default_size.store(d, std::memory_order_release);
  return d;
}

[[gnu::noinline]] Stack allocate_stack(std::size_t size, std::uint64_t owner_id) {
  ThreadCache& c = tl_cache;
  // A non-empty cache implies the default size is known.
  if (c.count != 0 && (size == 0 || size == g_default_size.load(std::memory_order_relaxed))) {
    Stack s = c.items[--c.count];
    owner_cell(s).store(owner_id, std::memory_order_relaxed);
    return s;
  }
  return allocate_slow(size, owner_id);
}

[[gnu::noinline]] void release_stack(Stack s) {
  if (s.lo == nullptr) return;
  unpoison(s);
  ThreadCache& c = tl_cache;
  if (c.count < c.limit && s.size == g_default_size.load(std::memory_order_relaxed)) {
    c.items[c.count++] = s;
    return;
  }
  release_slow(s);
}

void abandon_stack(const Stack& s) {
#ifdef WEFT_STACK_ASAN
  if (s.lo != nullptr) __lsan_register_root_region(s.lo, s.size);
#else
  static_cast<void>(s);
#endif
}

void set_stack_owner(const Stack& s, std::uint64_t owner_id) {
  owner_cell(s).store(owner_id, std::memory_order_relaxed);
}

void install_stack_overflow_handler() {
  std::call_once(g_handler_once, [] {
    // Read the previous handlers before ours can run, so that a fault racing
    // with installation never sees them half-written.
    sigaction(SIGSEGV, nullptr, &g_prev_segv);
    sigaction(SIGBUS, nullptr, &g_prev_bus);
    struct sigaction sa {};
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, nullptr) != 0 || sigaction(SIGBUS, &sa, nullptr) != 0) {
      throw std::system_error(errno, std::generic_category(),
                              "weft: cannot install the stack overflow signal handler");
    }
  });
}

[[gnu::noinline]] void ensure_signal_stack() {
  stack_t cur;
  if (sigaltstack(nullptr, &cur) != 0) {
    throw std::system_error(errno, std::generic_category(), "weft: sigaltstack query failed");
  }
  if ((cur.ss_flags & SS_DISABLE) == 0) return;  // ours, a sanitizer's or the app's
  const std::size_t pg = page_size();
  std::size_t size = kAltStackSize;
#ifdef _SC_SIGSTKSZ
  const long want = sysconf(_SC_SIGSTKSZ);
  if (want > 0) size = std::max(size, 4 * static_cast<std::size_t>(want));
#endif
  size = (size + pg - 1) / pg * pg;
  void* m = mmap(nullptr, size + pg, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (m == MAP_FAILED) {
    throw std::system_error(errno, std::generic_category(),
                            "weft: mmap of an alternate signal stack failed");
  }
  char* base = static_cast<char*>(m);
  try {
    bool use_mprotect = false, checked = false;  // checked per thread: rare enough
    install_guard(base, pg, &use_mprotect, &checked);
  } catch (...) {
    munmap(base, size + pg);
    throw;
  }
  stack_t ss{};
  ss.ss_sp = base + pg;
  ss.ss_size = size;
  if (sigaltstack(&ss, nullptr) != 0) {
    const int err = errno;
    munmap(base, size + pg);
    throw std::system_error(err, std::generic_category(), "weft: sigaltstack failed");
  }
  tl_alt_stack.map = base;
  tl_alt_stack.bytes = size + pg;
}

StackPoolStats stack_pool_stats() {
  GlobalPool& g = pool();
  std::lock_guard<std::mutex> lock(g.mu);
  StackPoolStats s;
  s.slabs = g_slab_count.load(std::memory_order_relaxed);
  s.stacks_carved = g.stacks_carved;
  for (const auto& [size, c] : g.classes) {
    s.pooled += c.warm.size() + c.cold.size();
    s.pooled_trimmed += c.cold.size();
  }
  s.mprotect_guards = g.mprotect_guards;
  return s;
}

bool kernel_refuses_to_read(const void* p) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return true;  // cannot tell: trust the kernel
  const ssize_t n = write(fds[1], p, 1);
  const int err = errno;
  close(fds[0]);
  close(fds[1]);
  return n < 0 && err == EFAULT;
}

void fail_stack_allocations_for_testing(std::size_t size) {
  g_failing_size.store(size, std::memory_order_relaxed);
}

void force_mprotect_guards_for_testing() {
  GlobalPool& g = pool();
  std::lock_guard<std::mutex> lock(g.mu);
  g.mprotect_guards = true;
}

}  // namespace weft::internal
