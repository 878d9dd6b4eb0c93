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

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "setup.sh: installing ${missing[*]}" >&2
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
