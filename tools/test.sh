#!/usr/bin/env bash
# The test command: every test, plain, under ASan with UBSan, and under TSan; the tests whose
# tasks hop threads also as the benchmarks are built (-c opt, LTO); and a consumer workspace.
# The plain run includes the tests of the AArch64 code, built for AArch64 and run under qemu
# (tools/aarch64), and tests run as on kernels without membarrier or MADV_GUARD_INSTALL
# (tools/old_kernel.bzl); both tagged plain_only.
# Each config runs even if an earlier one failed; the exit status is nonzero if any failed.
# Per-test results (gtest XML + Bazel's verdict) are kept in $TEST_RESULTS_DIR/<config>/
# for tools/count_results.py, since bazel-testlogs only holds the latest run of each test.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
results=${TEST_RESULTS_DIR:-$(mktemp -d /tmp/weft-test-results.XXXXXX)}
if ! tools/setup.sh; then
  # Recorded as a failure so that the count cannot read "0 failed" after a broken setup.
  mkdir -p "$results/setup" && python3 tools/count_results.py collect "$results/setup" /dev/null 1
  exit 1
fi
start=$SECONDS
failed=()

# run_config NAME [bazel flags...]: every test (or those in $targets, but for the tags in
# $skip_tags) in one configuration, in the current directory's workspace.
targets=(//...)
skip_tags=-benchmark,-manual
run_config() {
  local name=$1 rc=0 t0=$SECONDS
  shift
  rm -rf "${results:?}/$name" && mkdir -p "$results/$name"
  echo "=== tools/test.sh: config $name" >&2
  bazel test "$@" --keep_going --test_output=errors \
    --test_tag_filters="$skip_tags" \
    --build_event_json_file="$results/$name/bep.json" -- "${targets[@]}" || rc=$?
  python3 "$root/tools/count_results.py" collect "$results/$name" "$results/$name/bep.json" "$rc" ||
    { [ "$rc" -ne 0 ] || rc=1; }
  # 4: no test targets at all, which is not a failure.
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 4 ]; then failed+=("$name"); fi
  echo "=== tools/test.sh: config $name took $((SECONDS - t0))s" >&2
  return 0
}

# The plain run includes the consumer workspace's scheduler plugin under weft's conformance
# suite, from this workspace (WORKSPACE says why).
targets=(//... @consumer//:my_scheduler_conformance_test)
run_config plain
targets=(//...)
# Sanitizer runs skip building what no test needs (benchmark binaries); plain built it all.
# ASan and UBSan share one build and run (as is common): apart, with TSan, the command took
# more than 20 minutes on these machines.
# Under the sanitizers the example plugins' conformance suites (plugins/) leave out the stress
# and scale tests, which take several times as long there: the three built-in schedulers run
# them under both sanitizers, and the plugins run them in the plain configuration.
plugin_suites=(//plugins:lifo_conformance_test //plugins:edf_conformance_test)
light_suite=--test_arg=--gtest_filter=-*SyncStress*:*TaskScale*:*ChannelStress*
skip_tags=-benchmark,-manual,-plain_only
for sanitizer in asan-ubsan tsan; do
  targets=(//... "${plugin_suites[@]/#/-}")
  run_config "$sanitizer" --config="$sanitizer" --build_tests_only
  targets=("${plugin_suites[@]}")
  run_config "$sanitizer-plugins" --config="$sanitizer" --build_tests_only "$light_suite"
done
skip_tags=-benchmark,-manual
# The benchmarks' configuration (-c opt, link-time optimization: .bazelrc) with the tests whose
# tasks move between threads, which is what inlining across files could break.
# A query that fails or matches nothing (tests renamed) is a failure, not an empty config.
if opt_targets=$(bazel query --output=label \
  'attr(name, "(migration|stress|channel_stress|sync_stress|task_local_storage|threadpool)_test_", tests(//tests:all))') &&
  [ -n "$opt_targets" ]; then
  targets=($opt_targets)
  run_config opt -c opt --config=opt
else
  echo "=== tools/test.sh: the opt config's query failed or matched no test" >&2
  rm -rf "${results:?}/opt" && mkdir -p "$results/opt"
  python3 tools/count_results.py collect "$results/opt" /dev/null 1
  failed+=(opt)
fi
targets=(//...)
# A user's workspace (examples/consumer), with its own Bazel server: its program with its own
# scheduler plugin, and the check that it links only what it asked for. (The conformance suite
# against that plugin ran in the plain configuration above.)
pushd examples/consumer >/dev/null
targets=(//... -//:my_scheduler_conformance_test)
run_config consumer --@weft//sched:scheduler=//:my_scheduler
popd >/dev/null

echo "=== tools/test.sh: $((SECONDS - start))s; results in $results" >&2
if [ ${#failed[@]} -ne 0 ]; then
  echo "=== tools/test.sh: FAILED in: ${failed[*]}" >&2
  exit 1
fi
