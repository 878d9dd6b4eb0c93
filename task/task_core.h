// TaskCore: the type-erased state of one task; Task<T> (task.h) is a typed handle to it.
//
// A core is reference counted: each handle holds a reference, and the runtime holds one from
// the task's first schedule until its stack is released after it finishes, so a fire-and-forget
// task (@async with the handle dropped) still runs to the end. Cores come from mimalloc,
// through a per-thread cache (core_allocator.h).
//
// Thread safety: `state` and the lists of done-waiters and done-callbacks are atomics; the
// scheduling fields are written before the task is first scheduled (and under the runtime's
// protocol afterwards); the result is written by the task before it publishes kDone and read
// by others only after they observe it.
#ifndef WEFT_TASK_TASK_CORE_H_
#define WEFT_TASK_TASK_CORE_H_

#include <any>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>

#include "weft/task/context.h"
#include "weft/task/sched_node.h"
#include "weft/task/stack.h"
#include "weft/task/waiter.h"

namespace weft {

class TaskLocalStorage;

namespace internal {

struct DoneCallbackNode;

class TaskCore : public Waiter {
 public:
  TaskCore();
  virtual ~TaskCore();

  static void* operator new(std::size_t size);
  static void operator delete(void* p, std::size_t size);
  // Tasks whose captures or result are over-aligned (alignas(32) and up) get their alignment.
  static void* operator new(std::size_t size, std::align_val_t align);
  static void operator delete(void* p, std::size_t size, std::align_val_t align);

  // Runs the body and stores its result; an exception propagates to the caller (the runtime).
  virtual void run_body() = 0;
  // A copy of the result of a task that finished without failing, for fetch() on an untyped
  // handle (empty for a void task). Throws std::logic_error when the result type cannot be
  // copied into a std::any: such a result is fetched through its typed Task<T> (a reference).
  virtual std::any result_as_any() const { return {}; }

  void add_ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  // add_ref() for a task no other thread can reach yet (being spawned): no read-modify-write.
  void add_ref_unshared() {
    refs_.store(refs_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void release_ref() {
    // The sole holder needs no read-modify-write: nobody else can take a reference from it.
    // (A handle dropped long after its task finished is cold; a locked instruction on a cold
    // line stalls far longer than a load.)
    if (refs_.load(std::memory_order_acquire) == 1 ||
        refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      delete this;
    }
  }

  // The stack size its first run gets (0: the default). Throws std::invalid_argument above
  // kMaxStackSize. Only before the task is first scheduled. Inline, with the throw out of
  // line: every spawn calls it, and the message's formatting gave it a large frame.
  void request_stack_size(std::size_t bytes) {
    if (bytes > kMaxStackSize) throw_stack_too_large(bytes);
    stack.size = static_cast<std::uint32_t>(bytes);
  }

  // Unique in the process; increasing only among one thread's tasks.
  std::uint64_t id() const { return node.task_id; }
  bool started() const { return has_started.load(std::memory_order_acquire); }
  bool done() const { return state.load(std::memory_order_acquire) == kDone; }
  bool failed() const { return done() && exception != nullptr; }
  // Done, its on_done callbacks run and its waiters released: what wait(t) waits for.
  // done() turns true before the callbacks run.
  bool ended() const;

 private:
  [[noreturn, gnu::cold]] void throw_stack_too_large(std::size_t bytes) const;

  // Fields grouped by when they are touched. A spawn+join program creates many tasks before
  // they run and joins and frees them long after: by then each core is cold, and every cache
  // line touched is a miss. So what joining and freeing read (refs_, done_waiters, exception,
  // the destructor's fields) comes last, in the core's last cache line, next to the result the
  // typed task stores right after the core (TaskResult<T>::value): a join of a small result
  // touches that line and the first (the vtable pointer, the Waiter's payload, and the block
  // header mimalloc writes when the core is freed, unless the allocator keeps it for reuse), not
  // the ones in between.

 public:
  // Used while it is scheduled and runs.
  SchedNode node;  // its task_id is the task's id()
  // Set by the runtime.
  Context context;
  // Before the first run (lo == nullptr), stack.size is the size asked for (0: the default,
  // WEFT_STACK_SIZE or 64 KiB), checked against kMaxStackSize when it was set.
  Stack stack;
  void* runtime = nullptr;       // the Runtime it was first scheduled on
  // Its slot in the runtime's registry of started tasks (task dumps, deadlock detection),
  // holding this task from its first run until it finishes.
  std::atomic<TaskCore*>* registry_slot = nullptr;
  // The worker it runs on or last ran on: written by that worker, read by task dumps.
  std::atomic<std::int32_t> last_worker{-1};
  // The deadline of its current timed wait (steady_clock ticks), meaningful while `timed` is
  // not kUntimed: shown in task dumps ("sleep until +35ms"). Here, not in the Waiter, whose
  // first line a join reads; only tasks are dumped.
  std::atomic<std::int64_t> wait_deadline{0};

 private:
  std::atomic<std::int32_t> refs_{1};

 public:
  std::atomic<bool> has_started{false};  // set when first switched to (istaskstarted)
  std::atomic<bool> error_monitored{false};
  std::atomic<bool> error_reported{false};
  bool sticky = true;         // Julia's default for Task(f): runs only on its first worker
  // Waiters for this task to finish: a lock-free stack closed by finish (sched/switch.cc).
  std::atomic<Waiter*> done_waiters{nullptr};
  // Callbacks for its end (weft/task/on_done.h): a lock-free stack, closed by finish after
  // the task is marked done and before done_waiters is.
  std::atomic<DoneCallbackNode*> done_callbacks{nullptr};
  std::exception_ptr exception;   // why it failed, once done
  std::unique_ptr<TaskLocalStorage> local_storage;  // created on first use
};

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winvalid-offsetof"
// No virtual bases: offsetof is well defined.
inline constexpr std::size_t kNodeOffset = offsetof(TaskCore, node);
#pragma GCC diagnostic pop
static_assert(kNodeOffset == kSchedNodeOffsetInTask,
              "prefetch_task() (weft/task/sched_node.h) must know where a task's node is");

// The task a SchedNode belongs to: the runtime's way back from what a policy hands out.
inline TaskCore* task_of(SchedNode* node) {
  return reinterpret_cast<TaskCore*>(reinterpret_cast<char*>(node) - kNodeOffset);
}

// Intrusive owning pointer to a core.
class TaskPtr {
 public:
  TaskPtr() = default;
  explicit TaskPtr(TaskCore* core, bool adopt) : core_(core) {
    if (core_ != nullptr && !adopt) core_->add_ref();
  }
  TaskPtr(const TaskPtr& o) : core_(o.core_) {
    if (core_ != nullptr) core_->add_ref();
  }
  TaskPtr(TaskPtr&& o) noexcept : core_(o.core_) { o.core_ = nullptr; }
  TaskPtr& operator=(TaskPtr o) noexcept {
    std::swap(core_, o.core_);
    return *this;
  }
  ~TaskPtr() {
    if (core_ != nullptr) core_->release_ref();
  }
  TaskCore* get() const { return core_; }
  TaskCore* operator->() const { return core_; }
  explicit operator bool() const { return core_ != nullptr; }
  friend bool operator==(const TaskPtr& a, const TaskPtr& b) { return a.core_ == b.core_; }

 private:
  TaskCore* core_ = nullptr;
};

// Marks the end of a task's list of waiters for it to finish (TaskCore::done_waiters).
inline Waiter* const kDoneWaitersClosed = reinterpret_cast<Waiter*>(std::uintptr_t{1});

inline bool TaskCore::ended() const {
  return done_waiters.load(std::memory_order_acquire) == kDoneWaitersClosed;
}

}  // namespace internal
}  // namespace weft

#endif  // WEFT_TASK_TASK_CORE_H_
