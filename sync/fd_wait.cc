// The poller behind fd and process waits: one epoll instance and one thread for the process.
//
// Why a thread of its own: the runtime's workers have no epoll hook, and sync/ may use only the
// scheduling interface; a poller thread that wake()s parked waiters needs nothing else.
//
// Each wait registers a private duplicate of the descriptor (dup), one-shot, so that any
// number of waits on one descriptor are independent epoll entries. The epoll entry carries a
// registration id, never a pointer: the waiter's registration lives on its stack, and an event
// that epoll_wait returned just before the waiter timed out and left must find nothing. Ids map
// to registrations in a table under one lock; whoever removes an id from it (the poller on an
// event, the waiter on a timeout) owns the outcome. The poller wakes under that lock, so a
// timed-out waiter that finds its id gone knows, once it has the lock, whether a wake is owed
// (weft/sched/park.h, timed waits). The poller may wake a waiter that has not parked yet: the
// runtime reports such an early wake as kWoken, never as a timeout. Nor does a woken waiter
// wait for the poller to leave wake(): its runtime outlives every wake from a plain thread.
#include "weft/sync/fd_wait.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "weft/sched/park.h"
#include "weft/sched/spin_lock.h"
#include "weft/sync/deadline.h"
#include "weft/sync/wait_queue.h"

namespace weft {
namespace {

struct Registration {
  explicit Registration(internal::Waiter* w) : waiter(w) {}
  internal::Waiter* const waiter;
  // Written by the poller under its lock before it wakes the waiter.
  std::uint32_t revents = 0;
  bool delivered = false;
};

class Poller {
 public:
  // Never destroyed: tasks may wait on descriptors while static destructors run.
  static Poller& instance() {
    static Poller* poller = new Poller();
    return *poller;
  }

  int epoll_fd() const { return epfd_; }

  std::uint64_t add(Registration* r) {
    lock_.lock();
    const std::uint64_t id = ++next_id_;
    try {
      registrations_.emplace(id, r);  // may grow the table: std::bad_alloc
    } catch (...) {
      lock_.unlock();
      throw;
    }
    lock_.unlock();
    return id;
  }

  // Whether the poller has not taken the registration yet (it takes it before its wake-up).
  bool registered(std::uint64_t id) {
    lock_.lock();
    const bool there = registrations_.contains(id);
    lock_.unlock();
    return there;
  }

  // True if the registration was still there (the poller has not and will not touch it).
  bool remove(std::uint64_t id) {
    lock_.lock();
    const bool removed = registrations_.erase(id) > 0;
    lock_.unlock();
    return removed;
  }

 private:
  Poller() {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) {
      throw std::system_error(errno, std::generic_category(),
                              "wait on a file descriptor: cannot create the epoll instance");
    }
    std::thread([this] { run(); }).detach();
  }

  void run() {
    // Its wake-ups end descriptor and process waits; one that races with its waiter's
    // timeout or registration can find the waiter's wait kind already reset, and must not
    // make this thread a "plain thread that may wake someone" that never sleeps in weft:
    // deadlock detection would never report again.
    internal::mark_service_thread();
    epoll_event events[64];
    for (;;) {
      const int n = epoll_wait(epfd_, events, 64, -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        std::perror("weft: the fd poller's epoll_wait failed");
        std::abort();
      }
      lock_.lock();
      for (int i = 0; i < n; ++i) {
        auto it = registrations_.find(events[i].data.u64);
        if (it == registrations_.end()) continue;  // its waiter timed out and left
        Registration* r = it->second;
        registrations_.erase(it);
        // All before the wake: a woken waiter may return at once, taking `r` (on its stack)
        // along. A waiter that timed out instead waits for lock_ before it reads anything. A
        // waiter that a schedule() already put back in the run queue takes the event when it
        // runs (wait_fd), and is no error here: this thread must not throw.
        r->revents = events[i].events;
        r->delivered = true;
        if (try_wake(r->waiter) == WakeResult::kTimedOut) r->delivered = false;
      }
      lock_.unlock();
    }
  }

  int epfd_ = -1;
  SpinLock lock_;
  std::uint64_t next_id_ = 0;                                        // guarded by lock_
  absl::flat_hash_map<std::uint64_t, Registration*> registrations_;  // guarded by lock_
};

class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() { ::close(fd_); }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

 private:
  int fd_;
};

[[noreturn]] void throw_errno(int err, const std::string& message) {
  throw std::system_error(err, std::generic_category(), message);
}

// A readiness check without waiting: the answer if fd is ready now, else nullopt.
std::optional<FdEvent> ready_now(int fd, FdInterest interest, const char* what) {
  pollfd p{};
  p.fd = fd;
  p.events = static_cast<short>((interest.readable ? POLLIN | POLLRDHUP : 0) |
                                (interest.writable ? POLLOUT : 0));
  int n;
  do {
    n = ::poll(&p, 1, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) throw_errno(errno, absl::StrCat(what, ": cannot poll fd ", fd));
  if (p.revents & POLLNVAL) {
    throw_errno(EBADF, absl::StrCat(what, ": fd ", fd, " is not an open file descriptor"));
  }
  if (n == 0) return std::nullopt;
  FdEvent e;
  e.readable = (p.revents & POLLIN) != 0;
  e.writable = (p.revents & POLLOUT) != 0;
  e.disconnect = (p.revents & (POLLHUP | POLLERR | POLLRDHUP)) != 0;
  return e;
}

FdEvent event_of(std::uint32_t revents) {
  FdEvent e;
  e.readable = (revents & EPOLLIN) != 0;
  e.writable = (revents & EPOLLOUT) != 0;
  e.disconnect = (revents & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) != 0;
  return e;
}

// Waits for `interest` on fd until the deadline (nullptr: none); `kind` is what the waiter is
// shown waiting on (kFd, or kProcess for a pidfd).
FdEvent wait_fd(int fd, FdInterest interest, const Clock::time_point* deadline,
                const char* what, WaitKind kind = WaitKind::kFd) {
  if (!interest.readable && !interest.writable) {
    throw std::invalid_argument(
        absl::StrCat(what, ": ask for readable, writable or both (neither was requested)"));
  }
  if (fd < 0) throw_errno(EBADF, absl::StrCat(what, ": fd ", fd, " is not a file descriptor"));
  if (std::optional<FdEvent> now = ready_now(fd, interest, what)) return *now;
  if (deadline != nullptr && Clock::now() >= *deadline) {
    FdEvent late;
    late.timedout = true;
    return late;
  }
  const int watched = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (watched < 0) {
    const int err = errno;
    throw_errno(err, err == EBADF ? absl::StrCat(what, ": fd ", fd, " is not an open file descriptor")
                                  : absl::StrCat(what, ": cannot duplicate fd ", fd, " to watch it"));
  }
  FdCloser close_watched(watched);
  Poller& poller = Poller::instance();
  Registration reg(current_waiter());
  const std::uint64_t id = poller.add(&reg);
  epoll_event ev{};
  ev.events = EPOLLONESHOT | (interest.readable ? EPOLLIN | EPOLLRDHUP : 0u) |
              (interest.writable ? EPOLLOUT : 0u);
  ev.data.u64 = id;
  if (epoll_ctl(poller.epoll_fd(), EPOLL_CTL_ADD, watched, &ev) != 0) {
    const int err = errno;
    poller.remove(id);
    if (err == EPERM) {
      // epoll refuses regular files and directories; poll(2) reports them always ready.
      FdEvent always;
      always.readable = interest.readable;
      always.writable = interest.writable;
      return always;
    }
    throw_errno(err, absl::StrCat(what, ": cannot watch fd ", fd));
  }
  FdEvent result;
  bool timed_out = false;
  try {
    // A schedule() of this running task ends a park early (its mark is for wait()): the
    // registration, on this stack, must not outlive the wait, so wait on for the poller. If the
    // poller took the registration just after such an early end, its wake-up found the task
    // running and is left pending: taken here, or it would end the task's next wait.
    ParkResult parked = ParkResult::kWoken;
    if (deadline == nullptr) {
      park(kind, &reg);
    } else {
      parked = park_until(*deadline, kind, &reg);
    }
    while (parked == ParkResult::kWoken && poller.registered(id)) {
      if (deadline == nullptr) {
        park(kind, &reg);
      } else {
        parked = park_until(*deadline, kind, &reg);
      }
    }
    if (parked == ParkResult::kWoken) consume_pending_wake();
    if (parked == ParkResult::kTimedOut) {
      if (poller.remove(id)) {
        timed_out = true;
      } else if (reg.delivered) {
        // The poller's wake landed after park_until returned: it is owed to us, take it.
        internal::consume_owed_wake(kind, &reg);
      }
      // Otherwise the poller saw the event but lost the race to the timer: report the event.
    }
  } catch (...) {
    // An error that a schedule(t, err; error=true) of this running task left ends the wait:
    // the registration, on this stack, leaves the poller first (one the poller already took
    // it is done with once remove() has had the poller's lock). If the poller took it, its
    // wake-up found this task running and is left pending: taken here, or it would end the
    // task's next wait.
    if (!poller.remove(id) && reg.delivered) consume_pending_wake();
    epoll_ctl(poller.epoll_fd(), EPOLL_CTL_DEL, watched, nullptr);
    throw;
  }
  if (timed_out) {
    result.timedout = true;
  } else {
    result = event_of(reg.revents);
  }
  epoll_ctl(poller.epoll_fd(), EPOLL_CTL_DEL, watched, nullptr);
  // The value of a schedule() that ended a park above early is dropped, as sleep drops it:
  // left in place, a later wait() or wait(c) woken without a value would return it.
  reg.waiter->value.reset();
  return result;
}

ProcessStatus status_of(const siginfo_t& info) {
  ProcessStatus s;
  if (info.si_code == CLD_EXITED) {
    s.exit_code = info.si_status;
  } else {
    s.term_signal = info.si_status;
  }
  return s;
}

void check_pid(pid_t pid, const char* op) {
  if (pid <= 0) {
    throw std::invalid_argument(absl::StrCat(op, ": pid must be a positive process id, not ", pid));
  }
}

}  // namespace

// What the copies of one Process share: its status, once one of them has reaped the child.
// Reaping and recording happen together under `mu`, so a wait that finds no status recorded
// knows the child is not reaped yet (and its pid not free to be reused). A std::mutex, not an
// absl::Mutex: the system's Abseil is not built for ThreadSanitizer, which would not see it.
struct internal::ProcessRecord {
  std::mutex mu;
  std::optional<ProcessStatus> status;  // under mu

  std::optional<ProcessStatus> recorded() {
    std::lock_guard<std::mutex> lock(mu);
    return status;
  }
};

namespace {

// Waits for child `pid` to exit and reaps it; nullopt if the deadline came first. With a
// record (a Process's), a status another wait recorded is returned instead, and the one this
// wait reaps is recorded.
std::optional<ProcessStatus> wait_child(pid_t pid, const Clock::time_point* deadline,
                                        internal::ProcessRecord* record = nullptr) {
  check_pid(pid, "wait_process");
  // The status a copy's wait recorded, if any: each look below is for one that reaped since.
  auto recorded = [record]() -> std::optional<ProcessStatus> {
    return record != nullptr ? record->recorded() : std::nullopt;
  };
  if (std::optional<ProcessStatus> s = recorded()) return s;
  // Through syscall(): glibc 2.36's <sys/pidfd.h> declares pidfd_open without C linkage.
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) {
    const int err = errno;
    // Reaped by a copy's wait since we looked: its status is recorded.
    if (std::optional<ProcessStatus> s = recorded()) return s;
    throw_errno(err, err == ESRCH ? absl::StrCat("wait_process: there is no process ", pid)
                                  : absl::StrCat("wait_process: cannot watch process ", pid));
  }
  FdCloser close_pidfd(pidfd);
  // Recorded now: the pidfd may name a process that took the reaped child's pid.
  if (std::optional<ProcessStatus> s = recorded()) return s;
  siginfo_t info{};
  // Not reaping yet (WNOWAIT), only checking that it is our child and whether it has exited.
  if (waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED | WNOHANG | WNOWAIT) != 0) {
    const int err = errno;
    if (std::optional<ProcessStatus> s = recorded()) return s;
    throw_errno(err, err == ECHILD
                         ? absl::StrCat("wait_process: process ", pid,
                                        " is not a child of this process (or was already reaped)")
                         : absl::StrCat("wait_process: cannot wait for process ", pid));
  }
  if (info.si_pid == 0) {
    // Still running: a pidfd becomes readable when its process exits.
    FdInterest readable;
    readable.readable = true;
    if (wait_fd(pidfd, readable, deadline, "wait_process", WaitKind::kProcess).timedout) {
      return std::nullopt;
    }
  }
  std::unique_lock<std::mutex> recording;
  if (record != nullptr) {
    recording = std::unique_lock<std::mutex>(record->mu);  // only while reaping an exited child
    if (record->status.has_value()) return record->status;
  }
  info = siginfo_t{};
  while (waitid(P_PIDFD, static_cast<id_t>(pidfd), &info, WEXITED) != 0) {
    if (errno == EINTR) continue;
    throw_errno(errno, absl::StrCat("wait_process: cannot reap process ", pid,
                                    " (did something else reap it?)"));
  }
  const ProcessStatus status = status_of(info);
  if (record != nullptr) record->status = status;
  return status;
}

}  // namespace

Process::Process(pid_t process_id)
    : pid_(process_id), record_(std::make_shared<internal::ProcessRecord>()) {
  check_pid(process_id, "Process");
}

std::optional<ProcessStatus> Process::status() const { return record_->recorded(); }

std::string to_string(const FdEvent& event) {
  if (event.timedout) return "FdEvent(timedout)";
  std::string s = "FdEvent(";
  const char* sep = "";
  for (auto [set, name] : {std::pair{event.readable, "readable"}, std::pair{event.writable, "writable"},
                           std::pair{event.disconnect, "disconnect"}}) {
    if (set) {
      absl::StrAppend(&s, sep, name);
      sep = ", ";
    }
  }
  return s + ")";
}

FdEvent poll_fd(int fd, double timeout_s, FdInterest interest) {
  if (std::isnan(timeout_s)) throw std::invalid_argument("poll_fd: the timeout is NaN");
  if (timeout_s < 0) return wait_fd(fd, interest, nullptr, "poll_fd");
  const Clock::time_point deadline = internal::deadline_after(timeout_s, "poll_fd");
  return wait_fd(fd, interest, &deadline, "poll_fd");
}

FdEvent wait(RawFD fd, FdInterest interest) { return wait_fd(fd.fd, interest, nullptr, "wait(RawFD)"); }

ProcessStatus wait(const Process& process) {
  return *wait_child(process.pid_, nullptr, process.record_.get());
}

std::vector<ProcessStatus> wait(const ProcessChain& chain) {
  std::vector<ProcessStatus> statuses;
  statuses.reserve(chain.processes.size());
  for (const Process& p : chain.processes) statuses.push_back(wait(p));
  return statuses;
}

ProcessStatus wait_process(pid_t pid) { return *wait_child(pid, nullptr); }

std::optional<ProcessStatus> wait_process(pid_t pid, double timeout_s) {
  if (std::isnan(timeout_s)) throw std::invalid_argument("wait_process: the timeout is NaN");
  if (timeout_s < 0) return wait_child(pid, nullptr);
  const Clock::time_point deadline = internal::deadline_after(timeout_s, "wait_process");
  return wait_child(pid, &deadline);
}

}  // namespace weft
