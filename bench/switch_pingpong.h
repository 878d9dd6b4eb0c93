// SwitchPingPong: two contexts switching back and forth from one call site, the shape every
// task switch in the runtime has (weft/task/context.h, "Call sites"). It times the raw
// context switch: //bench:context_bench reports it, and the main job prints it under its table
// (the peers' figures in PEERS.md were taken where it ran at 1.4-1.5 ns).
//
// Single-threaded: one object per thread. The two contexts stay suspended when it is
// destroyed; their stacks are plain memory, freed with it.
#ifndef WEFT_BENCH_SWITCH_PINGPONG_H_
#define WEFT_BENCH_SWITCH_PINGPONG_H_

#include <cstddef>
#include <vector>

#include "weft/task/context.h"

namespace weft::bench {

class SwitchPingPong {
 public:
  // `batch` round trips between the two contexts per run().
  explicit SwitchPingPong(std::size_t batch);
  ~SwitchPingPong();
  SwitchPingPong(const SwitchPingPong&) = delete;
  SwitchPingPong& operator=(const SwitchPingPong&) = delete;

  // 2 * batch + 2 switches: into the first context, there and back `batch` times, and back to
  // the caller. (Counted as batch + 2 until a review found it: every raw switch time this
  // harness gave before December 2026, 2.8-4.1 ns, was twice the real one.)
  void run();
  std::size_t switches_per_run() const { return 2 * batch_ + 2; }

 private:
  struct Player {
    internal::Context ctx;
    internal::Context* other = nullptr;
    internal::Context* caller = nullptr;
    std::size_t batch = 0;  // round trips to `other` before going back to the caller
  };
  static void play_entry(void* arg);

  std::size_t batch_;
  std::vector<char> stack_a_, stack_b_;
  internal::Context caller_;
  Player a_, b_;
};

// The median time of one raw switch over `runs` samples of a million switches, in
// nanoseconds, after ~50 ms of warming up.
double measure_switch_ns(int runs = 7);

}  // namespace weft::bench

#endif  // WEFT_BENCH_SWITCH_PINGPONG_H_
