#!/usr/bin/env bash
# The program must print the right sum and exit 0.
set -euo pipefail
out=$(./pipeline)
echo "$out"
grep -q "sum of squares 1..1000 = 333833500 (ok)" <<<"$out"
