// Tracing (RuntimeOptions::trace_path, WEFT_TRACE): a small run's trace file is well-formed
// JSON in Chrome's trace event format and holds the events it should: spawns, run slices per
// worker, parks with their reason, wakes.
#include <unistd.h>

#include <any>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <tuple>
#include <utility>

#include "gtest/gtest.h"
#include "tests/mini_json.h"
#include "tests/test_runtime.h"
#include "weft/sched/runtime.h"
#include "weft/sched/scheduling.h"

namespace weft {
namespace {

using testing::Json;
using testing::JsonParser;
using testing::RuntimeTest;
class Trace : public RuntimeTest {};

struct Ids {
  std::uint64_t root = 0;
  std::uint64_t child = 0;
  std::uint64_t waiter = 0;
};

// A root task that spawns a child parked in wait() and a task waiting for the child, parks
// waiting for that task while a third one wakes the child with schedule(), then sleeps a little.
Ids traced_run(int workers, const std::string& path) {
  RuntimeOptions options;
  options.default_threads = workers;
  options.interactive_threads = 0;
  options.trace_path = path;
  Runtime rt(std::move(options));
  return rt.run([] {
    auto child = spawn([] { return std::any_cast<int>(wait()); });
    auto waiter = spawn([child] { return fetch(child) + 1; });
    while (child.state() != TaskState::kWaiting || waiter.state() != TaskState::kWaiting) {
      yield();
    }
    // Wakes the child only once this task is parked in fetch below.
    auto kicker = spawn([root = current_task(), child] {
      while (root.state() != TaskState::kWaiting) yield();
      schedule(child, 6);
    });
    EXPECT_EQ(fetch(waiter), 7);
    wait(kicker);
    sleep(0.002);
    return Ids{current_task().id(), child.id(), waiter.id()};
  });
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

double number_of(const Json& e, const std::string& key) {
  const Json* v = e.get(key);
  return v != nullptr && v->type == Json::Type::kNumber ? v->number : -1;
}

std::string string_of(const Json& e, const std::string& key) {
  const Json* v = e.get(key);
  return v != nullptr && v->type == Json::Type::kString ? v->string : "";
}

std::uint64_t task_of(const Json& e) {
  const Json* args = e.get("args");
  return args == nullptr ? 0 : static_cast<std::uint64_t>(number_of(*args, "task"));
}

// A trace that could not be written is refused when the runtime starts, not found out at its
// shutdown, with the run's events lost.
TEST(TraceBadInput, AnUnwritablePathIsRefusedAtStart) {
  RuntimeOptions options;
  options.default_threads = 1;
  options.interactive_threads = 0;
  options.trace_path = "/nonexistent-dir/trace.json";
  try {
    Runtime rt(std::move(options));
    ADD_FAILURE() << "an unwritable trace path was accepted";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/trace.json"), std::string::npos)
        << e.what();
  }
}

TEST_P(Trace, ASmallRunWritesAWellFormedChromeTrace) {
  const std::string path = ::testing::TempDir() + "/weft_trace_test_" + std::to_string(getpid()) +
                           "_" + std::to_string(GetParam()) + ".json";
  const Ids ids = traced_run(GetParam(), path);  // the runtime wrote the file as it shut down

  const std::string text = read_file(path);
  ASSERT_FALSE(text.empty()) << path;
  Json doc;
  ASSERT_NO_THROW(doc = JsonParser::parse(text)) << text.substr(0, 2000);
  const Json* events = doc.get("traceEvents");
  ASSERT_NE(events, nullptr);
  ASSERT_EQ(events->type, Json::Type::kArray);

  std::set<std::uint64_t> spawned, ran, woken;
  std::set<std::string> park_reasons_child, park_reasons_waiter, park_reasons_root;
  std::set<int> worker_lanes;
  for (const Json& e : events->array) {
    ASSERT_EQ(e.type, Json::Type::kObject);
    const std::string ph = string_of(e, "ph");
    const std::string name = string_of(e, "name");
    ASSERT_FALSE(ph.empty());
    ASSERT_FALSE(name.empty());
    ASSERT_GE(number_of(e, "pid"), 0);
    if (ph == "M") {
      if (name == "thread_name") worker_lanes.insert(static_cast<int>(number_of(e, "tid")));
      continue;
    }
    ASSERT_GE(number_of(e, "ts"), 0) << name;
    const int tid = static_cast<int>(number_of(e, "tid"));
    ASSERT_GE(tid, 0);
    ASSERT_LE(tid, GetParam());  // workers 0..n-1, then the lane of outside threads
    const std::uint64_t task = task_of(e);
    if (ph == "X") {
      EXPECT_EQ(name, "task " + std::to_string(task));
      EXPECT_GE(number_of(e, "dur"), 0);
      EXPECT_LT(tid, GetParam()) << "a run slice outside the workers";
      ran.insert(task);
    } else if (ph == "i" && name == "spawn") {
      spawned.insert(task);
    } else if (ph == "i" && name == "wake") {
      woken.insert(task);
    } else if (ph == "i" && name == "park") {
      const std::string reason = string_of(*e.get("args"), "reason");
      if (task == ids.child) park_reasons_child.insert(reason);
      if (task == ids.waiter) park_reasons_waiter.insert(reason);
      if (task == ids.root) park_reasons_root.insert(reason);
    }
  }
  for (std::uint64_t id : {ids.root, ids.child, ids.waiter}) {
    EXPECT_EQ(spawned.count(id), 1u) << "spawn of task " << id;
    EXPECT_EQ(ran.count(id), 1u) << "run slice of task " << id;
    EXPECT_EQ(woken.count(id), 1u) << "wake of task " << id;
  }
  EXPECT_EQ(park_reasons_child.count("wait()"), 1u);
  EXPECT_EQ(park_reasons_waiter.count("task"), 1u);
  EXPECT_EQ(park_reasons_root.count("task"), 1u);
  EXPECT_EQ(park_reasons_root.count("sleep"), 1u);
  for (int w = 0; w <= GetParam(); ++w) EXPECT_EQ(worker_lanes.count(w), 1u) << "lane " << w;
  std::remove(path.c_str());
}

WEFT_INSTANTIATE_WORKER_COUNTS(Trace);

}  // namespace
}  // namespace weft
