#!/usr/bin/env bash
# Installs what building and testing weft needs, from Debian's archive (the only registry
# these machines reach). Idempotent and quick when all is there: apt runs only for what is
# missing, since `apt-get update` alone costs seconds and needs the network.
# Arguments: further packages to install the same way (tools/peers.sh names its own).
set -euo pipefail

packages=(
  bazel-bootstrap    # Bazel 4.2.3 (WORKSPACE mode; see shared/BAZEL.md)
  bazel-rules-java   # @rules_java, which Bazel's own tools load
  bazel-platforms    # @platforms
  libgtest-dev       # GoogleTest + GoogleMock
  libbenchmark-dev   # Google Benchmark
  libabsl-dev        # Abseil LTS 20220623
  libmimalloc-dev    # task cores are allocated with mimalloc
  g++-aarch64-linux-gnu  # tests of the AArch64 code, cross-compiled (tools/aarch64)...
  qemu-user              # ...and run under emulation
  "$@"
)

sudo=()
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && sudo=(sudo)

# Kernels before 6.13 have no MADV_GUARD_INSTALL, so each task stack's guard page costs a
# mapping of its own (task/stack.h): about two mappings per parked task, where the default
# vm.max_map_count is 65530. The tests keep 100k tasks alive (twice, in stack_test), and the
# main job's fib(30) under FIFO parks 1.35M at once: 4M mappings leave room for both. Raised
# until the next boot (through /proc: sysctl comes with procps, which minimal images lack); a
# warning if it cannot be.
kernel=$(uname -r)
major=${kernel%%.*} minor=${kernel#*.}
minor=${minor%%[!0-9]*}
if [ "$major" -lt 6 ] || { [ "$major" -eq 6 ] && [ "${minor:-0}" -lt 13 ]; }; then
  want_maps=4194304
  have_maps=$(cat /proc/sys/vm/max_map_count)
  if [ "$have_maps" -lt "$want_maps" ]; then
    echo "setup.sh: kernel $kernel has no MADV_GUARD_INSTALL: raising vm.max_map_count from" \
      "$have_maps to $want_maps for the tests and benchmarks that keep many tasks parked" >&2
    echo "$want_maps" | "${sudo[@]}" tee /proc/sys/vm/max_map_count >/dev/null ||
      echo "setup.sh: could not raise vm.max_map_count; tests that keep 100k tasks alive will fail" >&2
  fi
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] && [ ${#sudo[@]} -eq 0 ]; then
  echo "setup.sh: need root or sudo to install: ${missing[*]}" >&2
  exit 1
fi
echo "setup.sh: installing ${missing[*]}" >&2
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
