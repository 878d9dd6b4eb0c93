// Waiting on file descriptors and child processes without blocking a worker thread: the
// FileWatching side of Julia's wait(x) (RawFD: poll_fd, wait(fd; readable, writable)) and
// wait(p::Process).
//
// A task that waits for a descriptor parks; a process-wide poller thread (epoll, started on first
// use) wakes it when the descriptor is ready. A plain thread blocks until then. Each wait is
// independent: several tasks may wait on the same descriptor (for the same or different events)
// at once. Readiness is level-triggered, as poll(2): a descriptor that is already ready returns
// at once. Regular files are always ready (as poll(2) reports them).
//
// Child processes are watched through a pidfd (pidfd_open): a wait parks until the child exits,
// then reaps it and returns how it ended. A Process keeps that status, as Julia's keeps its
// exitcode: every wait(p), on p or a copy, at once or later, returns it. wait_process(pid) is
// the bare pid's wait: of several for one child, the first to reap it returns the status and
// the others throw std::system_error (not a child, or already reaped).
//
// Timeouts: a timeout racing with readiness has exactly one outcome: events, or timedout.
// Errors: a descriptor that is not open, or a pid that is not a child of this process, throws
// std::system_error naming it; asking for neither readable nor writable, or a NaN timeout,
// throws std::invalid_argument.
// Thread safety: every function may be called from any task or plain thread.
#ifndef WEFT_SYNC_FD_WAIT_H_
#define WEFT_SYNC_FD_WAIT_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace weft {

// Which readiness to wait for (Julia's readable= / writable= keywords); at least one.
struct FdInterest {
  bool readable = false;
  bool writable = false;
};

// Julia's FileWatching.FDEvent.
struct FdEvent {
  bool readable = false;
  bool writable = false;
  bool disconnect = false;  // hang-up or error on the descriptor (e.g. the pipe's other end closed)
  bool timedout = false;
};
std::string to_string(const FdEvent& event);

// Julia's RawFD: a file descriptor to wait on with wait().
struct RawFD {
  explicit RawFD(int descriptor) : fd(descriptor) {}
  int fd;
};

// poll_fd(fd, timeout_s; readable, writable): waits until fd is ready for one of the requested
// events, or timeout_s seconds pass (timedout set). A negative timeout_s (Julia's default -1)
// waits without a deadline.
FdEvent poll_fd(int fd, double timeout_s, FdInterest interest);

// wait(fd::RawFD; readable, writable): poll_fd without a deadline.
FdEvent wait(RawFD fd, FdInterest interest);

// How a child process ended.
struct ProcessStatus {
  int exit_code = 0;    // valid when exited()
  int term_signal = 0;  // the signal that killed it, or 0 if it exited
  bool exited() const { return term_signal == 0; }
  bool success() const { return exited() && exit_code == 0; }
};

namespace internal {
struct ProcessRecord;  // what copies of one Process share (fd_wait.cc)
}  // namespace internal

// Julia's Process, as far as waiting goes: a child process of this one, by pid. A handle: copies
// share what a wait learns, so the child is reaped once and its status kept for every wait.
// Throws std::invalid_argument for a pid that is not positive.
class Process {
 public:
  explicit Process(pid_t process_id);
  // Copies share the record. Declared so that a move copies too: a moved-from Process (pushed
  // into a ProcessChain, say) still names its child and its record, as Julia's object would.
  Process(const Process&) = default;
  Process& operator=(const Process&) = default;
  pid_t pid() const { return pid_; }
  // Julia's p.exitcode (and termsignal): how the child ended, once a wait on this Process or a
  // copy has reaped it; nullopt before.
  std::optional<ProcessStatus> status() const;

 private:
  friend ProcessStatus wait(const Process& process);
  pid_t pid_;
  std::shared_ptr<internal::ProcessRecord> record_;
};

// wait(p::Process): parks until the child exits, reaps it, and returns its status; once it is
// reaped, returns that status at once, from any copy of p.
ProcessStatus wait(const Process& process);

// Julia's ProcessChain, the processes of a pipeline: wait(chain) waits for every one, in order,
// and returns their statuses (it raises the first error a wait raises).
struct ProcessChain {
  std::vector<Process> processes;
};
std::vector<ProcessStatus> wait(const ProcessChain& chain);

ProcessStatus wait_process(pid_t pid);
// As wait_process, giving up after timeout_s seconds (nullopt; the child is not reaped then).
// A negative timeout_s waits without a deadline, as poll_fd's does; NaN is invalid_argument.
std::optional<ProcessStatus> wait_process(pid_t pid, double timeout_s);

}  // namespace weft

#endif  // WEFT_SYNC_FD_WAIT_H_
