#include "weft/task/task_core.h"

#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "weft/task/core_allocator.h"
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

// Spawn-heavy programs create and free millions of cores: see core_allocator.h.
void* TaskCore::operator new(std::size_t size) { return allocate_core(size); }
void TaskCore::operator delete(void* p, std::size_t size) { free_core(p, size); }

// Without these, a class-scope operator new hides the global aligned one, and an over-aligned
// task would get the cache's blocks, aligned as operator new's (16 bytes). Rare enough to skip
// the cache.
void* TaskCore::operator new(std::size_t size, std::align_val_t align) {
  return ::operator new(size, align);
}
void TaskCore::operator delete(void* p, std::size_t size, std::align_val_t align) {
  ::operator delete(p, size, align);
}

}  // namespace weft::internal
