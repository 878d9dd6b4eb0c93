// asyncmap and asyncmap_into: Julia's asyncmap(f, c...; ntasks, batch_size) and asyncmap!.
//
//   asyncmap(f, c1, c2, ..., AsyncMapOptions{...})   -> std::vector<R>, results in order
//   asyncmap_into(f, results, c1, ..., options)     -> results (Julia's asyncmap!)
//
// f is applied to the elements of one or more collections (f(c1[i], c2[i], ...)) by several
// concurrent tasks. Collections are ranges: forward ranges (containers, views) of equal
// lengths, or single-pass ones -- a Channel, an input view -- which are taken from as the map
// goes, until the first collection ends (as Julia's asyncmap over a Channel or a generator).
// An endless forward range (one whose end is std::unreachable_sentinel: views::iota(0), Julia's
// countfrom()) may go alongside the others, e.g. to number a Channel's items: it has no length
// and never ends the map (all collections endless does not compile). A single-pass collection
// is not stepped once another has ended (no take that would block or drop an item). Its
// elements are moved out of a Channel, and copied from any other single-pass range whose
// elements are lvalues (they may be the caller's own objects).
// The options argument is optional and comes last:
//   ntasks      an int: at most that many tasks (0, the default: one per element up to 100;
//               100 when a single-pass collection's length is not known in advance);
//               or a std::function<int()>, called before each element is handed out: a
//               new task starts when it returns more than the tasks running (at least one).
//   batch_size  set: f is called with a std::vector<std::tuple<V1, V2, ...>> of at most
//               batch_size argument tuples (copies of the elements) and must return a sized
//               range of as many results. As in Julia, each task gathers its own batch from
//               the elements handed out one by one, until it has batch_size or there are no
//               more: a batch need not be consecutive elements. Batch mode is chosen at
//               compile time from f's parameter (a std::vector of tuples, spelled out: a
//               generic lambda counts as taking elements); batch_size must then be given, and
//               only then.
//
// Tasks: like Julia's (which are @async tasks), they all run on one worker -- the caller's, or
// one worker of the default runtime when called from a plain thread -- so calls of f overlap
// when f blocks (I/O, channels, sleep) but never run in parallel with each other. The caller
// itself is not pinned. Each task takes its first element directly and the rest through an
// unbuffered channel, so with n elements and ntasks = k (k <= n) exactly k tasks do the work.
//
// Errors: when f throws, the other tasks take no new elements, every task is waited for, and
// the first exception f threw is rethrown to the caller as it was thrown (not wrapped in a
// TaskFailedException: the caller never saw the tasks, and catching by type should work as
// it would for a plain loop). With a single-pass collection the error surfaces once the
// driver's wait for the next element ends (an element comes, or the collection ends): nothing
// can cut short a take from a Channel the map does not own. Bad options, forward collections
// of different lengths, a results container that is too small, or a batch function returning
// the wrong number of results throw std::invalid_argument naming the values (too small for
// single-pass collections: found as the map passes its end, and raised as f's failures are).
// asyncmap_into writes results[i] from the tasks: a container whose distinct elements cannot
// be written independently (std::vector<bool>) is not supported.
#ifndef WEFT_ASYNCMAP_ASYNCMAP_H_
#define WEFT_ASYNCMAP_ASYNCMAP_H_

#include <cstddef>
#include <functional>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "weft/asyncmap/internal/asyncmap_driver.h"

namespace weft {

struct AsyncMapOptions {
  std::variant<int, std::function<int()>> ntasks = 0;
  std::optional<int> batch_size;
};

namespace internal {

template <typename... Args>
constexpr bool last_is_options() {
  if constexpr (sizeof...(Args) == 0) {
    return false;
  } else {
    using Last = std::tuple_element_t<sizeof...(Args) - 1, std::tuple<Args...>>;
    return std::is_same_v<std::remove_cvref_t<Last>, AsyncMapOptions>;
  }
}

// Calls run(options, collections...) with the trailing AsyncMapOptions split off (or defaults).
template <typename Run, typename... Args>
decltype(auto) split_options(Run&& run, Args&&... args) {
  if constexpr (last_is_options<Args...>()) {
    auto all = std::forward_as_tuple(std::forward<Args>(args)...);
    return [&]<std::size_t... I>(std::index_sequence<I...>) -> decltype(auto) {
      const AsyncMapOptions& options = std::get<sizeof...(Args) - 1>(all);
      return run(options.ntasks, options.batch_size, std::get<I>(all)...);
    }(std::make_index_sequence<sizeof...(Args) - 1>{});
  } else {
    const AsyncMapOptions options;
    return run(options.ntasks, options.batch_size, args...);
  }
}

}  // namespace internal

template <typename F, typename... Args>
auto asyncmap(F&& f, Args&&... args) {
  return internal::split_options(
      [&f](const auto& ntasks, const std::optional<int>& batch_size, auto&... collections) {
        return internal::asyncmap_vector(f, ntasks, batch_size, collections...);
      },
      std::forward<Args>(args)...);
}

template <typename F, typename Results, typename... Args>
Results& asyncmap_into(F&& f, Results& results, Args&&... args) {
  internal::split_options(
      [&f, &results](const auto& ntasks, const std::optional<int>& batch_size,
                     auto&... collections) {
        internal::asyncmap_store(f, results, ntasks, batch_size, collections...);
        return 0;
      },
      std::forward<Args>(args)...);
  return results;
}

}  // namespace weft

#endif  // WEFT_ASYNCMAP_ASYNCMAP_H_
