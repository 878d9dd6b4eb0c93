#include "weft/task/core_allocator.h"

#include <mimalloc.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

#include "weft/task/current_task.h"

namespace weft::internal {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
void* backend_allocate(std::size_t bytes) noexcept { return ::operator new(bytes, std::nothrow); }
void backend_free(void* p) noexcept { ::operator delete(p); }
#else
constexpr bool kSanitized = false;
void* backend_allocate(std::size_t bytes) noexcept { return mi_malloc(bytes); }
void backend_free(void* p) noexcept { mi_free(p); }
#endif

void* allocate_or_throw(std::size_t bytes) {
  void* p = backend_allocate(bytes);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

// Trivially destructible, so that the hot path reads it with no initialisation check; the
// blocks are given back by CacheRelease, which the first block a thread caches brings to life.
struct CoreCache {
  void* blocks[kCoreClasses][kCoreAhead];
  unsigned char next[kCoreClasses];  // per class, the slot the next allocation takes
  // Per class, blocks freed on this thread, the last freed on top (core_allocator.h).
  void* recycled[kCoreClasses][kCoreRecycled > 0 ? kCoreRecycled : 1];
  unsigned char recycled_count[kCoreClasses];
  int held;
  bool release_registered;
  bool exited;  // the thread is exiting and its cache is gone: allocate straight from mimalloc
};
thread_local constinit CoreCache tls_cache{};

std::atomic<std::int64_t> g_released_at_exit{0};  // blocks, for tests

struct CacheRelease {
  ~CacheRelease() {
    CoreCache& cache = tls_cache;
    cache.exited = true;
    std::int64_t released = 0;
    for (auto& row : cache.blocks) {
      for (void*& block : row) {
        if (block != nullptr) {
          backend_free(block);
          ++released;
        }
        block = nullptr;
      }
    }
    for (int c = 0; c < kCoreClasses; ++c) {
      while (cache.recycled_count[c] > 0) {
        backend_free(cache.recycled[c][--cache.recycled_count[c]]);
        ++released;
      }
    }
    cache.held = 0;
    g_released_at_exit.fetch_add(released, std::memory_order_relaxed);
  }
};
thread_local CacheRelease tls_release;

[[gnu::cold, gnu::noinline]] void register_release(CoreCache& cache) {
  cache.release_registered = true;
  // Naming it constructs it and registers its destructor for this thread's exit.
  static_cast<void>(&tls_release);
}

// Sizes the cache serves, and their class: the same for an allocation and its free.
bool cached_size(std::size_t size) { return size != 0 && size <= kLargestCached; }
int class_of(std::size_t size) { return static_cast<int>((size - 1) / kCoreSizeStep); }

void prefetch_for_write(void* p, std::size_t bytes) {
  auto* c = static_cast<char*>(p);
  for (std::size_t off = 0; off < bytes; off += kCoreSizeStep) __builtin_prefetch(c + off, 1, 3);
}

}  // namespace

WEFT_THREAD_STATE_ACCESSOR void* allocate_core(std::size_t size) {
  CoreCache& cache = tls_cache;
  if (!cached_size(size)) return allocate_or_throw(size);
  const int c = class_of(size);
  // Always the whole class: the block may be freed on a thread that recycles it for the class.
  const std::size_t bytes = static_cast<std::size_t>(c + 1) * kCoreSizeStep;
  if (cache.exited) return allocate_or_throw(bytes);
  if (cache.recycled_count[c] > 0) return cache.recycled[c][--cache.recycled_count[c]];
  void*& slot = cache.blocks[c][cache.next[c]];
  cache.next[c] = static_cast<unsigned char>((cache.next[c] + 1) % kCoreAhead);
  void* fresh = backend_allocate(bytes);
  if (fresh != nullptr) prefetch_for_write(fresh, bytes);
  void* out = slot;
  slot = fresh;  // nullptr when out of memory: a later allocation refills the slot
  cache.held += static_cast<int>(fresh != nullptr) - static_cast<int>(out != nullptr);
  if (__builtin_expect(out != nullptr, 1)) return out;
  // The first kCoreAhead allocations of a class on this thread, or out of memory.
  if (fresh != nullptr && !cache.release_registered) register_release(cache);
  return allocate_or_throw(bytes);
}

WEFT_THREAD_STATE_ACCESSOR void free_core(void* p, std::size_t size) noexcept {
  CoreCache& cache = tls_cache;
  // Kept only where the thread's exit will give it back (release_registered), which a thread
  // that frees cores has usually set up by allocating some.
  if (cached_size(size) && cache.release_registered && !cache.exited) {
    const int c = class_of(size);
    if (cache.recycled_count[c] < kCoreRecycled) {
      cache.recycled[c][cache.recycled_count[c]++] = p;
      return;
    }
  }
  backend_free(p);
}

WEFT_THREAD_STATE_ACCESSOR int cached_core_blocks() { return tls_cache.held; }

std::int64_t core_blocks_released_at_thread_exit() {
  return g_released_at_exit.load(std::memory_order_relaxed);
}

WEFT_THREAD_STATE_ACCESSOR int recycled_core_blocks() {
  int n = 0;
  for (unsigned char count : tls_cache.recycled_count) n += count;
  return n;
}

// A program that spawns a million tasks sweeps their cores (256 MB) four times: spawn, run,
// join, free. On 4 KiB pages that is a TLB miss every 16 cores, and it showed: spawn+join of
// 1M tasks ran 10% faster (122 -> 110 ns a task, one worker) with mimalloc's segments on
// transparent huge pages. mimalloc reads its options once, at process start, so this sets the
// option itself rather than its default; a user who set MIMALLOC_LARGE_OS_PAGES keeps theirs.
void prefer_huge_pages() {
  if constexpr (!kSanitized) {
    static const bool once = [] {
      if (std::getenv("MIMALLOC_LARGE_OS_PAGES") == nullptr) {
        mi_option_enable(mi_option_large_os_pages);
      }
      return true;
    }();
    static_cast<void>(once);
  }
}

}  // namespace weft::internal
