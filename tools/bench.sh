#!/usr/bin/env bash
# Compares the schedulers on the same workloads (//bench:compare); arguments go to it.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
exec bazel run -c opt --config=opt //bench:compare -- "$@"
