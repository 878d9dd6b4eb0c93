#include "weft/sched/trace.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>

#include "weft/sched/policy.h"
#include "weft/sched/runtime_core.h"

namespace weft::internal {
namespace {

const std::chrono::steady_clock::time_point& trace_origin() {
  static const std::chrono::steady_clock::time_point origin = std::chrono::steady_clock::now();
  return origin;
}

// Records a steal on the thief's own lane; policies reach it through weft::trace_steal.
void record_steal(const SchedNode* node, int victim, int /*thief*/) {
  Worker* w = current_worker();
  if (w == nullptr || w->trace == nullptr) return;  // a policy of a runtime that is not traced
  TraceEvent e;
  e.ts = trace_clock_ns();
  e.task = node->task_id;
  e.other = victim;
  e.kind = TraceEventKind::kSteal;
  w->trace->add(e);
}

// Microseconds with three decimals, exactly (Chrome's "ts" and "dur" unit).
void put_us(std::FILE* f, std::int64_t ns) {
  if (ns < 0) ns = 0;
  std::fprintf(f, "%" PRId64 ".%03" PRId64, ns / 1000, ns % 1000);
}

void put_event(std::FILE* f, const TraceEvent& e, int tid, int pid, bool* first) {
  std::fputs(*first ? "\n" : ",\n", f);
  *first = false;
  switch (e.kind) {
    case TraceEventKind::kRun:
      std::fprintf(f,
                   "{\"name\":\"task %" PRIu64 "\",\"cat\":\"run\",\"ph\":\"X\",\"ts\":", e.task);
      put_us(f, e.ts);
      std::fputs(",\"dur\":", f);
      put_us(f, e.dur);
      std::fprintf(f, ",\"pid\":%d,\"tid\":%d,\"args\":{\"task\":%" PRIu64 "}}", pid, tid, e.task);
      return;
    case TraceEventKind::kSpawn:
    case TraceEventKind::kWake:
      std::fprintf(f, "{\"name\":\"%s\",\"cat\":\"task\",\"ph\":\"i\",\"s\":\"t\",\"ts\":",
                   e.kind == TraceEventKind::kSpawn ? "spawn" : "wake");
      put_us(f, e.ts);
      std::fprintf(f, ",\"pid\":%d,\"tid\":%d,\"args\":{\"task\":%" PRIu64 "}}", pid, tid, e.task);
      return;
    case TraceEventKind::kPark:
      std::fputs("{\"name\":\"park\",\"cat\":\"task\",\"ph\":\"i\",\"s\":\"t\",\"ts\":", f);
      put_us(f, e.ts);
      // WaitKind names are fixed ASCII words: nothing to escape.
      std::fprintf(f,
                   ",\"pid\":%d,\"tid\":%d,\"args\":{\"task\":%" PRIu64
                   ",\"reason\":\"%s\",\"object\":\"%p\"}}",
                   pid, tid, e.task, to_string(e.wait), e.object);
      return;
    case TraceEventKind::kSteal:
      std::fputs("{\"name\":\"steal\",\"cat\":\"sched\",\"ph\":\"i\",\"s\":\"t\",\"ts\":", f);
      put_us(f, e.ts);
      std::fprintf(f, ",\"pid\":%d,\"tid\":%d,\"args\":{\"task\":%" PRIu64 ",\"victim\":%d}}", pid,
                   tid, e.task, e.other);
      return;
  }
}

// Policy names and paths are the only free text in the file.
std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::int64_t trace_clock_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                              trace_origin())
      .count();
}

TraceBuffer::TraceBuffer() : head_(new Chunk), tail_(head_) {}

TraceBuffer::~TraceBuffer() {
  for (Chunk* c = head_; c != nullptr;) {
    Chunk* next = c->next.load(std::memory_order_relaxed);
    delete c;
    c = next;
  }
}

void TraceBuffer::add(const TraceEvent& e) {
  int n = tail_->count.load(std::memory_order_relaxed);
  if (n == Chunk::kEvents) {
    Chunk* fresh = new Chunk;
    tail_->next.store(fresh, std::memory_order_release);
    tail_ = fresh;
    n = 0;
  }
  tail_->events[n] = e;
  tail_->count.store(n + 1, std::memory_order_release);
}

Tracer::Tracer(std::string path, int num_workers) : path_(std::move(path)) {
  // An unwritable path is refused now, rather than found out at shutdown with the run's trace
  // lost. (Created empty: a run that dies before shutdown leaves no stale trace behind.)
  if (std::FILE* f = std::fopen(path_.c_str(), "w")) {
    std::fclose(f);
  } else {
    throw std::system_error(errno, std::generic_category(),
                            "Runtime: cannot write the trace to " + path_);
  }
  trace_origin();  // fix the origin before the first event
  for (int i = 0; i < num_workers; ++i) workers_.push_back(std::make_unique<TraceBuffer>());
  steal_trace_hook.store(&record_steal, std::memory_order_relaxed);
}

void Tracer::add_outside(const TraceEvent& e) {
  std::lock_guard<std::mutex> lock(outside_mu_);
  outside_.add(e);
}

void Tracer::write(const RuntimeCore& rt) {
  std::FILE* f = std::fopen(path_.c_str(), "w");
  if (f == nullptr) {
    std::fprintf(stderr, "weft: cannot write the trace to %s: %s\n", path_.c_str(),
                 std::strerror(errno));
    return;
  }
  const int pid = static_cast<int>(getpid());
  const int n = static_cast<int>(workers_.size());
  std::fputs("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[", f);
  std::fprintf(f,
               "\n{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%d,\"args\":{\"name\":\"weft "
               "runtime (%s policy, %d workers)\"}}",
               pid, json_escape(std::string(rt.policy->name())).c_str(), n);
  for (int i = 0; i < n; ++i) {
    std::fprintf(f,
                 ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"args\":{"
                 "\"name\":\"worker %d (%s pool)\"}}",
                 pid, i, i, to_string(rt.topology.pool_of[i]));
  }
  std::fprintf(f,
               ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"args\":{"
               "\"name\":\"threads outside the runtime\"}}",
               pid, n);
  bool first = false;
  for (int i = 0; i < n; ++i) {
    workers_[i]->for_each([&](const TraceEvent& e) { put_event(f, e, i, pid, &first); });
  }
  {
    std::lock_guard<std::mutex> lock(outside_mu_);
    outside_.for_each([&](const TraceEvent& e) { put_event(f, e, n, pid, &first); });
  }
  std::fputs("\n]}\n", f);
  if (std::fclose(f) != 0) {
    std::fprintf(stderr, "weft: writing the trace to %s failed: %s\n", path_.c_str(),
                 std::strerror(errno));
  }
}

std::string resolve_trace_path(const std::string& option) {
  if (!option.empty()) return option;
  const char* env = std::getenv("WEFT_TRACE");
  if (env == nullptr || *env == '\0') return "";
  static std::atomic<int> traced_runtimes{0};
  const int n = traced_runtimes.fetch_add(1, std::memory_order_relaxed);
  std::string path = env;
  if (n == 0) return path;
  // Later runtimes of the process: "trace.json" -> "trace.2.json".
  const std::size_t slash = path.rfind('/');
  const std::size_t dot = path.rfind('.');
  const std::size_t at =
      (dot == std::string::npos || (slash != std::string::npos && dot < slash)) ? path.size() : dot;
  return path.substr(0, at) + "." + std::to_string(n + 1) + path.substr(at);
}

void trace_event(RuntimeCore* rt, const TraceEvent& e) {
  Worker* w = current_worker();
  if (w != nullptr && w->rt == rt) {
    w->trace->add(e);
  } else {
    rt->tracer->add_outside(e);
  }
}

void trace_leave(Worker* w, TaskCore* cur, bool park) {
  const std::int64_t now = trace_clock_ns();
  TraceEvent slice;
  slice.ts = w->trace->slice_start;
  slice.dur = now - w->trace->slice_start;
  slice.task = cur->id();
  slice.kind = TraceEventKind::kRun;
  w->trace->add(slice);
  w->trace->slice_start = now;  // the next task's slice (from the worker loop: run_on_worker)
  if (park) {
    TraceEvent e;
    e.ts = now;
    e.task = cur->id();
    e.kind = TraceEventKind::kPark;
    e.wait = cur->wait_kind.load(std::memory_order_relaxed);
    e.object = cur->wait_object.load(std::memory_order_relaxed);
    w->trace->add(e);
  }
}

void trace_spawn(RuntimeCore* rt, const TaskCore* t) {
  TraceEvent e;
  e.ts = trace_clock_ns();
  e.task = t->id();
  e.kind = TraceEventKind::kSpawn;
  trace_event(rt, e);
}

void trace_wake(RuntimeCore* rt, std::uint64_t task_id) {
  TraceEvent e;
  e.ts = trace_clock_ns();
  e.task = task_id;
  e.kind = TraceEventKind::kWake;
  trace_event(rt, e);
}

}  // namespace weft::internal
