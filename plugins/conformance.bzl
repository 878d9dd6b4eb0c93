"""weft_conformance_test: weft's whole scheduling test suite, run against one scheduler target.

The suite is every weft_sched_test in weft's tests/ (//tests:conformance, collected by
weft_conformance_suite()), each parameterized on 1 and 2 workers, plus the direct checks of the
Policy contract (tests/policy_contract_test.cc). A plugin author adds one line, in weft or in a
workspace that has weft as a repository named "weft":

    load("@weft//plugins:conformance.bzl", "weft_conformance_test")

    weft_conformance_test(name = "my_conformance_test", scheduler = ":my_scheduler")

`scheduler` is a scheduler target: a cc_library with alwayslink = True whose one .cc has
WEFT_DEFAULT_POLICY(MyPolicy) and that depends on @weft//sched:runtime (see docs/plugins.md).
Other arguments (size, timeout, tags, env, args, ...) go to the cc_test. A test that hangs is
failed by the suite's watchdog after WEFT_TEST_TIMEOUT seconds (default 60), naming the test.
"""

load("@rules_cc//cc:defs.bzl", "cc_test")

# Label(): these mean weft's targets even when this file is loaded from another workspace.
_SUITE = Label("//tests:conformance")
_GTEST_MAIN = Label("@system//:gtest_main")

def weft_conformance_test(name, scheduler, **kwargs):
    """cc_test `name`: the conformance suite linked with `scheduler` (a label in the caller's
    package's terms, e.g. ":my_scheduler")."""
    # The suite is a few hundred tests in one binary: seconds plain, minutes under TSan. Two
    # shards (gtest splits the tests between two processes) so that it is not the one test left
    # running on one core at the end of a run.
    kwargs.setdefault("timeout", "long")
    kwargs.setdefault("shard_count", 2)
    cc_test(
        name = name,
        deps = [_SUITE, scheduler, _GTEST_MAIN],
        **kwargs
    )
