// The biased locks: BiasedLock (weft/sched/biased_lock.h) and ReentrantLock's bias
// (weft/sync/lock.h). The first thread to lock takes the bias and locks with plain stores; the
// first lock from another thread revokes it for good. Mutual exclusion must hold before, during
// and after the revocation, and with tasks that lock on one worker and unlock on another.
#include <atomic>
#include <cstdlib>
#include <cstdint>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "weft/sched/asymmetric_fence.h"
#include "weft/sched/biased_lock.h"
#include "weft/sched/runtime.h"
#include "weft/sched/scheduling.h"
#include "weft/sync/lock.h"
#include "weft/task/current_task.h"

namespace weft {
namespace {

// What a biased lock compares: a number per thread, never that of an earlier thread (a new
// thread may get an old one's thread-local storage), never a lock's marker (0 or 1).
// Locks start biased exactly when membarrier is in force. //tests:*_no_membarrier run the tests
// with it taken away (tools/old_kernel) and say so: then it must not be.
TEST(Membarrier, LocksStartBiasedExactlyWhenItIsInForce) {
  const bool ready = internal::membarrier_ready();
  if (std::getenv("WEFT_TEST_EXPECT_NO_MEMBARRIER") != nullptr) {
    EXPECT_FALSE(ready);
  }
  EXPECT_EQ(BiasedLock().biased(), ready);
  EXPECT_EQ(ReentrantLock().biased(), ready);
}

TEST(ThreadNumbers, OnePerThreadNeverReusedNeverAMarker) {
  const std::uint64_t mine = internal::current_thread_number();
  EXPECT_EQ(internal::current_thread_number(), mine);
  std::set<std::uint64_t> seen{mine};
  for (int i = 0; i < 8; ++i) {
    std::uint64_t n = 0;
    std::thread([&n] { n = internal::current_thread_number(); }).join();  // one after another
    EXPECT_TRUE(seen.insert(n).second) << "thread number " << n << " given twice";
  }
  for (std::uint64_t n : seen) EXPECT_GE(n, 2u);
  // A plain thread owns locks by its number: even, and never a lock's marker (0 or 1).
  const internal::LockIds id = internal::current_lock_ids();
  EXPECT_EQ(id.owner, mine << 1);
  EXPECT_EQ(id.thread_number, mine);
  EXPECT_EQ(internal::current_lock_owner(), id.owner);
}

// In a task: the task owns locks by its id (odd: never a thread's), and the number is its
// worker thread's, not the caller's.
TEST(ThreadNumbers, ATaskIsIdentifiedByItselfAndItsWorkersNumber) {
  const std::uint64_t main_number = internal::current_thread_number();
  RuntimeOptions options;
  options.default_threads = 1;
  options.interactive_threads = 0;
  Runtime rt(std::move(options));
  rt.run([main_number] {
    const internal::LockIds id = internal::current_lock_ids();
    EXPECT_EQ(id.owner, ((current_task().id() + 1) << 1) | 1);
    EXPECT_EQ(internal::current_lock_owner(), id.owner);
    EXPECT_EQ(id.thread_number, internal::current_thread_number());
    EXPECT_NE(id.thread_number, main_number);
  });
}

TEST(BiasedLockBias, OneThreadKeepsItAnotherRevokesIt) {
  BiasedLock l;
  for (int i = 0; i < 1000; ++i) {
    l.lock();
    l.unlock();
  }
  EXPECT_EQ(l.biased(), internal::membarrier_ready());
  std::thread other([&] {
    l.lock();
    l.unlock();
  });
  other.join();
  EXPECT_FALSE(l.biased());
  l.lock();  // the old owner now takes the shared path
  l.unlock();
}

TEST(ReentrantLockBias, OneThreadKeepsItAnotherRevokesIt) {
  ReentrantLock l;
  for (int i = 0; i < 1000; ++i) {
    l.lock();
    l.lock();  // recursion stays on the owner's count
    l.unlock();
    l.unlock();
  }
  EXPECT_EQ(l.biased(), internal::membarrier_ready());
  EXPECT_FALSE(l.islocked());
  std::thread other([&] {
    EXPECT_TRUE(l.trylock());
    l.unlock();
  });
  other.join();
  EXPECT_FALSE(l.biased());
  l.lock();  // the old bias thread now compares-and-swaps
  EXPECT_TRUE(l.held_by_caller());
  l.unlock();
}

// Both biased locks, the same promises: exact mutual exclusion while the bias thread is busy
// in its critical sections and others arrive and revoke, and when fresh locks are claimed by
// whichever thread comes first and revoked by the other at once.
template <typename Lock>
class BiasedLocks : public ::testing::Test {};
using LockTypes = ::testing::Types<BiasedLock, ReentrantLock>;
TYPED_TEST_SUITE(BiasedLocks, LockTypes);

TYPED_TEST(BiasedLocks, MutualExclusionAcrossRevocation) {
  TypeParam l;
  long counter = 0;
  std::atomic<bool> started{false};
  constexpr int kPerThread = 100000;
  std::thread owner([&] {
    for (int i = 0; i < kPerThread; ++i) {
      l.lock();
      ++counter;
      l.unlock();
      if (i == 1000) started.store(true);
    }
  });
  while (!started.load()) std::this_thread::yield();
  std::vector<std::thread> others;
  for (int t = 0; t < 2; ++t) {
    others.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        l.lock();
        ++counter;
        l.unlock();
      }
    });
  }
  owner.join();
  for (auto& t : others) t.join();
  EXPECT_EQ(counter, 3L * kPerThread);
  EXPECT_FALSE(l.biased());
}

TYPED_TEST(BiasedLocks, RevocationRaces) {
  constexpr int kLocks = 2000;
  constexpr int kRounds = 10;
  auto locks = std::make_unique<TypeParam[]>(kLocks);
  std::vector<long> counters(kLocks, 0);
  std::atomic<int> go{0};
  auto body = [&] {
    go.fetch_add(1);
    while (go.load() < 2) std::this_thread::yield();
    for (int i = 0; i < kLocks; ++i) {
      for (int r = 0; r < kRounds; ++r) {
        locks[i].lock();
        ++counters[i];
        locks[i].unlock();
      }
    }
  };
  std::thread a(body), b(body);
  a.join();
  b.join();
  for (int i = 0; i < kLocks; ++i) ASSERT_EQ(counters[i], 2L * kRounds) << "lock " << i;
}

// Tasks on two workers: the lock is biased to one worker's thread, tasks migrate and unlock
// wherever they are, and the other worker's lockers revoke it.
TEST(ReentrantLockBias, TasksAcrossWorkers) {
  RuntimeOptions options;
  options.default_threads = 2;
  options.interactive_threads = 0;
  Runtime rt(std::move(options));
  ReentrantLock l;
  long counter = 0;
  constexpr int kTasks = 20;
  constexpr int kPerTask = 5000;
  rt.run([&] {
    std::vector<Task<void>> tasks;
    for (int t = 0; t < kTasks; ++t) {
      tasks.push_back(spawn([&] {
        for (int i = 0; i < kPerTask; ++i) {
          l.lock();
          ++counter;
          if (i % 64 == 0) yield();  // holding it across a switch, maybe to another worker
          l.unlock();
        }
      }));
    }
    for (auto& t : tasks) wait(t);
  });
  EXPECT_EQ(counter, static_cast<long>(kTasks) * kPerTask);
  EXPECT_FALSE(l.islocked());
}

}  // namespace
}  // namespace weft
