// The machinery behind asyncmap and asyncmap_into (asyncmap.h has the contract).
//
// A host task (sticky) runs the driver, so that the driver and every mapping task share one
// worker whatever the caller is (a task that may migrate, or a plain thread). The driver walks
// the collections in lockstep, until the first ends, and hands out units -- one element's
// argument tuple, with its index -- either to a new task (while the task limit allows one more)
// or through an unbuffered channel to whichever task is free; in batch mode each task gathers
// its own batches from the units it takes, as Julia's do. A task that catches an
// exception from f records it (first one wins) and closes the channel: the driver's next put
// fails, the other tasks' next take ends their loop, and the driver waits for all of them
// before rethrowing.
#ifndef WEFT_ASYNCMAP_INTERNAL_ASYNCMAP_DRIVER_H_
#define WEFT_ASYNCMAP_INTERNAL_ASYNCMAP_DRIVER_H_

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "weft/asyncmap/internal/asyncmap_support.h"
#include "weft/channel/channel.h"
#include "weft/sched/scheduling.h"
#include "weft/task/errors.h"
#include "weft/task/task.h"

namespace weft::internal {

// Whether every collection is a forward range. Then their lengths are known before the map
// starts, and must be equal. Otherwise (a Channel, a single-pass view) the map runs until the
// first collection ends, as Julia's map over iterators does; the forward ones among them must
// still have equal lengths.
template <typename... Cs>
inline constexpr bool kAllForward = (std::ranges::forward_range<Cs> && ...);

// A forward range that never ends: its end is std::unreachable_sentinel (views::iota(0), the
// C++ spelling of Julia's countfrom()). It has no length to measure -- std::ranges::distance
// over it never returns -- and the map ends with the other collections, as Julia's zip does.
template <typename C>
inline constexpr bool kEndless =
    std::same_as<std::ranges::sentinel_t<std::remove_reference_t<C>>, std::unreachable_sentinel_t>;

template <typename C>
struct IsChannel : std::false_type {};
template <typename T>
struct IsChannel<Channel<T>> : std::true_type {};

// Whether an element is moved out of single-pass collection C's iterator: when its reference
// is not an lvalue (nothing else owns it), and for a Channel, whose iterator owns the item it
// took. An lvalue from any other single-pass range may be the caller's own object: copied.
template <typename C>
inline constexpr bool kMovesOut =
    !std::is_lvalue_reference_v<std::ranges::range_reference_t<C>> ||
    IsChannel<std::remove_cv_t<C>>::value;

// One element's argument for f from collection C: a reference into a forward range (or the
// value a range that computes its elements yields); from a single-pass range the element
// itself, since its iterator's next step overwrites what a reference would see.
template <typename C>
using ArgOf = std::conditional_t<std::ranges::forward_range<C>,
                                 std::ranges::range_reference_t<C>,
                                 std::ranges::range_value_t<C>>;
template <typename... Cs>
using ArgsTuple = std::tuple<ArgOf<Cs>...>;
// One element's arguments as a batch holds them: copies (moved out where kMovesOut).
template <typename... Cs>
using BatchTuple = std::tuple<std::ranges::range_value_t<Cs>...>;

template <typename... Cs>
struct SingleUnit {
  std::size_t index;
  ArgsTuple<Cs...> args;
};

// An element on its way into a batch: its index, for its result's place.
template <typename... Cs>
struct BatchElement {
  std::size_t index;
  BatchTuple<Cs...> args;
};

// How a unit travels through the work channel, whose items must move without throwing: as it
// is, or boxed when its move may throw (an element such as a std::deque, moved into a batch).
template <typename Unit>
using Carried = std::conditional_t<std::is_nothrow_move_constructible_v<Unit>, Unit,
                                   std::unique_ptr<Unit>>;
template <typename Unit>
Carried<Unit> carry(Unit&& unit) {
  if constexpr (std::is_same_v<Carried<Unit>, Unit>) {
    return std::move(unit);
  } else {
    return std::make_unique<Unit>(std::move(unit));
  }
}
template <typename Unit>
Unit& unit_of(Carried<Unit>& carried) {
  if constexpr (std::is_same_v<Carried<Unit>, Unit>) {
    return carried;
  } else {
    return *carried;
  }
}

// Walks the collections in lockstep, one element per next(). An iterator moves on only when
// the next element is asked for: a single-pass range's step may block (a Channel's take), and
// the element in hand must be handed out first. Each step begins or advances the forward
// collections first and then the single-pass ones in order, and stops at the first that has
// ended: no single-pass collection is stepped (blocking, or taking an element that would be
// dropped) once the map is over. With several single-pass collections of different lengths,
// the element the earlier ones took as a later one ended is dropped (as by Julia's zip).
// Begins on the first next(), inside the driver's task.
template <typename... Cs>
class LockstepCursor {
 public:
  explicit LockstepCursor(Cs&... collections) : collections_(collections...) {}

  // The next element's arguments, or nullopt once a collection has ended (and from then on).
  template <typename Tuple>
  std::optional<Tuple> next() {
    if (ended_) return std::nullopt;
    ended_ = step_all(std::index_sequence_for<Cs...>{});
    begun_ = true;
    if (ended_) return std::nullopt;
    return [&]<std::size_t... I>(std::index_sequence<I...>) {
      return std::optional<Tuple>(std::in_place, take<I>()...);
    }(std::index_sequence_for<Cs...>{});
  }

 private:
  template <std::size_t I>
  using C = std::tuple_element_t<I, std::tuple<Cs...>>;

  // Begins or advances collection I; true if it has ended.
  template <std::size_t I>
  bool step() {
    auto& it = std::get<I>(its_);
    auto& c = std::get<I>(collections_);
    if (!begun_) {
      it.emplace(std::ranges::begin(c));
    } else {
      ++*it;
    }
    return *it == std::ranges::end(c);
  }

  template <std::size_t... I>
  bool step_all(std::index_sequence<I...>) {
    return ((std::ranges::forward_range<C<I>> && step<I>()) || ...) ||
           ((!std::ranges::forward_range<C<I>> && step<I>()) || ...);
  }

  template <std::size_t I>
  decltype(auto) take() {
    auto& it = *std::get<I>(its_);
    if constexpr (std::ranges::forward_range<C<I>> || !kMovesOut<C<I>>) {
      return *it;
    } else {
      return std::ranges::iter_move(it);
    }
  }

  std::tuple<Cs&...> collections_;
  std::tuple<std::optional<std::ranges::iterator_t<Cs>>...> its_;
  bool begun_ = false;
  bool ended_ = false;
};

// Runs the map: each unit next_unit() makes on the driver (std::nullopt: no more) goes to a
// mapping task, a new one's first unit or through the channel `work`; a mapping task runs
// consume(first, work, failure), which maps its first unit and then those it takes from work
// until work ends or `failure` says a task failed. `elements`: how many there are, or SIZE_MAX
// if unknown. Returns when every task has finished; rethrows f's first exception.
template <typename Unit, typename NextUnit, typename Consume>
void run_units(const NTasks& ntasks, std::size_t elements, NextUnit& next_unit,
               Consume& consume) {
  TaskLimit limit(ntasks, elements);  // validates before any task exists
  if (elements == 0) return;
  auto driver = [&] {
    MapFailure failure;
    Channel<Carried<Unit>> work;
    std::vector<Task<void>> tasks;
    auto mapping_task = [&work, &failure, &consume](Unit first) {
      return [&work, &failure, &consume, first = std::move(first)]() mutable {
        try {
          consume(std::move(first), work, failure);
        } catch (...) {
          failure.record(std::current_exception());
          work.close();
        }
      };
    };
    // Waits for every task, also past one that failed: the others still refer to this frame.
    // A mapping task fails only when it got no stack (weft/task/stack.h; its body catches
    // everything), which counts as if f had thrown that.
    auto finish = [&] {
      work.close();
      for (const Task<void>& t : tasks) {
        try {
          wait(t);
        } catch (const TaskFailedException& e) {
          failure.record(e.cause());
        }
      }
    };
    try {
      while (!failure.failed()) {
        std::optional<Unit> unit = next_unit();
        if (!unit.has_value()) break;
        if (limit.start_another(tasks.size())) {
          tasks.emplace_back(mapping_task(std::move(*unit)));
          try {
            schedule(tasks.back());  // sticky: bound to the host's worker
          } catch (...) {
            tasks.pop_back();  // never started: nothing to wait for
            throw;
          }
          // As Julia's asyncmap yields once its tasks are started: the new task runs its first
          // unit until it blocks or waits for the next, so that the units after go out in turn
          // to the tasks waiting for them (in batch mode, the spec's alternating batches).
          yield();
        } else {
          try {
            work.put(carry(std::move(*unit)));
          } catch (const InvalidStateException&) {
            break;  // a task failed and closed the channel
          }
        }
      }
    } catch (...) {
      finish();
      throw;
    }
    finish();
    failure.rethrow_if_failed();
  };
  // The caller waits for the host's end with a take on a channel bound to it: a wait in a
  // primitive, which a plain thread's deadlock detection (weft/sched/deadlock_error.h) never
  // ends with a DeadlockError, as it may end a wait(host). The host and the mapping tasks refer
  // to this frame (f, the collections, the results): it must not unwind while they may still
  // run, e.g. once a producer the detection cannot see feeds a channel that f takes from.
  Task<void> host(std::move(driver));  // sticky, like Julia's @async tasks
  Channel<bool> over;
  over.bind(host);
  schedule(host);
  try {
    take(over);  // nothing is put: returns by raising once the host has ended
  } catch (const InvalidStateException&) {
  } catch (const TaskFailedException&) {
  }
  try {
    wait(host);
  } catch (const TaskFailedException& e) {
    e.rethrow_cause();
  }
}

// The collections' common length (std::invalid_argument unless the forward ones agree). With
// a single-pass one, the length is known only once it ends: then this is an upper bound, the
// forward ones' length, or SIZE_MAX if there are none. Endless ones (kEndless) are not measured.
template <typename... Cs>
std::size_t common_length(Cs&... collections) {
  std::vector<std::size_t> lengths;
  (
      [&](auto& c) {
        if constexpr (std::ranges::forward_range<decltype(c)> && !kEndless<decltype(c)>) {
          lengths.push_back(static_cast<std::size_t>(std::ranges::distance(c)));
        }
      }(collections),
      ...);
  return lengths.empty() ? SIZE_MAX : checked_common_length(lengths);
}

// Calls f over the collections; store(i, result) receives each result (or nothing for void).
// kBatch: f takes a vector of argument tuples (batch mode).
template <bool kBatch, typename F, typename Store, typename... Cs>
void map_collections(F& f, Store& store, const NTasks& ntasks,
                     const std::optional<int>& batch_size, Cs&... collections) {
  static_assert(sizeof...(Cs) > 0, "asyncmap: give at least one collection");
  static_assert((std::ranges::input_range<Cs> && ...),
                "asyncmap: the collections must be ranges (std::ranges::input_range)");
  static_assert(!(kEndless<Cs> && ...),
                "asyncmap: every collection is endless (e.g. views::iota(0)): the map would "
                "never end");
  check_batch_mode(kBatch, batch_size);
  const std::size_t n = common_length(collections...);
  LockstepCursor<Cs...> cursor(collections...);
  if constexpr (!kBatch) {
    using Unit = SingleUnit<Cs...>;
    std::size_t next = 0;
    auto next_unit = [&]() -> std::optional<Unit> {
      std::optional<ArgsTuple<Cs...>> args = cursor.template next<ArgsTuple<Cs...>>();
      if (!args.has_value()) return std::nullopt;
      return Unit{next++, std::move(*args)};
    };
    auto process = [&f, &store](Unit& unit) {
      using R = decltype(std::apply(f, std::move(unit.args)));
      if constexpr (std::is_void_v<R>) {
        std::apply(f, std::move(unit.args));
      } else {
        store(unit.index, std::apply(f, std::move(unit.args)));
      }
    };
    auto consume = [&process](Unit first, Channel<Carried<Unit>>& work,
                              const MapFailure& failure) {
      process(first);
      for (Carried<Unit>& unit : work) {
        if (failure.failed()) break;
        process(unit_of<Unit>(unit));
      }
    };
    run_units<Unit>(ntasks, n, next_unit, consume);
  } else {
    // As Julia's: the driver hands out single elements, and each task gathers its own batch,
    // taking elements until it has batch_size of them or the channel ends. So tasks that are
    // free at once share out consecutive elements, and a batch need not be consecutive (the
    // spec's example: elements 1, 3 and 5 in one task's batches, 2 and 4 in the other's).
    using Unit = BatchElement<Cs...>;
    const std::size_t b = static_cast<std::size_t>(*batch_size);
    std::size_t next = 0;
    auto next_unit = [&]() -> std::optional<Unit> {
      std::optional<BatchTuple<Cs...>> args = cursor.template next<BatchTuple<Cs...>>();
      if (!args.has_value()) return std::nullopt;
      return Unit{next++, std::move(*args)};
    };
    auto process = [&f, &store](std::vector<Unit>& batch) {
      std::vector<BatchTuple<Cs...>> args;
      args.reserve(batch.size());
      for (Unit& unit : batch) args.push_back(std::move(unit.args));
      auto results = f(std::move(args));
      check_batch_results(static_cast<std::size_t>(std::ranges::size(results)), batch.size());
      std::size_t i = 0;
      for (auto&& r : results) store(batch[i++].index, std::move(r));
    };
    auto consume = [&process, b](Unit first, Channel<Carried<Unit>>& work,
                                 const MapFailure& failure) {
      std::vector<Unit> batch;
      batch.push_back(std::move(first));
      for (bool ended = false; !ended;) {
        ended = true;  // unless the batch fills before the channel ends
        if (batch.size() < b) {
          for (Carried<Unit>& unit : work) {  // each step takes one more: break once full
            batch.push_back(std::move(unit_of<Unit>(unit)));
            if (batch.size() == b) {
              ended = false;
              break;
            }
          }
        } else {
          ended = false;
        }
        if (batch.empty() || failure.failed()) return;
        process(batch);
        batch.clear();
      }
    };
    run_units<Unit>(ntasks, n, next_unit, consume);
  }
}

// The type of value f returns per element (batch mode: the element type of what it returns):
// without reference or const, as the results hold values (f may return a reference to
// something of its argument's, or a const value).
template <typename F, bool kBatch, typename... Cs>
struct MapResult;
template <typename F, typename... Cs>
struct MapResult<F, false, Cs...> {
  using type = std::remove_cvref_t<std::invoke_result_t<F&, ArgOf<Cs>...>>;
};
template <typename F, typename... Cs>
struct MapResult<F, true, Cs...> {
  using type = std::ranges::range_value_t<
      std::invoke_result_t<F&, std::vector<BatchTuple<Cs...>>&&>>;
};

// Batch mode is chosen by f's signature: it takes the vector of argument tuples and not the
// elements themselves. (A generic lambda counts as taking elements: give a batch function its
// parameter type.)
template <typename F, typename... Cs>
constexpr bool is_batch_function() {
  return std::is_invocable_v<F&, std::vector<BatchTuple<Cs...>>&&> &&
         !std::is_invocable_v<F&, ArgOf<Cs>...>;
}

template <typename F, typename... Cs>
auto asyncmap_vector(F& f, const NTasks& ntasks, const std::optional<int>& batch_size,
                     Cs&... collections) {
  constexpr bool kBatch = is_batch_function<F, Cs...>();
  using R = typename MapResult<F, kBatch, Cs...>::type;
  if constexpr (std::is_void_v<R>) {
    auto store = [](std::size_t) {};
    map_collections<kBatch>(f, store, ntasks, batch_size, collections...);
  } else {
    std::vector<std::optional<R>> slots;
    if constexpr (kAllForward<Cs...>) slots.resize(common_length(collections...));
    // Single-pass collections: the count shows as they go. Every task runs on the host's
    // worker, one at a time, and none holds a slot across a switch: growing is safe.
    auto store = [&slots](std::size_t i, auto&& value) {
      if (i >= slots.size()) slots.resize(i + 1);
      slots[i].emplace(std::forward<decltype(value)>(value));
    };
    map_collections<kBatch>(f, store, ntasks, batch_size, collections...);
    std::vector<R> out;
    out.reserve(slots.size());
    for (std::optional<R>& slot : slots) out.push_back(std::move(*slot));
    return out;
  }
}

template <typename F, typename Results, typename... Cs>
void asyncmap_store(F& f, Results& results, const NTasks& ntasks,
                    const std::optional<int>& batch_size, Cs&... collections) {
  const std::size_t have = static_cast<std::size_t>(std::ranges::size(results));
  if constexpr (kAllForward<Cs...>) check_results_size(have, common_length(collections...));
  auto store = [&results, have](std::size_t i, auto&& value) {
    // Single-pass collections: too many elements shows only now (f's failure, as any).
    if constexpr (!kAllForward<Cs...>) {
      if (i >= have) throw_results_too_small(have);
    }
    results[i] = std::forward<decltype(value)>(value);
  };
  map_collections<is_batch_function<F, Cs...>()>(f, store, ntasks, batch_size, collections...);
}

}  // namespace weft::internal

#endif  // WEFT_ASYNCMAP_INTERNAL_ASYNCMAP_DRIVER_H_
