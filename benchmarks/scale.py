"""The Dask executor's scaling: `python benchmarks/scale.py [--transactions N] [--partitions P] [--runs R] [--json]`.

On benchmarks/generate.py's history of N rows (default 10M; made in benchmarks/data/ if missing),
partitioned by customer into P files (`loyalty partition`), under benchmarks/run.py's scenario
with R runs, it times from the files to the summary:

- the local executor (`simulate(..., workers=1)`: the sliced replay, one core);
- the Dask executor on a LocalCluster of 1 worker process, then of 2 (one thread each);

and reports the Dask overhead (its 1-worker time over the local one's), the second worker's
efficiency (1-worker time / (2 x 2-worker time)), each also for the task phase alone (tasks sent
to the sums added up; the global step on the client before it is the same for any number of
workers), each worker process's peak resident memory (as its monitor sampled it), and the cores each worker process kept busy
(its CPU seconds over the task phase's seconds: one worker can use more than one core). Every figure is one measurement on
this machine as it is: run it on a quiet machine. The workers are warmed up first (their imports
and the engine loaded from numba's cache: a long-lived cluster pays that once, not per simulation). The Dask results are checked against the local
run's (summary.json byte for byte) before any figure is reported.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
for p in (str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import generate  # noqa: E402
import run as bench  # noqa: E402


def _peak_rss_mb(dask_worker) -> float:
    """The worker process's largest resident memory sampled by its own monitor (every 0.5 s by
    default). Not `ru_maxrss`: a spawned process inherits its parent's high-water mark on Linux."""
    return max(dask_worker.monitor.quantities["memory"]) / 2**20


def _warm() -> None:
    """A worker's first simulation's fixed costs (imports, the engine from numba's cache), paid once
    per worker process: a long-lived cluster pays them once, not per simulation."""
    from simulator.api import simulate
    from simulator.sample_data import bundled_paths

    simulate(bench.PROGRAM, *bundled_paths(), {"runs": 1}, workers=1)


def _cpu_s() -> float:
    """This process's CPU time so far, all its threads (user + system)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _on_dask(workers: int, dataset: Path, customers: Path, scenario: dict) -> dict:
    import distributed

    from simulator.api import simulate

    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            client.run(_warm)  # the workers are up, their modules and compiled engine loaded, before the clock starts
            sent: list[float] = []
            cpu0 = client.run(_cpu_s)
            t0 = time.perf_counter()
            res = simulate(bench.PROGRAM, dataset, customers, scenario, cluster=cluster.scheduler_address, told=lambda link, n: sent.append(time.perf_counter()))
            total = time.perf_counter() - t0
            cpu = {w: c - cpu0[w] for w, c in client.run(_cpu_s).items()}
            peaks = client.run(_peak_rss_mb)
    tasks = total - (sent[0] - t0)
    return {
        "seconds": total,
        "tasks_seconds": tasks,
        "worker_peak_rss_mb": sorted(round(v) for v in peaks.values()),
        # CPU seconds of each worker process over the task phase: above 1 per second, a worker uses more than a core
        # (Arrow's reader threads, the base built on a thread beside the paths).
        "worker_cores": sorted(round(c / tasks, 2) for c in cpu.values()),
        "summary": res.summary_json(),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--transactions", type=int, default=10_000_000, help="rows of the benchmark history (default 10M)")
    ap.add_argument("--partitions", type=int, default=8, help="files of the partitioned dataset (default 8)")
    ap.add_argument("--runs", type=int, default=2, help="Monte Carlo runs (default 2)")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)

    from simulator import partition
    from simulator.api import simulate

    tx, cu = generate.paths(args.transactions)
    if not tx.exists():
        generate.generate(args.transactions)
    scenario = {**bench.SCENARIO, "runs": args.runs}
    with tempfile.TemporaryDirectory(prefix="loyalty-scale-") as d:
        dataset = Path(d) / "by-customer"
        t0 = time.perf_counter()
        partition.write(tx, dataset, args.partitions)
        partition_s = time.perf_counter() - t0
        # The engine compiled (and cached on disk for the workers) before any clock starts.
        from simulator.sample_data import bundled_paths

        simulate(bench.PROGRAM, *bundled_paths(), {"runs": 1}, workers=1)
        t0 = time.perf_counter()
        local = simulate(bench.PROGRAM, dataset, cu, scenario, workers=1)
        local_s = time.perf_counter() - t0
        one = _on_dask(1, dataset, cu, scenario)
        two = _on_dask(2, dataset, cu, scenario)
    for r in (one, two):
        if r.pop("summary") != local.summary_json():
            raise SystemExit("the Dask executor's summary.json differs from the local executor's")
    rows = args.transactions
    figures = {
        "transactions": rows,
        "partitions": args.partitions,
        "runs": args.runs,
        "partition_s": round(partition_s, 1),
        "local_s": round(local_s, 1),
        "dask_1_worker_s": round(one["seconds"], 1),
        "dask_2_workers_s": round(two["seconds"], 1),
        "dask_overhead": round(one["seconds"] / local_s - 1, 3),
        "second_worker_efficiency": round(one["seconds"] / (2 * two["seconds"]), 3),
        "tasks_1_worker_s": round(one["tasks_seconds"], 1),
        "tasks_2_workers_s": round(two["tasks_seconds"], 1),
        "second_worker_efficiency_tasks": round(one["tasks_seconds"] / (2 * two["tasks_seconds"]), 3),
        "worker_peak_rss_mb_1_worker": one["worker_peak_rss_mb"],
        "worker_peak_rss_mb_2_workers": two["worker_peak_rss_mb"],
        "worker_cores_1_worker": one["worker_cores"],
        "worker_cores_2_workers": two["worker_cores"],
        "path_rows_per_s_per_worker": round(rows * args.runs / one["tasks_seconds"]),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        width = max(map(len, figures))
        for k, v in figures.items():
            print(f"{k:<{width}}  {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
