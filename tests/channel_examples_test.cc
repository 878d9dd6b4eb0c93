// The Channel examples of the spec (Channels section, and wait(c::Channel)), as tests.
//
// Julia's REPL examples run on the REPL's task, which Task(...) children stick to; here each
// test body runs as a sticky task too (run_sticky), so that the examples' orderings (a task
// scheduled from the body runs when the body yields) hold on 2 workers as they do on 1. Where
// the REPL yields between two lines (it waits for input), the test says yield().
#include <any>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_runtime.h"
#include "weft/channel/channel.h"
#include "weft/channel/make_channel.h"
#include "weft/sched/runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/task/errors.h"
#include "weft/task/task.h"

namespace weft {
namespace {

class ChannelExamples : public testing::RuntimeTest {
 protected:
  // Runs f as a sticky task of this test's runtime (like the REPL's task) and waits for it.
  template <typename F>
  void run_sticky(F&& f) {
    Task<void> body(std::forward<F>(f));
    runtime().submit(body);
    weft::wait(body);
  }
};

// julia> chnl = Channel() do ch foreach(i -> put!(ch, i), 1:4) end; for i in chnl @show i end
TEST_P(ChannelExamples, ProducerConstructorIteration) {
  run_sticky([] {
    Channel<int> chnl = make_channel<int>([](Channel<int> ch) {
      for (int i = 1; i <= 4; ++i) put(ch, i);
    });
    EXPECT_EQ(chnl.capacity(), 0);
    std::vector<int> seen;
    for (int i : chnl) seen.push_back(i);
    EXPECT_EQ(seen, (std::vector<int>{1, 2, 3, 4}));
    EXPECT_FALSE(isopen(chnl));
  });
}

// julia> chnl = Channel() do ch ... end; typeof(chnl)  -> Channel{Any}
TEST_P(ChannelExamples, ProducerConstructorDefaultsToAny) {
  run_sticky([] {
    auto chnl = make_channel<>([](Channel<> ch) {
      for (int i = 1; i <= 4; ++i) put(ch, std::any(i));
    });
    static_assert(std::is_same_v<decltype(chnl), Channel<std::any>>);
    static_assert(std::is_same_v<Channel<>, Channel<std::any>>);
    int expected = 1;
    for (std::any& i : chnl) EXPECT_EQ(std::any_cast<int>(i), expected++);
    EXPECT_EQ(expected, 5);
  });
}

// julia> taskref = Ref{Task}(); chnl = Channel(taskref=taskref) do ch println(take!(ch)) end
// julia> istaskdone(taskref[])  -> false; put!(chnl, "Hello") prints Hello; istaskdone -> true
TEST_P(ChannelExamples, ProducerConstructorTaskref) {
  run_sticky([] {
    TaskRef taskref;
    std::string printed;
    Channel<std::string> chnl = make_channel<std::string>(
        [&printed](Channel<std::string> ch) { printed = take(ch); }, 0, {.taskref = &taskref});
    ASSERT_TRUE(taskref.valid());
    EXPECT_FALSE(istaskdone(taskref));
    put(chnl, "Hello");
    EXPECT_EQ(printed, "Hello");
    EXPECT_TRUE(istaskdone(taskref));
  });
}

// The spec's producer below: Channel{Char}(1, spawn=true) do ch for c in "hello world" ... end.
Channel<char> spawn_hello_world(TaskRef& taskref) {
  return make_channel<char>(
      [](Channel<char> ch) {
        for (char c : std::string("hello world")) put(ch, c);
      },
      1, {.taskref = &taskref, .spawn = true});
}

// julia> chnl = Channel{Char}(1, spawn=true) do ch for c in "hello world" put!(ch, c) end end
// Channel{Char}(1) (2 items available)
// julia> String(collect(chnl))  -> "hello world"
TEST_P(ChannelExamples, ProducerConstructorSpawn) {
  run_sticky([] {
    TaskRef taskref;
    Channel<char> chnl = spawn_hello_world(taskref);
    EXPECT_FALSE(taskref.sticky());
    EXPECT_EQ(chnl.capacity(), 1);
    // Printed as Julia's is, its item count a snapshot of the producer's progress: the item
    // buffered and the one a blocked put offers count, as Julia's n_avail counts them (the
    // spec's "2 items"; ProducerConstructorSpawnShowsTheSpecsItemCount waits for that state).
    const std::string shown = to_string(chnl);
    EXPECT_TRUE(shown == "Channel<char>(1) (empty)" ||
                shown == "Channel<char>(1) (1 item available)" ||
                shown == "Channel<char>(1) (2 items available)")
        << shown;
    std::vector<char> chars = collect(chnl);
    EXPECT_EQ(std::string(chars.begin(), chars.end()), "hello world");
  });
}

// The same example, looked at once the producer is blocked (its first item buffered, the
// second offered by a put! that waits for room): Julia prints exactly the spec's
// "Channel{Char}(1) (2 items available)", as its n_avail counts the item in the buffer and the
// one a blocked put! offers (channels.jl: "count data in the buffer as well as offers from
// tasks which are blocked in wait()").
TEST_P(ChannelExamples, ProducerConstructorSpawnShowsTheSpecsItemCount) {
  run_sticky([] {
    TaskRef taskref;
    Channel<char> chnl = spawn_hello_world(taskref);
    testing::until_waiting(taskref);  // 'h' buffered, put(ch, 'e') blocked
    EXPECT_EQ(to_string(chnl), "Channel<char>(1) (2 items available)");
    EXPECT_EQ(n_avail(chnl), 2u);
    std::vector<char> chars = collect(chnl);
    EXPECT_EQ(std::string(chars.begin(), chars.end()), "hello world");
  });
}

// threadpool= implies spawn=true (and the pool must exist).
TEST_P(ChannelExamples, ProducerConstructorThreadpool) {
  run_sticky([] {
    TaskRef taskref;
    Channel<int> chnl = make_channel<int>([](Channel<int> ch) { put(ch, threadid()); }, 1,
                                          {.taskref = &taskref, .threadpool = Pool::kDefault});
    EXPECT_FALSE(taskref.sticky());
    EXPECT_GE(take(chnl), 1);
    EXPECT_THROW(make_channel<int>([](Channel<int>) {}, 0, {.threadpool = Pool::kInteractive}),
                 std::invalid_argument);
  });
}

// put!/take! on a buffered channel: c = Channel(1); put!(c, 1); take!(c) -> 1
TEST_P(ChannelExamples, TakeBuffered) {
  run_sticky([] {
    Channel<int> c(1);
    put(c, 1);
    EXPECT_EQ(take(c), 1);
  });
}

// Unbuffered: c = Channel(0); task = Task(() -> put!(c, 1)); schedule(task); take!(c) -> 1
TEST_P(ChannelExamples, TakeUnbuffered) {
  run_sticky([] {
    Channel<int> c(0);
    Task<void> task([c] { put(c, 1); });
    schedule(task);
    EXPECT_EQ(take(c), 1);
  });
}

// isready, buffered: false; put!(c, 1); true
TEST_P(ChannelExamples, IsReadyBuffered) {
  run_sticky([] {
    Channel<int> c(1);
    EXPECT_FALSE(isready(c));
    put(c, 1);
    EXPECT_TRUE(isready(c));
  });
}

// isready, unbuffered: false with no putter; true once a task waits in put!.
TEST_P(ChannelExamples, IsReadyUnbuffered) {
  run_sticky([] {
    Channel<int> c;
    EXPECT_FALSE(isready(c));
    Task<void> task([c] { put(c, 1); });
    schedule(task);
    yield();
    EXPECT_TRUE(isready(c));
    EXPECT_EQ(c.n_avail(), 1u);
    EXPECT_EQ(take(c), 1);  // lets the task finish
    EXPECT_FALSE(isready(c));
  });
}

// fetch: c = Channel(3) do ch foreach(i -> put!(ch, i), 1:3) end; fetch(c) -> 1;
// collect(c) -> [1, 2, 3] (the fetched item was not removed)
TEST_P(ChannelExamples, Fetch) {
  run_sticky([] {
    Channel<int> c = make_channel<int>(
        [](Channel<int> ch) {
          for (int i = 1; i <= 3; ++i) put(ch, i);
        },
        3);
    EXPECT_EQ(fetch(c), 1);
    EXPECT_EQ(collect(c), (std::vector<int>{1, 2, 3}));
  });
}

// wait(c::Channel): c = Channel(1); isready false; task = Task(() -> wait(c)); schedule(task);
// istaskdone(task) -> false; put!(c, 1); istaskdone(task) -> true
TEST_P(ChannelExamples, WaitChannel) {
  run_sticky([] {
    Channel<int> c(1);
    EXPECT_FALSE(isready(c));
    Task<void> task([c] { wait(c); });
    schedule(task);
    yield();
    EXPECT_FALSE(istaskdone(task));
    put(c, 1);
    yield();
    EXPECT_TRUE(istaskdone(task));
    EXPECT_EQ(take(c), 1);  // wait does not consume
  });
}

// bind: c = Channel(0); task = @async foreach(i->put!(c, i), 1:4); bind(c,task);
// for i in c @show i end -> 1..4; isopen(c) -> false
TEST_P(ChannelExamples, BindClosesWhenTaskEnds) {
  run_sticky([] {
    Channel<int> c(0);
    auto task = async([c] {
      for (int i = 1; i <= 4; ++i) put(c, i);
    });
    weft::bind(c, task);
    std::vector<int> seen;
    for (int i : c) seen.push_back(i);
    EXPECT_EQ(seen, (std::vector<int>{1, 2, 3, 4}));
    EXPECT_FALSE(isopen(c));
  });
}

// c = Channel(0); task = @async (put!(c, 1); error("foo")); bind(c, task); take!(c) -> 1;
// put!(c, 1) -> ERROR: TaskFailedException ... nested task error: foo
TEST_P(ChannelExamples, BindPropagatesTaskFailure) {
  run_sticky([] {
    Channel<int> c(0);
    // The closure lets go of its channel handle as the task starts: a finished task keeps its
    // closure while a handle to it exists, and the TaskFailedException c is closed with is one
    // (c -> exception -> task -> closure -> c would never be freed; a task/ limitation).
    auto task = async([held = std::optional<Channel<int>>(c)]() mutable {
      Channel<int> c = *held;
      held.reset();
      put(c, 1);
      throw std::runtime_error("foo");
    });
    weft::bind(c, task);
    EXPECT_EQ(take(c), 1);
    try {
      put(c, 1);
      ADD_FAILURE() << "put on a channel bound to a failed task did not raise";
    } catch (const TaskFailedException& e) {
      EXPECT_TRUE(e.task() == task);
      EXPECT_THROW(e.rethrow_cause(), std::runtime_error);
      EXPECT_NE(std::string(e.what()).find("foo"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(isopen(c));
  });
}

WEFT_INSTANTIATE_WORKER_COUNTS(ChannelExamples);

}  // namespace
}  // namespace weft
