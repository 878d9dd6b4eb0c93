// The task-core allocator (core_allocator.h): usable, distinct blocks; a bounded per-thread
// cache, given back when the thread exits (the ASan configs' leak check fails the test if it
// is not); blocks freed on other threads.
#include "weft/task/core_allocator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <new>
#include <thread>
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
      for (std::uint8_t* p : blocks) free_core(p);
    }
  });
}

TEST(CoreAllocator, CacheHoldsAtMostAheadBlocksPerSizeClass) {
  on_fresh_thread([] {
    EXPECT_EQ(cached_core_blocks(), 0);
    std::vector<void*> blocks;
    blocks.push_back(allocate_core(250));
    EXPECT_EQ(cached_core_blocks(), 1);
    for (int i = 0; i < 5 * kCoreAhead; ++i) blocks.push_back(allocate_core(250));
    EXPECT_EQ(cached_core_blocks(), kCoreAhead);
    // 200 and 250 round to the same 256-byte class; 300 is the next one.
    for (int i = 0; i < 5 * kCoreAhead; ++i) blocks.push_back(allocate_core(200));
    EXPECT_EQ(cached_core_blocks(), kCoreAhead);
    for (int i = 0; i < 5 * kCoreAhead; ++i) blocks.push_back(allocate_core(300));
    EXPECT_EQ(cached_core_blocks(), 2 * kCoreAhead);
    // Larger sizes bypass the cache.
    blocks.push_back(allocate_core(kLargestCached + 1));
    EXPECT_EQ(cached_core_blocks(), 2 * kCoreAhead);
    for (void* p : blocks) free_core(p);
    // Freeing gives nothing to the cache: it holds blocks it took, not ones given back.
    EXPECT_EQ(cached_core_blocks(), 2 * kCoreAhead);
  });
}

TEST(CoreAllocator, EveryClassCachedAndReleasedAtThreadExit) {
  // Fills every class's cache, then exits: LeakSanitizer (ASan configs) reports the cached
  // blocks unless the thread's exit gave them back.
  for (int round = 0; round < 3; ++round) {
    on_fresh_thread([] {
      std::vector<void*> blocks;
      for (std::size_t size = 1; size <= kLargestCached; size += 17) {
        blocks.push_back(allocate_core(size));
      }
      for (int i = 0; i < kCoreAhead; ++i) {
        for (std::size_t size = kCoreSizeStep; size <= kLargestCached; size += kCoreSizeStep) {
          blocks.push_back(allocate_core(size));
        }
      }
      EXPECT_EQ(cached_core_blocks(), kCoreClasses * kCoreAhead);
      for (void* p : blocks) free_core(p);
    });
  }
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
      free_core(blocks[i]);
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
