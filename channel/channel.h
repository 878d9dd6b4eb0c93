// Channel<T>: Julia's Channel{T} -- a FIFO of items between tasks (and plain threads).
//
//   Channel<T>()              unbuffered (Julia's Channel(0)): put blocks until a take has the
//                             item, and take until a put brings one. Channel<>: T = std::any,
//                             Julia's Channel{Any}.
//   Channel<T>(n)             buffered: holds up to n items; put blocks while it is full.
//   Channel<T>(kUnbounded)    Julia's Channel(Inf); also Channel<T>(INFINITY) and
//                             Channel<T>::unbounded(). Never full.
//   make_channel<T>(f, ...)   the producer-task constructor (weft/channel/make_channel.h).
//
// Operations (each a member and a free function, as Julia's put!(c, v), take!(c), ...):
//   put(c, v)      appends v; blocks as above.
//   take(c)        removes and returns the oldest item; blocks while there is none.
//   fetch(c)       returns a copy of the oldest item without removing it; blocks while there is
//                  none. Not on an unbuffered channel: std::invalid_argument. The copy is made
//                  under the channel's internal lock: T's copy constructor must not block, yield
//                  or use the channel (one that throws leaves the channel as it was).
//   isready(c)     an item is buffered (unbuffered: a putter is waiting). Never blocks.
//   wait(c)        blocks until isready(c).
//   close(c[, e])  closes: put raises at once; take, fetch and wait drain what is buffered and
//                  then raise -- InvalidStateException("Channel is closed.", state "closed"), or
//                  the std::exception_ptr e rethrown as given. Blocked putters' items are not
//                  delivered (their put raises). The first close wins; later ones do nothing.
//   isopen(c)      not closed yet.
//   n_avail(c)     Julia's n_avail: items buffered plus those offered by blocked puts.
//   to_string(c), os << c
//                  Julia's printed form: "Channel<char>(1) (2 items available)" (n_avail: one
//                  item buffered, one offered by a blocked put).
//   lock(c), unlock(c), trylock(c), islocked(c), lock(f, c)
//                  Julia's lock on a channel (1.7): a reentrant lock of the whole channel, so
//                  that a task can do several operations with no other put, take, fetch, wait
//                  or close in between (`lock(f, c)`: `if (isready(c)) v = take(c);`). While
//                  another task or thread holds it, those operations wait for it (parking);
//                  isready and n_avail do not. An operation of the holder's that blocks lets
//                  the lock go while it waits and has it back, as deeply held, when it returns,
//                  as Julia's do. Operations already blocked when lock(c) returned (a taker
//                  waiting for an item) may still complete. The close of a bound task's end
//                  does not wait for it. Not strictly FIFO, like ReentrantLock: a running task
//                  may take a just-released lock ahead of a woken waiter, which gets it within
//                  about a millisecond at most. unlock by a task or thread that does not hold it
//                  throws TaskStateError. Call lock(f, c) as weft::lock(f, c) when f is a
//                  named callable: unqualified, argument-dependent lookup can also find
//                  std::lock(l1, l2) (for a Channel of a std:: type), which is then chosen or
//                  ambiguous. A lambda written in the call is never taken for a std::lock
//                  argument.
//   bind(c, t)     closes c when task t ends; if t failed, with TaskFailedException, which
//                  every blocked and later put/take/fetch/wait then raises. Several tasks bound
//                  to one channel: the first to end closes it. Several channels bound to one
//                  task: all close. A task that already ended closes c before bind returns.
//                  The close happens as t ends, once it is marked done and before wait(t)
//                  returns: after bind returned, wait(t) returning means c is closed. Costs
//                  one small allocation (an on_done callback on t, weft/task/on_done.h), no
//                  task; works from plain threads.
//                  Call it as c.bind(t) or weft::bind(c, t): an unqualified bind(c, t) can find
//                  std::bind through argument-dependent lookup.
//   for (T v : c)  takes until the channel is closed and drained; a close exception other than
//                  an InvalidStateException with state "closed" is raised instead of ending.
//                  An item is taken only as the loop looks for the next one (Julia's iterate),
//                  so std::views::take(n) over a channel takes n items.
//   collect(c)     the items of such a loop, as a vector.
//
// A Channel is a handle: copies refer to the same channel (like a Julia object), and the
// channel lives while a handle, a blocked waiter or an unfinished bound task refers to it.
//
// Thread safety and blocking: every operation may be used from any task on any worker and from
// plain threads at once. A task that blocks parks (its worker runs other tasks); a plain
// thread blocks as a thread. A put returns once its item is buffered or handed to a taker. On an
// unbuffered channel, a put that hands its item to a waiting taker then lets the other tasks
// of its worker run first, the taker among them if it runs there (Julia's put! yields so).
// Cost: while one thread alone uses a channel (all its tasks on one worker) its lock takes no
// atomic read-modify-write; the first use from a second thread turns it, once, into a spin
// lock (weft/sched/biased_lock.h).
// Requirements on T: nothrow move construction and destruction (checked at compile time).
#ifndef WEFT_CHANNEL_CHANNEL_H_
#define WEFT_CHANNEL_CHANNEL_H_

#include <any>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "weft/channel/internal/channel_core.h"
#include "weft/channel/internal/channel_state.h"
#include "weft/channel/internal/describe.h"
#include "weft/channel/invalid_state_exception.h"
#include "weft/task/task.h"

namespace weft {

// The size of an unbounded channel (Julia's Channel(Inf) == Channel(typemax(Int))).
inline constexpr std::int64_t kUnbounded = std::numeric_limits<std::int64_t>::max();

// T defaults to std::any, as Julia's to Any: Channel<>() is Julia's Channel().
template <typename T = std::any>
class Channel {
 public:
  using value_type = T;
  class iterator;

  // Unbuffered.
  Channel() : Channel(0) {}
  // Holds up to `size` items (0: unbuffered, kUnbounded: no limit). A negative size throws
  // std::invalid_argument naming it.
  explicit Channel(std::int64_t size) : state_(std::make_shared<internal::ChannelState<T>>(size)) {}
  // Julia's Channel(Inf): a floating-point size is infinity (unbounded) or a whole number;
  // anything else (2.5, NaN, a negative) throws std::invalid_argument naming it.
  template <std::floating_point D>
  explicit Channel(D size) : Channel(internal::channel_size_from(static_cast<double>(size))) {}
  // An unsigned size past kUnbounded (std::size_t's max, say) throws std::invalid_argument
  // naming it, rather than wrapping to a negative number.
  template <std::unsigned_integral U>
    requires(!std::same_as<U, bool>)
  explicit Channel(U size) : Channel(internal::channel_size_from_unsigned(size)) {}
  static Channel unbounded() { return Channel(kUnbounded); }

  // Copies share the channel. There is deliberately no move constructor: a moved-from handle
  // stays a valid handle to the same channel instead of becoming a null one.
  Channel(const Channel&) = default;
  Channel& operator=(const Channel&) = default;

  void put(const T& item) const {
    T copy(item);
    state_->put(copy);
  }
  void put(T&& item) const { state_->put(item); }

  T take() const {
    std::optional<T> item;
    if (!state_->take(item)) state_->throw_closed();
    return std::move(*item);
  }

  T fetch() const { return state_->fetch(); }
  bool isready() const { return state_->isready(); }
  void wait() const { state_->wait(); }

  void close() const { state_->close_in_turn(nullptr); }
  // `error` must not be null (std::invalid_argument).
  void close(std::exception_ptr error) const {
    if (error == nullptr) {
      throw std::invalid_argument(
          "close(c, error): error is a null std::exception_ptr; use close(c) to close without "
          "an exception of your own");
    }
    state_->close_in_turn(std::move(error));
  }
  bool isopen() const { return state_->isopen(); }

  // Julia's lock(c), unlock(c), trylock(c), islocked(c): see the top.
  void lock() const { state_->lock_hold(); }
  void unlock() const { state_->unlock_hold(); }
  bool trylock() const { return state_->trylock_hold(); }
  bool islocked() const { return state_->hold_taken(); }
  // The standard Lockable names, so std::lock_guard and std::unique_lock work on a channel.
  bool try_lock() const { return trylock(); }

  // Returns this channel, as Julia's bind returns it.
  const Channel& bind(const TaskRef& task) const {
    internal::bind_channel(state_, task);
    return *this;
  }

  // The size given at construction (kUnbounded for an unbounded channel).
  std::int64_t capacity() const { return state_->capacity(); }
  // Julia's n_avail: the items buffered plus those offered by puts blocked for room (on an
  // unbuffered channel, only the latter), as Julia counts them: Channel<char>(1) holding one
  // item, with a put waiting, has 2 (the spec's "Channel{Char}(1) (2 items available)").
  std::size_t n_avail() const { return state_->n_avail(); }

  iterator begin() const { return iterator(state_.get()); }
  std::default_sentinel_t end() const { return {}; }

  friend bool operator==(const Channel& a, const Channel& b) { return a.state_ == b.state_; }

  // An input iterator (std::input_iterator: a Channel is a std::ranges::input_range). It takes
  // an item when the loop looks for the next one -- comparing with end() or dereferencing,
  // after begin() or an increment -- as Julia's iterate(c) does, and not in begin() or ++:
  // an adaptor that stops at a count (std::views::take(n)) steps past its last element with
  // ++ and never looks, so it takes n items, not one more that it would drop (or block for).
  // Each increment still steps over one item: one never looked at is taken then, and dropped.
  class iterator {
   public:
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using iterator_concept = std::input_iterator_tag;

    iterator() = default;
    // The item this iterator took, to read or move from.
    T& operator*() const {
      take_if_asked();
      return *item_;
    }
    T* operator->() const {
      take_if_asked();
      return &*item_;
    }
    iterator& operator++() {
      step();
      return *this;
    }
    void operator++(int) { step(); }
    // Takes the next item if it is not taken yet: raises the close exception unless it ends
    // the iteration (see the top).
    friend bool operator==(const iterator& it, std::default_sentinel_t) {
      it.take_if_asked();
      return !it.item_.has_value();
    }

   private:
    friend class Channel;
    explicit iterator(internal::ChannelState<T>* state) : state_(state), asked_(true) {}
    // Steps over the item in hand -- taking it first if it was never looked at, as each of
    // Julia's iterate calls takes one (std::ranges::advance(it, n) passes n items) -- and
    // leaves the next to be taken once it is looked for.
    void step() {
      take_if_asked();
      item_.reset();
      asked_ = true;
    }
    void take_if_asked() const {
      if (!asked_) return;
      asked_ = false;
      if (!state_->take(item_) && !state_->close_ends_iteration()) state_->throw_closed();
    }

    internal::ChannelState<T>* state_ = nullptr;
    // Mutable: an input iterator's dereference and comparison are const (std::indirectly_
    // readable), yet they take the item, and the item is the caller's to move from, as a
    // range-for over the channel does.
    mutable std::optional<T> item_;
    mutable bool asked_ = false;  // an item is to be taken before the next look
  };

 private:
  std::shared_ptr<internal::ChannelState<T>> state_;
};

// Julia's put!, take!, fetch, isready, wait, close, isopen, n_avail and bind as free functions.
template <typename T, typename U>
void put(const Channel<T>& c, U&& item) {
  c.put(std::forward<U>(item));
}
template <typename T>
T take(const Channel<T>& c) {
  return c.take();
}
template <typename T>
T fetch(const Channel<T>& c) {
  return c.fetch();
}
template <typename T>
bool isready(const Channel<T>& c) {
  return c.isready();
}
template <typename T>
void wait(const Channel<T>& c) {
  c.wait();
}
template <typename T>
void close(const Channel<T>& c) {
  c.close();
}
template <typename T>
void close(const Channel<T>& c, std::exception_ptr error) {
  c.close(std::move(error));
}
template <typename T>
bool isopen(const Channel<T>& c) {
  return c.isopen();
}
template <typename T>
std::size_t n_avail(const Channel<T>& c) {
  return c.n_avail();
}
template <typename T>
void lock(const Channel<T>& c) {
  c.lock();
}
template <typename T>
void unlock(const Channel<T>& c) {
  c.unlock();
}
template <typename T>
bool trylock(const Channel<T>& c) {
  return c.trylock();
}
template <typename T>
bool islocked(const Channel<T>& c) {
  return c.islocked();
}
// lock(f, c): runs f() holding c's lock and releases it when f returns or throws; returns f's
// result. f must not unlock(c) itself.
template <typename F, typename T>
  requires std::invocable<F&&>
decltype(auto) lock(F&& f, const Channel<T>& c) {
  c.lock();
  struct Unlock {
    const Channel<T>& c;
    const int unwinding = std::uncaught_exceptions();
    ~Unlock() noexcept(false) {
      if (std::uncaught_exceptions() == unwinding) {
        c.unlock();  // its error (f unlocked c itself) propagates
        return;
      }
      // f threw: its exception goes on. An unlock that threw now, while it unwinds, would end
      // the process instead.
      try {
        c.unlock();
      } catch (...) {
      }
    }
  } unlock{c};
  return std::forward<F>(f)();
}
template <typename T>
const Channel<T>& bind(const Channel<T>& c, const TaskRef& task) {
  return c.bind(task);
}

// Julia's printed form of a channel (show): "Channel<char>(1) (2 items available)", with
// "(1 item available)", "(empty)" or "(closed)". A snapshot: other tasks may change it at once.
template <typename T>
std::string to_string(const Channel<T>& c) {
  return internal::describe_channel(typeid(T), c.capacity(), c.isopen(), c.n_avail());
}
template <typename T>
std::ostream& operator<<(std::ostream& os, const Channel<T>& c) {
  return os << to_string(c);
}

// Julia's collect(c): takes every item until the channel is closed and drained.
template <typename T>
std::vector<T> collect(const Channel<T>& c) {
  std::vector<T> items;
  for (T& item : c) items.push_back(std::move(item));
  return items;
}

}  // namespace weft

#endif  // WEFT_CHANNEL_CHANNEL_H_
