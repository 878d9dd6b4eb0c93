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
// And the cache recycles: a freed core goes back to its size class on the freeing thread (up
// to kCoreRecycled of them), and that class's next allocation there takes the one freed last.
// Fork-join code frees a finished child and spawns the next at once, so that block is still
// in cache; mimalloc would hand out another (its free list serves older blocks first), whose
// first line mi_malloc itself reads: a miss before the prefetch can start. Work stealing, side
// by side (p25 of 9 runs, functions 64-byte aligned so that layout stays put): fib(30) with a
// task per call 320 -> 300 ms on one worker, skynet 96.6 -> 92.7 ms (2 workers: 54.6 -> 52.5);
// spawn+join of 1M tasks, which frees nothing until all are spawned, unchanged within 3%.
//
// Thread safety: any thread may allocate (each has its own cache) and free any block, on any
// thread. A thread's cache holds at most kCoreAhead + kCoreRecycled blocks per size class
// (kCoreClasses classes of 64-byte steps, up to kLargestCached bytes; larger sizes bypass it)
// and is freed when the thread exits. Errors: allocate_core throws std::bad_alloc.
// Sanitized builds (ASan, TSan) allocate with operator new instead of mimalloc, which Debian
// ships uninstrumented: ASan could not see a use after free in it, nor TSan the handover of
// memory between threads. The cache stays, so that it is tested there too (leaks: ASan), but
// sanitized builds recycle nothing: to ASan a core used after it was freed and handed out again
// would be a live object, where its quarantine keeps a freed block unused for long; TSan would
// carry the old core's synchronization over to the new one, which can hide a race.
#ifndef WEFT_TASK_CORE_ALLOCATOR_H_
#define WEFT_TASK_CORE_ALLOCATOR_H_

#include <cstddef>
#include <cstdint>

namespace weft::internal {

inline constexpr std::size_t kCoreSizeStep = 64;       // a cache line
inline constexpr std::size_t kLargestCached = 512;     // a core with up to ~270 bytes of capture
inline constexpr int kCoreClasses = static_cast<int>(kLargestCached / kCoreSizeStep);
inline constexpr int kCoreAhead = 8;  // the prefetch distance, in allocations of one class
// Freed blocks kept per class for reuse (none in sanitized builds).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr int kCoreRecycled = 0;
#else
inline constexpr int kCoreRecycled = 16;
#endif

// A block of at least `size` bytes (> 0), aligned as operator new's.
void* allocate_core(std::size_t size);
// Frees a block from allocate_core(size), allocated on any thread: `size` must be the one it
// was allocated with (a class's sized operator delete passes it).
void free_core(void* p, std::size_t size) noexcept;
// Asks mimalloc to back its memory with transparent huge pages, unless the user chose
// (MIMALLOC_LARGE_OS_PAGES); at most once per process. No effect in sanitized builds.
void prefer_huge_pages();
// How many blocks the calling thread's cache holds ahead (for tests).
int cached_core_blocks();
// How many freed blocks it holds for reuse (for tests).
int recycled_core_blocks();
// How many blocks exiting threads have given back so far, in the whole process (for tests).
std::int64_t core_blocks_released_at_thread_exit();

}  // namespace weft::internal

#endif  // WEFT_TASK_CORE_ALLOCATOR_H_
