// old_kernel [--no-membarrier] [--no-guard-advice] COMMAND [ARGS...]: runs COMMAND as on a
// kernel without the named features, so that tests reach the code weft runs there instead
// (//tools:old_kernel.bzl). Linux, x86-64 and AArch64.
//
//   --no-membarrier    membarrier(2) fails with ENOSYS (kernels before 4.14, some sandboxes):
//                      asymmetric fences become full fences on both sides and no lock is biased
//                      (sched/asymmetric_fence.h).
//   --no-guard-advice  madvise(MADV_GUARD_INSTALL) fails with EINVAL (kernels before 6.13, such
//                      as Debian 12's 6.1): stack guards fall back to mprotect (task/stack.h).
//
// A seccomp filter does it: inherited across exec and by every thread, and it cannot be undone.
// Exits 1 if the filter cannot be installed or does not take, 2 on bad usage, 127 if COMMAND
// cannot be run.
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <vector>

#if defined(__x86_64__)
constexpr unsigned kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr unsigned kArch = AUDIT_ARCH_AARCH64;
#else
#error "old_kernel: unsupported CPU"
#endif

constexpr unsigned kMadvGuardInstall = 102;  // the kernel's ABI; not in glibc 2.36's headers

int main(int argc, char** argv) {
  bool no_membarrier = false, no_guard_advice = false;
  int first = 1;
  for (; first < argc && std::strncmp(argv[first], "--", 2) == 0; ++first) {
    if (std::strcmp(argv[first], "--no-membarrier") == 0) {
      no_membarrier = true;
    } else if (std::strcmp(argv[first], "--no-guard-advice") == 0) {
      no_guard_advice = true;
    } else {
      std::fprintf(stderr, "old_kernel: unknown option %s\n", argv[first]);
      return 2;
    }
  }
  if (first == argc || !(no_membarrier || no_guard_advice)) {
    std::fprintf(stderr,
                 "usage: old_kernel [--no-membarrier] [--no-guard-advice] COMMAND [ARGS...]\n");
    return 2;
  }
  std::vector<sock_filter> filter = {
      // A system call of another ABI (x32, say) is numbered differently: leave it alone.
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kArch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
  };
  if (no_membarrier) {
    filter.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_membarrier, 0, 1));
    filter.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS));
  }
  if (no_guard_advice) {
    // madvise's advice is its third argument; the low 32 bits are all it has.
    filter.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_madvise, 0, 3));
    filter.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[2])));
    filter.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kMadvGuardInstall, 0, 1));
    filter.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL));
  }
  filter.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  sock_fprog program = {static_cast<unsigned short>(filter.size()), filter.data()};
  // Without NO_NEW_PRIVS an unprivileged process may not install a filter.
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
      prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
    std::perror("old_kernel: installing the seccomp filter");
    return 1;
  }
  if (no_membarrier &&
      (syscall(__NR_membarrier, 0 /* MEMBARRIER_CMD_QUERY */, 0, 0) != -1 || errno != ENOSYS)) {
    std::fprintf(stderr, "old_kernel: membarrier still answers under the filter\n");
    return 1;
  }
  if (no_guard_advice) {
    const long page = sysconf(_SC_PAGESIZE);
    void* p = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    const bool refused = p != MAP_FAILED && madvise(p, page, kMadvGuardInstall) != 0 &&
                         errno == EINVAL;
    if (p != MAP_FAILED) munmap(p, page);
    if (!refused) {
      std::fprintf(stderr, "old_kernel: MADV_GUARD_INSTALL still answers under the filter\n");
      return 1;
    }
  }
  execvp(argv[first], argv + first);
  std::perror("old_kernel: running the command");
  return 127;
}
