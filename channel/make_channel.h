// make_channel<T>(func, size, options): Julia's Channel{T}(func, size; taskref, spawn,
// threadpool) -- creates a channel, a task running func(channel), binds the channel to the
// task (it closes when the task ends, with TaskFailedException if the task failed) and starts
// the task; returns the channel.
//
//   spawn = false, no threadpool  the task is sticky (runs on the calling worker, like Julia's
//                                 Task/@async) and starts at once: the caller yields to it
//                                 (Julia's yield(task)); from a plain thread it is scheduled.
//   spawn = true or a threadpool  the task is non-sticky (Threads.@spawn) in that pool
//                                 (default: Pool::kDefault) and is scheduled.
//   taskref                       if set, receives the task (Julia's taskref=Ref{Task}()).
//
// func is called with a Channel<T> (by value or by reference); what it returns is ignored.
// make_channel<>(func) makes a Channel<std::any>, as Julia's Channel(func) a Channel{Any}.
// Errors: a negative size throws std::invalid_argument; a pool with no threads throws
// std::invalid_argument (from scheduling).
#ifndef WEFT_CHANNEL_MAKE_CHANNEL_H_
#define WEFT_CHANNEL_MAKE_CHANNEL_H_

#include <any>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

#include "weft/channel/channel.h"
#include "weft/sched/scheduling.h"
#include "weft/task/task.h"

namespace weft {

struct ChannelTaskOptions {
  TaskRef* taskref = nullptr;
  bool spawn = false;
  std::optional<Pool> threadpool;  // set: implies spawn
};

template <typename T = std::any, typename F, typename Size = std::int64_t>
Channel<T> make_channel(F&& func, Size size = 0, ChannelTaskOptions options = {}) {
  static_assert(std::is_invocable_v<std::decay_t<F>&, Channel<T>&>,
                "make_channel<T>(func, ...): func must accept the Channel<T>");
  static_assert(std::is_arithmetic_v<Size>,
                "make_channel<T>(func, size, ...): size is a number (kUnbounded or "
                "INFINITY for no limit)");
  Channel<T> channel(size);
  // The task moves the channel and func out of its closure as it starts, so that nothing of
  // theirs outlives the run: a finished task keeps its closure while any handle to it exists,
  // and the TaskFailedException a failed task's channel is closed with is such a handle
  // (channel -> exception -> task -> closure -> channel would never be freed).
  Task<void> task([held = std::optional<Channel<T>>(channel),
                   f = std::optional<std::decay_t<F>>(std::forward<F>(func))]() mutable {
    Channel<T> mine = *held;
    held.reset();
    std::decay_t<F> fn = std::move(*f);
    f.reset();
    static_cast<void>(fn(mine));
  });
  const bool spawn = options.spawn || options.threadpool.has_value();
  task.set_sticky(!spawn);
  if (spawn) task.set_pool(options.threadpool.value_or(Pool::kDefault));
  if (options.taskref != nullptr) *options.taskref = task;
  // Bound after starting, so that a task that cannot start (a pool with no threads) leaves no
  // callback behind holding the channel; a task that already ended by then closes it at once.
  if (spawn) {
    schedule(task);
  } else {
    yield(task);
  }
  channel.bind(task);
  return channel;
}

}  // namespace weft

#endif  // WEFT_CHANNEL_MAKE_CHANNEL_H_
