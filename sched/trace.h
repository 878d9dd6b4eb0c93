// Tracing: a Chrome trace event file of what a runtime did, for Perfetto or chrome://tracing.
//
// Turned on per runtime by RuntimeOptions::trace_path or the WEFT_TRACE environment variable.
// Each worker appends to its own TraceBuffer (no lock; one writer), threads outside the runtime
// to a shared one under a mutex; the file is written when the runtime shuts down (the default
// runtime: at exit). When tracing is off the runtime's hot paths test one pointer that is null.
//
// Events: "spawn" (instant, on the spawning thread), "task <id>" run slices (complete events,
// one lane per worker), "park" (instant, with the wait's kind and object), "wake" (instant, on
// the waking thread), "steal" (instant, from policies through weft::trace_steal).
// Thread safety: TraceBuffer::add from its one writer; for_each from any thread at any time.
#ifndef WEFT_SCHED_TRACE_H_
#define WEFT_SCHED_TRACE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "weft/task/waiter.h"

namespace weft::internal {

class RuntimeCore;
struct Worker;
class TaskCore;

// Nanoseconds on steady_clock since the process's first traced runtime started.
std::int64_t trace_clock_ns();

enum class TraceEventKind : std::uint8_t { kSpawn, kRun, kPark, kWake, kSteal };

struct TraceEvent {
  std::int64_t ts = 0;   // trace_clock_ns()
  std::int64_t dur = 0;  // kRun: the slice's length
  std::uint64_t task = 0;
  const void* object = nullptr;  // kPark: what the task waits on
  std::int32_t other = -1;       // kSteal: the victim worker
  TraceEventKind kind = TraceEventKind::kSpawn;
  WaitKind wait = WaitKind::kNone;  // kPark
};

// An append-only list of chunks: one writer, any number of concurrent readers, which see every
// event published before they looked.
class TraceBuffer {
 public:
  TraceBuffer();
  ~TraceBuffer();
  TraceBuffer(const TraceBuffer&) = delete;
  TraceBuffer& operator=(const TraceBuffer&) = delete;

  void add(const TraceEvent& e);
  template <typename F>
  void for_each(F&& f) const;

  std::int64_t slice_start = 0;  // worker buffers: when the running task's slice began

 private:
  struct Chunk {
    static constexpr int kEvents = 4096;
    TraceEvent events[kEvents];
    std::atomic<int> count{0};
    std::atomic<Chunk*> next{nullptr};
  };
  Chunk* head_;
  Chunk* tail_;
};

template <typename F>
void TraceBuffer::for_each(F&& f) const {
  for (const Chunk* c = head_; c != nullptr; c = c->next.load(std::memory_order_acquire)) {
    const int n = c->count.load(std::memory_order_acquire);
    for (int i = 0; i < n; ++i) f(c->events[i]);
  }
}

// One traced runtime's buffers and where they go.
class Tracer {
 public:
  Tracer(std::string path, int num_workers);
  TraceBuffer* worker_buffer(int worker) { return workers_[worker].get(); }
  void add_outside(const TraceEvent& e);
  // Writes the Chrome trace JSON file; a failure is reported on stderr, never thrown (it runs
  // at shutdown). Safe while workers still run: it writes what they have published.
  void write(const RuntimeCore& rt);
  const std::string& path() const { return path_; }

 private:
  const std::string path_;
  std::vector<std::unique_ptr<TraceBuffer>> workers_;
  std::mutex outside_mu_;
  TraceBuffer outside_;  // guarded by outside_mu_ for writers
};

// Where a new runtime traces to: `option` if set, else WEFT_TRACE (the process's first traced
// runtime gets the path as given, later ones "<stem>.<n><ext>"), else "" (no tracing).
std::string resolve_trace_path(const std::string& option);

// Records e from the calling thread: into its worker's buffer if it is one of rt's workers,
// else into rt's shared buffer. rt must be tracing.
void trace_event(RuntimeCore* rt, const TraceEvent& e);

// The cold halves of the runtime's tracing hooks (called only when tracing).
// End of cur's run slice (and its park), start of the next one's.
void trace_leave(Worker* w, TaskCore* cur, bool park);
void trace_spawn(RuntimeCore* rt, const TaskCore* t);
void trace_wake(RuntimeCore* rt, std::uint64_t task_id);

}  // namespace weft::internal

#endif  // WEFT_SCHED_TRACE_H_
