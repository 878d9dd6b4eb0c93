// Where task cores come from: mimalloc, behind a small per-thread cache that prefetches each
// block a few allocations before it hands it out. Internal to the task layer (TaskCore's
// operator new and delete).
//
// Why the cache: spawning in bulk writes every new core's cache lines, and once the cores no
// longer fit in cache each line is a miss. With 1M tasks, spawning took 68 ns a task on one
// worker, about half of it waiting for memory (with 100k tasks: 33 ns). A block taken from
// mimalloc is prefetched at once and handed out kCoreAhead allocations of its size class later,
// when its lines have arrived: 68 -> 52 ns (medians, side by side), and spawn+join of 1M tasks
// on work stealing 142 -> 129 ns a task on one worker, 110 -> 104 on two. mimalloc cannot do
// that itself: it hands out a block the moment it is asked for one.
//
// Thread safety: any thread may allocate (each has its own cache) and free any block, on any
// thread. A thread's cache holds at most kCoreAhead blocks per size class (kCoreClasses
// classes of 64-byte steps, up to kLargestCached bytes; larger sizes bypass it) and is freed
// when the thread exits. Errors: allocate_core throws std::bad_alloc.
// Sanitized builds (ASan, TSan) allocate with operator new instead of mimalloc, which Debian
// ships uninstrumented: ASan could not see a use after free in it, nor TSan the handover of
// memory between threads. The cache stays, so that it is tested there too (leaks: ASan).
#ifndef WEFT_TASK_CORE_ALLOCATOR_H_
#define WEFT_TASK_CORE_ALLOCATOR_H_

#include <cstddef>

namespace weft::internal {

inline constexpr std::size_t kCoreSizeStep = 64;       // a cache line
inline constexpr std::size_t kLargestCached = 512;     // a core with up to ~270 bytes of capture
inline constexpr int kCoreClasses = static_cast<int>(kLargestCached / kCoreSizeStep);
inline constexpr int kCoreAhead = 8;  // the prefetch distance, in allocations of one class

// A block of at least `size` bytes (> 0), aligned as operator new's.
void* allocate_core(std::size_t size);
// Frees a block from allocate_core, allocated on any thread.
void free_core(void* p) noexcept;
// Asks mimalloc to back its memory with transparent huge pages, unless the user chose
// (MIMALLOC_LARGE_OS_PAGES); at most once per process. No effect in sanitized builds.
void prefer_huge_pages();
// How many blocks the calling thread's cache holds (for tests).
int cached_core_blocks();

}  // namespace weft::internal

#endif  // WEFT_TASK_CORE_ALLOCATOR_H_
