#include "weft/task/task_core.h"

#include <mimalloc.h>

#include "weft/task/task_local_storage.h"

namespace weft::internal {
namespace {
// Ids start at 1 so that 0 can mean "no task" in diagnostics.
std::atomic<std::uint64_t> next_task_id{1};
}  // namespace

TaskCore::TaskCore()
    : Waiter(Kind::kTask), id(next_task_id.fetch_add(1, std::memory_order_relaxed)) {
  node.task_id = id;
  node.runtime_task = this;
}

TaskCore::~TaskCore() = default;

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

}  // namespace weft::internal
