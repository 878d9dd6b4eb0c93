#!/usr/bin/env python3
"""Runs PEERS.md's rows on this machine and prints one table: weft (FIFO and work stealing), Go
and Boost.Fiber, medians of N repetitions, 1 worker / 2 workers. Called by tools/peers.sh, which
builds everything first; see there and the README ("Against the peers")."""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

# (row, unit, weft source, peer workload, worker counts)
ROWS = [
    ("yield, 2 tasks", "ns/yield", ("compare", "yield"), "yield", (1,)),
    ("spawn+join, 1M tasks", "ns/task", ("compare", "spawn_join"), "spawn_join", (1, 2)),
    ("skynet, 1M leaves", "ms", ("compare", "skynet"), "skynet", (1, 2)),
    ("fib(30), a task per call", "ms", ("compare", "fib"), "fib", (1, 2)),
    ("unbuffered channel round trip", "ns",
     ("channel_bench", "BM_UnbufferedPingPong/workers:{w}/", "ns_per_round_trip"), "unbuffered", (1, 2)),
    ("buffered(1024) channel, per item", "ns",
     ("channel_bench", "BM_Buffered1024/workers:{w}/", "ns_per_item"), "buffered", (1, 2)),
    ("task mutex, 100 tasks, lock+unlock", "ns",
     ("sync_bench", "BM_ContendedReentrantLock/{w}/", "ns_per_lock_unlock"), "mutex", (1, 2)),
    ("RSS per parked task", "bytes",
     ("task_bench", "BM_RssPerParkedTask", "rss_bytes_per_parked_task"), "rss", (1,)),
]
SCHEDULERS = ("fifo", "work_stealing")
# Boost.Fiber's spawn-heavy rows are left out: see bench/peers/boost_fiber_peer.cc.
BOOST_ROWS = {"yield", "unbuffered", "buffered", "mutex", "rss"}


def run(cmd):
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return out


def first_number(cell):
    m = re.match(r"\s*([0-9.]+)", cell)
    return float(m.group(1)) if m else None


def repetitions_in(cell):
    """The n=K a cell carries when fewer repetitions ran than asked for (its time budget), or None."""
    m = re.search(r"n=([0-9]+)", cell)
    return int(m.group(1)) if m else None


def compare_figures(binary, reps):
    """{(workload, scheduler, workers): (median, repetitions or None)} from //bench:compare's
    markdown table. Each workload runs in a process of its own, as in the main job (no Google
    Benchmark flag): in one shared process what one leaves in the heap and the stack pool (FIFO's
    fib parks 1.3M tasks) would tax the next."""
    workloads = sorted({src[1] for _, _, src, _, _ in ROWS if src[0] == "compare"})
    with tempfile.TemporaryDirectory() as tmp:
        table = os.path.join(tmp, "compare.md")
        run([binary, "--workloads=" + ",".join(workloads), "--policies=" + ",".join(SCHEDULERS),
             "--repetitions=%d" % reps, "--chart=" + os.path.join(tmp, "compare.svg"),
             "--table=" + table])
        lines = open(table).read().splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    labels = {"yield": "yield ping-pong", "spawn_join": "spawn+join", "skynet": "skynet", "fib": "fib("}
    figures = {}
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        for workload, label in labels.items():
            if cells[0].startswith(label):
                for sched in SCHEDULERS:
                    cell = cells[header.index(sched)]
                    v = first_number(cell)
                    if v is not None:
                        figures[(workload, sched, int(cells[1]))] = (v, repetitions_in(cell))
    return figures


def gbench_figure(binary, name, counter, reps, fresh_process=False):
    def values_of(out):
        return [b[counter] for b in json.loads(out)["benchmarks"]
                if b.get("run_type") == "iteration" and counter in b]

    cmd = [binary, "--benchmark_filter=^" + re.escape(name), "--benchmark_format=json"]
    if fresh_process:
        # As for the peers: a later repetition would reuse the memory an earlier one faulted in.
        values = [v for _ in range(reps) for v in values_of(run(cmd + ["--benchmark_repetitions=1"]))]
    else:
        values = values_of(run(cmd + ["--benchmark_repetitions=%d" % reps]))
    if not values:
        return None
    # Inverted rate counters (ns_per_...) come out in seconds.
    return statistics.median(values) * (1e9 if counter.startswith("ns_") else 1)


def peer_figure(cmd_for, workload, workers, reps):
    # RSS counts pages a first run faults in: each repetition is a process of its own.
    if workload == "rss":
        values = [float(run(cmd_for(workload, workers, 1)).split()[0]) for _ in range(reps)]
    else:
        values = [float(line.split()[0]) for line in run(cmd_for(workload, workers, reps)).splitlines()]
    return statistics.median(values)


def fmt(v):
    if v is None:
        return "–"
    return "%.3g" % v if v < 100 else "%.0f" % v


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--weft", required=True, help="folder of weft's bench binaries, per scheduler")
    ap.add_argument("--go", required=True, help="the Go peer binary")
    ap.add_argument("--boost", required=True, help="the Boost.Fiber peer binary")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()

    def go_cmd(w, n, r):
        return [args.go, "-workload=" + w, "-procs=%d" % n, "-reps=%d" % r]

    def boost_cmd(w, n, r):
        return [args.boost, w, str(n), str(r)]

    print("running weft's workloads...", file=sys.stderr)
    compare = compare_figures(os.path.join(args.weft, "fifo", "compare"), args.reps)
    rows = []
    short_cells = []  # weft cells whose time budget ran out before all repetitions
    for label, unit, src, peer, workers in ROWS:
        cells = {}
        for n in workers:
            for sched in SCHEDULERS:
                if src[0] == "compare":
                    v, ran = compare.get((src[1], sched, n), (None, None))
                    if ran is not None:
                        short_cells.append("%s, %s, %d worker(s): %d" % (label, sched, n, ran))
                else:
                    binary = os.path.join(args.weft, sched, src[0])
                    v = gbench_figure(binary, src[1].format(w=n), src[2], args.reps,
                                      fresh_process=(peer == "rss"))
                cells[(sched, n)] = v
            print("running %s on %d for Go and Boost.Fiber..." % (peer, n), file=sys.stderr)
            cells[("go", n)] = peer_figure(go_cmd, peer, n, args.reps)
            cells[("boost", n)] = peer_figure(boost_cmd, peer, n, args.reps) if peer in BOOST_ROWS else None
        rows.append((label, unit, workers, cells))

    cols = [("fifo", "weft FIFO"), ("work_stealing", "weft work stealing"), ("go", "Go"),
            ("boost", "Boost.Fiber")]
    print("| workload (1 worker / 2) | unit | " + " | ".join(c[1] for c in cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for label, unit, workers, cells in rows:
        out = [" / ".join(fmt(cells[(key, n)]) for n in workers) for key, _ in cols]
        print("| %s | %s | %s |" % (label, unit, " | ".join(out)))
    print("\nMedians of %d repetitions, all measured in this run. Lower is better." % args.reps)
    if short_cells:
        print("Fewer repetitions (the main job's time budget per cell ran out): " +
              "; ".join(short_cells) + ".")


if __name__ == "__main__":
    main()
