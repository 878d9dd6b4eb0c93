"""Build macros shared by weft's packages (and usable from a consumer workspace)."""

load("@rules_cc//cc:defs.bzl", "cc_library", "cc_test")

# Scheduler policies every scheduling test runs against: short name -> label. Label() so the
# labels mean weft's targets even when this file is loaded as @weft//tools/bazel:weft.bzl
# (a string would resolve against the calling BUILD file's repository). Add a policy with
# one line, e.g. "work_stealing": Label("//sched:work_stealing"),
WEFT_SCHEDULERS = {
    "fifo": Label("//sched:fifo"),
}

_GTEST = [Label("@system//:gtest"), Label("@system//:gtest_main")]

def weft_cc_library(name, **kwargs):
    """cc_library whose headers are included as "weft/<package>/<header>", from inside weft
    and from other workspaces alike.

    Bazel 4.2.3 applies include_prefix after stripping the package path (include_prefix =
    "weft" alone gives "weft/<header>"), unlike what its docs say; spelling out both
    prefixes gives the same result whichever way a Bazel version reads include_prefix."""
    package = native.package_name()
    kwargs.setdefault("strip_include_prefix", "/" + package)
    kwargs.setdefault("include_prefix", "weft/" + package if package else "weft")
    cc_library(name = name, **kwargs)

def weft_sched_test(name, srcs, deps = [], schedulers = WEFT_SCHEDULERS, **kwargs):
    """One cc_test per scheduler, <name>_<short name>, plus test_suite <name> over them all.

    The test itself must not pick a scheduler: it links exactly the one given here."""
    tests = []
    for short_name, scheduler in schedulers.items():
        test_name = "%s_%s" % (name, short_name)
        cc_test(
            name = test_name,
            srcs = srcs,
            deps = deps + [scheduler] + _GTEST,
            **kwargs
        )
        tests.append(":" + test_name)
    native.test_suite(
        name = name,
        tests = tests,
        tags = kwargs.get("tags", []),
    )
