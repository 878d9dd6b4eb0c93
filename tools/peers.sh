#!/usr/bin/env bash
# weft against its peers on this machine: PEERS.md's rows for weft (FIFO and work stealing),
# Go and Boost.Fiber, all in one run, one table of medians (tools/peers.py). Installs Debian's
# golang-go and Boost.Fiber when missing (only this script needs them). Arguments go to
# tools/peers.py (--reps=N, default 5). About 4 minutes on 2 cores, once built.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh golang-go libboost-fiber-dev libboost-context-dev

bins=$(mktemp -d /tmp/weft-peers.XXXXXX)
trap 'rm -rf "$bins"' EXIT
for sched in fifo work_stealing; do
  bazel build -c opt --config=opt --//sched:scheduler=//sched:$sched \
    //bench:compare //bench:channel_bench //bench:sync_bench //bench:task_bench
  mkdir -p "$bins/$sched"
  cp bazel-bin/bench/{compare,channel_bench,sync_bench,task_bench} "$bins/$sched/"
done
bazel build -c opt --config=opt //bench/peers:boost_fiber_peer
cp bazel-bin/bench/peers/boost_fiber_peer "$bins/"
# Standard library only: nothing to download (GOPROXY=off makes sure of it).
(cd bench/peers/go && GOPROXY=off GOFLAGS=-mod=mod go build -o "$bins/go_peer" .)

python3 tools/peers.py --weft="$bins" --go="$bins/go_peer" --boost="$bins/boost_fiber_peer" "$@"
