// ChannelState<T>: a channel's items on top of ChannelCore (see channel_core.h for the queues
// and their invariants).
//
// Every operation takes the lock, does a few pointer moves, and releases it before waking
// anyone or moving an item into another waiter's slot (one exception: a putter about to park
// on an unbuffered channel wakes the watchers first, as it only can while still holding the
// lock; the contract allows waking under the lock). Nothing that allocates or can throw
// runs under the lock except RingBuffer growth (then the lock is released before rethrowing)
// and fetch's copy (likewise). An item crosses the channel with one move into the buffer or
// straight into a blocked taker's slot, and one move out.
#ifndef WEFT_CHANNEL_INTERNAL_CHANNEL_STATE_H_
#define WEFT_CHANNEL_INTERNAL_CHANNEL_STATE_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

#include "weft/channel/internal/channel_core.h"
#include "weft/channel/internal/ring_buffer.h"
#include "weft/sched/park.h"

namespace weft::internal {

template <typename T>
class ChannelState final : public ChannelCore {
  static_assert(std::is_nothrow_move_constructible_v<T> && std::is_nothrow_destructible_v<T>,
                "Channel<T>: T must be nothrow move constructible and destructible (items are "
                "moved while the channel's lock is held)");

 public:
  // Buffers start small and double up to the capacity: a huge or unbounded channel costs
  // only what it holds.
  explicit ChannelState(std::int64_t capacity)
      : ChannelCore(capacity),
        buffer_(static_cast<std::size_t>(std::clamp<std::int64_t>(capacity, 1, 64))) {}

  // Puts `item` (moved from, once, when the put succeeds). Blocks while the channel is full;
  // unbuffered: until a taker has it. Raises the close exception on a closed channel.
  //
  // put() and take() are their common buffered case, inlined at the caller, and a call to
  // the rest (hand-offs, parking, growth, closing) with the lock held. Apart, the common case
  // needs none of the rest's frame: a buffered item went from ~14.5 to ~8.8 ns. Inlined, a
  // put or take that parks is no deeper on the stack than before; as a call of its own it
  // cost the unbuffered round trip ~5%, likely a mispredicted return per extra frame above
  // the switch.
  [[gnu::always_inline]] void put(T& item) {
    lock_.lock();
    if (__builtin_expect(static_cast<std::int64_t>(buffer_.size()) < capacity_ &&
                             buffer_.has_room() && takers_.empty() && watchers_.empty() &&
                             holder_ == 0 && !closed_.load(std::memory_order_relaxed),
                         1)) {
      buffer_.push_back_into_room(std::move(item));
      lock_.unlock();
      return;
    }
    put_locked(item);
  }

  // Takes the oldest item into `out`; false once the channel is closed and drained.
  [[gnu::always_inline]] bool take(std::optional<T>& out) {
    lock_.lock();
    if (__builtin_expect(!buffer_.empty() && putters_.empty() && holder_ == 0, 1)) {
      out.emplace(std::move(buffer_.front()));
      buffer_.pop_front();
      lock_.unlock();
      return true;
    }
    return take_locked(out);
  }

 private:
  // put() and take() beyond their common case, entered holding the lock. `own_hold`: the call
  // runs holding a hold it waited for (await_hold_locked()), which it lets go in the lock_
  // section that decides whom to wake (unlock_op), and does not take back after a park: the
  // task or thread that completes the operation may free the channel once it wakes it.
  [[gnu::noinline]] void put_locked(T& item, bool own_hold = false) {
    if (!own_hold && holder_ != 0 && !await_hold_locked()) {
      lock_.lock();
      return put_locked(item, /*own_hold=*/true);
    }
    if (closed_.load(std::memory_order_relaxed)) {
      unlock_op(own_hold);
      throw_closed();
    }
    if (Waiter* taker = takers_.pop_front()) {
      // Julia's unbuffered put! hands its item over, unlocks c, then yields: the taker (on
      // this worker) runs before the put returns, as the spec's taskref example prints.
      // Decided before the wake, after which the taker may drop the channel's last handle.
      const bool yield_after = capacity_ == 0;
      unlock_op(own_hold);
      static_cast<std::optional<T>*>(taker->wq_data)->emplace(std::move(item));
      wake(taker);
      if (yield_after) ::weft::run_others_first();
      return;
    }
    if (static_cast<std::int64_t>(buffer_.size()) < capacity_) {
      try {
        buffer_.push_back(std::move(item));
      } catch (...) {
        unlock_op(own_hold);
        throw;
      }
      Waiter* watchers = watchers_.take_all();
      unlock_op(own_hold);
      wake_chain(watchers);
      return;
    }
    Waiter* me = current_waiter_if_made();
    if (me == nullptr) {  // a plain thread's first wait: its waiter is made without lock_
      lock_.unlock();
      current_waiter();
      lock_.lock();
      return put_locked(item, own_hold);  // nothing done yet: start over
    }
    me->wq_data = &item;
    putters_.push_back(me);
    // An unbuffered channel is ready (isready, wait) exactly while a putter waits.
    if (capacity_ == 0) wake_chain(watchers_.take_all());
    const std::uint32_t held = holder_ != 0 ? drop_hold_locked() : 0;
    park(lock_, WaitKind::kChannelPut, this);
    if (held != 0 && !own_hold) retake_hold(me, held);
    if (me->wq_data == nullptr) throw_closed();
  }

  [[gnu::noinline]] bool take_locked(std::optional<T>& out, bool own_hold = false) {
    if (!own_hold && holder_ != 0 && !await_hold_locked()) {
      lock_.lock();
      return take_locked(out, /*own_hold=*/true);
    }
    if (!buffer_.empty()) {
      out.emplace(std::move(buffer_.front()));
      buffer_.pop_front();
      // The buffer was full: the oldest blocked putter's item takes the freed place (no
      // allocation: a slot was just freed), so the putter need not come back for it.
      Waiter* putter = putters_.pop_front();
      if (putter != nullptr) buffer_.push_back(std::move(*static_cast<T*>(putter->wq_data)));
      unlock_op(own_hold);
      if (putter != nullptr) wake(putter);
      return true;
    }
    if (Waiter* putter = putters_.pop_front()) {  // unbuffered: straight from the putter
      unlock_op(own_hold);
      out.emplace(std::move(*static_cast<T*>(putter->wq_data)));
      wake(putter);
      return true;
    }
    if (closed_.load(std::memory_order_relaxed)) {
      unlock_op(own_hold);
      return false;
    }
    Waiter* me = current_waiter_if_made();
    if (me == nullptr) {  // as in put_locked()
      lock_.unlock();
      current_waiter();
      lock_.lock();
      return take_locked(out, own_hold);
    }
    me->wq_data = &out;
    takers_.push_back(me);
    const std::uint32_t held = holder_ != 0 ? drop_hold_locked() : 0;
    park(lock_, WaitKind::kChannelTake, this);
    if (held != 0 && !own_hold) retake_hold(me, held);
    return out.has_value();
  }

 public:
  // A copy of the oldest item, left in place; blocks until there is one. Buffered only.
  T fetch() {
    if (capacity_ == 0) throw_fetch_unbuffered();
    for (;;) {
      lock_.lock();
      if (holder_ != 0 && !await_hold_locked()) {
        HoldRelease release{this};
        return fetch();
      }
      if (!buffer_.empty()) {
        try {
          T copy(buffer_.front());
          lock_.unlock();
          return copy;
        } catch (...) {
          lock_.unlock();
          throw;
        }
      }
      if (closed_.load(std::memory_order_relaxed)) {
        lock_.unlock();
        throw_closed();
      }
      park_watcher();
    }
  }

  bool isready() {
    lock_.lock();
    const bool ready = ready_locked();
    lock_.unlock();
    return ready;
  }

  // Blocks until isready(); raises the close exception if the channel closes first.
  void wait() {
    for (;;) {
      lock_.lock();
      if (holder_ != 0 && !await_hold_locked()) {
        HoldRelease release{this};
        wait();
        return;
      }
      if (ready_locked()) {
        lock_.unlock();
        return;
      }
      if (closed_.load(std::memory_order_relaxed)) {
        lock_.unlock();
        throw_closed();
      }
      park_watcher();
    }
  }

  // Julia's n_avail: buffered items and the offers of blocked putters (unbuffered: only those).
  std::size_t n_avail() {
    lock_.lock();
    const std::size_t n = buffer_.size() + putters_.size();
    lock_.unlock();
    return n;
  }

 private:
  bool ready_locked() const { return capacity_ == 0 ? !putters_.empty() : !buffer_.empty(); }

  RingBuffer<T> buffer_;
};

}  // namespace weft::internal

#endif  // WEFT_CHANNEL_INTERNAL_CHANNEL_STATE_H_
