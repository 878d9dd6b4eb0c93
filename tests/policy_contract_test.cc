// The Policy contract (weft/sched/policy.h), checked on the linked scheduler's own policy
// (make_default_policy()) without a runtime, so a broken promise fails here with a message that
// names it, instead of surfacing as a hang somewhere else in the suite:
//   nothing lost or duplicated, affinity, pools, progress after push (at once, or for a node
//   held for its pusher, within a bounded time while holds_back() says so), and
//   has_work_for_others() true while a node waits for the pool.
// Workers are plain threads that call pop(w) only for their own w, and on_worker_start/stop
// around their life, as the runtime does; pushes come from them and from outside threads.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "weft/sched/policy.h"
#include "weft/task/sched_node.h"

namespace weft {
namespace {

// 3 default-pool workers (0..2) and 2 interactive ones (3, 4).
Topology MakeTopology() {
  Topology t;
  t.pool_of = {Pool::kDefault, Pool::kDefault, Pool::kDefault, Pool::kInteractive,
               Pool::kInteractive};
  return t;
}

// One thread per worker, each running what it is handed, so pop(w) is always called from the
// same thread: the thread that plays worker w.
class WorkerThreads {
 public:
  WorkerThreads(Policy* policy, int n) : policy_(policy), mailboxes_(n) {
    for (int w = 0; w < n; ++w) threads_.emplace_back([this, w] { loop(w); });
  }
  ~WorkerThreads() {
    for (auto& m : mailboxes_) {
      std::lock_guard<std::mutex> lock(m.mu);
      m.closing = true;
      m.cv.notify_all();
    }
    for (auto& t : threads_) t.join();
  }

  // Runs fn(w) on worker w's thread and waits for it.
  void on(int w, const std::function<void(int)>& fn) { on_all({w}, fn); }

  // Runs fn(w) on each listed worker's thread, all at once, and waits for all of them.
  void on_all(const std::vector<int>& workers, const std::function<void(int)>& fn) {
    // `left` is counted down under done_mu: a worker must be done with done_mu and done_cv
    // (they live in this frame) before the wait below can see zero and return.
    int left = static_cast<int>(workers.size());
    std::mutex done_mu;
    std::condition_variable done_cv;
    for (int w : workers) {
      Mailbox& m = mailboxes_[w];
      std::lock_guard<std::mutex> lock(m.mu);
      m.jobs.push_back([&, w] {
        fn(w);
        std::lock_guard<std::mutex> done_lock(done_mu);
        if (--left == 0) done_cv.notify_all();
      });
      m.cv.notify_all();
    }
    std::unique_lock<std::mutex> lock(done_mu);
    done_cv.wait(lock, [&] { return left == 0; });
  }

 private:
  struct Mailbox {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::function<void()>> jobs;
    bool closing = false;
  };

  void loop(int w) {
    policy_->on_worker_start(w);
    Mailbox& m = mailboxes_[w];
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(m.mu);
        m.cv.wait(lock, [&] { return m.closing || !m.jobs.empty(); });
        if (m.jobs.empty()) break;
        job = std::move(m.jobs.front());
        m.jobs.pop_front();
      }
      job();
    }
    policy_->on_worker_stop(w);
  }

  Policy* policy_;
  std::vector<Mailbox> mailboxes_;
  std::vector<std::thread> threads_;
};

std::string Describe(const SchedNode& n) {
  return "node " + std::to_string(n.task_id) + " (affinity " + std::to_string(n.affinity) +
         ", pool " + to_string(n.pool) + ")";
}

class PolicyContract : public ::testing::Test {
 protected:
  void SetUp() override {
    policy_ = make_default_policy();
    ASSERT_NE(policy_, nullptr);
    policy_->init(topology_);
    workers_ = std::make_unique<WorkerThreads>(policy_.get(), topology_.num_workers());
  }
  void TearDown() override { workers_.reset(); }

  std::vector<int> AllWorkers() const {
    std::vector<int> all;
    for (int w = 0; w < topology_.num_workers(); ++w) all.push_back(w);
    return all;
  }

  // Pops on every worker until nothing is left, checking where each node comes out.
  void ExpectEmptyEverywhere(const char* when) {
    workers_->on_all(AllWorkers(), [&](int w) {
      if (SchedNode* n = policy_->pop(w)) {
        ADD_FAILURE() << when << ": worker " << w << " popped " << Describe(*n)
                      << ", but every pushed node had been popped already";
      }
    });
  }

  const Topology topology_ = MakeTopology();
  std::unique_ptr<Policy> policy_;
  std::unique_ptr<WorkerThreads> workers_;
};

// The workers that may run n: its affinity, else every worker of its pool.
std::vector<int> EligibleWorkers(const Topology& topology, const SchedNode& n) {
  if (n.affinity >= 0) return {n.affinity};
  std::vector<int> eligible;
  for (int w = 0; w < topology.num_workers(); ++w) {
    if (topology.pool_of[w] == n.pool) eligible.push_back(w);
  }
  return eligible;
}

constexpr PushReason kReasons[] = {PushReason::kSpawned, PushReason::kYielded, PushReason::kWoken,
                                   PushReason::kYieldedTo};

// Progress, one node at a time: after a push (from outside, from the eligible worker itself,
// or from another worker) has returned, the first pop by any eligible worker returns it --
// unless the policy holds the node for its pusher (Policy::holds_for_pusher, asked before the
// push as the runtime does): then the pusher's first pop returns it, and another worker's pops
// may come back empty for a while, each time with holds_back() true for that worker, until one
// returns it (within a second).
TEST_F(PolicyContract, PushedNodeIsPoppedByTheNextEligiblePop) {
  const int n = topology_.num_workers();
  // Every kind of node: bound to each worker, and free in each pool.
  std::vector<SchedNode> kinds;
  for (int w = 0; w < n; ++w) {
    SchedNode s;
    s.affinity = w;
    s.pool = topology_.pool_of[w];
    kinds.push_back(s);
  }
  for (Pool p : {Pool::kDefault, Pool::kInteractive}) {
    SchedNode s;
    s.pool = p;
    kinds.push_back(s);
  }
  std::uint64_t id = 0;
  for (const SchedNode& kind : kinds) {
    for (int popper : EligibleWorkers(topology_, kind)) {
      for (int pusher = -1; pusher < n; ++pusher) {
        for (PushReason reason : kReasons) {
          SchedNode node = kind;
          node.task_id = ++id;
          bool held = false;
          auto push = [&](int from) {
            held = policy_->holds_for_pusher(node, PushInfo{reason, from});
            policy_->push(&node, PushInfo{reason, from});
          };
          if (pusher < 0) {
            push(-1);
          } else {
            workers_->on(pusher, push);
          }
          EXPECT_FALSE(held && pusher < 0) << "a push from outside held for its pusher";
          // The runtime asks only about woken tasks (policy.h): another held push would have
          // an idle worker woken only to pass it over, and nobody polling for it.
          EXPECT_FALSE(held && reason != PushReason::kWoken)
              << Describe(node) << " held for its pusher, but not woken";
          // Queued for the pool and not held: any other worker of the pool could pop it, so
          // none of them may be told there is no work for others (a lost wake-up).
          if (!held && node.affinity < 0) {
            for (int q : EligibleWorkers(topology_, node)) {
              workers_->on(q, [&](int w) {
                EXPECT_TRUE(policy_->has_work_for_others(w))
                    << Describe(node) << " is queued, but has_work_for_others(" << w
                    << ") is false";
              });
            }
          }
          SchedNode* got = nullptr;
          workers_->on(popper, [&](int w) { got = policy_->pop(w); });
          if (held && popper != pusher) {
            const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(1);
            while (got == nullptr && std::chrono::steady_clock::now() < limit) {
              workers_->on(popper, [&](int w) {
                EXPECT_TRUE(policy_->holds_back(w))
                    << Describe(node) << " held for worker " << pusher << " but holds_back("
                    << w << ") is false after an empty pop";
                std::this_thread::sleep_for(std::chrono::microseconds(10));
                got = policy_->pop(w);
              });
            }
          }
          ASSERT_EQ(got, &node) << Describe(node) << " pushed from "
                                << (pusher < 0 ? std::string("outside")
                                               : "worker " + std::to_string(pusher))
                                << " was not returned by the next pop of eligible worker "
                                << popper;
        }
      }
    }
  }
  ExpectEmptyEverywhere("after the one-at-a-time pushes");
}

// Many nodes of every kind pushed concurrently from outside threads and from the workers, while
// every worker pops: each node comes out exactly once, on a worker allowed to run it.
TEST_F(PolicyContract, ConcurrentPushAndPopLoseNothingAndKeepAffinityAndPools) {
  constexpr int kPerPusher = 4000;
  constexpr int kOutsidePushers = 2;
  const int n = topology_.num_workers();
  const int pushers = kOutsidePushers + n;
  const int total = pushers * kPerPusher;
  std::vector<SchedNode> nodes(total);
  for (int i = 0; i < total; ++i) {
    SchedNode& node = nodes[i];
    node.task_id = static_cast<std::uint64_t>(i);
    // A mix: a third bound to a worker, the rest free in one of the two pools.
    if (i % 3 == 0) {
      node.affinity = (i / 3) % n;
      node.pool = topology_.pool_of[node.affinity];
    } else {
      node.pool = (i % 3 == 1) ? Pool::kDefault : Pool::kInteractive;
    }
  }
  std::vector<std::atomic<int>> popped_by(total);
  for (auto& p : popped_by) p.store(-1);
  std::atomic<int> popped{0};
  std::atomic<int> duplicates{0};
  std::atomic<int> misplaced{0};
  std::atomic<bool> pushing_done{false};
  std::atomic<int> pushers_left{pushers};
  std::mutex failure_mu;
  std::string first_failure;

  auto note_failure = [&](const std::string& what) {
    std::lock_guard<std::mutex> lock(failure_mu);
    if (first_failure.empty()) first_failure = what;
  };
  auto take = [&](int w, SchedNode* got) {
    const auto i = static_cast<int>(got - nodes.data());
    ASSERT_TRUE(i >= 0 && i < total) << "worker " << w << " popped a node nobody pushed";
    int expected = -1;
    if (!popped_by[i].compare_exchange_strong(expected, w)) {
      duplicates.fetch_add(1);
      note_failure(Describe(*got) + " popped twice, by workers " + std::to_string(expected) +
                   " and " + std::to_string(w));
      return;
    }
    const std::vector<int> eligible = EligibleWorkers(topology_, *got);
    if (std::find(eligible.begin(), eligible.end(), w) == eligible.end()) {
      misplaced.fetch_add(1);
      note_failure(Describe(*got) + " popped by worker " + std::to_string(w) + " (pool " +
                   to_string(topology_.pool_of[w]) + ")");
    }
    popped.fetch_add(1);
  };
  auto push_range = [&](int pusher, int from_worker) {
    for (int k = 0; k < kPerPusher; ++k) {
      SchedNode* node = &nodes[pusher * kPerPusher + k];
      policy_->push(node, PushInfo{kReasons[k % 4], from_worker});
    }
    if (pushers_left.fetch_sub(1) == 1) pushing_done.store(true);
  };

  std::vector<std::thread> outside;
  for (int p = 0; p < kOutsidePushers; ++p) outside.emplace_back(push_range, p, -1);
  // Each worker pushes its share in slices between pops, then keeps popping until every node
  // is out, or until nothing has come out for a while after all pushes ended (a lost node).
  workers_->on_all(AllWorkers(), [&](int w) {
    const int pusher = kOutsidePushers + w;
    int pushed = 0;
    auto idle_since = std::chrono::steady_clock::now();
    while (popped.load() < total) {
      if (pushed < kPerPusher) {
        for (int k = 0; k < 16 && pushed < kPerPusher; ++k, ++pushed) {
          policy_->push(&nodes[pusher * kPerPusher + pushed],
                        PushInfo{kReasons[pushed % 4], w});
        }
        if (pushed == kPerPusher && pushers_left.fetch_sub(1) == 1) pushing_done.store(true);
      }
      if (SchedNode* got = policy_->pop(w)) {
        take(w, got);
        idle_since = std::chrono::steady_clock::now();
      } else if (pushing_done.load() &&
                 std::chrono::steady_clock::now() - idle_since > std::chrono::seconds(2)) {
        break;
      } else {
        std::this_thread::yield();
      }
    }
  });
  for (auto& t : outside) t.join();

  EXPECT_EQ(duplicates.load(), 0) << first_failure;
  EXPECT_EQ(misplaced.load(), 0) << first_failure;
  int lost = 0;
  std::string lost_example;
  for (int i = 0; i < total; ++i) {
    if (popped_by[i].load() < 0) {
      if (lost++ == 0) lost_example = Describe(nodes[i]);
    }
  }
  EXPECT_EQ(lost, 0) << lost << " of " << total << " pushed nodes never came out of pop() on any "
                     << "eligible worker, e.g. " << lost_example;
  if (lost == 0) ExpectEmptyEverywhere("after the concurrent run");
}

// Progress while pushes race with pops: one pusher pushes free nodes of the interactive pool
// while one of its workers pops. A pop that runs while no push is in flight anywhere, with some
// returned push's node not yet popped, must return a node, unless the policy holds a node for
// its pusher and says so (holds_back). (While a push is in flight a pop may miss nodes behind
// it -- an intrusive MPSC queue cannot hand out a node whose successor is half linked -- and
// that push's own wake-up covers them in the runtime.) A pop that comes back empty outside that
// window leaves a task runnable that no worker picks up: the runtime wakes an idle worker once
// per push, and that worker's pop is the one checked here. The pusher is a thread outside the
// workers, or the pool's other worker (which then only pushes); no one else pops, so every
// node is the popper's to find.
class RacingPushes : public PolicyContract {
 protected:
  void Run(bool pusher_is_worker, PushReason reason) {
#if defined(__SANITIZE_THREAD__)
    // Every atomic access is a call into TSan: the popper falls behind and the pusher's gaps
    // run to their limit. Fewer pushes keep it to seconds; the race still comes up thousands
    // of times.
    constexpr int kPushes = 10'000;
#else
    constexpr int kPushes = 100'000;
#endif
    const int popper = topology_.first(Pool::kInteractive);
    const int pusher_worker = popper + 1;
    ASSERT_EQ(topology_.pool_of[pusher_worker], Pool::kInteractive);
    std::vector<SchedNode> nodes(kPushes);
    for (int i = 0; i < kPushes; ++i) {
      nodes[i].task_id = static_cast<std::uint64_t>(i);
      nodes[i].pool = Pool::kInteractive;
    }
    // Counted before each push starts and after it returns: equal means none in flight.
    std::atomic<std::int64_t> started{0}, returned{0}, popped_so_far{0};
    std::atomic<bool> go{false};
    auto push_all = [&](int from) {
      while (!go.load()) {
      }
      for (int k = 0; k < kPushes; ++k) {
        const PushInfo info{reason, from};
        started.fetch_add(1);
        if (policy_->holds_for_pusher(nodes[k], info)) held_.store(true);
        policy_->push(&nodes[k], info);
        returned.fetch_add(1);
        // After every other push, a gap with no push in flight, for the pops the check
        // applies to: until the popper has caught up, or a short while if it does not (a spin,
        // not a yield: on a loaded machine each yield can cost a time slice). So the queue is
        // near empty, and the next push often lands while a pop takes the one before.
        if (k % 2 == 1) {
          for (int i = 0; i < 2000 && popped_so_far.load() < returned.load(); ++i) {
          }
        }
      }
    };
    std::int64_t popped = 0, checked = 0, owing = 0, owed_returned = 0, owed_popped = 0;
    auto pop_all = [&](int w) {
      go.store(true);
      const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      // A policy that lost nodes never lets `popped` reach kPushes: once every push has
      // returned, nothing coming out for two seconds ends the loop (as in the concurrent test
      // above), so that this test reports the loss itself instead of spinning into the suite's
      // watchdog (WEFT_TEST_TIMEOUT, 60 s by default), which names only a possible hang.
      auto last_popped = std::chrono::steady_clock::now();
      while (popped < kPushes && std::chrono::steady_clock::now() < limit) {
        if (returned.load() == kPushes &&
            std::chrono::steady_clock::now() - last_popped > std::chrono::seconds(2)) {
          break;
        }
        // returned, then started: equal means that when `started` was read no push was in
        // flight; `started` unchanged after the pop means none began during it.
        const std::int64_t before = returned.load();
        const std::int64_t started_before = started.load();
        SchedNode* got = policy_->pop(w);
        const bool quiet = started_before == before && started.load() == started_before;
        if (got != nullptr) {
          popped_so_far.store(++popped);
          last_popped = std::chrono::steady_clock::now();
        } else if (quiet && popped < before && !policy_->holds_back(w)) {
          if (owing++ == 0) {
            owed_returned = before;
            owed_popped = popped;
          }
        }
        if (quiet && popped <= before) ++checked;
      }
    };
    if (pusher_is_worker) {
      workers_->on_all({popper, pusher_worker}, [&](int w) {
        if (w == popper) {
          pop_all(w);
        } else {
          push_all(w);
        }
      });
    } else {
      std::thread outside(push_all, -1);
      workers_->on(popper, pop_all);
      outside.join();
    }
    EXPECT_EQ(popped, kPushes) << kPushes - popped << " of " << kPushes
                               << " pushed nodes never came out of pop(" << popper
                               << "), the one worker popping (nodes lost)";
    EXPECT_EQ(owing, 0) << "pop(" << popper << ") came back empty " << owing
                        << " times with no push in flight and nodes still due; the first time "
                        << owed_returned << " pushes had returned and only " << owed_popped
                        << " nodes had been popped";
    // Held nodes excuse empty pops; a policy that held every node leaves nothing checked.
    if (!held_.load()) {
      EXPECT_GT(checked, 0) << "no pop ran in a quiet moment: nothing checked";
    }
    ExpectEmptyEverywhere("after the racing pushes");
  }

 private:
  std::atomic<bool> held_{false};
};

TEST_F(RacingPushes, FromOutsideAPopAfterAReturnedPushFindsWork) {
  Run(/*pusher_is_worker=*/false, PushReason::kWoken);
}

TEST_F(RacingPushes, FromAnotherWorkerAPopAfterAReturnedPushFindsWork) {
  for (PushReason reason : {PushReason::kSpawned, PushReason::kWoken}) {
    SCOPED_TRACE(reason == PushReason::kSpawned ? "spawned" : "woken");
    Run(/*pusher_is_worker=*/true, reason);
    if (HasFailure()) return;
  }
}

// A node may be pushed again after it was popped (a task runs, yields, wakes...), each time
// with other reasons: every push is matched by exactly one pop.
TEST_F(PolicyContract, NodesComeBackAfterRepush) {
  SchedNode node;
  node.task_id = 1;
  for (int round = 0; round < 64; ++round) {
    const PushReason reason = kReasons[round % 4];
    const int from = round % 2 == 0 ? -1 : round % topology_.count(Pool::kDefault);
    auto push = [&](int w) { policy_->push(&node, PushInfo{reason, w}); };
    if (from < 0) {
      push(-1);
    } else {
      workers_->on(from, push);
    }
    const int popper = (round / 2) % topology_.count(Pool::kDefault);
    SchedNode* got = nullptr;
    workers_->on(popper, [&](int w) { got = policy_->pop(w); });
    ASSERT_EQ(got, &node) << "round " << round << ": the re-pushed node did not come back";
  }
  ExpectEmptyEverywhere("after the re-pushes");
}

}  // namespace
}  // namespace weft
