#!/bin/bash
# Runs a conformance test binary that links a broken scheduler and passes only if the suite
# FAILS it: a nonzero exit, reported by a failing test or by the suite's watchdog, within a
# bounded time. A suite that passes, hangs or crashes without saying why fails this test.
#
# Usage: expect_suite_failure.sh <conformance test binary> [seconds per test, default 10]
#                                [gtest filter]
# With a filter, only those tests run, and they must report the failure themselves: a run
# ended by the watchdog fails this test (the direct checks of the Policy contract must name
# the broken promise, not time out).
set -u

binary="$1"
per_test="${2:-10}"
filter="${3:-}"
filter_args=()
if [[ -n "$filter" ]]; then
  filter_args=("--gtest_filter=$filter")
fi
# Far above what a watchdog-ended run needs; only a suite that hangs despite the watchdog
# reaches it.
overall=240
log="${TEST_TMPDIR:-/tmp}/suite_output.txt"

# The inner binary is a gtest program too: keep it away from this test's own result files
# (an inner run that ends early would leave TEST_PREMATURE_EXIT_FILE behind, failing us).
start=$(date +%s)
env -u XML_OUTPUT_FILE -u GTEST_OUTPUT -u TEST_PREMATURE_EXIT_FILE -u TEST_SHARD_STATUS_FILE \
  -u TEST_TOTAL_SHARDS -u TEST_SHARD_INDEX WEFT_TEST_TIMEOUT="$per_test" \
  timeout --signal=KILL "$overall" "$binary" "${filter_args[@]}" >"$log" 2>&1
status=$?
elapsed=$(( $(date +%s) - start ))

echo "--- last lines of the suite's output (exit status $status after ${elapsed}s) ---"
tail -n 25 "$log"
echo "---"

if [[ $status -eq 0 ]]; then
  echo "FAIL: the conformance suite passed with a scheduler that drops tasks"
  exit 1
fi
if [[ $status -eq 137 ]]; then
  echo "FAIL: the conformance suite hung for ${overall}s instead of failing (watchdog missing?)"
  exit 1
fi
if ! grep -q -e '^\[  FAILED  \]' -e '^weft test watchdog: ' "$log"; then
  echo "FAIL: the suite exited with status $status but neither a test failure nor the"
  echo "watchdog reported it (a crash?): it must say what went wrong"
  exit 1
fi
if [[ -n "$filter" ]] && grep -q '^weft test watchdog: ' "$log"; then
  echo "FAIL: the tests $filter ran into the watchdog instead of reporting the broken"
  echo "promise themselves"
  exit 1
fi
echo "OK: the conformance suite caught the broken scheduler (exit status $status, ${elapsed}s):"
grep -e '^\[  FAILED  \]' -e '^weft test watchdog: ' "$log" | head -n 5
exit 0
