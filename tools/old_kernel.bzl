"""old_kernel_tests(): tests run once more as on a kernel without some feature.

On the kernels that run weft's tests, some of its code never runs: what it does where a feature is
missing. Each test named here also runs under //tools:old_kernel, which takes the feature away
with a seccomp filter, and with an environment variable set that tells the test which fallback
must be in force (so that it can check):

  without = "no_membarrier":   membarrier(2) fails (before Linux 4.14, some sandboxes): every
      asymmetric fence is a full fence on both sides, no lock is biased (sched/asymmetric_fence.h).
      WEFT_TEST_EXPECT_NO_MEMBARRIER=1.
  without = "no_guard_advice": MADV_GUARD_INSTALL fails (before Linux 6.13, Debian 12's 6.1):
      stack guards are mprotect'd pages, two mappings a stack (task/stack.h).
      WEFT_TEST_EXPECT_MPROTECT_GUARDS=1.

Plain configuration only (plain_only): under TSan, which does not model fences, the full fences'
orderings would look like races.
"""

_WITHOUT = {
    "no_membarrier": ("--no-membarrier", "WEFT_TEST_EXPECT_NO_MEMBARRIER"),
    "no_guard_advice": ("--no-guard-advice", "WEFT_TEST_EXPECT_MPROTECT_GUARDS"),
}

def old_kernel_tests(tests, without, args = [], **kwargs):
    """For each test ":<name>" of this package, sh_test "<name>_<without>".

    Args:
      tests: test names in this package (a weft_sched_test's per-scheduler tests, say).
      without: "no_membarrier" or "no_guard_advice".
      args: more arguments for every test binary (a --gtest_filter, say).
      **kwargs: for every sh_test (size, timeout, ...).
    """
    if without not in _WITHOUT:
        fail("old_kernel_tests: without must be one of %s, not %r" % (sorted(_WITHOUT), without))
    flag, env = _WITHOUT[without]
    for test in tests:
        native.sh_test(
            name = "%s_%s" % (test, without),
            srcs = ["//tools:run_args.sh"],
            args = ["$(location //tools:old_kernel)", flag, "$(location :%s)" % test] + args,
            data = ["//tools:old_kernel", ":" + test],
            env = {env: "1"},
            tags = ["plain_only"],
            **kwargs
        )
