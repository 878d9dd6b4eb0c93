#!/usr/bin/env bash
# Builds GoogleTest, or a test binary that links it, for AArch64 with Debian's cross compiler:
# the genrules of //tools/aarch64:defs.bzl. (Bazel 4.2.3 has no cross toolchain configured
# here, and the rest of the build links Debian's x86-64 libraries, so these go around it.)
#
#   cross_compile.sh gtest OUT FILES...          OUT: an archive of gtest and gtest_main
#   cross_compile.sh test OUT GTEST_A FILES...   OUT: the test binary
#
# FILES are GoogleTest's sources and headers (@system//:gtest_sources) and, for a test, weft's
# .cc, .S and .h files it is built from. weft's headers are laid out as weft/<package>/<file>.h,
# the path every file includes them by. The flags are those of .bazelrc that matter to the code
# under test: C++20, probed stack frames (stack overflow detection relies on them), line tables.
set -euo pipefail
mode=$1 out=$2
shift 2
gtest_a=
if [ "$mode" = test ]; then
  gtest_a=$1
  shift
fi
cxx=aarch64-linux-gnu-g++
flags=(-std=c++20 -O2 -fstack-clash-protection --param=stack-clash-protection-guard-size=12 -g1
  -pthread)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

gtest_root=
sources=()
for f in "$@"; do
  case $f in
    */googletest/src/gtest-all.cc) gtest_root=${f%/src/gtest-all.cc} ;;
    */googletest/*) ;;
    *.h)
      rel=${f#external/weft/}  # a header of @weft, when built from another workspace
      mkdir -p "$work/include/weft/$(dirname "$rel")"
      cp "$f" "$work/include/weft/$rel"
      ;;
    *.cc | *.S) sources+=("$f") ;;
    "$gtest_a") ;;
    *) echo "cross_compile.sh: do not know what to do with $f" >&2; exit 2 ;;
  esac
done
[ -n "$gtest_root" ] || { echo "cross_compile.sh: GoogleTest's sources are missing" >&2; exit 2; }

case $mode in
  gtest)
    # GoogleTest is not under test: built quickly (-O0 -g0 after the common flags).
    for unit in gtest-all gtest_main; do
      "$cxx" "${flags[@]}" -O0 -g0 -I"$gtest_root" -I"$gtest_root/include" \
        -c "$gtest_root/src/$unit.cc" -o "$work/$unit.o"
    done
    aarch64-linux-gnu-ar rcs "$out" "$work/gtest-all.o" "$work/gtest_main.o"
    ;;
  test)
    "$cxx" "${flags[@]}" -I"$work/include" -isystem "$gtest_root/include" \
      "${sources[@]}" "$gtest_a" -o "$out"
    ;;
  *)
    echo "cross_compile.sh: unknown mode $mode (gtest or test)" >&2
    exit 2
    ;;
esac
