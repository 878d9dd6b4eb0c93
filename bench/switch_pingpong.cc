#include "weft/bench/switch_pingpong.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

namespace weft::bench {
namespace {
constexpr std::size_t kStackSize = 64 * 1024;
}  // namespace

SwitchPingPong::SwitchPingPong(std::size_t batch)
    : batch_(batch), stack_a_(kStackSize), stack_b_(kStackSize) {
  caller_.init_for_thread();
  a_.ctx.init(stack_a_.data(), stack_a_.size(), &play_entry);
  b_.ctx.init(stack_b_.data(), stack_b_.size(), &play_entry);
  a_.other = &b_.ctx;
  b_.other = &a_.ctx;
  a_.caller = b_.caller = &caller_;
  a_.batch = batch_;
  // b starts with an empty batch so that it comes back at once; from then on it only ever
  // bounces back to a.
  b_.batch = 0;
  caller_.switch_to(b_.ctx, &b_);
  b_.batch = SIZE_MAX;
  caller_.switch_to(a_.ctx, &a_);  // a's first batch: warms both up
}

SwitchPingPong::~SwitchPingPong() {
  a_.ctx.destroy();
  b_.ctx.destroy();
  caller_.destroy();
}

void SwitchPingPong::run() { caller_.switch_to(a_.ctx, nullptr); }

// Both players run this loop, so every switch in a batch is made from the same instruction.
void SwitchPingPong::play_entry(void* arg) {
  auto* p = static_cast<Player*>(arg);
  for (;;) {
    for (std::size_t i = p->batch; i != 0; --i) p->ctx.switch_to(*p->other, p);
    p->ctx.switch_to(*p->caller, p);
  }
}

double measure_switch_ns(int runs) {
  SwitchPingPong pp(1000);
  constexpr int kRunsPerSample = 1000;  // a million switches, a few ms
  auto sample = [&pp] {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kRunsPerSample; ++i) pp.run();
    const std::chrono::duration<double, std::nano> d = std::chrono::steady_clock::now() - t0;
    return d.count() / static_cast<double>(kRunsPerSample * pp.switches_per_run());
  };
  // A CPU that was idle (a parent waiting for its workload processes) takes a while to come up
  // to speed: samples start after ~50 ms of switching.
  for (const auto warm = std::chrono::steady_clock::now();
       std::chrono::steady_clock::now() - warm < std::chrono::milliseconds(50);) {
    sample();
  }
  std::vector<double> ns;
  for (int r = 0; r < std::max(runs, 1); ++r) ns.push_back(sample());
  std::nth_element(ns.begin(), ns.begin() + ns.size() / 2, ns.end());
  return ns[ns.size() / 2];
}

}  // namespace weft::bench
