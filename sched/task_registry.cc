#include "weft/sched/task_registry.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <new>

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
    std::uint32_t added = 0;
    if ((n == 0 || crowded) && more > 0) {
      // Not thrown when memory runs out: this runs inside a switch to the task being started
      // (switch.cc), where an exception would leave the worker between two tasks. Fewer chunks
      // do; none, with none free, is fatal below.
      for (; added < more; ++added) {
        auto* chunk = new (std::nothrow) RegistrySlot[kChunkSize];
        if (chunk == nullptr) break;
        for (std::uint32_t j = 0; j < kChunkSize; ++j) {
          chunk[j].store(nullptr, std::memory_order_relaxed);
        }
        chunks_[n + added].store(chunk, std::memory_order_release);
      }
      if (added > 0) num_chunks_.store(n + added, std::memory_order_release);
    }
    if (added > 0) {
      next = n;
    } else {
      if (n == 0 || sweep_adds_ == 0) {
        if (more == 0) {
          std::fprintf(stderr, "weft: more than %u started tasks on one worker\n",
                       kMaxChunks * kChunkSize);
        } else {
          std::fprintf(stderr, "weft: out of memory for the registry of started tasks\n");
        }
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
