// Channel behaviour beyond the spec's examples: close and its exceptions, bad input, bind with
// several tasks and channels, unbounded and move-only items, and plain threads.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <limits>
#include <memory>
#include <ranges>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_runtime.h"
#include "weft/channel/channel.h"
#include "weft/channel/make_channel.h"
#include "weft/sched/runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/sched/task_dump.h"
#include "weft/task/errors.h"
#include "weft/task/task.h"

namespace weft {
namespace {

using testing::RuntimeTest;

class ChannelTest : public RuntimeTest {};

// What a closed channel raises when closed without an exception of the user's.
void expect_closed_exception(const std::function<void()>& op) {
  try {
    op();
    ADD_FAILURE() << "no exception from an operation on a closed channel";
  } catch (const InvalidStateException& e) {
    EXPECT_STREQ(e.what(), "Channel is closed.");
    EXPECT_EQ(e.state(), "closed");
  }
}

// Julia's show of a Channel: type and size, then closed, empty or how many items wait.
TEST(ChannelPrinting, TypeSizeAndState) {
  Channel<int> unbuffered;
  EXPECT_EQ(to_string(unbuffered), "Channel<int>(0) (empty)");
  Channel<char> c(3);
  put(c, 'a');
  EXPECT_EQ(to_string(c), "Channel<char>(3) (1 item available)");
  put(c, 'b');
  std::ostringstream os;
  os << c;
  EXPECT_EQ(os.str(), "Channel<char>(3) (2 items available)");
  close(c);
  EXPECT_EQ(to_string(c), "Channel<char>(3) (closed)");
  EXPECT_EQ(to_string(Channel<std::string>::unbounded()),
            "Channel<std::string>(9223372036854775807) (empty)");  // Julia's typemax(Int)
  EXPECT_EQ(to_string(Channel<>(1)), "Channel<std::any>(1) (empty)");
}

// Julia's n_avail on a buffered channel counts the items buffered and those that blocked put!s
// offer (the spec's "Channel{Char}(1) (2 items available)"); a closed channel's blocked puts
// fail, and their offers no longer count.
TEST_P(ChannelTest, NAvailCountsTheOffersOfBlockedPuts) {
  run([] {
    Channel<int> c(2);
    put(c, 1);
    put(c, 2);
    auto p3 = spawn([c] { put(c, 3); });
    testing::until_waiting(p3);
    auto p4 = spawn([c] {
      try {
        put(c, 4);
      } catch (const InvalidStateException&) {
      }
    });
    testing::until_waiting(p4);
    EXPECT_EQ(c.n_avail(), 4u);
    EXPECT_EQ(to_string(c), "Channel<int>(2) (4 items available)");
    EXPECT_EQ(take(c), 1);  // 3 moves into the buffer; 4 still waits
    EXPECT_EQ(c.n_avail(), 3u);
    wait(p3);
    close(c);
    wait(p4);
    EXPECT_EQ(c.n_avail(), 2u);
    EXPECT_EQ(collect(c), (std::vector<int>{2, 3}));
  });
}

TEST(ChannelBadInput, NegativeSizeNamesTheValue) {
  try {
    Channel<int> c(-3);
    FAIL() << "Channel(-3) was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("-3"), std::string::npos) << e.what();
  }
}

// An unsigned size past the largest channel size (std::size_t's max: C++'s usual "no limit")
// is refused naming the value given, not wrapped to a negative number and reported as one
// (Julia's Channel(typemax(UInt)) raises an InexactError naming it).
TEST(ChannelBadInput, AnUnsignedSizeTooLargeNamesTheValue) {
  for (std::uint64_t bad : {std::numeric_limits<std::uint64_t>::max(),
                            (std::uint64_t{1} << 63) + 5}) {
    const std::string given = std::to_string(bad);
    try {
      Channel<int> c(bad);
      ADD_FAILURE() << "Channel(" << given << ") was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(given), std::string::npos) << e.what();
      EXPECT_EQ(std::string(e.what()).find("-"), std::string::npos) << e.what();
    }
    try {
      make_channel<int>([](Channel<int>&) {}, bad);
      ADD_FAILURE() << "make_channel(f, " << given << ") was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(given), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(Channel<int>(std::size_t{3}).capacity(), 3);
  EXPECT_EQ(Channel<int>(static_cast<std::uint64_t>(kUnbounded)).capacity(), kUnbounded);
}

// Julia's Channel(Inf); a floating-point size that is no whole number is refused, not cut.
TEST(ChannelBadInput, AFloatingPointSizeIsInfinityOrAWholeNumber) {
  EXPECT_EQ(Channel<int>(INFINITY).capacity(), kUnbounded);
  EXPECT_EQ(Channel<int>(3.0).capacity(), 3);
  EXPECT_EQ(make_channel<int>([](Channel<int>&) {}, INFINITY).capacity(), kUnbounded);
  for (double bad : {2.5, -1.0, -double{INFINITY}, double{NAN}, 1e300}) {
    try {
      Channel<int> c(bad);
      ADD_FAILURE() << "Channel(" << bad << ") was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("whole number"), std::string::npos) << e.what();
    }
  }
}

TEST(ChannelBadInput, FetchOnUnbufferedIsAnError) {
  Channel<int> c;
  try {
    fetch(c);
    FAIL() << "fetch on an unbuffered channel was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("unbuffered"), std::string::npos) << e.what();
  }
}

TEST(ChannelBadInput, CloseWithNullExceptionAndBindToEmptyTask) {
  Channel<int> c(1);
  EXPECT_THROW(close(c, nullptr), std::invalid_argument);
  EXPECT_TRUE(isopen(c));
  EXPECT_THROW(weft::bind(c, TaskRef()), std::invalid_argument);
}

TEST(ChannelBadInput, PutOnClosedChannelRaises) {
  Channel<int> c(4);
  close(c);
  expect_closed_exception([&] { put(c, 1); });
  Channel<int> unbuffered;
  close(unbuffered);
  expect_closed_exception([&] { put(unbuffered, 1); });
}

TEST(ChannelClose, TakeDrainsThenRaises) {
  Channel<int> c(3);
  put(c, 1);
  put(c, 2);
  close(c);
  EXPECT_FALSE(isopen(c));
  EXPECT_TRUE(isready(c));
  EXPECT_EQ(fetch(c), 1);
  EXPECT_EQ(take(c), 1);
  wait(c);  // still ready: returns
  EXPECT_EQ(take(c), 2);
  expect_closed_exception([&] { take(c); });
  expect_closed_exception([&] { fetch(c); });
  expect_closed_exception([&] { wait(c); });
}

TEST(ChannelClose, UserExceptionIsRethrownAsGiven) {
  Channel<int> c(2);
  put(c, 7);
  close(c, std::make_exception_ptr(std::runtime_error("boom")));
  EXPECT_THROW(put(c, 1), std::runtime_error);
  EXPECT_EQ(take(c), 7);
  try {
    take(c);
    FAIL() << "take after draining did not raise";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "boom");
  }
  // Iteration raises an exception that is not InvalidStateException(:closed).
  EXPECT_THROW(
      {
        for (int v : c) static_cast<void>(v);
      },
      std::runtime_error);
}

TEST(ChannelClose, FirstCloseWins) {
  Channel<int> c(1);
  close(c, std::make_exception_ptr(std::runtime_error("first")));
  close(c);
  close(c, std::make_exception_ptr(std::logic_error("second")));
  EXPECT_THROW(take(c), std::runtime_error);
}

TEST(ChannelClose, InvalidStateClosedEndsIteration) {
  Channel<int> c(2);
  put(c, 1);
  close(c, std::make_exception_ptr(InvalidStateException("gone", "closed")));
  EXPECT_EQ(collect(c), std::vector<int>{1});
}

TEST_P(ChannelTest, CloseWakesEveryBlockedWaiter) {
  run([] {
    Channel<int> full(1);
    put(full, 0);
    Channel<int> empty(1);
    Channel<int> unbuffered_put, unbuffered_take, unbuffered_wait;
    std::atomic<int> raised{0};
    std::vector<Task<void>> tasks;
    auto expect_raise = [&raised](auto op) {
      return [&raised, op] {
        try {
          op();
        } catch (const InvalidStateException&) {
          raised.fetch_add(1);
        }
      };
    };
    tasks.push_back(spawn(expect_raise([full] { put(full, 1); })));
    tasks.push_back(spawn(expect_raise([empty] { take(empty); })));
    tasks.push_back(spawn(expect_raise([empty] { fetch(empty); })));
    tasks.push_back(spawn(expect_raise([empty] { wait(empty); })));
    tasks.push_back(spawn(expect_raise([unbuffered_put] { put(unbuffered_put, 1); })));
    tasks.push_back(spawn(expect_raise([unbuffered_take] { take(unbuffered_take); })));
    tasks.push_back(spawn(expect_raise([unbuffered_wait] { wait(unbuffered_wait); })));
    // Let them all block: a blocked task's state is kWaiting.
    for (const auto& t : tasks) {
      while (t.state() != TaskState::kWaiting) yield();
    }
    EXPECT_TRUE(isready(unbuffered_put));  // a putter waits
    close(full);
    close(empty);
    close(unbuffered_put);
    close(unbuffered_take);
    close(unbuffered_wait);
    for (const auto& t : tasks) wait(t);
    EXPECT_EQ(raised.load(), 7);
    EXPECT_EQ(take(full), 0);  // the buffered item survives the close
  });
}

// A plain thread's first blocking operation makes the thread's waiter outside the channel's
// lock (it allocates) and starts over: take, put, fetch and a wait for another's lock(c), each
// the first weft call of a fresh thread. (What it guards is the starting over: that the
// allocation is no longer under the lock shows only when it fails.) Each matching operation
// comes once the thread is blocked, so each blocks for sure.
TEST_P(ChannelTest, APlainThreadsFirstOperationMayBlock) {
  run([] {
    Channel<int> c(1);
    {
      testing::BlockingThread taker([c] { EXPECT_EQ(take(c), 1); });
      EXPECT_TRUE(taker.until_blocked()) << "take from an empty channel did not block";
      put(c, 1);
    }

    put(c, 2);
    {
      testing::BlockingThread putter([c] { put(c, 3); });  // full: blocks
      EXPECT_TRUE(putter.until_blocked()) << "put into a full channel did not block";
      EXPECT_EQ(take(c), 2);
    }
    EXPECT_EQ(take(c), 3);

    {
      testing::BlockingThread fetcher([c] { EXPECT_EQ(fetch(c), 4); });
      EXPECT_TRUE(fetcher.until_blocked()) << "fetch from an empty channel did not block";
      put(c, 4);
    }
    EXPECT_EQ(take(c), 4);

    lock(c);
    std::atomic<bool> got{false};
    {
      testing::BlockingThread locker([c, &got] {
        lock(c);
        got = true;
        unlock(c);
      });
      EXPECT_TRUE(locker.until_blocked()) << "lock(c) held by another did not block";
      EXPECT_FALSE(got.load());
      unlock(c);
    }
    EXPECT_TRUE(got.load());
  });
}

TEST_P(ChannelTest, FifoOrderAndBlockingWhenFull) {
  run([] {
    Channel<int> c(2);
    auto producer = spawn([c] {
      for (int i = 0; i < 100; ++i) put(c, i);
    });
    for (int i = 0; i < 100; ++i) EXPECT_EQ(take(c), i);
    wait(producer);
  });
}

TEST_P(ChannelTest, UnboundedNeverBlocks) {
  run([] {
    auto c = Channel<int>::unbounded();
    EXPECT_EQ(c.capacity(), kUnbounded);
    for (int i = 0; i < 100000; ++i) put(c, i);
    EXPECT_EQ(c.n_avail(), 100000u);
    for (int i = 0; i < 100000; ++i) ASSERT_EQ(take(c), i);
  });
}

TEST_P(ChannelTest, MoveOnlyItems) {
  run([] {
    Channel<std::unique_ptr<int>> c;
    auto producer = spawn([c] {
      for (int i = 0; i < 10; ++i) put(c, std::make_unique<int>(i));
      close(c);
    });
    int expected = 0;
    for (std::unique_ptr<int>& p : c) EXPECT_EQ(*p, expected++);
    EXPECT_EQ(expected, 10);
    wait(producer);
  });
}

TEST_P(ChannelTest, StringsCrossIntact) {
  run([] {
    Channel<std::string> c(3);
    auto producer = spawn([c] {
      for (int i = 0; i < 1000; ++i) put(c, std::string(i % 50, 'x') + std::to_string(i));
      close(c);
    });
    int i = 0;
    for (const std::string& s : c) {
      EXPECT_EQ(s, std::string(i % 50, 'x') + std::to_string(i));
      ++i;
    }
    EXPECT_EQ(i, 1000);
    wait(producer);
  });
}

// Julia's iteration takes an item only when the loop asks for the next one (iterate(c) is a
// take!): Iterators.take(c, 3) takes three items and leaves the fourth in c. So must the C++
// adaptors that stop at a count: std::views::take(n) stops after n elements without stepping
// past the last (a Channel iterator that took its next item on ++ dropped one, or blocked for
// it on a channel holding no more), and views::take(0) asks for none.
TEST_P(ChannelTest, IterationTakesOnlyTheItemsAskedFor) {
  run([] {
    Channel<int> c(10);
    for (int i = 1; i <= 6; ++i) put(c, i);
    std::vector<int> first;
    for (int v : c | std::views::take(3)) first.push_back(v);
    EXPECT_EQ(first, (std::vector<int>{1, 2, 3}));
    EXPECT_EQ(c.n_avail(), 3u) << "taking three items took another";
    for (int v : c | std::views::take(0)) ADD_FAILURE() << "took " << v;
    std::vector<int> next;
    std::ranges::copy(c | std::views::take(2), std::back_inserter(next));
    EXPECT_EQ(next, (std::vector<int>{4, 5}));
    EXPECT_EQ(take(c), 6) << "an item was taken and dropped";
  });
}

// Each increment steps over one item, looked at or not, as each of Julia's iterate calls takes
// one (Iterators.drop(c, 2) drops two): std::ranges::advance(it, 2), which only increments,
// passes two items, and views::drop(2) drops two.
TEST_P(ChannelTest, AnIncrementStepsOverAnItemNotLookedAt) {
  run([] {
    Channel<int> c(10);
    for (int i = 1; i <= 8; ++i) put(c, i);
    auto it = c.begin();
    std::ranges::advance(it, 2);
    EXPECT_EQ(*it, 3);
    ++it;
    ++it;  // 4 is stepped over without a look
    EXPECT_EQ(*it, 5);
    std::vector<int> rest;
    for (int v : c | std::views::drop(1) | std::views::take(1)) rest.push_back(v);
    EXPECT_EQ(rest, (std::vector<int>{7}));  // 6 dropped
    EXPECT_EQ(take(c), 8);
  });
}

// Several tasks bound to one channel: the first to end closes it (with its failure).
TEST_P(ChannelTest, BindSeveralTasksFirstToEndCloses) {
  run([] {
    Channel<int> c(1);
    Channel<int> release;
    auto fails = spawn([] { throw std::runtime_error("first to end"); });
    auto lingers = spawn([release] { take(release); });
    weft::bind(c, lingers);
    weft::bind(c, fails);
    try {
      take(c);
      ADD_FAILURE() << "take did not raise";
    } catch (const TaskFailedException& e) {
      EXPECT_TRUE(e.task() == fails);
    }
    put(release, 1);
    wait(lingers);
    // The later end does not change the exception.
    yield();
    EXPECT_THROW(take(c), TaskFailedException);
  });
}

// Several channels bound to one task: all close when it ends.
TEST_P(ChannelTest, BindSeveralChannelsAllClose) {
  run([] {
    Channel<int> a(1), b, d = Channel<int>::unbounded();
    Channel<int> go;
    auto task = spawn([go] { take(go); });
    a.bind(task);
    b.bind(task);
    d.bind(task);
    EXPECT_TRUE(isopen(a) && isopen(b) && isopen(d));
    put(go, 1);
    wait(task);
    // Closed as the task ended, before it counted as done.
    EXPECT_FALSE(isopen(a) || isopen(b) || isopen(d));
    expect_closed_exception([&] { take(a); });
    expect_closed_exception([&] { take(b); });
    expect_closed_exception([&] { take(d); });
  });
}

// A bound task that already ended closes the channel; a closed channel ignores the task.
TEST_P(ChannelTest, BindToFinishedTaskAndClosedChannel) {
  run([] {
    auto done = spawn([] { throw std::runtime_error("early"); });
    try {
      wait(done);
    } catch (const TaskFailedException&) {
    }
    Channel<int> c(1);
    c.bind(done);
    EXPECT_THROW(take(c), TaskFailedException);

    Channel<int> closed(1);
    close(closed);
    auto later = spawn([] { throw std::runtime_error("ignored"); });
    closed.bind(later);
    try {
      wait(later);
    } catch (const TaskFailedException&) {
    }
    expect_closed_exception([&] { take(closed); });
  });
}

// A bound task failing while others are blocked on its channels: each of them raises the
// TaskFailedException, whatever it was blocked in.
TEST_P(ChannelTest, BindFailurePropagatesToEveryWaiter) {
  run([] {
    Channel<int> unbuffered, empty(2), full(1);
    put(full, 0);
    Channel<int> go;
    auto failing = spawn([go] {
      take(go);
      throw std::runtime_error("producer broke");
    });
    unbuffered.bind(failing);
    empty.bind(failing);
    full.bind(failing);
    std::atomic<int> failures{0};
    auto expect_failure = [&failures](auto op) {
      return [&failures, op] {
        try {
          op();
        } catch (const TaskFailedException& e) {
          try {
            e.rethrow_cause();
          } catch (const std::runtime_error& cause) {
            if (std::string(cause.what()) == "producer broke") failures.fetch_add(1);
          }
        }
      };
    };
    std::vector<Task<void>> waiters;
    for (int i = 0; i < 3; ++i) waiters.push_back(spawn(expect_failure([unbuffered] { take(unbuffered); })));
    waiters.push_back(spawn(expect_failure([unbuffered] { wait(unbuffered); })));
    waiters.push_back(spawn(expect_failure([empty] { take(empty); })));
    waiters.push_back(spawn(expect_failure([empty] { fetch(empty); })));
    waiters.push_back(spawn(expect_failure([full] { put(full, 1); })));
    for (const auto& w : waiters) {
      while (w.state() != TaskState::kWaiting) yield();
    }
    put(go, 1);
    for (const auto& w : waiters) wait(w);
    EXPECT_EQ(failures.load(), 7);
    EXPECT_FALSE(isopen(unbuffered) || isopen(empty) || isopen(full));
    EXPECT_EQ(take(full), 0);  // buffered items survive the failure
    EXPECT_THROW(take(full), TaskFailedException);
  });
}

// make_channel's task failing: the channel closes with TaskFailedException after what it put.
TEST_P(ChannelTest, ProducerConstructorFailure) {
  run([] {
    TaskRef taskref;
    Channel<int> c = make_channel<int>(
        [](Channel<int> ch) {
          put(ch, 1);
          put(ch, 2);
          throw std::runtime_error("producer failed");
        },
        4, {.taskref = &taskref, .spawn = true});
    EXPECT_EQ(take(c), 1);
    EXPECT_EQ(take(c), 2);
    try {
      take(c);
      ADD_FAILURE() << "take after the producer failed did not raise";
    } catch (const TaskFailedException& e) {
      EXPECT_TRUE(e.task() == taskref);
      EXPECT_NE(std::string(e.what()).find("producer failed"), std::string::npos);
    }
    EXPECT_TRUE(istaskfailed(taskref));
  });
}

// A plain thread blocks as a thread: two threads, no tasks.
TEST(ChannelPlainThreads, PingPongAndProducerConsumer) {
  Channel<int> ping, pong;
  std::thread other([&] {
    for (int i = 0; i < 1000; ++i) put(pong, take(ping) + 1);
  });
  for (int i = 0; i < 1000; ++i) {
    put(ping, i);
    ASSERT_EQ(take(pong), i + 1);
  }
  other.join();

  Channel<long> c(16);
  std::thread producer([c] {
    for (long i = 1; i <= 100000; ++i) put(c, i);
    close(c);
  });
  long sum = 0;
  for (long v : c) sum += v;
  producer.join();
  EXPECT_EQ(sum, 100000L * 100001 / 2);
}

// A plain thread and tasks on the same channels.
TEST_P(ChannelTest, PlainThreadTalksToTasks) {
  Channel<int> requests;
  Channel<int> replies(4);
  auto make_server = [requests, replies] {
    return [requests, replies] {
      for (int r : requests) put(replies, r * 2);
    };
  };
  Task<void> t1(make_server()), t2(make_server());
  t1.set_sticky(false);
  t2.set_sticky(false);
  runtime().submit(t1);
  runtime().submit(t2);
  long sum = 0;
  std::thread client([&] {
    for (int i = 0; i < 2000; ++i) put(requests, i);
    close(requests);
  });
  for (int i = 0; i < 2000; ++i) sum += take(replies);
  client.join();
  wait(t1);
  wait(t2);
  EXPECT_EQ(sum, 2L * (1999L * 2000 / 2));
}

// bind to a task that already ended closes the channel before bind returns: quietly after a
// success, with TaskFailedException (naming the task and its cause) after a failure.
TEST_P(ChannelTest, BindToEndedTaskClosesBeforeReturning) {
  run([] {
    auto succeeded = spawn([] {});
    wait(succeeded);
    Channel<int> quiet(1);
    put(quiet, 7);
    quiet.bind(succeeded);
    EXPECT_FALSE(isopen(quiet));
    EXPECT_EQ(take(quiet), 7);  // buffered items survive the close
    expect_closed_exception([&] { take(quiet); });

    auto failed = spawn([] { throw std::runtime_error("ended badly"); });
    EXPECT_THROW(wait(failed), TaskFailedException);
    Channel<int> loud;
    weft::bind(loud, failed);
    EXPECT_FALSE(isopen(loud));
    try {
      put(loud, 1);
      ADD_FAILURE() << "put on a channel bound to a failed task did not raise";
    } catch (const TaskFailedException& e) {
      EXPECT_TRUE(e.task() == failed);
      EXPECT_NE(std::string(e.what()).find("ended badly"), std::string::npos) << e.what();
    }
  });
}

// bind to a task that is ending on another worker at that moment, over and over: the channel
// always closes (a take on it raises, where a lost close left it waiting forever: on_done.cc).
TEST_P(ChannelTest, BindRacingTheTaskEndAlwaysCloses) {
  constexpr int kRounds = 10000;
  run([] {
    for (int i = 0; i < kRounds; ++i) {
      Channel<int> c(1);
      auto t = spawn([] {});
      c.bind(t);
      ASSERT_THROW(take(c), InvalidStateException) << "round " << i;
    }
  });
}

// A thousand channels bound to one task: every one is closed once wait(task) returns, with the
// task's failure.
TEST_P(ChannelTest, BindThousandChannelsToOneTask) {
  run([] {
    Channel<int> go;
    auto task = spawn([go] {
      take(go);
      throw std::runtime_error("shared end");
    });
    std::vector<Channel<int>> channels;
    for (int i = 0; i < 1000; ++i) {
      channels.emplace_back(i % 3);  // unbuffered, buffered(1), buffered(2)
      channels.back().bind(task);
    }
    for (const auto& c : channels) ASSERT_TRUE(isopen(c));
    put(go, 1);
    EXPECT_THROW(wait(task), TaskFailedException);
    int closed_with_failure = 0;
    for (const auto& c : channels) {
      EXPECT_FALSE(isopen(c));
      try {
        take(c);
      } catch (const TaskFailedException& e) {
        if (e.task() == task) ++closed_with_failure;
      }
    }
    EXPECT_EQ(closed_with_failure, 1000);
  });
}

// Every handle to a bound channel dropped before its task ends: the task's end still closes it
// (no use after free: run under --config=asan), and then the channel is freed with its items
// (not leaked: the item's weak reference expires).
TEST_P(ChannelTest, BindChannelDroppedBeforeTaskEnds) {
  run([] {
    Channel<int> go;
    auto task = spawn([go] { take(go); });
    auto item = std::make_shared<int>(42);
    std::weak_ptr<int> item_alive = item;
    {
      Channel<std::shared_ptr<int>> c(2);
      put(c, std::move(item));
      c.bind(task);
      Channel<std::shared_ptr<int>> other(1);
      other.bind(task);
    }
    // The bound task still holds the channel.
    EXPECT_FALSE(item_alive.expired());
    put(go, 1);
    wait(task);
    EXPECT_TRUE(item_alive.expired());
  });
}

// bind from a plain thread (no task, no worker): the task, ended from another thread, closes
// the channel the plain thread is blocked on.
TEST_P(ChannelTest, BindFromPlainThread) {
  Channel<int> go;
  Task<void> task([go] {
    take(go);
    throw std::runtime_error("from a task");
  });
  task.set_sticky(false);
  runtime().submit(task);
  Channel<int> c;
  c.bind(task);
  EXPECT_TRUE(isopen(c));
  std::thread releaser([go] { put(go, 1); });
  EXPECT_THROW(take(c), TaskFailedException);
  releaser.join();
  EXPECT_FALSE(isopen(c));
  EXPECT_TRUE(istaskfailed(task));
}

// bind starts no task: the task dump (started, unfinished tasks) is the same before and after
// binding, and nothing in it waits for the bound task.
TEST_P(ChannelTest, BindStartsNoTask) {
  run([this] {
    Channel<int> go;
    auto bound = spawn([go] { take(go); });
    while (bound.state() != TaskState::kWaiting) yield();
    auto ids = [this] {
      std::vector<std::uint64_t> out;
      for (const TaskInfo& t : task_dump(runtime())) out.push_back(t.id);
      return out;
    };
    const std::vector<std::uint64_t> before = ids();
    std::vector<Channel<int>> channels(10);
    for (const auto& c : channels) c.bind(bound);
    // Time for a task started by bind to run and park, were there one.
    sleep(0.02);
    EXPECT_EQ(ids(), before);
    for (const TaskInfo& t : task_dump(runtime())) {
      EXPECT_NE(t.wait_object, static_cast<const void*>(bound.core())) << "task " << t.id;
    }
    put(go, 1);
    wait(bound);
    for (const auto& c : channels) EXPECT_FALSE(isopen(c));
  });
}

// A taker that a put released may drop the channel's last handle at once -- an unbuffered
// channel on a thread's stack, into which a task puts a result for that thread -- while the
// put is still inside it (weft/sched/park.h: a waker that touches the primitive after the
// wake must make its waiters wait for that). Heap-allocated, as the primitives of
// FreedByTheWokenWaiter (event_semaphore_test.cc): ASan sees a late touch, TSan a free that
// races with it.
TEST_P(ChannelTest, AnUnbufferedChannelFreedByTheTakerThatAPutReleased) {
  for (int i = 0; i < 100; ++i) {
    auto c = std::make_unique<Channel<int>>();
    Channel<int>* const p = c.get();
    testing::BlockingThread taker([&c] {
      EXPECT_EQ(take(*c), 1);
      c.reset();
    });
    run([&taker, p] {
      taker.until_blocked();
      put(*p, 1);
    });
  }
}

WEFT_INSTANTIATE_WORKER_COUNTS(ChannelTest);

}  // namespace
}  // namespace weft
