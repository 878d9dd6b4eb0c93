// RemoteChannel (Distributed.RemoteChannel within one process): the default Channel(1), the
// channel made by a function, wait returning once a value is there, the reference semantics of
// put/take/fetch/close/isopen, and items crossing workers through it.
#include <any>
#include <cstdint>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_runtime.h"
#include "weft/channel/channel.h"
#include "weft/channel/invalid_state_exception.h"
#include "weft/channel/remote_channel.h"
#include "weft/sched/scheduling.h"
#include "weft/task/task.h"

namespace weft {
namespace {

using testing::RuntimeTest;
using testing::until_waiting;
class RemoteChannelTest : public RuntimeTest {};

static_assert(std::is_same_v<RemoteChannel<>::value_type, std::any>,
              "RemoteChannel() refers to a Channel{Any}(1), as in Julia");

TEST_P(RemoteChannelTest, DefaultRefersToAChannelOfOne) {
  run([] {
    RemoteChannel<> r;
    EXPECT_EQ(r.channel().capacity(), 1);
    EXPECT_FALSE(isready(r));
    put(r, std::any(1));
    EXPECT_TRUE(isready(r));
    // The second put waits for room, as on Channel(1).
    auto second = spawn([r] { put(r, std::any(std::string("two"))); });
    until_waiting(second);
    EXPECT_EQ(std::any_cast<int>(take(r)), 1);
    wait(second);
    EXPECT_EQ(std::any_cast<std::string>(take(r)), "two");
  });
}

TEST_P(RemoteChannelTest, FunctionMakesTheChannelAndItsType) {
  run([] {
    RemoteChannel r([] { return Channel<int>(10); });
    static_assert(std::is_same_v<decltype(r), RemoteChannel<int>>);
    EXPECT_EQ(r.channel().capacity(), 10);
    for (int i = 0; i < 10; ++i) EXPECT_TRUE(&put(r, i) == &r);  // put! returns the reference
    EXPECT_EQ(fetch(r), 0);  // fetch does not remove
    EXPECT_EQ(r.channel().n_avail(), 10u);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(take(r), i);
  });
}

TEST_P(RemoteChannelTest, WaitReturnsOnceAValueIsAvailable) {
  run([] {
    RemoteChannel<int> r;
    auto waiter = spawn([r] {
      const RemoteChannel<int>& same = wait(r);
      return same == r && isready(r);
    });
    until_waiting(waiter);
    EXPECT_FALSE(istaskdone(waiter));
    put(r, 3);
    EXPECT_TRUE(fetch(waiter));
    EXPECT_EQ(take(r), 3);  // wait does not take
  });
}

TEST_P(RemoteChannelTest, CopiesAndTheChannelAreOneChannel) {
  run([] {
    Channel<int> c(4);
    RemoteChannel r([c] { return c; });
    RemoteChannel<int> copy = r;
    EXPECT_TRUE(copy == r);
    EXPECT_FALSE(RemoteChannel<int>() == r);
    put(copy, 1);
    put(c, 2);
    EXPECT_EQ(take(r), 1);
    EXPECT_EQ(take(r), 2);
  });
}

TEST_P(RemoteChannelTest, CloseAndIsopenAreTheChannels) {
  run([] {
    RemoteChannel r([] { return Channel<int>(2); });
    put(r, 1);
    EXPECT_TRUE(isopen(r));
    close(r);
    EXPECT_FALSE(isopen(r));
    EXPECT_FALSE(isopen(r.channel()));
    EXPECT_THROW(put(r, 2), InvalidStateException);
    EXPECT_EQ(take(r), 1);  // what is buffered drains first
    EXPECT_THROW(take(r), InvalidStateException);
    EXPECT_THROW(wait(r), InvalidStateException);
  });
}

TEST_P(RemoteChannelTest, FetchOnAnUnbufferedChannelIsTheChannelsError) {
  run([] {
    RemoteChannel r([] { return Channel<int>(); });
    EXPECT_THROW(fetch(r), std::invalid_argument);
  });
}

// Items through a reference, between tasks that may run on different workers: all of them, in
// order, once.
TEST_P(RemoteChannelTest, ItemsCrossWorkersInOrder) {
  run([] {
    constexpr int kItems = 20000;
    RemoteChannel<int> r;
    auto producer = spawn([r] {
      for (int i = 0; i < kItems; ++i) put(r, i);
      close(r);
    });
    auto consumer = spawn([r] {
      std::int64_t sum = 0;
      int expected = 0;
      for (int v : r.channel()) {
        if (v != expected++) return std::int64_t{-1};
        sum += v;
      }
      return expected == kItems ? sum : std::int64_t{-2};
    });
    EXPECT_EQ(fetch(consumer), std::int64_t{kItems} * (kItems - 1) / 2);
    wait(producer);
  });
}

WEFT_INSTANTIATE_WORKER_COUNTS(RemoteChannelTest);

}  // namespace
}  // namespace weft
