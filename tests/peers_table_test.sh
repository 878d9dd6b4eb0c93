#!/usr/bin/env bash
# tools/peers.py's table, from stand-in binaries with known figures: each cell must hold the
# median of what its source printed, in the row's unit (Google Benchmark's inverted rates come
# in seconds and are shown in ns), "–" where a peer sits a row out; a peer that fails stops it.
# The real peers are not needed: tools/peers.sh runs those.
set -euo pipefail
peers_py=$1
bins=$TEST_TMPDIR/bins
mkdir -p "$bins/fifo" "$bins/work_stealing"

# //bench:compare: writes its markdown table where --table= says (FIFO 10/20, work stealing 5/8
# in every row of the four workloads, plus priority, which the table must ignore; FIFO's fib on
# two workers ran once). It must be asked for the two policies, each workload in a process of
# its own (no Google Benchmark flag, which would run them all in one).
cat >"$bins/fifo/compare" <<'SH'
#!/usr/bin/env bash
for a in "$@"; do
  case $a in
    --table=*) table=${a#--table=} ;;
    --policies=fifo,work_stealing) policies=ok ;;
    --benchmark_*) echo "compare asked to run every workload in one process: $a" >&2; exit 1 ;;
  esac
done
[ "${policies:-}" = ok ] || { echo "compare not limited to fifo and work_stealing" >&2; exit 1; }
{
  echo "| workload | workers | fifo | work_stealing | priority |"
  echo "|---|---|---|---|---|"
  for row in "yield ping-pong, ns/yield" "spawn+join 1000000 tasks, ns/task" \
             "skynet 1000000 leaves, ms" "fib(30) task per call, ms"; do
    echo "| $row | 1 | 10.0 ±3% | 5.00 ±2% (2.0x) | 99 ±1% |"
    if [ "$row" = "fib(30) task per call, ms" ]; then
      echo "| $row | 2 | 20.0 ±0% n=1 | 8.00 ±4% (2.5x) | 99 ±1% |"
    else
      echo "| $row | 2 | 20.0 ±9% | 8.00 ±4% (2.5x) | 99 ±1% |"
    fi
  done
  echo
  echo "Raw context switch: 5.00 ns on this machine now"
} >"$table"
SH
# Google Benchmark binaries: three repetitions of the filtered benchmark, counters as JSON,
# inverted rates in seconds. FIFO's folder 100, 300, 110 ns; work stealing's twice that.
for sched in fifo work_stealing; do
  if [ "$sched" = fifo ]; then seconds="1e-07 3e-07 1.1e-07"; else seconds="2e-07 6e-07 2.2e-07"; fi
  for bench in channel_bench sync_bench task_bench; do
    cat >"$bins/$sched/$bench" <<SH
#!/usr/bin/env bash
filter=\$(printf '%s\n' "\$@" | sed -n 's/^--benchmark_filter=//p')
case \$filter in
  *RssPerParkedTask*)
    # One repetition per process, as for the peers: memory faulted in by an earlier one is warm.
    printf '%s\n' "\$@" | grep -qx -- '--benchmark_repetitions=1' ||
      { echo "RSS measured in one process over several repetitions" >&2; exit 1; }
    counter=rss_bytes_per_parked_task; values="4000 4200 4100" ;;
  *UnbufferedPingPong*) counter=ns_per_round_trip; values="$seconds" ;;
  *ContendedReentrantLock*) counter=ns_per_lock_unlock; values="$seconds" ;;
  *) counter=ns_per_item; values="$seconds" ;;
esac
python3 -c '
import json, sys
counter, values = sys.argv[1], [float(v) for v in sys.argv[2:]]
runs = [{"name": "x", "run_type": "iteration", counter: v} for v in values]
print(json.dumps({"benchmarks": runs + [{"name": "x_median", "run_type": "aggregate", counter: -1}]}))
' "\$counter" \$values
SH
  done
done
# The peers: Go prints each repetition; Boost.Fiber too, but fails if asked for a row it skips.
cat >"$bins/go" <<'SH'
#!/usr/bin/env bash
for a in "$@"; do case $a in -reps=*) reps=${a#-reps=} ;; -procs=*) procs=${a#-procs=} ;; esac; done
for i in $(seq "$reps"); do echo "$((procs * 1000 + i)) unit"; done
SH
cat >"$bins/boost" <<'SH'
#!/usr/bin/env bash
case $1 in spawn_join|skynet|fib) echo "boost asked for $1" >&2; exit 1 ;; esac
for i in $(seq "$3"); do echo "$(( $2 * 700 + i )) unit"; done
SH
chmod +x "$bins"/*/* "$bins/go" "$bins/boost"

out=$TEST_TMPDIR/out.txt
python3 "$peers_py" --weft="$bins" --go="$bins/go" --boost="$bins/boost" --reps=3 >"$out" \
  2>"$TEST_TMPDIR/err.txt" || { echo "peers.py failed:"; cat "$TEST_TMPDIR/err.txt"; exit 1; }

expect() {
  grep -qF -- "$1" "$out" || { echo "missing: $1"; echo "got:"; cat "$out"; exit 1; }
}
# compare's rows; Go's median of 1001..1003 is 1002 (2002 on two); Boost sits these out.
expect "| yield, 2 tasks | ns/yield | 10 | 5 | 1002 | 702 |"
expect "| spawn+join, 1M tasks | ns/task | 10 / 20 | 5 / 8 | 1002 / 2002 | – / – |"
expect "| fib(30), a task per call | ms | 10 / 20 | 5 / 8 | 1002 / 2002 | – / – |"
# Median of 100, 300, 110 ns (seconds in the JSON) is 110; work stealing's binaries print 2x.
expect "| unbuffered channel round trip | ns | 110 / 110 | 220 / 220 | 1002 / 2002 | 702 / 1402 |"
expect "| task mutex, 100 tasks, lock+unlock | ns | 110 / 110 | 220 / 220 |"
# RSS is a plain counter (bytes), one process per repetition for weft and the peers alike.
expect "| RSS per parked task | bytes | 4100 | 4100 | 1001 | 701 |"
# A cell whose time budget ran out says how many repetitions it had.
expect "Fewer repetitions (the main job's time budget per cell ran out): fib(30), a task per call, fifo, 2 worker(s): 1."

# A peer that fails is an error, not a blank cell.
printf '#!/usr/bin/env bash\nexit 3\n' >"$bins/go"
if python3 "$peers_py" --weft="$bins" --go="$bins/go" --boost="$bins/boost" --reps=1 \
     >/dev/null 2>&1; then
  echo "peers.py went on although the Go peer failed"; exit 1
fi
echo PASS
