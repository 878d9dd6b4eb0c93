// The machinery behind asyncmap and asyncmap_into (asyncmap.h has the contract).
//
// A host task (sticky) runs the driver, so that the driver and every mapping task share one
// worker whatever the caller is (a task that may migrate, or a plain thread). The driver walks
// the collections in lockstep and hands out units -- one element's argument tuple, or a batch
// of them -- either to a new task (while the task limit allows one more) or through an
// unbuffered channel to whichever task is free. A task that catches an exception from f
// records it (first one wins) and closes the channel: the driver's next put fails, the other
// tasks' next take ends their loop, and the driver waits for all of them before rethrowing.
#ifndef WEFT_ASYNCMAP_INTERNAL_ASYNCMAP_DRIVER_H_
#define WEFT_ASYNCMAP_INTERNAL_ASYNCMAP_DRIVER_H_

#include <algorithm>
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <iterator>
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

// One element's arguments for f, as the collections' iterators yield them (references into the
// collections, or values for ranges that compute their elements).
template <typename... Cs>
using ArgsTuple = std::tuple<std::ranges::range_reference_t<Cs>...>;
// One element's arguments as a batch holds them: copies.
template <typename... Cs>
using BatchTuple = std::tuple<std::ranges::range_value_t<Cs>...>;

template <typename... Cs>
struct SingleUnit {
  std::size_t index;
  ArgsTuple<Cs...> args;
};

template <typename... Cs>
struct BatchUnit {
  std::size_t first;
  std::vector<BatchTuple<Cs...>> args;
};

// Walks the collections in lockstep.
template <typename... Cs>
class LockstepCursor {
 public:
  explicit LockstepCursor(Cs&... collections) : its_(std::ranges::begin(collections)...) {}

  ArgsTuple<Cs...> args() {
    return std::apply([](auto&... it) { return ArgsTuple<Cs...>(*it...); }, its_);
  }
  BatchTuple<Cs...> copies() {
    return std::apply([](auto&... it) { return BatchTuple<Cs...>(*it...); }, its_);
  }
  void advance() {
    std::apply([](auto&... it) { (++it, ...); }, its_);
  }

 private:
  std::tuple<std::ranges::iterator_t<Cs>...> its_;
};

// Runs the map: `units` units made by make_unit() on the driver, each handed to process() in
// a mapping task. Returns when every task has finished; rethrows f's first exception.
template <typename Unit, typename MakeUnit, typename Process>
void run_units(const NTasks& ntasks, std::size_t elements, std::size_t units,
               MakeUnit& make_unit, Process& process) {
  TaskLimit limit(ntasks, elements);  // validates before any task exists
  if (units == 0) return;
  auto driver = [&] {
    MapFailure failure;
    Channel<Unit> work;
    std::vector<Task<void>> tasks;
    auto mapping_task = [&work, &failure, &process](Unit first) {
      return [&work, &failure, &process, first = std::move(first)]() mutable {
        try {
          process(first);
          for (Unit& unit : work) {
            if (failure.failed()) break;
            process(unit);
          }
        } catch (...) {
          failure.record(std::current_exception());
          work.close();
        }
      };
    };
    auto finish = [&] {
      work.close();
      for (const Task<void>& t : tasks) wait(t);
    };
    try {
      for (std::size_t u = 0; u < units && !failure.failed(); ++u) {
        Unit unit = make_unit();
        if (limit.start_another(tasks.size())) {
          tasks.emplace_back(mapping_task(std::move(unit)));
          try {
            schedule(tasks.back());  // sticky: bound to the host's worker
          } catch (...) {
            tasks.pop_back();  // never started: nothing to wait for
            throw;
          }
        } else {
          try {
            work.put(std::move(unit));
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
  Task<void> host(std::move(driver));  // sticky, like Julia's @async tasks
  schedule(host);
  try {
    wait(host);
  } catch (const TaskFailedException& e) {
    e.rethrow_cause();
  }
}

template <typename... Cs>
std::size_t common_length(Cs&... collections) {
  return checked_common_length(
      {static_cast<std::size_t>(std::ranges::distance(collections))...});
}

// Calls f over the collections; store(i, result) receives each result (or nothing for void).
// kBatch: f takes a vector of argument tuples (batch mode).
template <bool kBatch, typename F, typename Store, typename... Cs>
void map_collections(F& f, Store& store, const NTasks& ntasks,
                     const std::optional<int>& batch_size, Cs&... collections) {
  static_assert(sizeof...(Cs) > 0, "asyncmap: give at least one collection");
  static_assert((std::ranges::forward_range<Cs> && ...),
                "asyncmap: the collections must be forward ranges");
  check_batch_mode(kBatch, batch_size);
  const std::size_t n = common_length(collections...);
  LockstepCursor<Cs...> cursor(collections...);
  if constexpr (!kBatch) {
    using Unit = SingleUnit<Cs...>;
    std::size_t next = 0;
    auto make_unit = [&] {
      Unit unit{next++, cursor.args()};
      cursor.advance();
      return unit;
    };
    auto process = [&f, &store](Unit& unit) {
      using R = decltype(std::apply(f, std::move(unit.args)));
      if constexpr (std::is_void_v<R>) {
        std::apply(f, std::move(unit.args));
      } else {
        store(unit.index, std::apply(f, std::move(unit.args)));
      }
    };
    run_units<Unit>(ntasks, n, n, make_unit, process);
  } else {
    using Unit = BatchUnit<Cs...>;
    const std::size_t b = static_cast<std::size_t>(*batch_size);
    std::size_t next = 0;
    auto make_unit = [&] {
      Unit unit{next, {}};
      const std::size_t count = std::min(b, n - next);
      unit.args.reserve(count);
      for (std::size_t k = 0; k < count; ++k) {
        unit.args.push_back(cursor.copies());
        cursor.advance();
      }
      next += count;
      return unit;
    };
    auto process = [&f, &store](Unit& unit) {
      const std::size_t count = unit.args.size();
      auto results = f(std::move(unit.args));
      check_batch_results(static_cast<std::size_t>(std::ranges::size(results)), count);
      std::size_t i = unit.first;
      for (auto&& r : results) store(i++, std::move(r));
    };
    run_units<Unit>(ntasks, n, (n + b - 1) / b, make_unit, process);
  }
}

// The type f returns per element (batch mode: the element type of what it returns).
template <typename F, bool kBatch, typename... Cs>
struct MapResult;
template <typename F, typename... Cs>
struct MapResult<F, false, Cs...> {
  using type = std::invoke_result_t<F&, std::ranges::range_reference_t<Cs>...>;
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
         !std::is_invocable_v<F&, std::ranges::range_reference_t<Cs>...>;
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
    std::vector<std::optional<R>> slots(common_length(collections...));
    auto store = [&slots](std::size_t i, R&& value) { slots[i].emplace(std::move(value)); };
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
  check_results_size(static_cast<std::size_t>(std::ranges::size(results)),
                     common_length(collections...));
  auto store = [&results](std::size_t i, auto&& value) {
    results[i] = std::forward<decltype(value)>(value);
  };
  map_collections<is_batch_function<F, Cs...>()>(f, store, ntasks, batch_size, collections...);
}

}  // namespace weft::internal

#endif  // WEFT_ASYNCMAP_INTERNAL_ASYNCMAP_DRIVER_H_
