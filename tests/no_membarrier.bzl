"""weft_no_membarrier_tests(): tests run once more with membarrier(2) unavailable.

On a kernel without membarrier (before 4.14) or in a sandbox that refuses it, weft's asymmetric
fences fall back to full fences on both sides and locks are never biased
(sched/asymmetric_fence.h): other code than on the machines that run the tests. Each test named
here also runs under //tools:no_membarrier, with WEFT_TEST_EXPECT_NO_MEMBARRIER=1 set so that a
test can check the fallback is really in force. Plain configuration only (plain_only): under
TSan, which does not model fences, the fallback's orderings would look like races.
"""

def weft_no_membarrier_tests(tests, **kwargs):
    """For each test label ":<name>" in this package, sh_test "<name>_no_membarrier".

    Args:
      tests: test names in this package (a weft_sched_test's per-scheduler tests, say).
      **kwargs: for every sh_test (size, timeout, ...).
    """
    for test in tests:
        native.sh_test(
            name = test + "_no_membarrier",
            srcs = ["//tools:run_args.sh"],
            args = ["$(location //tools:no_membarrier)", "$(location :%s)" % test],
            data = ["//tools:no_membarrier", ":" + test],
            env = {"WEFT_TEST_EXPECT_NO_MEMBARRIER": "1"},
            tags = ["plain_only"],
            **kwargs
        )
