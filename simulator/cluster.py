"""The Dask executor: `loyalty simulate --cluster local:N` (a `distributed.LocalCluster` of N
worker processes) or `--cluster tcp://HOST:8786` (a running scheduler), or the scenario's `cluster:`.

It is the sliced replay (simulator.chunked) with files of whole customers as its slices:

1. The global step, on the client: `chunked.plan` reads the whole history once in record batches
   (counts, rejects, each customer's used rows, spend and file) and every run's enrolment choice
   is made over all customers (`top_spenders` included), exactly as the sliced replay makes it.
2. One task per file of a customer-partitioned dataset (`loyalty partition`): the worker loads the
   file, ranks its rows among the whole history's (each customer's rows keep the global ranks
   the one-pass replay gives them, so every draw is the same) and runs `api.replay_slice` for
   every run. It returns each run's exact integer sums (`measure.Partial`) and the file's revenue
   per month; run 0's ledger it writes itself, as one file of a Parquet dataset beside the
   outputs (never sent to the client).
3. The sums are added up in a tree of tasks on the workers; the client turns the total into
   figures with `montecarlo.finish`, as every other executor does. Sums of integers add up the same
   in any order, so the outputs are byte-identical to a run in one process.

Dask is optional (`pip install 'loyalty-toolkit[dask]'`): it is imported only here, when asked for.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

import rulelang
from rulelang.engine import budgets
from rulelang.errors import LoyaltyError
from simulator import chunked, enrollment, io, metrics, montecarlo, partition, rng, segments
from simulator.finance import simulated
from simulator.history import prepare

INSTALL = "pip install 'loyalty-toolkit[dask]'"
LOCAL = re.compile(r"local:([1-9][0-9]{0,3})")
REMOTE = re.compile(r"(tcp|tls|ws|wss|ucx)://[^\s/]+")
EXPECTED = "`local:N` (N worker processes on this machine) or a scheduler's address like `tcp://HOST:8786`"


class ClusterError(LoyaltyError):
    """The cluster cannot be reached or used: said with what to do."""


def address_problem(text) -> str | None:
    """What is wrong with a cluster address, or None when it is one."""
    if not isinstance(text, str) or not (LOCAL.fullmatch(text) or REMOTE.fullmatch(text)):
        return f"expected {EXPECTED}, got {text!r}"
    return None


def _distributed():
    try:
        import distributed
    except ImportError:
        raise ClusterError(f"--cluster: error: the Dask executor needs Dask, which is not installed; install it with: {INSTALL}") from None
    return distributed


@contextmanager
def connected(address: str) -> Iterator[object]:
    """A `distributed.Client` of the cluster `address` (a LocalCluster started and stopped here for `local:N`)."""
    problem = address_problem(address)
    if problem:
        raise ClusterError(f"--cluster: error: {problem}")
    distributed = _distributed()
    local = LOCAL.fullmatch(address)
    if local:
        # One thread per worker process: a task's heavy steps use its core (numba, NumPy).
        with distributed.LocalCluster(
            n_workers=int(local[1]), threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.CRITICAL
        ) as cluster, distributed.Client(cluster) as client:  # fmt: skip
            yield client
        return
    try:
        client = distributed.Client(address, timeout="15s")
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"--cluster: error: cannot reach the Dask scheduler at {address} ({exc}); start one with `dask scheduler` and workers with `dask worker {address}`") from None
    with client:
        yield client


@dataclass(frozen=True)
class Shared:
    """What every task reads (scattered to the workers once)."""

    program_text: str
    program_path: str
    scenario: object
    engine: str
    tx: io.LoadResult  # the whole history's counts (no rows, no rejects)
    months: pd.PeriodIndex
    until: pd.Timestamp
    keep: set | None
    customers_path: str | None  # for the column mapping's check (io.load_options)
    ledger: str  # the folder or URL the tasks write run 0's ledger into


@dataclass(frozen=True)
class Job:
    """One file of whole customers: its customers (sorted ids), each one's first global row rank,
    their enrolment facts and choices, and their rows of the customers table."""

    number: int
    file: str
    ids: np.ndarray
    starts: np.ndarray
    population: enrollment.Population
    customers: pd.DataFrame | None
    codes: np.ndarray  # the customers' codes among the whole history's (sorted ids)
    segments: segments.Segmentation  # their RFM segments and stages, scored over every customer


@dataclass
class Sums:
    """A task's answer: each run's exact sums and its customers' revenue per month; for the
    segments, each (segment, stage) group's revenue, and each customer's (by code)."""

    parts: list
    revenue: np.ndarray
    group_revenue: np.ndarray
    codes: np.ndarray
    customer_revenue: np.ndarray

    def add(self, other: Sums) -> Sums:
        return Sums(
            [a.add(b) for a, b in zip(self.parts, other.parts, strict=True)],
            self.revenue + other.revenue,
            self.group_revenue + other.group_revenue,
            np.concatenate([self.codes, other.codes]),
            np.concatenate([self.customer_revenue, other.customer_revenue]),
        )


# montecarlo keeps its program and compiled engine per process: tasks of a worker with several
# threads take turns (start workers with `--nthreads 1`, one process per core).
_ONE_AT_A_TIME = threading.Lock()


def _file_history(shared: Shared, job: Job, prog):
    """One job's file read and prepared as the whole history's slice of its customers."""
    model = prog.model
    sc = shared.scenario
    res = io.load_transactions(job.file, sc.columns, model.decimals, sc.period, shared.keep, **io.load_options(sc, model, shared.customers_path))
    h = prepare(res.frame, model.decimals, shared.until)
    if not np.array_equal(h.customer_ids, job.ids):
        raise LoyaltyError(f"{job.file}: error: the file changed while the simulation ran (its customers differ from the first read); run it again")
    # Each row's rank among the whole history's sorted rows: its customer's first rank there,
    # plus its place among the customer's own rows here.
    m = h.rows["_m"].to_numpy()
    counts = np.bincount(m, minlength=h.customers)
    local = np.cumsum(counts) - counts
    h.rows["_row"] = job.starts[m] + (h.rows["_row"].to_numpy() - local[m])
    return h


def replay_file(shared: Shared, job: Job, closings: dict | None = None) -> Sums:
    """A task: every run over one file of whole customers (`closings`: each run's budgets, settled
    over every file first)."""
    from simulator import api

    with _ONE_AT_A_TIME:
        prog = _program(shared.program_text, shared.program_path)
        model = prog.model
        h = _file_history(shared, job, prog)
        parts, revenue, setup = api.replay_slice(prog, shared.scenario, shared.engine, shared.tx, h, job.customers, shared.months, job.population, 1,
                                                 seg=job.segments, closings=closings)
        _write_ledger(montecarlo.whole(parts[0].ledger), shared.ledger, job.number, model.decimals)
        parts[0].ledger = None
        return Sums(parts, revenue, setup.segments.baseline, job.codes, setup.segments.revenue)


def file_awards(shared: Shared, job: Job, under: dict) -> dict:
    """A task of the budgets' global step: each open run's budgeted awards over one file, with the
    closings found so far (`under`: run -> closings; montecarlo.settle_slices)."""
    from simulator import api

    with _ONE_AT_A_TIME:
        prog = _program(shared.program_text, shared.program_path)
        h = _file_history(shared, job, prog)
        found, _, _ = api.replay_slice(prog, shared.scenario, shared.engine, shared.tx, h, job.customers, shared.months, job.population, 1,
                                       seg=job.segments, awards_under=under)
        return found


_PROGRAM: list = []  # the last program a task of this process parsed: its compiled engine is kept (montecarlo)


def _program(text: str, path: str):
    """The program, parsed once per worker process: the same object again for the next task, so
    montecarlo's compiled engine (kept per program object) is not compiled again."""
    if not _PROGRAM or (_PROGRAM[0].source.text, _PROGRAM[0].source.path) != (text, path):
        _PROGRAM[:] = [rulelang.loads(text, path)]
    return _PROGRAM[0]


def _write_ledger(ledger: pd.DataFrame, folder: str, number: int, decimals: int) -> None:
    """Run 0's postings of one file as `part-NNNNN.parquet` of the ledger dataset: written aside
    and renamed, so a task run again (its worker lost) replaces its file whole."""
    import fsspec

    from simulator.api import ledger_parquet_options, ledger_table

    fs, root = fsspec.core.url_to_fs(folder)
    table = ledger_table(ledger, decimals)
    name = f"part-{number:05d}.parquet"
    aside = f"{root}/.{name}.{uuid.uuid4().hex}"
    try:
        with fs.open(aside, "wb") as fh:
            pq.write_table(table, fh, **ledger_parquet_options(table.schema))
        fs.mv(aside, f"{root}/{name}")
    except OSError as exc:
        raise LoyaltyError(f"{folder}: error: a worker cannot write run 0's ledger there ({exc}); the workers need to write to the output folder's parent, at the same path as this machine") from None


def _added(a: Sums, b: Sums) -> Sums:
    return a.add(b)


def simulate(prog, sc, transactions, customers, keep, engine, progress, rejects, address: str, ledger: str, told: Callable | None = None):
    """`api.simulate` on a Dask cluster; `ledger`: the folder the workers write run 0's ledger
    dataset into (at the same path on every worker); `told(dashboard_link, tasks)` once the tasks are sent."""
    from simulator import api

    if sc.horizon is not None:
        raise ClusterError(f"{_where(sc)}horizon: the Dask executor replays the history only, no horizon yet; drop --cluster for a forecast beyond the history")
    _distributed()  # the clear error before any work
    if not partition.is_dataset(transactions) and not str(transactions).lower().endswith(partition.PARQUET):
        raise ClusterError(
            f"{transactions}: error: the Dask executor reads Parquet; write the history as a dataset first: "
            f"`loyalty partition {transactions} --out DATASET --partitions N`"
        )
    model = prog.model
    options = io.load_options(sc, model, customers)
    p = chunked.plan(transactions, sc.columns, model.decimals, sc.period, keep, np.iinfo(np.int64).max, route=False, **options)
    tx = p.load
    cust = api._loaded(tx, (lambda: io.load_customers(customers, columns=sc.columns, timestamp_format=sc.timestamp_format)) if customers is not None else None, rejects)
    start, until = api._until(sc)
    start = start if start is not None else p.first
    until = until if until is not None else p.last
    months = simulated.checked_span(metrics.month_index(start, until))
    files = _files(transactions)
    split = np.flatnonzero(p.files < 0)
    if len(split):
        raise ClusterError(
            f"{transactions}: error: customer {p.ids[split[0]]!r} has rows in more than one file of the dataset; each task replays whole "
            "customers: write the history with `loyalty partition HISTORY --out DATASET --partitions N`"
        )
    e = sc.enrollment
    # Every customer's segment, scored once over all of them (as the sliced replay does); each
    # task's paths read their customers' part.
    seg_all = replace(segments.assign(tx.prior, api._start_ns(sc), p.ids), tiers=tuple(model.tiers.names) if model.tiers else ())
    among = enrollment.in_segments(seg_all, e)
    can_join = p.can_join if among is None else p.can_join & among
    population = enrollment.Population(can_join, p.spend, rng.customer_keys(p.ids)).decided(e.share, e.pick, sc.seed, sc.runs)
    jobs = _jobs(p, files, population, cust, sc.runs, seg_all)
    counts = replace(tx, rejects=tx.rejects.iloc[:0], rejected_rows=None)
    shared = Shared(prog.source.text, prog.source.path, sc, engine, counts, months, until, keep, str(customers) if customers is not None else None, ledger)
    with connected(address) as client:
        here = client.scatter(shared, broadcast=True)

        def one_pass(under: dict) -> dict:
            """One pass of the budgets' global step, a task per file: each open run's awards."""
            tag = uuid.uuid4().hex[:8]
            got = client.gather([client.submit(file_awards, here, job, under, key=f"loyalty-budget-{job.number}-{tag}", pure=False) for job in jobs])
            return {r: pd.concat([g[r] for g in got], ignore_index=True) for r in under}

        # Budgets (a global step): every run's closings over every file, before the files' work.
        closings = montecarlo.settle_slices(model, sc.runs, one_pass) if budgets.budgeted(model) else None
        leaves = [client.submit(replay_file, here, job, closings, key=f"loyalty-file-{job.number}-{uuid.uuid4().hex[:8]}", pure=False) for job in jobs]
        total, _tree_futures = _tree(client, leaves)
        if told is not None:
            told(_dashboard(client, address), len(leaves))
        distributed = _distributed()
        for done in distributed.as_completed(leaves):
            if done.status == "error":
                done.result()  # the task's own error (a LoyaltyError says what is wrong with the data)
            if progress is not None:
                progress(1)
        sums = total.result()
    setup = api._setup(prog, sc, engine, tx, None, None, months, sums.revenue)
    customer_revenue = np.zeros(len(p.ids), dtype=np.int64)
    customer_revenue[sums.codes] = sums.customer_revenue
    setup = replace(setup, segments=replace(seg_all, baseline=sums.group_revenue, revenue=customer_revenue))
    results = [montecarlo.finish(setup, model, part, r) for r, part in enumerate(sums.parts)]
    results[0] = replace(results[0], ledger=None)
    out = replace(api.assemble(prog, sc, results, (tx, cust), tx.rows_outside_period, months, setup.segments), ledger_file=Path(ledger))
    api._first_screen(out, start, until)
    return out


def _dashboard(client, address: str) -> str:
    """The dashboard's link; a LocalCluster serves none without bokeh (a remote scheduler's own
    machine decides for itself)."""
    import importlib.util

    if LOCAL.fullmatch(address) and importlib.util.find_spec("bokeh") is None:
        return f"none (install bokeh for it: {INSTALL})"
    return client.dashboard_link


def _tree(client, level: list) -> tuple[object, list]:
    """The futures' Sums added in pairs, level by level, on the workers: the total's future, and
    every future of the tree. The caller holds them all until the total is in: a sum whose future
    is let go can be forgotten by the scheduler, and a worker lost later then cancels the total
    instead of the sum being computed again."""
    held = list(level)
    while len(level) > 1:
        level = [client.submit(_added, level[i], level[i + 1], pure=False) if i + 1 < len(level) else level[i] for i in range(0, len(level), 2)]
        held += level
    return level[0], held


def _where(sc) -> str:
    return f"{sc.source}: error: " if Path(sc.source).is_file() else ""


def _files(transactions) -> list[str]:
    """The history's files as a worker opens them: local paths, or URLs with their protocol."""
    if not partition.is_dataset(transactions):
        return [str(Path(transactions).resolve())]
    fs, paths = partition.files_of(transactions)
    from fsspec.implementations.local import LocalFileSystem

    return paths if isinstance(fs, LocalFileSystem) else [fs.unstrip_protocol(p) for p in paths]


def _jobs(p: chunked.Plan, files: list[str], population: enrollment.Population, cust, runs: int, seg: segments.Segmentation) -> list[Job]:
    """One job per file with used rows: its customers, their global first ranks, their enrolment
    (every run's choice, cut to them), their customers rows and their segments."""
    starts = np.cumsum(p.rows) - p.rows
    n = len(p.ids)
    chosen = [np.unpackbits(population.packed[r], count=n).astype(bool) for r in range(runs)]
    cust_rows = pd.Index(cust.frame["customer_id"]).get_indexer(pd.Index(p.ids)) if cust is not None else None
    jobs = []
    # Each file's customers (codes ascending), from one sort of the customers by file.
    by_file = np.argsort(p.files, kind="stable")
    edges = np.searchsorted(p.files[by_file], np.arange(len(files) + 1))
    for k, file in enumerate(files):
        g = by_file[edges[k] : edges[k + 1]]
        if not len(g):
            continue  # a file with no used row (all rejected, or outside the period)
        packed = np.stack([np.packbits(c[g]) for c in chosen])
        pop = enrollment.Population(population.can_join[g], population.spend[g], population.keys[g], packed=packed)
        cf = None
        if cust is not None:
            mine = cust_rows[g]
            cf = cust.frame.iloc[mine[mine >= 0]]
        jobs.append(Job(k, file, p.ids[g], starts[g], pop, cf, g, seg.take(g)))
    return jobs


def ledger_folder(out) -> Path:
    """Where the workers write run 0's ledger dataset: a new folder beside the output folder `out`."""
    out = Path(out)
    folder = out.parent / f".{out.name}.ledger-{uuid.uuid4().hex[:12]}"
    folder.mkdir(parents=True)
    return folder

