#include "weft/task/on_done.h"

#include <stdexcept>
#include <thread>
#include <utility>

#include "weft/sched/asymmetric_fence.h"

namespace weft {
namespace {

// noexcept: a callback that throws terminates the program (on_done.h), wherever it runs.
void invoke(DoneCallback& callback, const TaskRef& t, const std::exception_ptr& failure) noexcept {
  std::move(callback)(t, failure);
}

}  // namespace

void on_done(const TaskRef& t, DoneCallback callback) {
  if (!t.valid()) throw std::invalid_argument("on_done: the task handle is empty");
  if (!callback) throw std::invalid_argument("on_done: the callback is empty");
  internal::TaskCore* core = t.core();
  // acquire: seeing the list closed makes the finished task's exception visible.
  internal::DoneCallbackNode* head = core->done_callbacks.load(std::memory_order_acquire);
  if (head != internal::kDoneCallbacksClosed && head != internal::kDoneCallbacksRunning) {
    auto* node = new internal::DoneCallbackNode{nullptr, std::move(callback)};
    do {
      if (head == internal::kDoneCallbacksClosed || head == internal::kDoneCallbacksRunning) {
        callback = std::move(node->callback);
        delete node;
        break;
      }
      node->next = head;
    } while (!core->done_callbacks.compare_exchange_weak(head, node, std::memory_order_seq_cst,
                                                         std::memory_order_acquire));
    if (head != internal::kDoneCallbacksClosed && head != internal::kDoneCallbacksRunning) {
      // Queued. If the task is done already, its finisher may have looked at the list before
      // our push (run_done_callbacks): then nobody else will run it, so we do. "Push, then
      // look at the state" against the finisher's "mark done, then look at the list": Dekker,
      // which needs a store-load fence on both sides. The finisher's is light (a compiler
      // barrier: every task finishes, few get callbacks), so ours is heavy, and paid only when
      // the state does not already say done.
      if (core->state.load(std::memory_order_seq_cst) != internal::kDone) internal::heavy_fence();
      if (core->state.load(std::memory_order_seq_cst) == internal::kDone) {
        internal::run_done_callbacks_now(core);
      }
      return;
    }
  }
  invoke(callback, t, core->exception);
}

namespace internal {

void run_done_callbacks(TaskCore* self) noexcept {
  // Nothing registered, the common case, costs a load and no read-modify-write. Sound because
  // the finisher marked the task done and then passed a light fence (finish_task), and a
  // registrant pushes and then passes a heavy one before it looks at the state (on_done): at
  // least one of the two sees the other.
  if (self->done_callbacks.load(std::memory_order_seq_cst) == nullptr) return;
  run_done_callbacks_now(self);
}

namespace {
// Someone else took the list: once they have run it, every callback pushed before they took
// it has run -- the caller's own, pushed before it looked, among them. A registrant that
// returned from on_done before then would break its promise (the callback has run when
// on_done returns for an ended task; wait(t) then finds it run). Callbacks are short and
// never park, so this waits briefly.
[[gnu::noinline, gnu::cold]] void wait_until_run(TaskCore* self) {
  for (int round = 0;
       self->done_callbacks.load(std::memory_order_acquire) != kDoneCallbacksClosed; ++round) {
    if (round >= 64) std::this_thread::yield();  // the runner may be waiting for this CPU
  }
}
}  // namespace

void run_done_callbacks_now(TaskCore* self) noexcept {
  // acq_rel: publishes the exception to registrants that find the list taken, and acquires
  // the callbacks pushed so far. Whoever of the finisher and late registrants comes later
  // finds the list taken (Running) and waits until it is run (Closed).
  DoneCallbackNode* node = self->done_callbacks.load(std::memory_order_acquire);
  do {
    if (node == kDoneCallbacksClosed) return;
    if (node == kDoneCallbacksRunning) {
      wait_until_run(self);
      return;
    }
  } while (!self->done_callbacks.compare_exchange_weak(
      node, kDoneCallbacksRunning, std::memory_order_acq_rel, std::memory_order_acquire));
  // The stack is newest first: reversed, they run in registration order.
  DoneCallbackNode* ordered = nullptr;
  while (node != nullptr) {
    DoneCallbackNode* next = node->next;
    node->next = ordered;
    ordered = node;
    node = next;
  }
  const TaskRef t(TaskPtr(self, /*adopt=*/false));
  while (ordered != nullptr) {
    DoneCallbackNode* next = ordered->next;
    invoke(ordered->callback, t, self->exception);
    delete ordered;  // destroys what the callback held, here, right after it ran
    ordered = next;
  }
  self->done_callbacks.store(kDoneCallbacksClosed, std::memory_order_release);
}

void discard_done_callbacks(TaskCore* self) noexcept {
  // The core's last reference is gone: nobody registers any more, so a load is enough.
  DoneCallbackNode* node = self->done_callbacks.load(std::memory_order_acquire);
  if (node == kDoneCallbacksClosed || node == kDoneCallbacksRunning) return;
  while (node != nullptr) {
    DoneCallbackNode* next = node->next;
    delete node;
    node = next;
  }
}

}  // namespace internal
}  // namespace weft
