"""aarch64_test(): a GoogleTest test built for AArch64 and run under qemu-user.

weft's AArch64 code (the context switch, stack overflow detection, the unwinding of parked
stacks) cannot run natively on the x86-64 machines that build and test weft, so its tests are
cross-compiled with Debian's aarch64-linux-gnu-g++ and run under qemu-aarch64 (both installed
by tools/setup.sh). Only code without Abseil or mimalloc can be built this way: Debian's
copies of those are x86-64.

Tagged plain_only: the sanitizer configurations do not reach a cross-compiled binary, so
tools/test.sh runs these once, in the plain configuration.
"""

def aarch64_test(name, srcs, args = [], **kwargs):
    """A test of `srcs` (.cc, .S and the .h files they include) for AArch64.

    Args:
      name: the sh_test; its binary is name + ".aarch64".
      srcs: the source files, by name or by label (another package's must export them).
      args: the test binary's arguments (a --gtest_filter, say).
      **kwargs: for the sh_test (size, timeout, ...).
    """
    binary = name + ".aarch64"
    native.genrule(
        name = name + "_build",
        srcs = srcs + ["@system//:gtest_sources", "//tools/aarch64:gtest"],
        outs = [binary],
        cmd = ("$(location //tools/aarch64:cross_compile.sh) test $@ " +
               "$(location //tools/aarch64:gtest) $(SRCS)"),
        tools = ["//tools/aarch64:cross_compile.sh"],
        tags = ["plain_only"],
        testonly = True,
    )
    native.sh_test(
        name = name,
        srcs = ["//tools/aarch64:run_emulated.sh"],
        data = [":" + binary],
        args = ["$(location :" + binary + ")"] + args,
        tags = kwargs.pop("tags", []) + ["plain_only"],
        **kwargs
    )
