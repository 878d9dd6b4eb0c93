// on_done(t, callback): run a callback once when a task ends -- the hook bind(channel, task) is
// built on, for anything that must react to a task's end without a task of its own waiting.
//
//   weft::on_done(t, [state](const weft::TaskRef& t, const std::exception_ptr& failure) {
//     state->finish(failure);  // failure: what t's body threw, or nullptr if it returned
//   });
//
// When it runs, exactly once:
//   - t not finished yet: on the finishing task itself (its stack, current_task() == t), AFTER
//     t is marked done (its result or exception published: istaskdone(t), istaskfailed(t) and
//     `failure` agree) and BEFORE t's waiters are woken. So once wait(t) or fetch(t) returns,
//     every callback whose on_done call had returned has run; istaskdone(t) alone does not
//     promise that (it turns true just before the callbacks run).
//   - t already finished (or finishing, its callbacks already taken): at once, in the caller of
//     on_done, before on_done returns. (Or, when the caller's push raced with another
//     registrant taking the list, on that registrant's thread -- and still before this on_done
//     returns, which then waits for it.)
//   - t never runs: never. A callback still pending when the last handle to t and the runtime's
//     reference are dropped is destroyed without running.
// Callbacks registered before t finishes run in registration order. The callback object is
// destroyed right after it ran, on the same thread, so what it holds (e.g. a shared reference)
// lives exactly until t ends: it must not hold a handle to t itself, or t and the callback keep
// each other alive until t ends (use the TaskRef it is passed instead).
//
// Contract for the callback: it must not block, park or yield -- it runs inside the task's
// exit, or inside whatever the caller of on_done holds; wait(t) and fetch(t) in particular
// would wait for the callbacks themselves -- and must not throw: an exception escaping it
// terminates the program. Taking a weft::SpinLock briefly and waking waiters (park.h's wake)
// is fine: that is all closing a channel does. It runs on the task's stack: keep it small.
// Cost: one allocation per registration (none when t already finished), and a heavy fence
// (membarrier(2): ~0.3 us alone, up to tens of us while other CPUs run the process's threads)
// when t has not finished, so that the task's finish needs no fence of its own: a task with
// nothing registered pays one atomic load as it finishes.
// Thread safety: any thread or task, concurrently with the task finishing and with other
// registrations. Errors: an empty handle or an empty callback throws std::invalid_argument.
#ifndef WEFT_TASK_ON_DONE_H_
#define WEFT_TASK_ON_DONE_H_

#include <cstdint>
#include <exception>

#include "absl/functional/any_invocable.h"
#include "weft/task/task.h"

namespace weft {

using DoneCallback =
    absl::AnyInvocable<void(const TaskRef& task, const std::exception_ptr& failure) &&>;

void on_done(const TaskRef& t, DoneCallback callback);

namespace internal {

// One registration in TaskCore::done_callbacks.
struct DoneCallbackNode {
  DoneCallbackNode* next = nullptr;
  DoneCallback callback;
};

// Marks a task's callback list as taken and run: later registrations run at once.
inline DoneCallbackNode* const kDoneCallbacksClosed =
    reinterpret_cast<DoneCallbackNode*>(std::uintptr_t{1});
// Marks it as taken and being run: later registrations run at once too, but one that pushed
// its callback before it was taken waits for kDoneCallbacksClosed, its callback being in the
// batch (run_done_callbacks_now).
inline DoneCallbackNode* const kDoneCallbacksRunning =
    reinterpret_cast<DoneCallbackNode*>(std::uintptr_t{2});

// Called by the runtime on the finishing task, after it is marked done and before its waiters
// wake: closes the list and runs what was registered (when nothing was, it leaves the list
// open: a registration that comes later sees the task done and runs its callback itself).
void run_done_callbacks(TaskCore* self) noexcept;
// Takes the list and runs what is in it, then closes it; if someone else took it first, waits
// until they have run it (the caller's own callback may be in it).
void run_done_callbacks_now(TaskCore* self) noexcept;

// Destroys callbacks that never ran (the task's core is being freed without having finished).
void discard_done_callbacks(TaskCore* self) noexcept;

}  // namespace internal
}  // namespace weft

#endif  // WEFT_TASK_ON_DONE_H_
