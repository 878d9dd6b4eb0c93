#!/usr/bin/env bash
# The main job's harness end to end, at its smallest: one workload (yield, --quick) run in a
# process of its own for every scheduler and worker count, gathered into the table (a number in
# every cell) and the chart. An unknown workload is refused with its name. Speed is not checked
# here: bench/ measures it.
set -euo pipefail
compare=$1
out=$TEST_TMPDIR/out.txt
err=$TEST_TMPDIR/err.txt

"$compare" --quick --workloads=yield --chart="$TEST_TMPDIR/chart.svg" >"$out" 2>"$err" || {
  echo "compare failed:"; cat "$out" "$err"; exit 1; }

rows=$(grep -c '^| yield ping-pong, ns/yield | ' "$out" || true)
if [ "$rows" -lt 1 ]; then
  echo "no yield row in the table:"; cat "$out"; exit 1
fi
# Every cell of those rows holds a number: "| - |" marks a cell without results.
if grep '^| yield ping-pong' "$out" | grep -q '| - |'; then
  echo "a yield cell has no result:"; grep '^| yield ping-pong' "$out"; cat "$err"; exit 1
fi
# The other workloads were not asked for: their rows stay empty.
if ! grep '^| skynet' "$out" | grep -q '| - |'; then
  echo "skynet ran although only yield was asked for:"; grep '^| skynet' "$out"; exit 1
fi
grep -Eq '^Raw context switch: [0-9]+\.[0-9]+ ns on this machine' "$out" ||
  { echo "no raw switch time (this machine's) in the output:"; cat "$out"; exit 1; }
grep -q '<svg' "$TEST_TMPDIR/chart.svg" || { echo "no SVG chart written"; exit 1; }
grep -q '^| yield ping-pong' "$TEST_TMPDIR/chart.md" || { echo "no table file written"; exit 1; }

rc=0
"$compare" --quick --workloads=yield,nope >"$out" 2>"$err" || rc=$?
if [ "$rc" -ne 2 ] || ! grep -q 'no workload named "nope"' "$err"; then
  echo "an unknown workload was not refused (exit $rc):"; cat "$err"; exit 1
fi
echo "ok"
