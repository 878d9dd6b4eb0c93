// lock(c) on a Channel (Julia 1.7's lock(f, c)): other tasks' operations wait for the holder,
// check-then-take is atomic under it, it is reentrant, a holder that blocks lets it go and gets
// it back as deeply held, close waits for it (a bound task's end does not), plain threads hold
// it too, and unlock by a non-holder names what was wrong.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/stress_mode.h"
#include "tests/held_lock.h"
#include "tests/test_runtime.h"
#include "weft/channel/channel.h"
#include "weft/channel/invalid_state_exception.h"
#include "weft/sched/deadlock_error.h"
#include "weft/sched/runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/sched/task_dump.h"
#include "weft/sync/lock.h"  // its generic lock(f, l) must not get in the way of lock(f, c)
#include "weft/task/errors.h"
#include "weft/task/task.h"

namespace weft {
namespace {

using testing::RuntimeTest;
using testing::until_waiting;
class ChannelLockTest : public RuntimeTest {};

void expect_unlock_error(const Channel<int>& c, const std::string& says) {
  try {
    unlock(c);
    ADD_FAILURE() << "unlock by a task that does not hold the channel's lock did not throw";
  } catch (const TaskStateError& e) {
    EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
  }
}

TEST_P(ChannelLockTest, OtherTasksOperationsWaitForTheHolder) {
  run([] {
    Channel<int> c(10);
    lock(c);
    put(c, 1);  // the holder's own operations go on
    // One at a time, so that they queue for the lock in this order.
    auto putter = spawn([c] { put(c, 2); });
    until_waiting(putter);
    auto taker = spawn([c] { return take(c); });
    until_waiting(taker);
    auto closer = spawn([c] { close(c); });
    until_waiting(closer);
    EXPECT_EQ(c.n_avail(), 1u);  // nothing of theirs happened
    EXPECT_TRUE(isopen(c));
    EXPECT_TRUE(isready(c));  // isready does not wait for the lock
    unlock(c);
    wait(putter);
    EXPECT_EQ(fetch(taker), 1);  // in the order they came: put, take, close
    wait(closer);
    EXPECT_FALSE(isopen(c));
    EXPECT_EQ(take(c), 2);
  });
}

// The use lock(f, c) exists for: isready then take, with no other take in between. Careful
// consumers do that under the lock, yielding inside it to invite the race; greedy ones just
// take. If the greedy ones' takes did not wait for the lock, one could take the last item
// between a careful consumer's isready and its take, which would then block forever (the
// watchdog fails the test).
TEST_P(ChannelLockTest, CheckThenTakeIsAtomic) {
  run([] {
    // Many short rounds: the race is over the last item of each.
    constexpr int kRounds = 300, kItems = 4;
    for (int round = 0; round < kRounds; ++round) {
      Channel<int> c(kItems);
      for (int i = 1; i <= kItems; ++i) put(c, i);
      std::vector<Task<std::int64_t>> careful, greedy;
      for (int k = 0; k < 3; ++k) {
        careful.push_back(spawn([c] {
          std::int64_t sum = 0;
          for (;;) {
            const int v = lock(
                [&] {
                  if (!isready(c)) return 0;
                  yield();
                  return take(c);
                },
                c);
            if (v == 0) return sum;
            sum += v;
          }
        }));
      }
      for (int k = 0; k < 2; ++k) {
        greedy.push_back(spawn([c] {
          std::int64_t sum = 0;
          for (int v : c) sum += v;
          return sum;
        }));
      }
      std::int64_t total = 0;
      for (auto& t : careful) total += fetch(t);
      close(c);  // the greedy ones' loops end
      for (auto& t : greedy) total += fetch(t);
      ASSERT_EQ(total, kItems * (kItems + 1) / 2);
      ASSERT_FALSE(islocked(c));
    }
  });
}

TEST_P(ChannelLockTest, ReentrantTrylockAndIslocked) {
  run([] {
    Channel<int> c(1);
    EXPECT_FALSE(islocked(c));
    EXPECT_TRUE(trylock(c));
    lock(c);
    EXPECT_TRUE(islocked(c));
    auto other = spawn([c] { return trylock(c); });
    EXPECT_FALSE(fetch(other));
    unlock(c);
    EXPECT_TRUE(islocked(c));  // one level still held
    unlock(c);
    EXPECT_FALSE(islocked(c));
    auto again = spawn([c] {
      const bool got = trylock(c);
      if (got) unlock(c);
      return got;
    });
    EXPECT_TRUE(fetch(again));
  });
}

TEST_P(ChannelLockTest, UnlockByANonHolderThrows) {
  run([] {
    Channel<int> c(1);
    expect_unlock_error(c, "the Channel is not locked");
    lock(c);
    auto intruder = spawn([c] { expect_unlock_error(c, "held by another task or thread"); });
    wait(intruder);
    EXPECT_TRUE(islocked(c));
    unlock(c);
  });
}

// A holder whose take blocks lets the lock go (or the putter could never put), and has it back
// at its depth when the take returns.
TEST_P(ChannelLockTest, HolderThatBlocksLetsGoAndGetsItBack) {
  run([] {
    for (int capacity : {0, 1}) {
      Channel<int> c(capacity);
      lock(c);
      lock(c);
      auto putter = spawn([c] { put(c, 5); });
      EXPECT_EQ(take(c), 5);
      wait(putter);
      auto other = spawn([c] { return trylock(c); });
      EXPECT_FALSE(fetch(other));  // ours again...
      unlock(c);
      EXPECT_TRUE(islocked(c));  // ...at depth 2
      unlock(c);
      expect_unlock_error(c, "not locked");
    }
  });
}

TEST_P(ChannelLockTest, FetchAndWaitWaitForTheHolder) {
  run([] {
    Channel<int> c(2);
    put(c, 7);
    lock(c);
    auto fetcher = spawn([c] { return fetch(c); });
    auto waiter = spawn([c] { wait(c); });
    until_waiting(fetcher);
    until_waiting(waiter);
    EXPECT_FALSE(istaskdone(fetcher));
    EXPECT_FALSE(istaskdone(waiter));
    unlock(c);
    EXPECT_EQ(fetch(fetcher), 7);
    wait(waiter);
  });
}

// Julia's unbuffered put! takes lock(c), hands its item to a waiting taker, unlocks c and then
// yields: the channel is not locked while the tasks that run during that yield use it. A put
// that had to wait for another holder's lock(c) holds the lock for its own operation; it must
// let it go before it yields, not keep it while the others run.
TEST_P(ChannelLockTest, AnUnbufferedPutYieldsWithTheChannelUnlocked) {
  run([] {
    Channel<int> c;  // unbuffered
    // async: sticky, all on this worker, so the order below is the worker's order.
    auto taker = async([c] { return take(c); });
    until_waiting(taker);
    lock(c);
    auto putter = async([c] { put(c, 1); });
    until_waiting(putter);  // waits for our lock(c)
    unlock(c);              // the putter is next in line
    // Queued behind the putter: runs while the put, having handed 1 to the taker, yields.
    auto observer = async([c] {
      const bool got = trylock(c);
      if (got) unlock(c);
      return got;
    });
    EXPECT_EQ(fetch(taker), 1);
    wait(putter);
    EXPECT_TRUE(fetch(observer)) << "the channel was still locked during the put's yield";
    EXPECT_FALSE(islocked(c));
  });
}

// The close of a bound task's end never waits (it runs as the task ends).
TEST_P(ChannelLockTest, BoundTasksCloseDoesNotWaitForTheLock) {
  run([] {
    Channel<int> c(1);
    lock(c);
    auto t = spawn([] {});
    weft::bind(c, t);
    wait(t);
    EXPECT_FALSE(isopen(c));
    EXPECT_TRUE(islocked(c));
    unlock(c);
  });
}

TEST_P(ChannelLockTest, PlainThreadsHoldItToo) {
  Channel<int> c(4);
  std::atomic<bool> held{false}, release{false};
  std::thread holder([&] {
    lock(c);
    held.store(true);
    while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_EQ(c.n_avail(), 0u);
    unlock(c);
  });
  run([&] {
    while (!held.load()) sleep(0.001);
    auto putter = spawn([c] { put(c, 1); });
    until_waiting(putter);
    release.store(true);
    wait(putter);
    EXPECT_EQ(take(c), 1);
  });
  holder.join();
}

// A plain thread that holds the lock and waits for a task that waits for the lock is in a
// deadlock: its wait(t) raises DeadlockError (deadlock_error.h), after which "the program can
// still end the deadlock itself" -- here by letting the lock go. The DeadlockError gives the
// thread a fresh Waiter (its old one stays in the task's list of waiters), so the lock must
// still know the thread as its holder.
TEST_P(ChannelLockTest, APlainThreadUnlocksAfterADeadlockError) {
  Channel<int> c(1);
  lock(c);
  auto putter = run([c] { return spawn([c] { put(c, 1); }); });
  try {
    wait(putter);
    FAIL() << "wait returned while this thread held the lock the task waits for";
  } catch (const DeadlockError&) {
  }
  EXPECT_TRUE(islocked(c));
  try {
    unlock(c);
  } catch (const TaskStateError& e) {
    // The task stays parked for good: the runtime's teardown leaks it (runtime.h).
    FAIL() << "the holder could not unlock after its DeadlockError: " << e.what();
  }
  wait(putter);
  EXPECT_EQ(take(c), 1);
  EXPECT_FALSE(islocked(c));
}

// As in Julia, a task that ends holding lock(c) leaves it held (tests/held_lock.h).
TEST_P(ChannelLockTest, ALockLeftHeldByAFinishedTaskStaysHeldForEveryLaterTask) {
  run([] {
    Channel<int> c(1);
    testing::expect_held_for_every_later_task(c);
  });
}

TEST_P(ChannelLockTest, LockWithAFunctionReturnsItsResultAndUnlocksOnThrow) {
  run([] {
    Channel<int> c(2);
    put(c, 4);
    EXPECT_EQ(lock([&] { return take(c) * 10; }, c), 40);
    EXPECT_FALSE(islocked(c));
    EXPECT_THROW(lock([]() -> int { throw std::runtime_error("inside"); }, c), std::runtime_error);
    EXPECT_FALSE(islocked(c));
    const Channel<int>& as_const = c;
    // f unlocks c itself (against the rule) and throws: its exception propagates, rather than
    // the unlock's, thrown while it unwinds, ending the process. (Through a const reference:
    // channel.h's own lock(f, c), which the generic one in sync/lock.h outranks otherwise.)
    EXPECT_THROW(lock(
                     [&] {
                       unlock(as_const);
                       throw std::runtime_error("after unlocking");
                     },
                     as_const),
                 std::runtime_error);
    EXPECT_FALSE(islocked(c));
    lock([&] { put(as_const, 1); }, as_const);
    EXPECT_EQ(take(c), 1);
    // A named callable and a channel of a std:: type: qualified, as channel.h asks.
    Channel<std::string> words(1);
    auto put_word = [&] { put(words, std::string("w")); };
    weft::lock(put_word, words);
    EXPECT_EQ(take(words), "w");
    {
      std::unique_lock<Channel<int>> held(c);  // Lockable
      EXPECT_TRUE(islocked(c));
    }
    EXPECT_FALSE(islocked(c));
  });
}

// Fairness: a task that takes the lock again as soon as it lets go, and keeps it while others
// run (it yields holding it), cannot keep a waiter out for long. Each release wakes the waiter,
// the hog takes the lock back first ("barging"), and the waiter finds it held again; after
// ChannelCore::kHoldStarvation a release hands the lock to the waiter instead.
TEST_P(ChannelLockTest, AWaiterIsNotStarvedByATaskThatRelocksAtOnce) {
  run([] {
    Channel<int> c(1);
    std::atomic<bool> waiter_done{false};
    std::atomic<bool> hog_started{false};
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    auto hog = spawn([&] {
      while (!waiter_done.load() && std::chrono::steady_clock::now() < give_up) {
        lock(c);
        hog_started.store(true);
        yield();
        unlock(c);
      }
    });
    while (!hog_started.load()) yield();
    auto waiter = spawn([&] {
      lock(c);
      put(c, 1);
      unlock(c);
      waiter_done.store(true);
    });
    wait(waiter);
    const bool in_time = std::chrono::steady_clock::now() < give_up;
    wait(hog);
    EXPECT_TRUE(in_time) << "the waiter got the lock only once the hog stopped";
    EXPECT_EQ(take(c), 1);
  });
}

// A task that was scheduled with an error while it ran (Julia's schedule(t, err; error=true))
// and then waits for another's lock(c) waits for the lock as any other: the error is for its
// next wait() (scheduling.h). The line goes on: the holder's unlock hands the lock to it, and
// its unlock to the next waiter.
TEST_P(ChannelLockTest, AnErrorScheduledOntoAWaiterIsForItsNextWaitNotTheLock) {
  run([] {
    Channel<int> c(1);
    lock(c);
    auto scheduled = async([c] {
      schedule(current_task(), std::make_exception_ptr(std::runtime_error("called off")),
               {.error = true});
      lock(c);
      unlock(c);
      try {
        wait();
        return std::string("no error");
      } catch (const std::runtime_error& e) {
        return std::string(e.what());
      }
    });
    until_waiting(scheduled);
    auto next = async([c] {
      lock(c);
      unlock(c);
      return true;
    });
    until_waiting(next);
    unlock(c);
    EXPECT_EQ(fetch(scheduled), "called off");
    EXPECT_TRUE(fetch(next));
    EXPECT_FALSE(islocked(c));
  });
}

// Everything at once, across workers and a plain thread: producers, careful consumers that
// check and take under the lock (some nested two deep, one a plain thread using
// std::unique_lock), greedy consumers that just take, and watchers in fetch. Every item is
// taken exactly once. Short by default; WEFT_STRESS=1 runs 100x the items (under TSan, with
// WEFT_TEST_TIMEOUT=0).
TEST_P(ChannelLockTest, StressHoldersTakersAndWatchers) {
  const int kItemsPerProducer = testing::stress_mode() ? 200000 : 2000;
  constexpr int kProducers = 2;
  Channel<int> c(8);
  std::atomic<std::int64_t> taken_sum{0};
  std::atomic<int> taken_count{0};
  // Under the lock: isready, then take, with no other take in between (or the take blocks on a
  // drained open channel, or raises on a drained closed one). False once closed and drained.
  auto careful_step = [&c, &taken_sum, &taken_count](bool nested) {
    if (!isready(c)) return isopen(c);
    if (nested) lock(c);
    yield();
    const int v = take(c);
    if (nested) unlock(c);
    taken_sum.fetch_add(v);
    taken_count.fetch_add(1);
    return true;
  };
  std::thread plain([&] {
    for (;;) {
      std::unique_lock<Channel<int>> held(c);
      if (!isready(c)) {
        if (!isopen(c)) return;
        held.unlock();
        std::this_thread::yield();
        continue;
      }
      const int v = take(c);
      taken_sum.fetch_add(v);
      taken_count.fetch_add(1);
    }
  });
  run([&] {
    std::vector<Task<void>> producers, careful, greedy, watchers;
    for (int p = 0; p < kProducers; ++p) {
      producers.push_back(spawn([c, p, kItemsPerProducer] {
        for (int i = 1; i <= kItemsPerProducer; ++i) put(c, p * kItemsPerProducer + i);
      }));
    }
    for (int k = 0; k < 3; ++k) {
      careful.push_back(spawn([&c, &careful_step, k] {
        while (lock([&] { return careful_step(k == 0); }, c)) yield();
      }));
    }
    for (int k = 0; k < 2; ++k) {
      greedy.push_back(spawn([c, &taken_sum, &taken_count] {
        for (int v : c) {
          taken_sum.fetch_add(v);
          taken_count.fetch_add(1);
        }
      }));
    }
    for (int k = 0; k < 2; ++k) {
      watchers.push_back(spawn([c] {
        try {
          for (;;) {
            fetch(c);  // waits for the lock like a take, takes nothing
            yield();
          }
        } catch (const InvalidStateException&) {
          // closed and drained
        }
      }));
    }
    for (auto& t : producers) wait(t);
    close(c);
    for (auto& t : careful) wait(t);
    for (auto& t : greedy) wait(t);
    for (auto& t : watchers) wait(t);
  });
  plain.join();
  const std::int64_t n = std::int64_t{kProducers} * kItemsPerProducer;
  EXPECT_EQ(taken_count.load(), n);
  EXPECT_EQ(taken_sum.load(), n * (n + 1) / 2);
  EXPECT_FALSE(islocked(c));
}

// An operation that waited for the lock runs holding it. Once it wakes its counterpart, that
// one may drop the channel's last handle at once: the operation must have let the lock go
// before (it used to after: a use-after-free that ASan and TSan report).
TEST_P(ChannelLockTest, AnOperationLetsTheLockItWaitedForGoBeforeItsCounterpartMayFreeIt) {
  enum Op { kPut, kClose, kTake };
  for (int i = 0; i < 90; ++i) {
    const Op op = static_cast<Op>(i % 3);
    auto c = std::make_unique<Channel<int>>();
    Channel<int>* const p = c.get();
    // The counterpart, blocked first: a taker (for put and close) or a putter (for take).
    testing::BlockingThread counterpart([&c, op] {
      switch (op) {
        case kPut: EXPECT_EQ(take(*c), 1); break;
        case kClose: EXPECT_THROW(take(*c), InvalidStateException); break;
        case kTake: put(*c, 1); break;
      }
      c.reset();
    });
    run([&counterpart, p, op] {
      ASSERT_TRUE(counterpart.until_blocked());
      lock(*p);
      auto other = spawn([p, op] {
        switch (op) {
          case kPut: put(*p, 1); break;
          case kClose: close(*p); break;
          case kTake: EXPECT_EQ(take(*p), 1); break;
        }
      });
      until_waiting(other);  // for the lock
      unlock(*p);
      wait(other);
    });
  }
}

// The same for an operation that waited for the lock and then parked (giving the lock up, as
// a holder does): it must not take the lock back after the park only to let it go, as the
// task that completed it may have freed the channel by then.
TEST_P(ChannelLockTest, AnOperationParkedAfterWaitingForTheLockDoesNotTakeItBack) {
  for (int i = 0; i < 40; ++i) {
    const bool puts = i % 2 == 0;
    // Buffered for the take: the put that completes it does not yield, so the channel is
    // freed before the taker runs again.
    auto c = std::make_unique<Channel<int>>(puts ? 0 : 1);
    Channel<int>* const p = c.get();
    run([&c, p, puts] {
      lock(*p);
      auto parked = spawn([p, puts] {
        if (puts) {
          put(*p, 1);
        } else {
          EXPECT_EQ(take(*p), 1);
        }
      });
      until_waiting(parked);  // for the lock
      unlock(*p);
      // Until parked in its operation: a put shows as a waiting putter, a take only as a
      // wait with the lock free.
      const auto parked_in_op = [&] {
        return puts ? p->n_avail() == 1
                    : !p->islocked() && parked.state() == TaskState::kWaiting;
      };
      while (!parked_in_op()) yield();
      auto completes = spawn([&c, puts] {
        if (puts) {
          EXPECT_EQ(take(*c), 1);
        } else {
          put(*c, 1);
        }
        c.reset();
      });
      wait(completes);
      wait(parked);
    });
  }
}

// A task waiting for another's lock(c) shows as such in a task dump.
TEST_P(ChannelLockTest, ATaskDumpNamesTheWait) {
  Runtime& rt = runtime();
  run([&rt] {
    Channel<int> c(1);
    lock(c);
    auto putter = spawn([c] { put(c, 1); });
    until_waiting(putter);
    const std::vector<TaskInfo> dump = task_dump(rt);
    const auto it = std::find_if(dump.begin(), dump.end(),
                                 [&](const TaskInfo& info) { return info.id == putter.id(); });
    ASSERT_NE(it, dump.end());
    EXPECT_EQ(it->wait_kind, WaitKind::kChannelLock);
    EXPECT_EQ(it->wait_description.rfind("channel lock 0x", 0), 0u) << it->wait_description;
    unlock(c);
    wait(putter);
  });
}

WEFT_INSTANTIATE_WORKER_COUNTS(ChannelLockTest);

}  // namespace
}  // namespace weft
