// Task stacks: page-aligned, mmap-backed stacks with a 64 KiB guard below each
// (larger than any frame a function that does not probe its stack is likely to
// have: see stack.cc), recycled through a per-thread cache and a global pool.
//
// Promises:
//  * A stack costs only the pages its task touched: memory comes from large
//    MAP_NORESERVE slabs (one mapping for many stacks, no huge pages), so a
//    task that touched one page costs one 4 KiB page plus a share of one
//    page-table page. Guards use MADV_GUARD_INSTALL (Linux >= 6.13), which
//    does not split mappings, so 100k+ stacks stay far below vm.max_map_count.
//    Older kernels (and emulators that accept the advice but ignore it, such
//    as qemu-user: the first guard is checked) fall back to mprotect guards,
//    two mappings per stack: about 32k stacks with the usual vm.max_map_count
//    of 65530.
//  * allocate_stack/release_stack are thread-safe and never block on the hot
//    path (default size, per-thread cache hit: no lock, no syscall). Release may
//    happen on any thread. Misses take a std::mutex briefly; growth mmaps.
//  * Running off the bottom of a stack hits the guard; once
//    install_stack_overflow_handler() ran and the faulting thread has an
//    alternate signal stack (ensure_signal_stack()), the process writes
//    "stack overflow in task <id>" to stderr and dies with SIGSEGV.
//  * Errors: bad sizes throw std::invalid_argument; running out of memory,
//    address space or mappings throws std::system_error with a message.
#pragma once

#include <cstddef>
#include <cstdint>

namespace weft::internal {

// 16 bytes on purpose: it then travels in two registers. With a third word it
// goes through memory, and the allocate+release pair measured 10 ns instead
// of 2 ns (store-forwarding stalls), hence the 32-bit size.
struct Stack {
  void* lo = nullptr;       // usable memory is [lo, lo + size); the guard is below lo
  std::uint32_t size = 0;   // bytes, a whole number of pages, <= kMaxStackSize
  std::uint32_t slot = 0;   // internal: where the overflow handler finds the owner id

  void* hi() const { return static_cast<char*>(lo) + size; }  // initial stack pointer
  explicit operator bool() const { return lo != nullptr; }
};

// Stacks smaller than this are rounded up to it: lazy symbol binding alone may
// save ~3-11 KiB of vector state (xsave), and signal handlers run elsewhere.
inline constexpr std::size_t kMinStackSize = 16 * 1024;
// Larger requests (from WEFT_STACK_SIZE or allocate_stack) are rejected as typos.
inline constexpr std::size_t kMaxStackSize = std::size_t{1} << 30;

// 64 KiB unless WEFT_STACK_SIZE is set (bytes, optional K or M suffix, e.g.
// "256K"), rounded up to whole pages and to at least kMinStackSize. The
// variable is read once; an invalid value throws std::invalid_argument naming
// the variable and the value (on every call, until fixed). Thread-safe.
std::size_t default_stack_size();
// The default once default_stack_size() has succeeded, else 0. Never throws: for hot paths
// that only compare sizes (a stack of size 0 does not exist).
std::size_t default_stack_size_if_known();

// The parser behind default_stack_size(), exposed for tests and tools: returns
// the rounded size for `text` (empty or null means the 64 KiB default).
std::size_t parse_stack_size_setting(const char* text);

// A stack of at least `size` bytes (0 = default_stack_size()), rounded up to
// whole pages and to kMinStackSize. Its contents are unspecified (a recycled
// stack keeps its old bytes). owner_id is what the overflow message names.
// Throws std::invalid_argument if size > kMaxStackSize, std::system_error if
// memory cannot be mapped. Thread-safe; the default size is the fast path.
Stack allocate_stack(std::size_t size, std::uint64_t owner_id);

// Returns the stack to the pool. Any thread; no-op for an empty Stack.
// Nothing may run on the stack any more.
void release_stack(Stack s);

// Leaves `s` to a task that will never run again (a runtime shut down while it waited): the
// stack is never released, and under LeakSanitizer (ASan builds) it is scanned as a root
// region, so that what the task's frames hold is not reported as leaked -- the runtime
// reported the task instead. No-op for an empty Stack. Thread-safe.
void abandon_stack(const Stack& s);

// Re-labels a stack (from allocate_stack) that the caller keeps for another
// task; allocate_stack already labels. Two loads and a relaxed store.
void set_stack_owner(const Stack& s, std::uint64_t owner_id);

// Installs the SIGSEGV/SIGBUS handler (SA_ONSTACK) that recognises guard-page
// faults. Idempotent and thread-safe. A fault that is not a stack overflow is
// passed to the handler that was installed before (e.g. a sanitizer's), or
// gets the default action. A handler installed later by someone else wins.
void install_stack_overflow_handler();

// Gives the calling thread an alternate signal stack if it has none (the
// overflow handler cannot run on the stack that just overflowed). Call it at
// the start of every thread that runs tasks. Idempotent; the stack is freed
// when the thread exits. Throws std::system_error if it cannot be mapped.
void ensure_signal_stack();

// For tests and diagnostics.
struct StackPoolStats {
  std::size_t slabs = 0;         // slabs mapped so far (never unmapped)
  std::size_t stacks_carved = 0; // stacks ever handed out from slabs
  std::size_t pooled = 0;        // stacks in the global pool (not thread caches)
  std::size_t pooled_trimmed = 0;  // of which had their pages returned
  bool mprotect_guards = false;  // true when MADV_GUARD_INSTALL was unavailable or ignored
};
StackPoolStats stack_pool_stats();

// Whether the kernel refuses to read the byte at p (EFAULT), as it must for a
// guard page: it copies it into a pipe, so a guard costs no signal. Used once,
// on the first guard installed by madvise; exposed for tests.
bool kernel_refuses_to_read(const void* p);

// Test hook: from now on, allocations of stacks of `size` bytes (a multiple of the page size,
// not the default size) throw std::system_error (ENOMEM), as when no stack can be mapped;
// 0 ends it.
void fail_stack_allocations_for_testing(std::size_t size);

// Test hook: make slabs created from now on use mprotect(PROT_NONE) guards,
// as on kernels without MADV_GUARD_INSTALL.
void force_mprotect_guards_for_testing();

}  // namespace weft::internal
