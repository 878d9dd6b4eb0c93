#include "weft/task/task_core.h"

#include <mimalloc.h>

#include <cstdlib>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "weft/task/on_done.h"
#include "weft/task/task_local_storage.h"

namespace weft::internal {
namespace {

// Ids start at 1 so that 0 can mean "no task" in diagnostics.
std::atomic<std::uint64_t> next_id_block{1};
constexpr std::uint64_t kIdBlock = 1024;

// Each thread takes ids from a block of its own: one shared counter bumped on every spawn
// bounced its cache line between workers and cost more than the rest of a spawn (38% of
// skynet on two workers). So ids are unique but only ordered within a thread. Out of line
// (and never inlined into a caller that may switch tasks): see weft/task/current_task.h.
__attribute__((noinline)) std::uint64_t new_task_id() {
  thread_local std::uint64_t next = 0;
  thread_local std::uint64_t end = 0;
  if (next == end) {
    next = next_id_block.fetch_add(kIdBlock, std::memory_order_relaxed);
    end = next + kIdBlock;
  }
  return next++;
}

}  // namespace

TaskCore::TaskCore() : Waiter(Kind::kTask) {
  node.task_id = new_task_id();
}

TaskCore::~TaskCore() { discard_done_callbacks(this); }

void TaskCore::throw_stack_too_large(std::size_t bytes) const {
  // Thrown where the caller can catch it: the stack is allocated on a worker.
  throw std::invalid_argument(absl::StrCat("task ", id(), ": stack size ", bytes,
                                           " bytes exceeds the maximum of ", kMaxStackSize,
                                           " (1 GiB)"));
}

// Spawn-heavy programs create and free millions of cores; mimalloc's thread-local free lists
// make that a few nanoseconds, including frees on a thread other than the allocating one.
// Sanitized builds use the C++ allocator instead: Debian's mimalloc is not instrumented, so
// ASan could not see a use after free and TSan not the handover of memory between threads.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
void* TaskCore::operator new(std::size_t size) { return ::operator new(size); }
void TaskCore::operator delete(void* p) { ::operator delete(p); }
#else
void* TaskCore::operator new(std::size_t size) {
  void* p = mi_malloc(size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void TaskCore::operator delete(void* p) { mi_free(p); }
#endif

// A program that spawns a million tasks sweeps their cores (256 MB) four times: spawn, run,
// join, free. On 4 KiB pages that is a TLB miss every 16 cores, and it showed: spawn+join of
// 1M tasks ran 10% faster (122 -> 110 ns a task, one worker) with mimalloc's segments on
// transparent huge pages. mimalloc reads its options once, at process start, so this sets the
// option itself rather than its default; a user who set MIMALLOC_LARGE_OS_PAGES keeps theirs.
void TaskCore::prefer_huge_pages() {
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  static const bool once = [] {
    if (std::getenv("MIMALLOC_LARGE_OS_PAGES") == nullptr) {
      mi_option_enable(mi_option_large_os_pages);
    }
    return true;
  }();
  (void)once;
#endif
}

}  // namespace weft::internal
