// Future (Distributed.Future within one process): write-once, every waiter released by the one
// put, a second or racing put refused with Julia's message, the put's writes visible to those it
// releases, plain threads on either side, and a value whose construction throws.
#include <atomic>
#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/test_runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/sync/future.h"
#include "weft/task/task.h"

namespace weft {
namespace {

using testing::RuntimeTest;
using testing::until_waiting;
class FutureTest : public RuntimeTest {};

void expect_set_only_once(const std::function<void()>& put_again) {
  try {
    put_again();
    ADD_FAILURE() << "a second put on a Future did not throw";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("Future can be set only once"), std::string::npos)
        << e.what();
  }
}

TEST_P(FutureTest, PutThenFetchReturnsTheValueEveryTime) {
  run([] {
    Future<std::string> f;
    EXPECT_FALSE(isready(f));
    EXPECT_TRUE(&put(f, "forty-two") == &f);  // put! returns the future
    EXPECT_TRUE(isready(f));
    EXPECT_TRUE(&wait(f) == &f);
    EXPECT_EQ(fetch(f), "forty-two");
    EXPECT_EQ(fetch(f), "forty-two");
  });
}

TEST_P(FutureTest, PutReleasesEveryWaiter) {
  run([] {
    Future<int> f;
    std::vector<Task<int>> fetchers;
    std::vector<Task<void>> waiters;
    for (int i = 0; i < 4; ++i) fetchers.push_back(spawn([f] { return fetch(f); }));
    for (int i = 0; i < 3; ++i) waiters.push_back(spawn([f] { wait(f); }));
    for (auto& t : fetchers) until_waiting(t);
    for (auto& t : waiters) until_waiting(t);
    for (auto& t : fetchers) EXPECT_FALSE(istaskdone(t));
    put(f, 7);
    for (auto& t : fetchers) EXPECT_EQ(fetch(t), 7);
    for (auto& t : waiters) wait(t);
  });
}

TEST_P(FutureTest, SecondPutThrowsAndKeepsTheFirstValue) {
  run([] {
    Future<int> f;
    put(f, 1);
    expect_set_only_once([&] { put(f, 2); });
    EXPECT_EQ(fetch(f), 1);
  });
}

TEST_P(FutureTest, CopiesReferToTheSameFuture) {
  run([] {
    Future<int> f;
    Future<int> g = f;
    Future<int> other;
    EXPECT_TRUE(f == g);
    EXPECT_FALSE(f == other);
    put(g, 5);
    EXPECT_TRUE(isready(f));
    EXPECT_EQ(fetch(f), 5);
    EXPECT_FALSE(isready(other));
    expect_set_only_once([&] { put(f, 6); });
  });
}

// Puts racing across workers: exactly one wins, and its value is the one everyone fetches.
TEST_P(FutureTest, RacingPutsHaveExactlyOneWinner) {
  run([] {
    for (int round = 0; round < 200; ++round) {
      Future<int> f;
      std::atomic<int> winners{0}, refused{0}, winner{-1};
      std::vector<Task<void>> putters;
      for (int i = 0; i < 6; ++i) {
        putters.push_back(spawn([&, f, i] {
          try {
            put(f, i);
            winners.fetch_add(1);
            winner.store(i);
          } catch (const std::logic_error&) {
            refused.fetch_add(1);
          }
        }));
      }
      const int got = fetch(f);
      for (auto& t : putters) wait(t);
      ASSERT_EQ(winners.load(), 1);
      ASSERT_EQ(refused.load(), 5);
      ASSERT_EQ(got, winner.load());
    }
  });
}

// What the putting task wrote before put() is visible after fetch(), wait() and a true
// isready() (TSan checks the plain fields).
TEST_P(FutureTest, PutPublishesWhatWasWrittenBeforeIt) {
  struct Payload {
    int a = 0;
    std::vector<int> items;
  };
  run([] {
    for (int round = 0; round < 200; ++round) {
      Payload shared;
      Future<int> f;
      auto writer = spawn([&shared, f, round] {
        shared.a = round;
        shared.items.assign(3, round);
        put(f, round);
      });
      auto by_wait = spawn([&shared, f, round] {
        wait(f);
        return shared.a == round && shared.items == std::vector<int>(3, round);
      });
      auto by_poll = spawn([&shared, f, round] {
        while (!isready(f)) yield();
        return shared.a == round && shared.items.size() == 3;
      });
      EXPECT_EQ(fetch(f), round);
      EXPECT_EQ(shared.a, round);
      EXPECT_TRUE(fetch(by_wait));
      EXPECT_TRUE(fetch(by_poll));
      wait(writer);
    }
  });
}

TEST_P(FutureTest, PlainThreadsWaitAndPut) {
  Future<int> from_task, from_thread;
  // A plain thread blocks as a thread on a future a task sets...
  std::thread waiter([&] { EXPECT_EQ(fetch(from_task), 11); });
  // ...and sets one a task waits for.
  std::thread putter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    put(from_thread, 22);
  });
  run([&] {
    EXPECT_EQ(fetch(from_thread), 22);
    sleep(0.002);
    put(from_task, 11);
  });
  waiter.join();
  putter.join();
}

// A value whose construction throws: put raises that, nothing is stored, and the future can
// still be set.
TEST_P(FutureTest, ThrowingValueLeavesTheFutureUnset) {
  struct Fragile {
    bool fail = false;
    Fragile() = default;
    explicit Fragile(bool f) : fail(f) {}
    Fragile(const Fragile& other) : fail(other.fail) {
      if (fail) throw std::runtime_error("copy refused");
    }
  };
  run([] {
    Future<Fragile> f;
    const Fragile bad(true);
    EXPECT_THROW(put(f, bad), std::runtime_error);
    EXPECT_FALSE(isready(f));
    put(f, Fragile(false));
    EXPECT_TRUE(isready(f));
    EXPECT_FALSE(fetch(f).fail);
  });
}

WEFT_INSTANTIATE_WORKER_COUNTS(FutureTest);

}  // namespace
}  // namespace weft
