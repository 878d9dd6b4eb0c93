// TaskRegistry: the started, unfinished tasks first run on one worker, enumerable from any
// thread (task dumps, deadlock detection) at the cost of a few plain stores to the worker.
//
// A task takes a slot at its first run (on its worker's own thread: add) and clears it when it
// finishes (on whichever worker it finishes: clear). A reader enumerates the slots of every
// worker of a runtime (RuntimeCore::registered_tasks) and takes a reference on each task it
// finds. What keeps a found task from being freed under the reader, with no atomic
// read-modify-write on the tasks' side, is a Dekker handshake:
//   finishing task: clear its slot; registry_finisher_fence(); ...; if the runtime's reader
//                   count is not 0, keep the runtime's reference on the worker's deferred list
//                   instead of dropping it (dropped when the worker next goes idle).
//   reader:         count += 1; registry_reader_fence(); read the slots; add_ref what it
//                   finds; count -= 1.
// Either the finisher sees the reader and keeps the task alive, or the reader sees the slot
// cleared. The reader's fence is heavy (membarrier: a full barrier on every thread of the
// process), so the finisher's is light (weft/sched/asymmetric_fence.h).
//
// Slots live in chunks that never move while the registry lives. add() hands out free slots
// with a cursor that sweeps the chunks; a sweep that found under a quarter of the slots free
// adds chunks, so an add costs O(1) probes amortized however many tasks stay parked.
#ifndef WEFT_SCHED_TASK_REGISTRY_H_
#define WEFT_SCHED_TASK_REGISTRY_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "weft/sched/asymmetric_fence.h"

namespace weft::internal {

class TaskCore;
using RegistrySlot = std::atomic<TaskCore*>;

// Settles which kind of fences these are; call before the first worker starts.
inline void init_registry_fences() { membarrier_ready(); }
inline void registry_finisher_fence() { light_fence(); }
inline void registry_reader_fence() { heavy_fence(); }

class TaskRegistry {
 public:
  TaskRegistry();
  ~TaskRegistry();
  TaskRegistry(const TaskRegistry&) = delete;
  TaskRegistry& operator=(const TaskRegistry&) = delete;

  // The owner worker's thread only: puts t in a free slot, returned for clear().
  RegistrySlot* add(TaskCore* t) {
    for (;;) {
      if (__builtin_expect(cursor_ == end_, 0)) next_chunk();
      RegistrySlot* s = cursor_++;
      if (s->load(std::memory_order_relaxed) == nullptr) {
        s->store(t, std::memory_order_release);
        ++sweep_adds_;
        return s;
      }
    }
  }
  // Any thread: the task in slot s finished.
  static void clear(RegistrySlot* s) { s->store(nullptr, std::memory_order_relaxed); }

  // Any thread, inside a read (see above): f(TaskCore*) for each task.
  template <typename F>
  void for_each(F&& f) const {
    const std::uint32_t n = num_chunks_.load(std::memory_order_acquire);
    for (std::uint32_t c = 0; c < n; ++c) {
      const RegistrySlot* chunk = chunks_[c].load(std::memory_order_acquire);
      for (std::uint32_t j = 0; j < kChunkSize; ++j) {
        if (TaskCore* t = chunk[j].load(std::memory_order_acquire)) f(t);
      }
    }
  }

 private:
  static constexpr std::uint32_t kChunkSize = 4096;
  static constexpr std::uint32_t kMaxChunks = 2048;  // 8M started tasks on one worker

  void next_chunk();

  std::unique_ptr<std::atomic<RegistrySlot*>[]> chunks_;
  std::atomic<std::uint32_t> num_chunks_{0};
  // The owner's sweep.
  RegistrySlot* cursor_ = nullptr;
  RegistrySlot* end_ = nullptr;
  std::uint32_t chunk_ = 0;       // the chunk cursor_ is in
  std::uint64_t sweep_adds_ = 0;  // adds since the sweep started at chunk 0
};

}  // namespace weft::internal

#endif  // WEFT_SCHED_TASK_REGISTRY_H_
