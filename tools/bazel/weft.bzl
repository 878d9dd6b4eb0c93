"""Build macros shared by weft's packages (and usable from a consumer workspace)."""

load("@rules_cc//cc:defs.bzl", "cc_library", "cc_test")

# Scheduler policies every scheduling test runs against: short name -> label. Label() so the
# labels mean weft's targets even when this file is loaded as @weft//tools/bazel:weft.bzl
# (a string would resolve against the calling BUILD file's repository). Add a policy with
# one line, e.g. "work_stealing": Label("//sched:work_stealing"),
WEFT_SCHEDULERS = {
    "fifo": Label("//sched:fifo"),
    "work_stealing": Label("//sched:work_stealing"),
    "priority": Label("//sched:priority"),
}

_GTEST = [Label("@system//:gtest"), Label("@system//:gtest_main")]

_WATCHDOG = Label("//tests:test_watchdog")

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

# Attributes that shape how a test's sources compile; the rest (size, timeout, tags, env, args,
# data, shard_count, flaky, ...) describe how a test binary runs.
_LIB_ATTRS = ["copts", "defines", "local_defines", "includes", "linkopts", "textual_hdrs"]

# Marks a test library that belongs to the conformance suite (weft_conformance_suite).
_CONFORMANCE_TAG = "weft_conformance"

def weft_sched_test(name, srcs, deps = [], schedulers = WEFT_SCHEDULERS, conformance = True, **kwargs):
    """A scheduling test: its sources compiled once into <name>_lib, linked into one cc_test per
    scheduler, <name>_<short name>, plus test_suite <name> over them all.

    The test itself must not pick a scheduler: it links exactly the one given here. With
    conformance = True (the default) <name>_lib is tagged for weft_conformance_suite(), so the
    test is part of the suite every scheduler plugin runs (plugins/conformance.bzl). Each library
    also links //tests:test_watchdog, which fails a test that hangs (a lost task) instead of
    letting it run into Bazel's timeout. A conformance test must not define main() or a gtest
    test name another test file uses: all of them are linked into one binary."""
    if native.existing_rule("conformance") != None:
        fail(("weft_sched_test(name = \"%s\") comes after weft_conformance_suite() in " +
              "//%s:BUILD: keep weft_conformance_suite() the last call in the file, or the " +
              "conformance suite would miss this test") % (name, native.package_name()))
    lib_kwargs = {k: kwargs.pop(k) for k in _LIB_ATTRS if k in kwargs}
    lib = name + "_lib"
    cc_library(
        name = lib,
        testonly = True,
        srcs = srcs,
        deps = deps + [_GTEST[0], _WATCHDOG],
        alwayslink = True,  # nothing refers to a test's symbols: keep its registrations
        tags = [_CONFORMANCE_TAG] if conformance else [],
        **lib_kwargs
    )
    tests = []
    for short_name, scheduler in schedulers.items():
        test_name = "%s_%s" % (name, short_name)
        cc_test(
            name = test_name,
            deps = [":" + lib, scheduler, _GTEST[1]],
            **kwargs
        )
        tests.append(":" + test_name)
    native.test_suite(
        name = name,
        tests = tests,
        tags = kwargs.get("tags", []),
    )

def weft_conformance_suite(name = "conformance"):
    """Defines testonly cc_library `name`: every test library weft_sched_test() defined above it
    in this BUILD file, without a scheduler and without a main. Call it once, LAST in the file
    (a later weft_sched_test fails the build rather than being left out silently).

    Linked with a scheduler and gtest_main it is the whole conformance suite in one binary:
    weft_conformance_test in plugins/conformance.bzl does exactly that."""
    libs = sorted([
        ":" + rule_name
        for rule_name, rule in native.existing_rules().items()
        if _CONFORMANCE_TAG in (rule.get("tags") or [])
    ])
    if not libs:
        fail("weft_conformance_suite(): no weft_sched_test() above it in //%s:BUILD" %
             native.package_name())
    cc_library(
        name = name,
        testonly = True,
        alwayslink = True,
        visibility = ["//visibility:public"],
        deps = libs,
    )
