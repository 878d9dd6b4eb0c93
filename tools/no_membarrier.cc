// no_membarrier COMMAND [ARGS...]: runs COMMAND with the membarrier(2) system call failing
// (ENOSYS), as on kernels before 4.14 or in sandboxes that do not offer it. weft then falls back
// to full fences on both sides of its asymmetric fences and never biases a lock
// (sched/asymmetric_fence.h): code that runs nowhere else on a recent kernel, which the
// tests //tests:*_no_membarrier run through this. Linux, x86-64 and AArch64.
//
// A seccomp filter does it: inherited across exec and by every thread, and it cannot be undone.
// Exits 1 if the filter cannot be installed or does not take, 127 if COMMAND cannot be run.
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>

#if defined(__x86_64__)
constexpr unsigned kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr unsigned kArch = AUDIT_ARCH_AARCH64;
#else
#error "no_membarrier: unsupported CPU"
#endif

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: no_membarrier COMMAND [ARGS...]\n");
    return 2;
  }
  sock_filter filter[] = {
      // A system call of another ABI (x32, say) is numbered differently: leave it alone.
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kArch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_membarrier, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program = {static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
  // Without NO_NEW_PRIVS an unprivileged process may not install a filter.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
      prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
    std::perror("no_membarrier: installing the seccomp filter");
    return 1;
  }
  if (syscall(__NR_membarrier, 0 /* MEMBARRIER_CMD_QUERY */, 0, 0) != -1 || errno != ENOSYS) {
    std::fprintf(stderr, "no_membarrier: membarrier still answers under the filter\n");
    return 1;
  }
  execvp(argv[1], argv + 1);
  std::perror("no_membarrier: running the command");
  return 127;
}
