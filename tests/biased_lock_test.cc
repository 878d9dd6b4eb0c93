// BiasedLock (weft/sched/biased_lock.h): mutual exclusion while the bias is held, while it is
// revoked under contention, and after; and that one thread alone keeps the bias.
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "weft/sched/asymmetric_fence.h"
#include "weft/sched/biased_lock.h"

namespace weft {
namespace {

TEST(BiasedLock, OneThreadKeepsTheBias) {
  BiasedLock lock;
  for (int i = 0; i < 1000; ++i) {
    lock.lock();
    lock.unlock();
  }
  EXPECT_EQ(lock.biased(), internal::membarrier_ready());
  std::thread other([&] {
    lock.lock();
    lock.unlock();
  });
  other.join();
  EXPECT_FALSE(lock.biased());
  lock.lock();  // the old owner now takes the shared path
  lock.unlock();
}

// The owner is busy in its critical sections when others arrive and revoke: a plain counter
// must come out exact (and TSan must see every increment ordered).
TEST(BiasedLock, MutualExclusionAcrossRevocation) {
  BiasedLock lock;
  long counter = 0;
  std::atomic<bool> owner_started{false};
  constexpr int kPerThread = 200000;
  std::thread owner([&] {
    for (int i = 0; i < kPerThread; ++i) {
      lock.lock();
      ++counter;
      lock.unlock();
      if (i == 1000) owner_started.store(true);
    }
  });
  while (!owner_started.load()) std::this_thread::yield();
  std::vector<std::thread> others;
  for (int t = 0; t < 3; ++t) {
    others.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        lock.lock();
        ++counter;
        lock.unlock();
      }
    });
  }
  owner.join();
  for (auto& t : others) t.join();
  EXPECT_EQ(counter, 4L * kPerThread);
  EXPECT_FALSE(lock.biased());
}

// Many fresh locks, each claimed by whichever thread gets there first and revoked by the
// other at once: races between claiming, the owner's re-check and revocation.
TEST(BiasedLock, RevocationRaces) {
  constexpr int kLocks = 2000;
  constexpr int kRounds = 20;
  auto locks = std::make_unique<BiasedLock[]>(kLocks);
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

}  // namespace
}  // namespace weft
