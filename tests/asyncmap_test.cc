// asyncmap and asyncmap_into: the spec's examples (task ids, batches) and the documented
// behaviours (ntasks as a number or a function, several collections, errors).
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <deque>
#include <list>
#include <memory>
#include <numeric>
#include <sstream>
#include <ranges>
#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_runtime.h"
#include "weft/asyncmap/asyncmap.h"
#include "weft/channel/channel.h"
#include "weft/sched/runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/task/stack.h"
#include "weft/task/task.h"

namespace weft {
namespace {

// julia> tskoid() = objectid(current_task())
std::uint64_t tskoid() { return current_task().id(); }

std::size_t distinct(const std::vector<std::uint64_t>& ids) {
  return std::set<std::uint64_t>(ids.begin(), ids.end()).size();
}

const std::vector<int> kOneToFive = {1, 2, 3, 4, 5};

class AsyncMapExamples : public testing::RuntimeTest {};

// julia> length(unique(asyncmap(x->tskoid(), 1:5)))  -> 5
TEST_P(AsyncMapExamples, EachElementInItsOwnTask) {
  run([] {
    std::vector<std::uint64_t> ids = asyncmap([](int) { return tskoid(); }, kOneToFive);
    ASSERT_EQ(ids.size(), 5u);
    EXPECT_EQ(distinct(ids), 5u);
    EXPECT_EQ(std::count(ids.begin(), ids.end(), tskoid()), 0) << "the caller mapped itself";
  });
}

// julia> length(unique(asyncmap(x->tskoid(), 1:5; ntasks=2)))  -> 2
TEST_P(AsyncMapExamples, TwoTasks) {
  run([] {
    std::vector<std::uint64_t> ids =
        asyncmap([](int) { return tskoid(); }, std::views::iota(1, 6), AsyncMapOptions{.ntasks = 2});
    ASSERT_EQ(ids.size(), 5u);
    EXPECT_EQ(distinct(ids), 2u);
  });
}

// julia> batch_func(input) = map(x->string("args_tuple: ", x, ", element_val: ", x[1],
//                                           ", task: ", tskoid()), input)
// julia> asyncmap(batch_func, 1:5; ntasks=2, batch_size=2)
// Julia's output shows two task ids, alternating by element: its tasks take elements one at a
// time into their batches, and so do weft's. Elements 1 and 2 start the two tasks, 3 and 4 go
// to them in turn through the unbuffered channel, filling batches {1,3} and {2,4}; 5 is the
// last batch of whichever asks first (in Julia's output the first task's), which is the
// scheduler's business.
TEST_P(AsyncMapExamples, Batches) {
  run([] {
    std::vector<std::vector<int>> batches;
    auto batch_func = [&batches](const std::vector<std::tuple<int>>& input) {
      batches.emplace_back();
      std::vector<std::string> out;
      for (const std::tuple<int>& x : input) {
        batches.back().push_back(std::get<0>(x));
        out.push_back("args_tuple: (" + std::to_string(std::get<0>(x)) +
                      ",), element_val: " + std::to_string(std::get<0>(x)) +
                      ", task: " + std::to_string(tskoid()));
      }
      return out;
    };
    std::vector<std::string> lines =
        asyncmap(batch_func, kOneToFive, AsyncMapOptions{.ntasks = 2, .batch_size = 2});
    ASSERT_EQ(lines.size(), 5u);
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i) {
      const std::string prefix = "args_tuple: (" + std::to_string(i + 1) +
                                 ",), element_val: " + std::to_string(i + 1) + ", task: ";
      ASSERT_EQ(lines[i].rfind(prefix, 0), 0u) << lines[i];
      const std::string id = lines[i].substr(prefix.size());
      ASSERT_FALSE(id.empty());
      EXPECT_TRUE(std::all_of(id.begin(), id.end(), ::isdigit)) << lines[i];
      ids.push_back(id);
    }
    std::sort(batches.begin(), batches.end());
    EXPECT_EQ(batches, (std::vector<std::vector<int>>{{1, 3}, {2, 4}, {5}}));
    EXPECT_EQ(ids[0], ids[2]);
    EXPECT_EQ(ids[1], ids[3]);
    EXPECT_NE(ids[0], ids[1]) << "one task took both first elements";
    EXPECT_TRUE(ids[4] == ids[0] || ids[4] == ids[1]) << "a third task: " << ids[4];
  });
}

WEFT_INSTANTIATE_WORKER_COUNTS(AsyncMapExamples);

class AsyncMapTest : public testing::RuntimeTest {};

TEST_P(AsyncMapTest, ResultsInOrderWhenTasksFinishOutOfOrder) {
  run([] {
    // Later elements finish first: each task sleeps less than the one before.
    std::vector<int> in(20);
    std::iota(in.begin(), in.end(), 0);
    std::vector<int> out = asyncmap(
        [](int x) {
          sleep(0.001 * (20 - x) / 4.0 + 0.001);
          return x * x;
        },
        in);
    for (int i = 0; i < 20; ++i) EXPECT_EQ(out[i], i * i);
  });
}

// Julia's asyncmap collects the values f returns. So does weft's, also when f returns a
// reference (an accessor, p -> p.name) or a const-qualified value: the results are a
// std::vector of the values (a std::vector of references or of const elements is no C++ type).
TEST_P(AsyncMapTest, ResultsAreTheValuesFReturnsByReferenceOrConst) {
  struct Person {
    std::string name;
    int age;
  };
  run([] {
    const std::vector<Person> people = {{"ann", 31}, {"bob", 42}, {"cy", 7}};
    std::vector<std::string> names = asyncmap(
        [](const Person& p) -> const std::string& { return p.name; }, people);
    EXPECT_EQ(names, (std::vector<std::string>{"ann", "bob", "cy"}));
    std::vector<std::string> greetings = asyncmap(
        [](const Person& p) -> const std::string { return "hi " + p.name; }, people);
    EXPECT_EQ(greetings, (std::vector<std::string>{"hi ann", "hi bob", "hi cy"}));
    std::vector<int> ages = asyncmap([](const Person& p) -> const int& { return p.age; }, people,
                                     AsyncMapOptions{.ntasks = 2});
    EXPECT_EQ(ages, (std::vector<int>{31, 42, 7}));
  });
}

TEST_P(AsyncMapTest, SeveralCollectionsElementwise) {
  run([] {
    std::vector<int> a = {1, 2, 3};
    std::list<std::string> b = {"x", "y", "z"};
    std::vector<std::string> out =
        asyncmap([](int n, const std::string& s) { return std::string(n, s[0]); }, a, b,
                 AsyncMapOptions{.ntasks = 2});
    EXPECT_EQ(out, (std::vector<std::string>{"x", "yy", "zzz"}));
    // Batch mode with two collections: tuples of both.
    std::vector<int> sums = asyncmap(
        [](std::vector<std::tuple<int, int>> batch) {
          std::vector<int> r;
          for (auto [x, y] : batch) r.push_back(x + y);
          return r;
        },
        a, std::vector<int>{10, 20, 30}, AsyncMapOptions{.batch_size = 2});
    EXPECT_EQ(sums, (std::vector<int>{11, 22, 33}));
  });
}

TEST_P(AsyncMapTest, OverlapsBlockingCalls) {
  run([] {
    // Every call blocks on a channel that only the last call releases: possible only if the
    // calls run concurrently (as many tasks as elements).
    Channel<int> gate = Channel<int>::unbounded();
    std::atomic<int> arrived{0};
    std::vector<int> out = asyncmap(
        [&](int x) {
          if (arrived.fetch_add(1) + 1 == 8) {
            for (int i = 0; i < 8; ++i) put(gate, 0);
          }
          take(gate);
          return x + 1;
        },
        std::views::iota(0, 8));
    EXPECT_EQ(out, (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8}));
  });
}

TEST_P(AsyncMapTest, NtasksNeverExceeded) {
  run([] {
    int running = 0, peak = 0;  // all mapping tasks share one worker: no data race
    asyncmap(
        [&](int) {
          peak = std::max(peak, ++running);
          sleep(0.001);
          --running;
        },
        std::views::iota(0, 30), AsyncMapOptions{.ntasks = 3});
    EXPECT_EQ(peak, 3);
  });
}

// ntasks as a function: re-checked before each element; a task starts when it says more.
TEST_P(AsyncMapTest, NtasksFunctionGrowsTheTasks) {
  run([] {
    int calls = 0;
    std::vector<std::uint64_t> ids = asyncmap(
        [](int) {
          sleep(0.001);
          return tskoid();
        },
        std::views::iota(0, 12),
        AsyncMapOptions{.ntasks = std::function<int()>([&calls] { return ++calls <= 4 ? 1 : 4; })});
    EXPECT_EQ(calls, 12);
    EXPECT_EQ(distinct(ids), 4u);
  });
}

TEST_P(AsyncMapTest, NtasksFunctionReturningZeroStillStartsOne) {
  run([] {
    std::vector<std::uint64_t> ids =
        asyncmap([](int) { return tskoid(); }, kOneToFive,
                 AsyncMapOptions{.ntasks = std::function<int()>([] { return 0; })});
    EXPECT_EQ(distinct(ids), 1u);
  });
}

TEST_P(AsyncMapTest, AsyncmapInto) {
  run([] {
    std::vector<long> results(5, -1);
    std::vector<long>& same =
        asyncmap_into([](int x) { return 10L * x; }, results, kOneToFive, AsyncMapOptions{.ntasks = 2});
    EXPECT_EQ(&same, &results);
    EXPECT_EQ(results, (std::vector<long>{10, 20, 30, 40, 50}));
    std::vector<std::string> batched(5);
    asyncmap_into(
        [](const std::vector<std::tuple<int>>& in) {
          std::vector<std::string> r;
          for (auto [x] : in) r.push_back(std::to_string(x));
          return r;
        },
        batched, kOneToFive, AsyncMapOptions{.batch_size = 3});
    EXPECT_EQ(batched, (std::vector<std::string>{"1", "2", "3", "4", "5"}));
  });
}

TEST_P(AsyncMapTest, EmptyInputAndVoidFunction) {
  run([] {
    EXPECT_TRUE(asyncmap([](int x) { return x; }, std::vector<int>{}).empty());
    std::atomic<int> sum{0};
    asyncmap([&sum](int x) { sum += x; }, kOneToFive);
    EXPECT_EQ(sum.load(), 15);
  });
}

// An exception in f surfaces to the caller as thrown; the other tasks stop taking work and
// none is left running.
TEST_P(AsyncMapTest, ExceptionStopsTheOthers) {
  run([] {
    std::atomic<int> started{0};
    std::vector<TaskRef> tasks_seen;
    try {
      asyncmap(
          [&](int x) {
            started.fetch_add(1);
            tasks_seen.push_back(current_task());
            yield();
            if (x == 3) throw std::runtime_error("element 3");
            yield();
            return x;
          },
          std::views::iota(0, 1000), AsyncMapOptions{.ntasks = 4});
      ADD_FAILURE() << "asyncmap did not raise";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "element 3");
    }
    const int at_throw = started.load();
    EXPECT_LE(at_throw, 4 + 4 + 1) << "tasks kept taking work after the failure";
    for (const TaskRef& t : tasks_seen) EXPECT_TRUE(istaskdone(t));
    for (int i = 0; i < 10; ++i) yield();
    EXPECT_EQ(started.load(), at_throw);
  });
}

TEST_P(AsyncMapTest, BatchExceptionAndWrongResultCount) {
  run([] {
    EXPECT_THROW(asyncmap(
                     [](const std::vector<std::tuple<int>>&) -> std::vector<int> {
                       throw std::out_of_range("batch");
                     },
                     kOneToFive, AsyncMapOptions{.batch_size = 2}),
                 std::out_of_range);
    try {
      // Two tasks, so that batches fill (with a task per element, as Julia's default of one
      // per element up to 100 gives, each batch would be one element).
      asyncmap([](const std::vector<std::tuple<int>>&) { return std::vector<int>{1}; },
               kOneToFive, AsyncMapOptions{.ntasks = 2, .batch_size = 2});
      ADD_FAILURE() << "a short batch result was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("returned 1 results for a batch of 2"),
                std::string::npos)
          << e.what();
    }
  });
}

TEST_P(AsyncMapTest, BadInput) {
  run([] {
    auto id = [](int x) { return x; };
    auto expect_invalid = [](auto call, const std::string& needle) {
      try {
        call();
        ADD_FAILURE() << "accepted; expected an error mentioning " << needle;
      } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      }
    };
    expect_invalid([&] { asyncmap(id, kOneToFive, AsyncMapOptions{.ntasks = -1}); }, "ntasks=-1");
    expect_invalid(
        [&] {
          asyncmap([](const std::vector<std::tuple<int>>&) { return std::vector<int>(); },
                   kOneToFive, AsyncMapOptions{.batch_size = 0});
        },
        "batch_size=0");
    expect_invalid([&] { asyncmap(id, kOneToFive, AsyncMapOptions{.batch_size = 2}); },
                   "batch_size=2");
    expect_invalid(
        [&] {
          asyncmap([](const std::vector<std::tuple<int>>&) { return std::vector<int>(); },
                   kOneToFive);
        },
        "no batch_size");
    expect_invalid([&] { asyncmap([](int a, int b) { return a + b; }, kOneToFive, std::vector<int>{1, 2}); },
                   "5, 2");
    std::vector<int> small(3);
    expect_invalid([&] { asyncmap_into(id, small, kOneToFive); }, "results holds 3");
    expect_invalid(
        [&] { asyncmap(id, kOneToFive, AsyncMapOptions{.ntasks = std::function<int()>()}); },
        "empty");
  });
}

// Single-pass collections: a Channel is taken from as the map goes, while its producer is
// still putting, and the map ends when it closes (Julia's asyncmap(f, ::Channel)).
TEST_P(AsyncMapTest, OverAChannelAsItFills) {
  static_assert(std::ranges::input_range<Channel<int>>);
  static_assert(!std::ranges::forward_range<Channel<int>>);
  run([] {
    Channel<int> c;  // unbuffered: each element is handed over as the map asks for it
    auto producer = spawn([c] {
      for (int i = 1; i <= 50; ++i) put(c, i);
      close(c);
    });
    std::vector<int> squares = asyncmap(
        [](int x) {
          if (x % 7 == 0) sleep(0.001);  // out of order, results in order all the same
          return x * x;
        },
        c, AsyncMapOptions{.ntasks = 4});
    ASSERT_EQ(squares.size(), 50u);
    for (int i = 0; i < 50; ++i) EXPECT_EQ(squares[i], (i + 1) * (i + 1));
    wait(producer);
  });
}

// Julia: a collection of unknown length gets up to 100 tasks by default.
TEST_P(AsyncMapTest, UnknownLengthDefaultsToAHundredTasks) {
  run([] {
    Channel<int> c = Channel<int>::unbounded();
    for (int i = 0; i < 150; ++i) put(c, i);
    close(c);
    std::atomic<int> running{0}, peak{0};
    std::vector<std::uint64_t> ids = asyncmap(
        [&](int) {
          const int now = running.fetch_add(1) + 1;
          peak.store(std::max(peak.load(), now));
          sleep(0.002);  // the started tasks overlap here
          running.fetch_sub(1);
          return tskoid();
        },
        c);
    EXPECT_EQ(ids.size(), 150u);
    EXPECT_EQ(distinct(ids), 100u);
    EXPECT_LE(peak.load(), 100);
  });
}

// Several single-pass collections run until the shortest ends; a forward one alongside too.
TEST_P(AsyncMapTest, SinglePassCollectionsStopAtTheShortest) {
  run([] {
    Channel<int> longer = Channel<int>::unbounded(), shorter = Channel<int>::unbounded();
    for (int i = 1; i <= 10; ++i) put(longer, i);
    for (int i = 1; i <= 6; ++i) put(shorter, 100 * i);
    close(longer);
    close(shorter);
    std::vector<int> sums = asyncmap([](int a, int b, int c) { return a + b + c; }, longer,
                                     shorter, std::views::iota(1000, 2000));
    EXPECT_EQ(sums, (std::vector<int>{1101, 1203, 1305, 1407, 1509, 1611}));
  });
}

// A forward collection that ends first stops the map before the single-pass one is stepped
// again: no take that would block on an open channel, no element taken and dropped.
TEST_P(AsyncMapTest, ForwardCollectionEndingFirstLeavesTheChannelAlone) {
  run([] {
    Channel<int> c = Channel<int>::unbounded();  // left open: another take would block
    for (int i = 1; i <= 4; ++i) put(c, 10 * i);
    std::vector<int> sums =
        asyncmap([](int a, int b) { return a + b; }, std::vector<int>{1, 2, 3}, c);
    EXPECT_EQ(sums, (std::vector<int>{11, 22, 33}));
    EXPECT_EQ(c.n_avail(), 1u);  // the fourth is still there
    EXPECT_TRUE(asyncmap([](int a, int b) { return a + b; }, std::vector<int>{}, c).empty());
    EXPECT_EQ(take(c), 40);
    // The forward ones must still agree with each other.
    try {
      asyncmap([](int a, int b, int d) { return a + b + d; }, kOneToFive, std::vector<int>{1, 2, 3},
               c);
      ADD_FAILURE() << "forward collections of lengths 5 and 3 were accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("5, 3"), std::string::npos) << e.what();
    }
  });
}

// An endless forward range alongside a Channel (Julia's asyncmap(f, countfrom(), c), the
// enumerate idiom): the map runs until the channel ends, as it does with a bounded one. Its
// length must not be measured: std::ranges::distance over iota(0) never returns.
TEST_P(AsyncMapTest, AnEndlessForwardRangeAlongsideAChannel) {
  run([] {
    Channel<int> c = Channel<int>::unbounded();
    for (int i = 1; i <= 4; ++i) put(c, 10 * i);
    close(c);
    std::vector<int> sums =
        asyncmap([](int i, int x) { return i + x; }, std::views::iota(0), c);
    EXPECT_EQ(sums, (std::vector<int>{10, 21, 32, 43}));
    // With a bounded forward one: that one's length is the map's; into results too.
    std::vector<int> into(5);
    asyncmap_into([](int i, int x) { return i * x; }, into, std::views::iota(1), kOneToFive);
    EXPECT_EQ(into, (std::vector<int>{1, 4, 9, 16, 25}));
  });
}

// A single-pass range whose elements are the caller's own objects (lvalues) is copied from,
// never moved from; a Channel's items are moved out (they are the iterator's).
TEST_P(AsyncMapTest, SinglePassLvaluesAreCopiedNotMoved) {
  run([] {
    std::vector<std::string> names = {"zero", "one", "two"};
    std::istringstream in("2 0 1");
    auto named = std::views::istream<int>(in) |
                 std::views::transform([&](int i) -> std::string& { return names[i]; });
    static_assert(!std::ranges::forward_range<decltype(named)>);
    std::vector<std::string> got = asyncmap([](std::string s) { return s; }, named);
    EXPECT_EQ(got, (std::vector<std::string>{"two", "zero", "one"}));
    EXPECT_EQ(names, (std::vector<std::string>{"zero", "one", "two"}));

    Channel<std::unique_ptr<int>> boxes = Channel<std::unique_ptr<int>>::unbounded();
    for (int i = 1; i <= 3; ++i) put(boxes, std::make_unique<int>(i));
    close(boxes);
    std::vector<int> unboxed = asyncmap([](std::unique_ptr<int> p) { return *p; }, boxes);
    EXPECT_EQ(unboxed, (std::vector<int>{1, 2, 3}));
  });
}

// Elements whose move may throw (a std::deque's, one of its own) travel to the mapping tasks
// boxed, as the work channel's items must move without throwing: batch mode copies them, and a
// single-pass range hands out its own.
struct ThrowingMove {
  int v = 0;
  explicit ThrowingMove(int x) : v(x) {}
  ThrowingMove(const ThrowingMove&) = default;
  ThrowingMove(ThrowingMove&& o) noexcept(false) : v(o.v) {}
};

TEST_P(AsyncMapTest, ElementsWhoseMoveMayThrow) {
  static_assert(!std::is_nothrow_move_constructible_v<ThrowingMove>);
  static_assert(!std::is_nothrow_move_constructible_v<std::deque<int>>);
  run([] {
    const std::vector<std::deque<int>> deques{{1, 2}, {3}, {4, 5, 6}, {}, {7}};
    auto sizes = [](std::vector<std::tuple<std::deque<int>>> batch) {
      std::vector<std::size_t> out;
      for (auto& [d] : batch) out.push_back(d.size());
      return out;
    };
    EXPECT_EQ(asyncmap(sizes, deques, AsyncMapOptions{.ntasks = 2, .batch_size = 2}),
              (std::vector<std::size_t>{2, 1, 3, 0, 1}));
    std::vector<ThrowingMove> items;
    for (int i = 1; i <= 5; ++i) items.emplace_back(i);
    auto doubled = asyncmap([](const ThrowingMove& t) { return 2 * t.v; },
                            items | std::views::filter([](const ThrowingMove&) { return true; }) |
                                std::views::transform([](const ThrowingMove& t) { return t; }),
                            AsyncMapOptions{.ntasks = 2});
    EXPECT_EQ(doubled, (std::vector<int>{2, 4, 6, 8, 10}));
  });
}

TEST_P(AsyncMapTest, SinglePassInBatchesAndInto) {
  run([] {
    Channel<std::string> words = Channel<std::string>::unbounded();
    for (const char* w : {"a", "bb", "ccc", "dddd", "eeeee"}) put(words, std::string(w));
    close(words);
    std::vector<std::size_t> batch_sizes;
    std::vector<std::size_t> lengths = asyncmap(
        [&](std::vector<std::tuple<std::string>> batch) {
          batch_sizes.push_back(batch.size());
          std::vector<std::size_t> out;
          for (auto& [w] : batch) out.push_back(w.size());
          return out;
        },
        words, AsyncMapOptions{.ntasks = 2, .batch_size = 2});
    EXPECT_EQ(lengths, (std::vector<std::size_t>{1, 2, 3, 4, 5}));
    std::sort(batch_sizes.begin(), batch_sizes.end());
    EXPECT_EQ(batch_sizes, (std::vector<std::size_t>{1, 2, 2}));

    // One batch for everything, of a length not known in advance: nothing reserved for it.
    Channel<int> all = Channel<int>::unbounded();
    for (int i = 1; i <= 5; ++i) put(all, i);
    close(all);
    std::vector<int> doubled = asyncmap(
        [](std::vector<std::tuple<int>> batch) {
          std::vector<int> out;
          for (auto [x] : batch) out.push_back(2 * x);
          return out;
        },
        all, AsyncMapOptions{.batch_size = 1 << 30});
    EXPECT_EQ(doubled, (std::vector<int>{2, 4, 6, 8, 10}));

    Channel<int> c = Channel<int>::unbounded();
    for (int i = 1; i <= 4; ++i) put(c, i);
    close(c);
    std::vector<int> results(4);
    asyncmap_into([](int x) { return -x; }, results, c);
    EXPECT_EQ(results, (std::vector<int>{-1, -2, -3, -4}));
  });
}

// Too small a results container shows only as the map passes its end: raised like f's errors.
TEST_P(AsyncMapTest, SinglePassIntoTooSmallResults) {
  run([] {
    Channel<int> c = Channel<int>::unbounded();
    for (int i = 1; i <= 5; ++i) put(c, i);
    close(c);
    std::vector<int> small(3);
    try {
      asyncmap_into([](int x) { return x; }, small, c);
      ADD_FAILURE() << "results with 3 elements took 5";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("results holds 3 elements, the collections have more"),
                std::string::npos)
          << e.what();
    }
  });
}

// From a plain thread: blocks as a thread; the tasks run in the default runtime.
TEST(AsyncMapPlainThread, Works) {
  std::vector<std::uint64_t> ids = asyncmap([](int) { return tskoid(); }, kOneToFive);
  EXPECT_EQ(distinct(ids), 5u);
  EXPECT_THROW(asyncmap([](int x) -> int { throw std::logic_error("x"); }, kOneToFive),
               std::logic_error);
}

// From a plain thread, with f waiting on a channel that only another plain thread feeds, later
// than deadlock detection takes to decide (3 polls 100 ms apart, sched/deadlock.h): to the
// detection everything is blocked, yet asyncmap must not give up its wait with a DeadlockError
// -- its tasks refer to the caller's frame, f and the results -- but keep waiting, as a
// thread blocked in a channel does, and return the results once the feeder comes.
TEST(AsyncMapPlainThread, KeepsWaitingThroughAFalseDeadlock) {
  Channel<int> gate(3);
  std::thread feeder([&gate] {
    std::this_thread::sleep_for(std::chrono::milliseconds(800));
    for (int i = 0; i < 3; ++i) put(gate, 10);
  });
  std::vector<int> out;
  EXPECT_NO_THROW(out = asyncmap([&gate](int x) { return x + take(gate); }, std::vector{1, 2, 3}));
  feeder.join();
  EXPECT_EQ(out, (std::vector<int>{11, 12, 13}));
}

// A mapping task that gets no stack fails without running f (weft/task/stack.h), and every
// other task carries on. asyncmap then waits for all of them before it raises: the tasks still
// running (here in a sleep) refer to its frame -- f, the results, the work channel. Stack
// allocations of the default size fail while the driver makes elements 1 to 19: once the
// worker's stack cache is spent, the tasks started meanwhile get none; those after get one.
TEST_P(AsyncMapTest, ATaskThatGetsNoStackFailsTheMapAfterTheOthersEnd) {
  run([] {
    struct StopFailing {
      ~StopFailing() { internal::fail_stack_allocations_for_testing(0); }
    } stop_failing;
    auto elements = std::views::iota(0, 64) | std::views::transform([](int x) {
                      if (x == 1 || x == 20) {
                        internal::fail_stack_allocations_for_testing(
                            x == 1 ? internal::default_stack_size() : 0);
                      }
                      return x;
                    });
    std::atomic<int> mapped{0};
    try {
      asyncmap(
          [&mapped](int x) {
            sleep(0.02);
            mapped.fetch_add(1);
            return x;
          },
          elements, AsyncMapOptions{.ntasks = 64});
      ADD_FAILURE() << "asyncmap returned although a task got no stack";
    } catch (const std::system_error& e) {
      EXPECT_EQ(e.code().value(), ENOMEM) << e.what();
    }
    const int at_return = mapped.load();
    EXPECT_GT(at_return, 0);
    sleep(0.05);
    EXPECT_EQ(mapped.load(), at_return) << "mapping tasks ran on after asyncmap returned";
  });
}

WEFT_INSTANTIATE_WORKER_COUNTS(AsyncMapTest);

}  // namespace
}  // namespace weft
