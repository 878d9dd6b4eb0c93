// Future<T>: Julia's Distributed.Future within one process -- a write-once value that tasks
// and plain threads wait for.
//
//   Future<T> f;        empty (Julia's Future(): weft is one process, so there is no pid)
//   put(f, v)           stores v and releases every waiter. A future is written once: a second
//                       put throws std::logic_error ("Future can be set only once", as Julia's
//                       put! does), and so does a put racing with another that won.
//   wait(f)             blocks until a value is stored; returns f.
//   fetch(f)            wait(f), then a copy of the value. Every fetch sees the same value.
//   isready(f)          a value is stored. Never blocks; once true, stays true.
//
// A Future is a handle: copies refer to the same value, which lives while a handle does.
// Ordering: what the putting task wrote before put() is visible to whoever wait() or fetch()
// returned to, or saw isready() true.
// Blocking and thread safety: every member may be called from any task or plain thread at
// once; a task that waits parks (its worker runs other tasks), a plain thread blocks.
// Requirements on T: copy constructible (fetch returns a copy, as Julia's fetch returns the
// cached value to every caller); not void.
#ifndef WEFT_SYNC_FUTURE_H_
#define WEFT_SYNC_FUTURE_H_

#include <atomic>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "weft/sync/event.h"

namespace weft {

namespace internal {
[[noreturn]] void throw_future_already_set();
}  // namespace internal

template <typename T>
class Future {
  static_assert(!std::is_void_v<T> && !std::is_reference_v<T>,
                "Future<T>: T must be an object type (a future holds a value)");
  static_assert(std::is_copy_constructible_v<T>,
                "Future<T>: T must be copy constructible (fetch returns a copy)");

 public:
  using value_type = T;

  Future() : state_(std::make_shared<State>()) {}
  Future(const Future&) = default;
  Future& operator=(const Future&) = default;

  // put!(f, v). Throws std::logic_error if a value was stored already. If making the value
  // throws, nothing is stored and the future can still be set: it is made before the claim,
  // and nothing after the claim can throw.
  template <typename U = T>
  const Future& put(U&& value) const {
    auto made = std::make_unique<T>(std::forward<U>(value));
    T* expected = nullptr;
    if (!state_->value.compare_exchange_strong(expected, made.get(), std::memory_order_acq_rel)) {
      internal::throw_future_already_set();
    }
    made.release();
    state_->ready.notify();  // Event's notify/wait are release/acquire
    return *this;
  }

  const Future& wait() const {
    state_->ready.wait();
    return *this;
  }

  T fetch() const {
    state_->ready.wait();
    return *state_->value.load(std::memory_order_acquire);
  }

  bool isready() const { return state_->ready.isset(); }

  // Handles to the same future are equal.
  friend bool operator==(const Future& a, const Future& b) { return a.state_ == b.state_; }

 private:
  struct State {
    State() = default;
    State(const State&) = delete;
    State& operator=(const State&) = delete;
    ~State() { delete value.load(std::memory_order_relaxed); }
    // Set once, by the put that wins; owned here. A heap object, so that the winner is decided
    // by one compare-and-swap after the value exists.
    std::atomic<T*> value{nullptr};
    Event ready;  // set once the value is stored; never reset
  };
  std::shared_ptr<State> state_;
};

template <typename T, typename U>
const Future<T>& put(const Future<T>& f, U&& value) {
  return f.put(std::forward<U>(value));
}
template <typename T>
const Future<T>& wait(const Future<T>& f) {
  return f.wait();
}
template <typename T>
T fetch(const Future<T>& f) {
  return f.fetch();
}
template <typename T>
bool isready(const Future<T>& f) {
  return f.isready();
}

}  // namespace weft

#endif  // WEFT_SYNC_FUTURE_H_
