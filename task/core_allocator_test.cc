// The task-core allocator (core_allocator.h): usable, distinct blocks; a bounded per-thread
// cache, given back when the thread exits (counted, and the ASan configs' leak check fails the
// test if it is not); freed blocks reused last-freed first; blocks freed on other threads.
#include "weft/task/core_allocator.h"

#include <gtest/gtest.h>
#include <mimalloc.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <new>
#include <thread>
#include <utility>
#include <vector>

namespace weft::internal {
namespace {

// Runs f on a thread of its own, whose cache starts empty and is released when it ends.
template <typename F>
void on_fresh_thread(F f) {
  std::thread t(f);
  t.join();
}

TEST(CoreAllocator, BlocksAreAlignedWritableAndDistinct) {
  on_fresh_thread([] {
    for (std::size_t size : {std::size_t{1}, std::size_t{240}, std::size_t{256},
                             std::size_t{257}, kLargestCached, kLargestCached + 1,
                             std::size_t{4096}}) {
      std::vector<std::uint8_t*> blocks;
      for (int i = 0; i < 3 * kCoreAhead; ++i) {
        auto* p = static_cast<std::uint8_t*>(allocate_core(size));
        ASSERT_EQ(reinterpret_cast<std::uintptr_t>(p) % __STDCPP_DEFAULT_NEW_ALIGNMENT__, 0u)
            << "size " << size;
        std::memset(p, i, size);
        blocks.push_back(p);
      }
      for (int i = 0; i < 3 * kCoreAhead; ++i) {
        EXPECT_EQ(blocks[i][0], static_cast<std::uint8_t>(i)) << "size " << size;
        EXPECT_EQ(blocks[i][size - 1], static_cast<std::uint8_t>(i)) << "size " << size;
      }
      std::vector<std::uint8_t*> sorted = blocks;
      std::sort(sorted.begin(), sorted.end());
      for (std::size_t i = 1; i < sorted.size(); ++i) {
        EXPECT_LE(sorted[i - 1] + size, sorted[i]) << "overlapping blocks of size " << size;
      }
      for (std::uint8_t* p : blocks) free_core(p, size);
    }
  });
}

TEST(CoreAllocator, CacheHoldsAtMostAheadBlocksPerSizeClass) {
  on_fresh_thread([] {
    std::vector<std::pair<void*, std::size_t>> blocks;
    auto allocate = [&](std::size_t size) { blocks.emplace_back(allocate_core(size), size); };
    EXPECT_EQ(cached_core_blocks(), 0);
    allocate(250);
    EXPECT_EQ(cached_core_blocks(), 1);
    for (int i = 0; i < 5 * kCoreAhead; ++i) allocate(250);
    EXPECT_EQ(cached_core_blocks(), kCoreAhead);
    // 200 and 250 round to the same 256-byte class; 300 is the next one.
    for (int i = 0; i < 5 * kCoreAhead; ++i) allocate(200);
    EXPECT_EQ(cached_core_blocks(), kCoreAhead);
    for (int i = 0; i < 5 * kCoreAhead; ++i) allocate(300);
    EXPECT_EQ(cached_core_blocks(), 2 * kCoreAhead);
    // Larger sizes bypass the cache.
    allocate(kLargestCached + 1);
    EXPECT_EQ(cached_core_blocks(), 2 * kCoreAhead);
    EXPECT_EQ(recycled_core_blocks(), 0);
    for (auto [p, size] : blocks) free_core(p, size);
  });
}

TEST(CoreAllocator, AFreedBlockIsHandedOutAgainByItsClassNextAllocation) {
  if (kCoreRecycled == 0) GTEST_SKIP() << "sanitized builds recycle nothing (core_allocator.h)";
  on_fresh_thread([] {
    void* keep = allocate_core(250);  // sets the thread's cache up
    void* a = allocate_core(250);
    void* b = allocate_core(250);
    free_core(a, 250);
    free_core(b, 250);
    EXPECT_EQ(recycled_core_blocks(), 2);
    void* other = allocate_core(300);  // another class
    EXPECT_NE(other, b);
    void* again = allocate_core(200);  // the same 256-byte class: the block freed last
    EXPECT_EQ(again, b);
    EXPECT_EQ(allocate_core(250), a);
    EXPECT_EQ(recycled_core_blocks(), 0);
    free_core(again, 200);
    free_core(a, 250);
    free_core(other, 300);
    free_core(keep, 250);
  });
}

TEST(CoreAllocator, RecyclesAtMostKCoreRecycledBlocksPerClass) {
  if (kCoreRecycled == 0) GTEST_SKIP() << "sanitized builds recycle nothing (core_allocator.h)";
  on_fresh_thread([] {
    std::vector<void*> small, large;
    for (int i = 0; i < 3 * kCoreRecycled + 1; ++i) {
      small.push_back(allocate_core(64));
      large.push_back(allocate_core(kLargestCached));
    }
    for (void* p : small) free_core(p, 64);
    EXPECT_EQ(recycled_core_blocks(), kCoreRecycled);
    for (void* p : large) free_core(p, kLargestCached);
    EXPECT_EQ(recycled_core_blocks(), 2 * kCoreRecycled);
    // Larger sizes are not kept.
    free_core(allocate_core(kLargestCached + 1), kLargestCached + 1);
    EXPECT_EQ(recycled_core_blocks(), 2 * kCoreRecycled);
  });
}

TEST(CoreAllocator, AThreadThatNeverAllocatedKeepsNothingItFrees) {
  std::vector<void*> blocks;
  on_fresh_thread([&] {
    for (int i = 0; i < 4; ++i) blocks.push_back(allocate_core(128));
  });
  on_fresh_thread([&] {
    for (void* p : blocks) free_core(p, 128);
    // Its exit would not give them back: mimalloc has them.
    EXPECT_EQ(recycled_core_blocks(), 0);
  });
}

TEST(CoreAllocator, EveryClassCachedAndReleasedAtThreadExit) {
  // Fills every class's cache, ahead and recycled, then exits: the exit must give back every
  // block, as counted here and by LeakSanitizer (ASan configs).
  for (int round = 0; round < 3; ++round) {
    const std::int64_t released_before = core_blocks_released_at_thread_exit();
    on_fresh_thread([] {
      std::vector<std::pair<void*, std::size_t>> blocks;
      for (std::size_t size = 1; size <= kLargestCached; size += 17) {
        blocks.emplace_back(allocate_core(size), size);
      }
      for (int i = 0; i < kCoreAhead + kCoreRecycled; ++i) {
        for (std::size_t size = kCoreSizeStep; size <= kLargestCached; size += kCoreSizeStep) {
          blocks.emplace_back(allocate_core(size), size);
        }
      }
      EXPECT_EQ(cached_core_blocks(), kCoreClasses * kCoreAhead);
      for (auto [p, size] : blocks) free_core(p, size);
      EXPECT_EQ(recycled_core_blocks(), kCoreClasses * kCoreRecycled);
    });
    EXPECT_EQ(core_blocks_released_at_thread_exit() - released_before,
              kCoreClasses * (kCoreAhead + kCoreRecycled));
  }
}

// A thread_local made before the thread's first core allocation is destroyed after the cache
// is released; what it allocates then must still fill its whole size class, since the thread
// that frees it may keep it for reuse by that class.
void* g_allocated_after_release = nullptr;
struct AllocatesAtThreadExit {
  ~AllocatesAtThreadExit() { g_allocated_after_release = allocate_core(200); }
};

TEST(CoreAllocator, ABlockAllocatedAfterItsThreadsCacheWentFillsItsClass) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "sanitized builds allocate with operator new, whose block sizes are exact";
#else
  on_fresh_thread([] {
    thread_local AllocatesAtThreadExit late;
    static_cast<void>(&late);
    free_core(allocate_core(64), 64);  // the cache, made after `late`, goes before it
  });
  ASSERT_NE(g_allocated_after_release, nullptr);
  EXPECT_GE(mi_usable_size(g_allocated_after_release), 256u);
  free_core(g_allocated_after_release, 200);
#endif
}

TEST(CoreAllocator, BlocksFreedOnAnotherThread) {
  std::vector<void*> blocks;
  on_fresh_thread([&] {
    for (int i = 0; i < 1000; ++i) {
      auto* p = static_cast<int*>(allocate_core(256));
      *p = i;
      blocks.push_back(p);
    }
  });
  on_fresh_thread([&] {
    for (int i = 0; i < 1000; ++i) {
      EXPECT_EQ(*static_cast<int*>(blocks[i]), i);
      free_core(blocks[i], 256);
    }
  });
}

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
// (Sanitizers report an impossible size themselves, before operator new(nothrow) returns.)
TEST(CoreAllocator, ImpossibleSizeThrowsBadAlloc) {
  EXPECT_THROW(allocate_core(SIZE_MAX / 2), std::bad_alloc);
}
#endif

}  // namespace
}  // namespace weft::internal
