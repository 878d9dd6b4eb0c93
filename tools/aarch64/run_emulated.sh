#!/usr/bin/env bash
# Runs an AArch64 GoogleTest binary under qemu-user: the sh_test of aarch64_test()
# (//tools/aarch64:defs.bzl). Arguments: the binary, then its own arguments.
#
# Death tests in the "threadsafe" style re-execute the binary by its argv[0], which an x86-64
# kernel cannot run by itself (no binfmt_misc entry for qemu here). So argv[0] is a launcher
# script that starts qemu on the binary again, with argv[0] set to the launcher once more.
# The environment passes through qemu, GTEST_OUTPUT (Bazel's XML file) included.
set -euo pipefail
binary=$(realpath "$1")
shift
sysroot=/usr/aarch64-linux-gnu  # Debian's libc6-arm64-cross: the loader and libraries
launcher=${TEST_TMPDIR:-$(mktemp -d)}/$(basename "$binary")
cat >"$launcher" <<EOF
#!/bin/sh
exec qemu-aarch64 -L $sysroot -0 "\$0" "$binary" "\$@"
EOF
chmod +x "$launcher"
exec "$launcher" "$@"
