#include "weft/sched/task_registry.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace weft::internal {

TaskRegistry::TaskRegistry() : chunks_(new std::atomic<RegistrySlot*>[kMaxChunks]) {
  for (std::uint32_t c = 0; c < kMaxChunks; ++c) {
    chunks_[c].store(nullptr, std::memory_order_relaxed);
  }
}

TaskRegistry::~TaskRegistry() {
  const std::uint32_t n = num_chunks_.load(std::memory_order_relaxed);
  for (std::uint32_t c = 0; c < n; ++c) delete[] chunks_[c].load(std::memory_order_relaxed);
}

// The cursor reached the end of a chunk: move to the next one. At the end of a sweep, if it
// found fewer than a quarter of the slots free, add as many chunks again and carry on into
// them; otherwise start the next sweep at chunk 0.
void TaskRegistry::next_chunk() {
  const std::uint32_t n = num_chunks_.load(std::memory_order_relaxed);
  std::uint32_t next = cursor_ == nullptr ? 0 : chunk_ + 1;
  if (next >= n) {
    const bool crowded = sweep_adds_ < std::uint64_t{n} * kChunkSize / 4;
    const std::uint32_t more = std::min(n == 0 ? 1 : n, kMaxChunks - n);
    if ((n == 0 || crowded) && more > 0) {
      for (std::uint32_t c = n; c < n + more; ++c) {
        auto* chunk = new RegistrySlot[kChunkSize];
        for (std::uint32_t j = 0; j < kChunkSize; ++j) {
          chunk[j].store(nullptr, std::memory_order_relaxed);
        }
        chunks_[c].store(chunk, std::memory_order_release);
      }
      num_chunks_.store(n + more, std::memory_order_release);
      next = n;
    } else {
      if (sweep_adds_ == 0) {
        std::fprintf(stderr, "weft: more than %u started tasks on one worker\n",
                     kMaxChunks * kChunkSize);
        std::abort();
      }
      next = 0;
    }
  }
  if (next == 0) sweep_adds_ = 0;
  chunk_ = next;
  cursor_ = chunks_[next].load(std::memory_order_relaxed);
  end_ = cursor_ + kChunkSize;
}

}  // namespace weft::internal
