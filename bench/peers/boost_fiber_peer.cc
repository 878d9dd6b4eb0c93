// The peers comparison's Boost.Fiber side (tools/peers.sh): PEERS.md's rows written for
// Boost.Fiber 1.74 (Debian's), timed like weft's own benchmarks (wall time, per item where the
// row is).
//
// Usage: boost_fiber_peer WORKLOAD THREADS REPS
// Prints one line per repetition: the figure and its unit. One thread runs Boost's default
// round_robin; two install algo::work_stealing on both (once per process: Boost sets that
// algorithm up process-wide, so each thread count is a process of its own).
// Not here: spawn+join, skynet and fib. Boost.Fiber releases finished fibers from its
// dispatcher's loop (scheduler::release_terminated_), which these workloads seldom enter, so
// their stacks pile up: written out here they held 9 to 19 GiB of RSS and ran ~10x slower than
// PEERS.md's figures (whose setup it does not record), a measure of the memory system rather
// than of the scheduler.
// Stacks: 16 KiB from malloc (fixedsize_stack). Not Boost's pooled_fixedsize_stack, which
// PEERS.md's figures used: its pool is not thread-safe (a fiber may end on the other thread),
// and on one thread it kept every stack it ever handed out, each page touched (fib(30) went
// past 24 GiB of RSS).
#include <boost/fiber/all.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <latch>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

namespace fibers = boost::fibers;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kStackSize = 16 * 1024;
constexpr std::int64_t kYields = 2'000'000;
constexpr std::int64_t kRoundTrips = 500'000;
constexpr std::int64_t kItems = 5'000'000;
constexpr int kMutexTasks = 100;
constexpr std::int64_t kMutexEach = 20'000;
constexpr int kParkedTasks = 100'000;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "boost_fiber_peer: %s\n", what);
  std::exit(1);
}

double ns_per(Clock::time_point start, std::int64_t n) {
  return std::chrono::duration<double, std::nano>(Clock::now() - start).count() /
         static_cast<double>(n);
}

template <typename F>
fibers::fiber make_fiber(F&& f) {
  return fibers::fiber(std::allocator_arg, boost::context::fixedsize_stack(kStackSize),
                       std::forward<F>(f));
}

double yield_pingpong() {
  const auto start = Clock::now();
  std::vector<fibers::fiber> players;
  for (int p = 0; p < 2; ++p) {
    players.push_back(make_fiber([] {
      for (std::int64_t i = 0; i < kYields / 2; ++i) boost::this_fiber::yield();
    }));
  }
  for (auto& f : players) f.join();
  return ns_per(start, kYields);
}

double unbuffered_pingpong() {
  fibers::unbuffered_channel<std::int64_t> ping, pong;
  fibers::fiber partner = make_fiber([&] {
    std::int64_t v;
    while (ping.pop(v) == fibers::channel_op_status::success) pong.push(v);
  });
  const auto start = Clock::now();
  for (std::int64_t i = 0; i < kRoundTrips; ++i) {
    ping.push(i);
    std::int64_t v = -1;
    pong.pop(v);
    if (v != i) fail("unbuffered: wrong value");
  }
  const double r = ns_per(start, kRoundTrips);
  ping.close();
  partner.join();
  return r;
}

double buffered_1024() {
  fibers::buffered_channel<std::int64_t> c(1024);
  std::int64_t sum = 0;
  fibers::fiber consumer = make_fiber([&] {
    std::int64_t v;
    while (c.pop(v) == fibers::channel_op_status::success) sum += v;
  });
  const auto start = Clock::now();
  for (std::int64_t i = 0; i < kItems; ++i) c.push(i);
  c.close();
  consumer.join();
  const double r = ns_per(start, kItems);
  if (sum != kItems * (kItems - 1) / 2) fail("buffered: wrong sum");
  return r;
}

double contended_mutex() {
  fibers::mutex mu;
  std::int64_t counter = 0;
  std::vector<fibers::fiber> tasks;
  const auto start = Clock::now();
  for (int t = 0; t < kMutexTasks; ++t) {
    tasks.push_back(make_fiber([&] {
      for (std::int64_t i = 0; i < kMutexEach; ++i) {
        std::lock_guard<fibers::mutex> lock(mu);
        ++counter;
      }
    }));
  }
  for (auto& f : tasks) f.join();
  const double r = ns_per(start, kMutexTasks * kMutexEach);
  if (counter != kMutexTasks * kMutexEach) fail("mutex: lost increments");
  return r;
}

long rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  if (!(statm >> size >> resident)) fail("rss: cannot read /proc/self/statm");
  return resident * sysconf(_SC_PAGESIZE);
}

// RSS growth while kParkedTasks fibers wait on one condition, per fiber.
double rss_per_parked_task() {
  fibers::mutex mu;
  fibers::condition_variable cv;
  bool release = false;
  int waiting = 0;
  std::vector<fibers::fiber> tasks;
  tasks.reserve(kParkedTasks);
  const long before = rss_bytes();
  for (int t = 0; t < kParkedTasks; ++t) {
    tasks.push_back(make_fiber([&] {
      std::unique_lock<fibers::mutex> lock(mu);
      ++waiting;
      cv.wait(lock, [&] { return release; });
    }));
  }
  while (true) {
    {
      std::lock_guard<fibers::mutex> lock(mu);
      if (waiting == kParkedTasks) break;
    }
    boost::this_fiber::yield();
  }
  const long after = rss_bytes();
  {
    std::lock_guard<fibers::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  for (auto& f : tasks) f.join();
  return static_cast<double>(after - before) / kParkedTasks;
}

struct Workload {
  const char* unit;
  double (*run)();
};

const std::map<std::string, Workload>& workloads() {
  static const std::map<std::string, Workload> all = {
      {"yield", {"ns_per_yield", yield_pingpong}},
      {"unbuffered", {"ns_per_round_trip", unbuffered_pingpong}},
      {"buffered", {"ns_per_item", buffered_1024}},
      {"mutex", {"ns_per_lock_unlock", contended_mutex}},
      {"rss", {"bytes_per_parked_task", rss_per_parked_task}},
  };
  return all;
}

void run(const Workload& w, int reps) {
  for (int i = 0; i < reps; ++i) std::printf("%.6g %s\n", w.run(), w.unit);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) fail("usage: boost_fiber_peer WORKLOAD THREADS REPS");
  const auto it = workloads().find(argv[1]);
  if (it == workloads().end()) fail("unknown workload");
  const int threads = std::atoi(argv[2]);
  const int reps = std::atoi(argv[3]);
  if (threads != 1 && threads != 2) fail("THREADS must be 1 or 2");
  if (reps < 1) fail("REPS must be at least 1");
  // A second repetition reuses the first one's memory and measures nothing.
  if (it->first == "rss" && reps != 1) fail("rss counts what a fresh process faults in: REPS 1");
  if (threads == 1) {
    run(it->second, reps);
    return 0;
  }
  // The helper thread's dispatcher runs (and steals) fibers while its main fiber waits.
  std::latch installed(2);
  fibers::mutex done_mu;
  fibers::condition_variable_any done_cv;
  bool done = false;
  std::thread helper([&] {
    fibers::use_scheduling_algorithm<fibers::algo::work_stealing>(2);
    installed.arrive_and_wait();
    std::unique_lock<fibers::mutex> lock(done_mu);
    done_cv.wait(lock, [&] { return done; });
  });
  fibers::use_scheduling_algorithm<fibers::algo::work_stealing>(2);
  installed.arrive_and_wait();
  run(it->second, reps);
  {
    std::lock_guard<fibers::mutex> lock(done_mu);
    done = true;
  }
  done_cv.notify_all();
  helper.join();
  return 0;
}
