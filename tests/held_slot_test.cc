// HeldSlot (weft/sched/held_slot.h): the owner's put() and take() use plain loads and stores
// while no thief is at the slot, so these race an owner that never stops against thieves that
// steal whatever sat there for the hold time, and count where every node went: each is taken
// exactly once -- by a take(), as the node a put() displaced, or by a thief -- and none is lost.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/stress_mode.h"
#include "weft/sched/held_slot.h"

namespace weft {
namespace {

// A node with the number of the put that queued it: nodes the owner gets back are reused, so
// that a burst can run long enough to span a thief's steal.
struct Item {
  SchedNode node;
  std::atomic<std::uint32_t> ticket{0};
};
static_assert(offsetof(Item, node) == 0);
Item* item_of(SchedNode* n) { return reinterpret_cast<Item*>(n); }

TEST(HeldSlotTest, OwnerAndThiefTakeEachNodeExactlyOnce) {
  // Each round the owner lets a node sit until the thief has seen it twice and goes for it,
  // then puts and takes back-to-back for longer than the thief's heavy fence takes (~1 to
  // ~20 us, by machine), so that the thief's compare-and-swap lands among the owner's plain
  // loads and stores -- where, were they not kept apart, both would get a node, or none.
  const int rounds = testing::stress_mode() ? 5'000 : 300;
  constexpr int kBurst = 4'000;  // puts a round
  const std::size_t tickets = static_cast<std::size_t>(rounds) * kBurst;
  std::vector<std::atomic<std::uint8_t>> taken(tickets);  // times each put's node was taken
  std::deque<Item> items;                                  // stable addresses
  std::vector<Item*> free_items;
  HeldSlot slot;
  std::atomic<bool> done{false};
  std::atomic<int> stolen{0};

  // One thief: with more threads than the two CPUs here they would take turns, not race.
  std::thread thief([&] {
    HeldSlot::Sighting seen;
    while (!done.load(std::memory_order_acquire)) {
      // No hold: a node seen twice is taken.
      if (SchedNode* n = slot.steal_if_held(seen, std::chrono::nanoseconds(0))) {
        taken[item_of(n)->ticket.load(std::memory_order_relaxed)].fetch_add(1);
        stolen.fetch_add(1, std::memory_order_relaxed);
      }
    }
  });

  std::uint32_t next_ticket = 0;
  auto put = [&] {
    if (free_items.empty()) free_items.push_back(&items.emplace_back());
    Item* item = free_items.back();
    free_items.pop_back();
    item->ticket.store(next_ticket, std::memory_order_relaxed);
    SchedNode* displaced = slot.put(&item->node, next_ticket++);
    if (displaced != nullptr) {
      taken[item_of(displaced)->ticket.load(std::memory_order_relaxed)].fetch_add(1);
      free_items.push_back(item_of(displaced));
    }
  };
  auto take = [&] {
    if (SchedNode* n = slot.take()) {
      taken[item_of(n)->ticket.load(std::memory_order_relaxed)].fetch_add(1);
      free_items.push_back(item_of(n));
    }
  };
  for (int round = 0; round < rounds; ++round) {
    put();
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(round % 5);
    while (std::chrono::steady_clock::now() < until) {
    }
    for (int i = 1; i < kBurst; ++i) {
      take();
      put();
    }
  }
  done.store(true, std::memory_order_release);
  thief.join();
  take();

  int wrong = 0;
  for (std::size_t t = 0; t < tickets; ++t) {
    const int times = taken[t].load();
    if (times != 1 && ++wrong <= 5) ADD_FAILURE() << "put " << t << " taken " << times << " times";
  }
  EXPECT_EQ(wrong, 0);
  // Otherwise the thief never raced the owner and the test proved nothing.
  EXPECT_GT(stolen.load(), 0);
  std::printf("%d of %zu nodes stolen\n", stolen.load(), tickets);
}

}  // namespace
}  // namespace weft
