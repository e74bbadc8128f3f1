"""The Python API: `simulate(program, transactions, customers=None, scenario=None)`."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import rulelang
from rulelang import Program, atomic_replace, atomic_write_bytes, formula_safe, refuse_input_as_output, sha256_file
from rulelang.engine import available_cores, needed_columns
from rulelang.engine import budgets as rulelang_budgets
from rulelang.errors import LoyaltyError
from simulator import (
    acquisition,
    chunked,
    enrollment,
    horizon,
    io,
    memory,
    metrics,
    montecarlo,
    outputs,
    partition,
    provenance,
    rng,
    segments,
)
from simulator import batch as batches
from simulator.finance import simulated
from simulator.history import annotated, sorted_rows
from simulator.scenario import Scenario, load_scenario


@dataclass
class SimulationResult:
    """What a simulation produced: `.summary` (dict), `.monthly`, `.ledger` (run 0), `.rewards`;
    the finance view: `.triangles` and `.urr` (run 0's cohort triangles and URR with Mack's errors,
    as triangles.csv and urr.csv hold them), `.accounting` (accounting.csv's table, when the scenario
    asks for accounting) and `.accounting_runs` (each run's roll-forward in minor units).

    A history replayed in slices of more than `chunked.AUTO_ROWS` rows leaves run 0's ledger on
    disk (`.ledger_file`, Parquet as `write` writes it) and `.ledger` None; `read_ledger()` reads
    it either way.
    """

    summary: dict
    monthly: pd.DataFrame
    _ledger: object  # a DataFrame, montecarlo.Pieces until first read, or None (see `ledger_file`)
    rewards: pd.DataFrame
    scenario: Scenario
    program: Program
    per_run: list = field(repr=False, default_factory=list)
    loads: tuple = field(repr=False, default=())
    ledger_file: Path | None = None
    # The accounting roll-forward as accounting.csv holds it (None: the scenario asks for none).
    accounting: pd.DataFrame | None = None
    # Each run's roll-forward in minor units (simulator.finance.accounting), in run order.
    accounting_runs: list = field(repr=False, default_factory=list)
    # Run 0's cohort triangle sums over `months` (simulator.measure), for `run_triangles`.
    triangle_sums: np.ndarray | None = field(repr=False, default=None)
    segmentation: object | None = field(repr=False, default=None)  # simulator.segments.Segmentation: the pyramid's customers
    # Each run's sums per segment group and figures (measure.Partial.groups, RunResult.figures), for
    # `segments`; None when the runs were not broken down (a horizon).
    segment_runs: list | None = field(repr=False, default=None)
    months: pd.PeriodIndex | None = field(repr=False, default=None)
    _triangles: object = field(repr=False, default=None)
    _urr_by_tier: object = field(repr=False, default=None)
    _segments: object = field(repr=False, default=None)

    @property
    def segments(self) -> pd.DataFrame | None:
        """segments.csv: every figure by RFM segment and lifecycle stage and by tier at the end
        (simulator.segments), made when first asked for; None with a horizon."""
        if self._segments is None and self.segmentation is not None and self.segment_runs is not None:
            model = self.program.model
            runs = [segments.run_figures(self.segmentation, groups, figures, model.point_cost, model.decimals) for groups, figures in self.segment_runs]
            self._segments = segments.breakdown(self.segmentation, runs, model.decimals)
        return self._segments

    @property
    def run_triangles(self):
        """Run 0's cohort triangles and URR with Mack's errors (simulator.finance.simulated.RunTriangles),
        made when first asked for."""
        from simulator.finance import simulated

        if self._triangles is None and self.triangle_sums is not None:
            self._triangles = simulated.run_triangles(self.triangle_sums, self.months)
        return self._triangles

    @property
    def triangles(self) -> pd.DataFrame | None:
        """triangles.csv: run 0's cohorts by development month (cumulative points and shares)."""
        t = self.run_triangles
        return None if t is None else t.table

    @property
    def urr(self) -> pd.DataFrame | None:
        """urr.csv: run 0's URR per cohort and overall (`(all)`), with Mack's standard errors."""
        t = self.run_triangles
        return None if t is None else t.cohorts

    @property
    def has_tier_triangles(self) -> bool:
        """Whether the outputs hold urr_by_tier.csv: a program with tiers whose run 0 earned points."""
        return self.triangle_sums is not None and self.program.model.tiers is not None and bool(self.per_run and self.per_run[0]["points_issued"])

    @property
    def urr_by_tier(self) -> pd.DataFrame | None:
        """urr_by_tier.csv: run 0's URR per cohort and overall, for the whole program and then each
        tier (a lot belongs to the tier it was earned at), with Mack's errors, read from run 0's
        ledger exactly as `loyalty triangles LEDGER --by tier` writes its urr.csv."""
        if not self.has_tier_triangles:
            return None
        if self._urr_by_tier is None:
            from simulator.finance.commands import cohort_table
            from simulator.finance.triangles import analyse

            self._urr_by_tier = cohort_table(analyse(self.read_ledger(), by_tier=True))
        return self._urr_by_tier

    @property
    def ledger(self) -> pd.DataFrame | None:
        """Run 0's postings (None when a sliced run left them in `.ledger_file`)."""
        if isinstance(self._ledger, montecarlo.Pieces):
            self._ledger = self._ledger.joined()
        return self._ledger

    def read_ledger(self) -> pd.DataFrame:
        """Run 0's postings, from memory or from `.ledger_file`."""
        return self.ledger if self.ledger is not None else pd.read_parquet(self.ledger_file)

    @property
    def currency(self) -> str:
        return self.program.model.currency

    def summary_json(self) -> str:
        """summary.json's text: sorted keys, fixed layout, so same inputs give the same bytes."""
        return json.dumps(self.summary, sort_keys=True, indent=2, ensure_ascii=False) + "\n"

    def to_html(self, path: str | Path) -> Path:
        """Write the self-contained HTML report (replacing the file at once)."""
        from simulator.report import render_report

        p = Path(path)
        try:
            atomic_write_bytes(p, render_report(self).encode("utf-8"))
        except OSError as exc:
            raise LoyaltyError(f"{p}: error: cannot write: {exc}") from None
        return p

    def to_xlsx(self, path: str | Path) -> Path:
        """Write the workbook report.xlsx (simulator.workbook), replacing the file at once."""
        from simulator.workbook import write_workbook

        p = Path(path)
        try:
            with atomic_replace(p) as tmp:
                write_workbook(self, tmp)
        except OSError as exc:
            raise LoyaltyError(f"{p}: error: cannot write: {exc}") from None
        return p

    def write(self, out: str | Path) -> Path:
        """Write the outputs (`output_files`: summary.json, monthly.csv, ledger.parquet, ... report.xlsx) into `out`,
        as one set swapped in at once (simulator.outputs); `out` never holds half of a run. An `out`
        that is or holds an input, or holds files of its own, is refused."""
        refuse_input_as_output({"--out": out}, self.input_paths)
        return outputs.write_set(out, self.output_files(), may_hold=outputs.SIMULATION_FILES + outputs.OPTIONAL_FILES)

    @property
    def input_paths(self) -> dict[str, str]:
        """The files this result was made from, by what they are (transactions, ...)."""
        return {what: s["path"] for what, s in self.summary.get("sources", {}).items() if s.get("path")}

    def output_files(self) -> dict[str, Callable[[Path], None]]:
        """What `write` writes: each file's name and a writer given its path."""
        from simulator.report import render_report
        from simulator.workbook import write_workbook

        def text(make: Callable[[], str]) -> Callable[[Path], None]:
            return lambda p: p.write_text(make(), encoding="utf-8")

        def table(frame: Callable[[], pd.DataFrame]) -> Callable[[Path], None]:
            return text(lambda: formula_safe(frame()).to_csv(index=False, lineterminator="\n"))

        files = {
            "summary.json": text(self.summary_json),
            "monthly.csv": table(lambda: self.monthly),
            "rewards.csv": table(lambda: self.rewards),
            "ledger.parquet": self._write_ledger,
        }
        if self.triangle_sums is not None:
            files |= {"triangles.csv": table(lambda: self.triangles), "urr.csv": table(lambda: self.urr)}
        if self.has_tier_triangles:
            files["urr_by_tier.csv"] = table(lambda: self.urr_by_tier)
        if self.accounting is not None:
            files["accounting.csv"] = table(lambda: self.accounting)
        if self.segments is not None:
            files["segments.csv"] = table(lambda: self.segments)
        return files | {"report.html": text(lambda: render_report(self)), "report.xlsx": lambda p: write_workbook(self, p)}

    def _write_ledger(self, path: Path) -> None:
        if self.ledger is None and self.ledger_file is not None and Path(self.ledger_file).is_dir():
            # The Dask executor's dataset (a file per task), linked in rather than copied where it can be.
            shutil.copytree(self.ledger_file, path, copy_function=_link_or_copy, ignore=shutil.ignore_patterns(".*"))
        elif self.ledger is None and self.ledger_file is not None:
            shutil.copyfile(self.ledger_file, path)
        else:
            table = ledger_table(self.ledger, self.program.model.decimals)
            pq.write_table(table, path, **ledger_parquet_options(table.schema))


def _link_or_copy(src, dst) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system, or one without hard links
        shutil.copy2(src, dst)


def to_decimal(minor, decimals: int) -> list:
    """Integer minor units as exact Decimals in currency units."""
    return [Decimal(int(v)).scaleb(-decimals) for v in minor]


def ledger_table(ledger: pd.DataFrame, decimals: int) -> pa.Table:
    """The ledger for Parquet: minor-unit columns, plus cost and partner share as exact decimals."""
    table = pa.Table.from_pandas(ledger, preserve_index=False)
    for col in ("cost", "partner_share"):
        table = table.append_column(f"{col}_amount", decimal_array(ledger[col].to_numpy(), decimals))
    return table


def ledger_parquet_options(schema: pa.Schema) -> dict:
    """How a ledger is written (`write`'s file and a sliced run's spill alike): dictionary pages
    only for its text columns (building dictionaries of the integer columns was a third of the
    time), statistics for the columns one filters a ledger by, and zstd at its fastest level
    (smaller and faster than pyarrow's defaults: docs/performance.md)."""
    text = [f.name for f in schema if pa.types.is_dictionary(f.type)]
    stats = [c for c in ("customer_id", "timestamp", "kind") if c in schema.names]
    return {"use_dictionary": text, "write_statistics": stats, "compression": "zstd", "compression_level": 1}


def decimal_array(minor: np.ndarray, decimals: int) -> pa.Array:
    """Integer minor units as an exact decimal128(18, decimals) array, built from its unscaled integers."""
    v = np.asarray(minor, dtype=np.int64)
    # decimal128 stores the unscaled value as a 128-bit little-endian two's complement integer.
    words = np.empty((len(v), 2), dtype=np.int64)
    words[:, 0] = v
    words[:, 1] = np.where(v < 0, -1, 0)
    return pa.Array.from_buffers(pa.decimal128(18, decimals), len(v), [None, pa.py_buffer(words.tobytes())])


def load_program(program) -> Program:
    """A Program from a Program, or from a path to a .loyalty file."""
    if isinstance(program, Program):
        return program
    if isinstance(program, str | Path):
        p = Path(program)
        if not p.exists():
            raise LoyaltyError(f"{p}: error: no such program file")
        return rulelang.load(p)
    raise LoyaltyError(f"program must be a rulelang Program or a path to a .loyalty file, not {type(program).__name__}")


def load_scenario_arg(scenario) -> Scenario:
    """A Scenario from a Scenario, a YAML path, a mapping, or None (every default)."""
    if scenario is None:
        return Scenario()
    if isinstance(scenario, Scenario):
        return scenario
    if isinstance(scenario, dict):
        return Scenario.from_dict(scenario)
    return load_scenario(scenario)


def simulate(
    program,
    transactions,
    customers=None,
    scenario=None,
    *,
    workers: int | None = None,
    engine: str = "compiled",
    progress: Callable[[int], None] | None = None,
    rejects: str | Path | None = None,
    slice_rows: int | None = None,
    tune_memory: bool | None = None,
    cluster: str | None = None,
    ledger_to: str | Path | None = None,
    told: Callable[[str, int], None] | None = None,
) -> SimulationResult:
    """Replay `transactions` through `program` under `scenario`'s assumptions, `runs` times.

    A Parquet history of more than `chunked.AUTO_ROWS` rows (or any Parquet history when
    `slice_rows` is given) is replayed in slices of whole customers of about `slice_rows` rows
    (default `chunked.SLICE_ROWS`), with identical results and bounded memory (simulator.chunked).

    `workers` is how many cores to use (default: those available to the process): worker
    processes for the runs, or threads of one process for a single run; the results are the same
    whatever it is. `tune_memory=True` switches Arrow's allocator for the simulation and back
    (simulator.memory; default: the `LOYALTY_TUNE_MEMORY` environment variable, else off).

    `summary["sources"]` records what each input was: its path and sha256 (hashed on a second
    thread while the simulation runs), or what was given instead of a file. A `rejects` path that
    is an input is refused before any work.

    `cluster` (else the scenario's `cluster:`): run on Dask (simulator.cluster), `local:N` or a
    scheduler's address, with the same results; the history is best a customer-partitioned dataset
    (`loyalty partition`), one task per file. The workers write run 0's ledger as a Parquet dataset
    into `ledger_to` (a folder every worker can write to at that path; default: a temporary folder
    of this machine, for `local:N`), and `told(dashboard link,
    tasks)` is called once the tasks are sent; `progress(1)` as each ends.
    """
    given = given_sources(program, transactions, customers, scenario)
    refuse_input_as_output({"--rejects": rejects}, {what: v for what, v in given.items() if isinstance(v, Path)} | partition.local_folders(given))
    workers = available_cores() if workers is None else workers
    if workers < 1:
        raise LoyaltyError(f"workers: {workers} is fewer than 1; give a number of cores, or none for all available")
    tune = memory.wanted(tune_memory)
    with ThreadPoolExecutor(1) as hasher, memory.tuned(tune), memory.existing_objects_frozen():
        sources = hasher.submit(describe_sources, given)
        result = _simulate(program, transactions, customers, scenario, workers, engine, progress, rejects, slice_rows, tune, (cluster, ledger_to, told))
        result.summary["sources"] = sources.result()
    return result


def given_sources(program, transactions, customers, scenario) -> dict[str, object]:
    """Each input as a file Path, or a phrase saying what was given instead (None: nothing)."""

    def of(value, other: str):
        if partition.is_dataset(value):
            return partition.Dataset(str(value))
        if isinstance(value, str | Path):
            return Path(value)
        return None if value is None else other

    prog = of(program, "program text")
    if isinstance(program, Program):
        path = Path(program.source.path)
        prog = path if path.is_file() else "program text"
    sc = of(scenario, "a mapping")
    if isinstance(scenario, Scenario):
        sc = Path(scenario.source) if Path(scenario.source).is_file() else "the defaults and command-line values"
    return {
        "transactions": of(transactions, "a pandas DataFrame"),
        "customers": of(customers, "a pandas DataFrame"),
        "program": prog,
        "scenario": sc,
    }


def describe_sources(given: dict[str, object]) -> dict[str, dict]:
    """`given_sources` for summary.json: {path (absolute), sha256, given} per input."""
    from simulator.sample_data import bundled_paths

    bundled = bundled_paths()
    out = {}
    for what, v in given.items():
        if isinstance(v, partition.Dataset):
            out[what] = partition.describe(v.spec)
            continue
        if not isinstance(v, Path):
            out[what] = {"path": None, "sha256": None, "given": v if v is not None else "none"}
            continue
        if v.exists() and not v.is_file():  # a pipe or /dev/zero: hashing it would block or never end
            out[what] = {"path": str(v.resolve()), "sha256": None, "given": "not a regular file"}
            continue
        try:
            sample = any(b.is_file() and os.path.samefile(v, b) for b in bundled)
            out[what] = {"path": str(v.resolve()), "sha256": sha256_file(v), "given": "the bundled sample" if sample else "a file"}
        except OSError:  # the input's own reader reports it; the record says what it could
            out[what] = {"path": str(v.resolve()), "sha256": None, "given": "a file that could not be read"}
    return out


def _simulate(program, transactions, customers, scenario, workers, engine, progress, rejects, slice_rows, tune=False, dask=(None, None, None)) -> SimulationResult:
    sc = load_scenario_arg(scenario)
    _refuse_acquisition_without_horizon(sc)
    prog = load_program(program)
    model = prog.model
    # Only the columns the rules read are loaded (all of them when rejected rows are written out).
    keep = None if rejects is not None else needed_columns(model)[0]
    address, ledger_to, told = dask
    if address is not None or sc.cluster is not None:
        return _simulate_on_cluster(prog, sc, transactions, customers, keep, engine, progress, rejects, address or sc.cluster, ledger_to, told)
    n = chunked.parquet_rows(transactions)
    if n is not None and (slice_rows is not None or n > chunked.AUTO_ROWS):
        size = slice_rows or chunked.SLICE_ROWS
        return _simulate_sliced(prog, sc, transactions, customers, keep, size, workers, engine, progress, rejects)
    with _prepared(prog, sc, transactions, customers, keep, workers, engine, rejects, tune) as ready:
        setup, tx, cust, future = ready.setup, ready.load, ready.customers, ready.setup.horizon
        partials = montecarlo.run_all(setup, sc.runs, workers, progress)
    results = [montecarlo.finish(setup, model, p, r) for r, p in enumerate(partials)]
    out = assemble(prog, sc, results, (tx, cust), tx.rows_outside_period, setup.months, setup.segments)
    if future is not None:
        out.summary["horizon"] = future.describe()
        out.summary["horizon"]["acquisition"] = ready.acquired.describe()
    _first_screen(out, ready.start, setup.history.until)
    return out


def _simulate_on_cluster(prog, sc, transactions, customers, keep, engine, progress, rejects, address, ledger_to, told) -> SimulationResult:
    """`simulate` on Dask (simulator.cluster); run 0's ledger is the dataset the workers wrote."""
    from simulator import cluster

    if isinstance(transactions, pd.DataFrame):
        raise cluster.ClusterError("--cluster: error: the Dask executor reads a file or a dataset (workers load their own part), not a DataFrame")
    temporary = ledger_to is None
    folder = tempfile.mkdtemp(prefix="loyalty-ledger-") if temporary else str(ledger_to)
    try:
        out = cluster.simulate(prog, sc, transactions, customers, keep, engine, progress, rejects, address, folder, told)
    except BaseException:
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    if temporary:
        weakref.finalize(out, shutil.rmtree, folder, True)  # the dataset lives as long as the result
    return out


def _refuse_acquisition_without_horizon(sc: Scenario) -> None:
    """New customers (`acquisition`) join only in a horizon: refused, naming the scenario, without one."""
    if sc.acquisition is not None and sc.horizon is None:
        where = f"{sc.source}: error: " if Path(sc.source).is_file() else ""
        raise horizon.HorizonError(f"{where}acquisition: new customers join only in a horizon after the history; add `horizon: 24 months` (say) or drop `acquisition`")


@dataclass(frozen=True)
class Prepared:
    """A history loaded and ready for paths: the set-up every run reads (its `horizon`, the fitted
    future, and `acquisition`, its new customers, if any), and the load reports of the
    transactions and the customers."""

    program: Program
    setup: montecarlo.Setup
    load: io.LoadResult
    customers: io.LoadResult | None
    start: pd.Timestamp  # the replay's first day (the period's, else the history's first row's)
    acquired: object | None  # simulator.acquisition's fit with a horizon (described in summary.json), else None


@contextmanager
def prepared(program, transactions, customers=None, scenario=None, *, workers: int | None = None, engine: str = "compiled") -> Iterator[Prepared]:
    """The history of `simulate(program, transactions, customers, scenario)` loaded once and ready
    for paths (`montecarlo.run_one` over `.setup`), as `simulate` prepares it: the same rows, base
    batch and horizon, so paths run over it give `simulate`'s figures. Always in one piece (a
    history `simulate` would replay in slices is loaded whole)."""
    sc = load_scenario_arg(scenario)
    _refuse_acquisition_without_horizon(sc)
    prog = load_program(program)
    workers = available_cores() if workers is None else workers
    keep = needed_columns(prog.model)[0]
    with _prepared(prog, sc, transactions, customers, keep, workers, engine, None) as ready:
        yield ready


@contextmanager
def _prepared(prog: Program, sc: Scenario, transactions, customers, keep, workers, engine, rejects, tune=False) -> Iterator[Prepared]:
    """Load, sort and annotate the history, build its base batch and fit its horizon: the set-up
    the paths run over, ready while the context lasts (the base may still be being built: the first
    path waits for it only to evaluate)."""
    model = prog.model
    # The customers file is read on a second thread while the transactions load (Arrow and NumPy
    # release the GIL); its errors still come after the transactions' own, as they would in turn.
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(io.load_customers, customers, columns=sc.columns, timestamp_format=sc.timestamp_format) if customers is not None else None
        tx = io.load_transactions(transactions, columns=sc.columns, currency_decimals=model.decimals, period=sc.period, keep=keep, **io.load_options(sc, model, customers))
        cust = _loaded(tx, pending.result if pending is not None else None, rejects)
    start, until = _until(sc)
    core = sorted_rows(tx.frame, model.decimals, until)
    # The loaded rows live on in `history` and `base`; the result keeps only the load reports.
    tx = replace(tx, frame=_no_rows(tx.frame))
    start = start if start is not None else core.start
    with ThreadPoolExecutor(1) as pool, ThreadPoolExecutor(1) as fitting:
        # The base batch is built on a second thread from the sorted rows, while the history is
        # finished and the first path enrols, responds and redeems (none of which reads it); the
        # path waits for it only to evaluate. A horizon's models are fitted on a third, from the
        # sorted rows too.
        base = pool.submit(_built_base, [core], model, cust.frame if cust is not None else None)
        models = fitting.submit(horizon.fit_models, core, sc.horizon, sc.runs, sc.seed) if sc.horizon is not None else None
        try:
            history = annotated(core)
            # The sorted rows are the base's to read now: the loaded columns that neither the
            # base nor the history keeps (the amounts as read, the codes before sorting, the
            # input row numbers) are freed once the base is built, not held through the paths.
            del core
            # The runs need only the helper columns; the engine reads the base batch.
            history = replace(history, rows=history.rows[["timestamp"] + [c for c in history.rows.columns if c.startswith("_")]])
            if tune and montecarlo.worker_processes(sc.runs, workers) <= 1:
                # Then what they held goes back to the system: the paths' threads allocate from
                # arenas of their own, where it would not be used again (simulator.memory). Not
                # before forking worker processes: each would fault the pages in again.
                base.add_done_callback(lambda _: memory.give_back_free())
            future = _fitted(sc, lambda: horizon.fit(history, sc.horizon, sc.runs, sc.seed, models.result())) if models is not None else None
            # With a horizon every month of it is reported: monthly.csv, the roll-forward, the summary.
            months = simulated.checked_span(metrics.month_index(start, future.end if future is not None else history.until))
            setup = _setup(prog, sc, engine, tx, history, base, months, montecarlo.baseline_revenue(history, months))
            acquired = _fitted(sc, lambda: acquisition.fit(history, future, sc.acquisition, sc.runs, sc.seed)) if future is not None else None
            # No run with a new customer (`per_month: 0`): the paths are the horizon's alone.
            setup = replace(setup, horizon=future, acquisition=acquired if acquired is not None and acquired.capacity else None)
            # (With a horizon the segments steer enrolment and response; the figures are not broken down.)
            setup = replace(setup, segments=segments.of_history(tx.prior, _start_ns(sc), history, model.tiers.names if model.tiers else ()))
            yield Prepared(prog, setup, tx, cust, start, acquired)
        except Exception:
            base.result()  # the data's own error first, as when the base was built before the paths
            raise


def _first_screen(out: SimulationResult, first: pd.Timestamp, last: pd.Timestamp) -> None:
    """summary.json's span, the sources of the assumptions and the warnings (simulator.provenance)."""
    expired = any(r["points_expired"] for r in out.per_run)
    out.summary.update(provenance.describe(out.scenario, out.program.model.expiry, first, last, out.summary.get("horizon"), expired))
    out.summary["warnings"] += budget_warnings(out.summary.get("budgets", {}))


def budget_warnings(figures: dict) -> list[dict]:
    """A budget no run reached limits nothing in this simulation: said, with the most it gave."""
    out = []
    for name, b in figures.items():
        if b["runs_ran_out"] == 0:
            most = max(b["used_by_run"], default=0)
            out.append({"code": "budget_not_reached", "figures": [], "message": f"the budget of `{name}` was not reached in any run",
                        "detail": f"at most {most:,} of its {b['budget']:,} {b['unit']} were given, so it limits nothing here; "
                                  "a smaller budget, or a longer history or horizon, would show its effect"})
    return out


def _fitted(sc: Scenario, fit: Callable):
    """The horizon's models, or their refusal naming the scenario file the horizon was set in."""
    try:
        return fit()
    except horizon.HorizonError as exc:
        if Path(sc.source).is_file():
            raise horizon.HorizonError(f"{sc.source}: error: {exc}") from None
        raise


def _built_base(held: list, model, customers):
    """The base batch from the sorted rows in `held`, taken out of it: when the batch is built,
    nothing of this thread's task holds them any more."""
    return batches.base(held.pop(), model, customers)


def _no_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame`'s columns and their types with no rows, and none of its arrays: `frame.iloc[:0]`
    would be views of them, holding every loaded row for as long as the result lives."""
    empty = pd.DataFrame({i: pd.array([], dtype=dtype) for i, dtype in enumerate(frame.dtypes)})
    empty.columns = frame.columns  # (names as they are, repeated ones too)
    return empty


def _loaded(tx, load_customers: Callable[[], io.LoadResult] | None, rejects):
    """After loading: refuse a history with no usable row, load the customers, and write the
    rejected rows of both (those of the transactions even when the customers fail to load)."""
    cust = None
    try:
        if tx.rows_used == 0:
            # With the reasons of the rejects (the load report's lines after its counts): else they go unsaid.
            reasons = "".join("\n" + line for line in tx.report().splitlines()[1:])
            raise LoyaltyError(
                f"{tx.source}: error: no usable transaction rows ({tx.rows_read} read, {tx.rows_rejected} rejected, {tx.rows_outside_period} outside the period){reasons}"
            )
        cust = load_customers() if load_customers is not None else None
    finally:
        if rejects is not None:
            io.write_rejects(tx, rejects, cust)
    return cust


def _setup(prog: Program, sc: Scenario, engine, tx, history, base, months, baseline, population=None) -> montecarlo.Setup:
    # Rows outside the period are read but neither used nor rejected; they count as read.
    return montecarlo.Setup(
        program_text=prog.source.text,
        program_path=prog.source.path,
        history=history,
        base=base,
        scenario=sc,
        engine=engine,
        counts=(tx.rows_read, tx.rows_used, tx.rows_rejected),
        months=months,
        baseline=baseline,
        population=population,
    )


def _until(sc: Scenario):
    if sc.period is None:
        return None, None
    return pd.Timestamp(sc.period.start), pd.Timestamp(sc.period.end) + pd.Timedelta(days=1) - pd.Timedelta(nanoseconds=1)


def _simulate_sliced(prog: Program, sc: Scenario, transactions, customers, keep, size: int, workers, engine, progress, rejects) -> SimulationResult:
    """`simulate` over slices of customers: each path's exact sums added up slice by slice.

    With a horizon the file is read once more first, slice by slice, for the customers' purchase
    summaries and the baskets per day: the models are fitted to every customer at once, and each
    slice's future is drawn from them as the whole history's path draws it (`horizon.fit`'s
    `models`, `season` and `code_offset`)."""
    if sc.horizon is not None and sc.acquisition != 0:
        # New customers copy past new customers from anywhere in the history: from other slices.
        where = f"{sc.source}: error: " if Path(sc.source).is_file() else ""
        raise horizon.HorizonError(
            f"{where}acquisition: a history replayed in slices (a Parquet file of more than {chunked.AUTO_ROWS:,} rows, or `slice_rows` given) "
            "cannot draw new customers yet; set `acquisition: {per_month: 0}` (--acquisition 0) or replay a smaller history in one piece"
        )
    model = prog.model
    p = chunked.plan(transactions, sc.columns, model.decimals, sc.period, keep, size, **io.load_options(sc, model, customers))
    tx = p.load
    cust = _loaded(tx, (lambda: io.load_customers(customers, columns=sc.columns, timestamp_format=sc.timestamp_format)) if customers is not None else None, rejects)
    start, until = _until(sc)
    start = start if start is not None else p.first
    until = until if until is not None else p.last
    models = None
    if sc.horizon is not None:
        models, season = _fitted(sc, lambda: _sliced_models(transactions, p, sc, model, keep, size, until, customers))
    months = simulated.checked_span(metrics.month_index(start, models.end if models is not None else until))
    future_customers = 0
    e = sc.enrollment
    # Every run's choice is made once, not again in every slice and worker.
    # Every customer's segment, scored once over all of them; each slice's paths read their part.
    seg_all = replace(segments.assign(tx.prior, _start_ns(sc), p.ids), tiers=tuple(model.tiers.names) if model.tiers else ())
    among = enrollment.in_segments(seg_all, e)
    can_join = p.can_join if among is None else p.can_join & among
    population = enrollment.Population(can_join, p.spend, rng.customer_keys(p.ids)).decided(e.share, e.pick, sc.seed, sc.runs)
    totals: list | None = None
    baseline = np.zeros(len(months), dtype=np.int64)
    ledgers: dict[int, pd.DataFrame] = {}
    path_rows: dict[int, int] = {}
    spill = _LedgerSpill(model.decimals) if tx.rows_used > chunked.AUTO_ROWS else None
    seg_baseline = np.zeros(segments.GROUPS, dtype=np.int64)
    seg_revenue = np.zeros(len(p.ids), dtype=np.int64)
    # Each planned customer's row in the customers table (-1: none), looked up once for all slices.
    cust_rows = pd.Index(cust.frame["customer_id"]).get_indexer(pd.Index(p.ids)) if cust is not None else None
    builder = ThreadPoolExecutor(1)

    def slice_of(k: int, history, counted: bool = True) -> tuple:
        """A slice's bounds among the planned customers, its customers' table and its horizon's fit."""
        lo, hi = int(p.bounds[k]), int(p.bounds[k + 1])
        cf = cust.frame if cust is not None else None
        if cf is not None:
            # A slice's customers are the planned ones lo .. hi, in the same (sorted) order.
            if not np.array_equal(history.customer_ids, p.ids[lo:hi]):
                raise AssertionError("a slice's customers differ from the plan's")
            mine = cust_rows[lo:hi]
            cf = cf.iloc[mine[mine >= 0]]
        fit = None
        if models is not None:

            def fit(trimmed, lo=lo, hi=hi):
                nonlocal future_customers
                hz = _fitted(sc, partial(horizon.fit, trimmed, sc.horizon, sc.runs, sc.seed, models.part(lo, hi), season, lo))
                future_customers += len(hz.code) if counted else 0
                return hz

        return lo, hi, cf, fit

    def one_pass(under: dict) -> dict:
        """One pass of the budgets' global step over every slice: each open run's awards."""
        found: dict = {r: [] for r in under}
        for k, history in chunked.slices(transactions, p, sc.columns, model.decimals, sc.period, keep, size, until, **io.load_options(sc, model, customers)):
            lo, hi, cf, fit = slice_of(k, history, counted=False)
            got, _, _ = replay_slice(prog, sc, engine, tx, history, cf, months, replace(population, lo=lo), workers, None, fit, builder, seg_all.cut(lo, hi),
                                     awards_under=under)
            for r, a in got.items():
                found[r].append(a)
        return {r: pd.concat(v, ignore_index=True) for r, v in found.items()}

    try:
        # Budgets (a global step): every run's closings over every slice, before the slices' work.
        closings = montecarlo.settle_slices(model, sc.runs, one_pass) if rulelang_budgets.budgeted(model) else None
        for k, history in chunked.slices(transactions, p, sc.columns, model.decimals, sc.period, keep, size, until, **io.load_options(sc, model, customers)):
            lo, hi, cf, fit = slice_of(k, history)
            last = len(ledgers) == p.slices - 1
            parts, revenue, setup = replay_slice(prog, sc, engine, tx, history, cf, months, replace(population, lo=lo), workers, progress if last else None, fit, builder,
                                                 seg_all.cut(lo, hi), closings=closings)
            baseline += revenue
            seg_baseline += setup.segments.baseline
            seg_revenue[lo:hi] = setup.segments.revenue
            setup = replace(setup, history=None, base=None)  # (the slice's rows are done with)
            ledgers[k], path_rows[k] = montecarlo.whole(parts[0].ledger), parts[0].rows
            parts[0].ledger = None
            if spill is not None:
                # Slices come in slice order when the file is grouped by customer; held back otherwise.
                while spill.next in ledgers:
                    spill.add(ledgers.pop(spill.next), sum(path_rows[j] for j in range(spill.next)))
            totals = parts if totals is None else [a.add(b) for a, b in zip(totals, parts, strict=True)]
            del history, parts
            pa.default_memory_pool().release_unused()  # Arrow's pool would keep the slice's peak
    except BaseException:
        if spill is not None:
            spill.discard()  # no temporary file is left behind by a failed simulation
        raise
    finally:
        builder.shutdown()
    setup = replace(setup, history=None, base=None, baseline=baseline, population=None)
    setup = replace(setup, segments=replace(seg_all, baseline=seg_baseline, revenue=seg_revenue))
    results = [montecarlo.finish(setup, model, part, r) for r, part in enumerate(totals)]
    described = None
    if models is not None:
        described = setup.horizon.describe() | {"customers_with_a_future": future_customers, "acquisition": acquisition.none_in_slices()}
    # Run 0's ledger in slice order, its `row` numbering the whole path's rows.
    if spill is not None:
        results[0] = replace(results[0], ledger=None)
        out = replace(assemble(prog, sc, results, (tx, cust), tx.rows_outside_period, months, setup.segments), ledger_file=spill.close())
        weakref.finalize(out, shutil.rmtree, out.ledger_file.parent, True)  # the file lives as long as the result
        if described is not None:
            out.summary["horizon"] = described
        _first_screen(out, start, until)
        return out
    shift = np.r_[0, np.cumsum([path_rows[k] for k in sorted(ledgers)])]
    ledger = pd.concat([montecarlo.shift_rows(ledgers[k], shift[i]) for i, k in enumerate(sorted(ledgers))], ignore_index=True)
    results[0] = replace(results[0], ledger=ledger)
    out = assemble(prog, sc, results, (tx, cust), tx.rows_outside_period, months, setup.segments)
    if described is not None:
        out.summary["horizon"] = described
    _first_screen(out, start, until)
    return out


def replay_slice(prog: Program, sc: Scenario, engine, tx, history, customers, months, population, workers, progress=None, fit=None, builder=None, seg=None,
                 closings: dict | None = None, awards_under: dict | None = None) -> tuple:
    """Every run over one slice of whole customers (`history`, its `_row` ranking its rows among the
    whole history's), with the enrolment choice made over everyone (`population`): each run's exact
    sums (run 0's ledger kept), the slice's own revenue per month, and the set-up the runs read.
    The sliced replay runs it slice by slice; the Dask executor (simulator.cluster), one task per file.
    `fit`: the slice's horizon from its history, if any; `builder`: the thread to build its base on;
    `seg`: the slice's customers' segments (simulator.segments), completed with their revenue here.
    Budgets (a global step): `closings`, each run's settled over every slice before; `awards_under`
    (run -> closings), one pass of that step: then each of those runs' awards here, by run, instead
    of the sums (montecarlo.settle_slices)."""
    model = prog.model
    own = builder is None
    builder = ThreadPoolExecutor(1) if own else builder
    try:
        # As in one pass: the slice's base is built beside its first path's early steps.
        base = builder.submit(batches.base, history, model, customers)
        history = replace(history, rows=history.rows[["timestamp"] + [c for c in history.rows.columns if c.startswith("_")]])
        revenue = montecarlo.baseline_revenue(history, months)
        setup = _setup(prog, sc, engine, tx, history, base, months, revenue, population)
        if seg is not None:
            setup = replace(setup, segments=seg.with_baseline(history.rows))
        if fit is not None:
            setup = replace(setup, horizon=fit(history))
        if closings is not None:
            setup = replace(setup, closings=closings)
        if awards_under is not None:
            return {r: montecarlo.run_one(setup, prog, r, awards_under=c) for r, c in awards_under.items()}, revenue, setup
        try:
            parts = montecarlo.run_all(setup, sc.runs, workers, progress)
        except Exception:
            base.result()  # the data's own error first, as when the base was built before the paths
            raise
        return parts, revenue, setup
    finally:
        if own:
            builder.shutdown()


def _sliced_models(transactions, p: chunked.Plan, sc: Scenario, model, keep, size: int, until, customers) -> tuple:
    """The horizon's models and seasonality from every slice of the history (one more read of
    the file): the customers' summaries and the baskets per day, slice by slice, fitted at once."""
    parts, days = [], pd.Series(dtype=np.int64)
    for k, history in chunked.slices(transactions, p, sc.columns, model.decimals, sc.period, keep, size, until, **io.load_options(sc, model, customers)):
        if history.rows["_purchase"].to_numpy().any():  # (a slice with no purchase has no summary)
            parts.append(horizon.summarised(history).moved(int(p.bounds[k])))
            days = days.add(horizon.basket_days(horizon.basket_starts(history)), fill_value=0)
    if not parts:
        raise horizon.HorizonError("horizon: the history has no purchases; nothing to fit")
    models = horizon.models_from(horizon.Summary.joined(parts), pd.Timestamp(until), len(p.ids), sc.horizon, sc.runs, sc.seed)
    return models, horizon.seasonality_of_days(days.astype(np.int64), pd.Timestamp(until))


class _LedgerSpill:
    """Run 0's ledger written slice by slice to a temporary Parquet file, as `write` writes it.

    Each slice's postings are written on a thread of their own while the next slice is read and
    simulated (Arrow's Parquet writer releases the GIL); at most one slice waits to be written.
    """

    def __init__(self, decimals: int):
        self.decimals = decimals
        self.path = Path(tempfile.mkdtemp(prefix="loyalty-ledger-")) / "ledger.parquet"
        self.writer: pq.ParquetWriter | None = None
        self.next = 0
        self._pool = ThreadPoolExecutor(1)
        self._pending = None

    def add(self, ledger: pd.DataFrame, shift: int) -> None:
        table = ledger_table(montecarlo.shift_rows(ledger, shift), self.decimals)
        # Each slice has its own dictionaries (each becomes its row groups' own dictionary pages);
        # 32-bit indices everywhere make one schema for the file.
        for i, f in enumerate(table.schema):
            if pa.types.is_dictionary(f.type) and f.type.index_type != pa.int32():
                table = table.set_column(i, f.name, table.column(i).cast(pa.dictionary(pa.int32(), f.type.value_type)))
        self._wait()
        self._pending = self._pool.submit(self._write, table)
        self.next += 1

    def _write(self, table: pa.Table) -> None:
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema, **ledger_parquet_options(table.schema))
        self.writer.write_table(table.cast(self.writer.schema))

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            try:
                pending.result()  # a failed write is raised here
            except OSError as exc:
                raise LoyaltyError(f"{self.path}: error: cannot write run 0's ledger (a temporary file): {exc}") from None

    def discard(self) -> None:
        """Stop writing and remove the temporary file (the simulation failed)."""
        try:
            self.close()
        except Exception:  # noqa: BLE001 - the simulation's own error is the one to report
            pass
        shutil.rmtree(self.path.parent, ignore_errors=True)

    def close(self) -> Path:
        try:
            self._wait()
        finally:
            self._pool.shutdown()
            if self.writer is not None:
                self.writer.close()
        return self.path


def assemble(prog: Program, sc: Scenario, results: list, loads: tuple, outside: int, months: pd.PeriodIndex | None = None, seg=None) -> SimulationResult:
    """Summary, monthly table, rewards and ledger from the runs; the URR's and the accounting's
    across runs (simulator.finance.simulated); `months`: the simulation's (run 0's triangle's);
    `seg`: the customers' segments (simulator.segments), for segments.csv."""
    model = prog.model
    dec = model.decimals
    per_run = [r.figures for r in results]
    summary = metrics.summarise(per_run, dec)
    summary["rows_outside_period"] = metrics.spread([outside] * len(per_run), None)
    summary["program"] = model.name
    summary["currency"] = model.currency
    summary["percentile_method"] = metrics.PERCENTILE_METHOD
    summary["assumptions"] = sc.to_dict()
    summary["urr_estimate"] = simulated.urr_summary(
        [r.urr for r in results], per_run, model.point_cost, dec, sc.seed
    )
    books = None
    if sc.accounting is not None:
        frames = [r.accounting for r in results]
        summary["accounting"] = simulated.accounting_summary(frames, sc.accounting.method, dec)
        books = simulated.accounting_table(frames, sc.accounting.method, dec)
    if results[0].budgets is not None:
        summary["budgets"] = budget_summary(model, [r.budgets for r in results])
    monthly = pd.concat([r.monthly for r in results], ignore_index=True)
    for col in metrics.MONTHLY_MONEY + tuple(c for c in metrics.COST_KIND_FIGURES if c in monthly.columns):
        monthly[col] = to_decimal(monthly[col], dec)
    return SimulationResult(
        summary, monthly, results[0].ledger, rewards_table(results, model, dec), sc, prog, per_run, loads,
        accounting=books, accounting_runs=[r.accounting for r in results] if books is not None else [],
        triangle_sums=results[0].triangle, months=months, segmentation=seg,
        segment_runs=None if seg is None or any(r.groups is None for r in results) else [(r.groups, r.figures) for r in results],
    )  # fmt: skip


def budget_summary(model, per_run: list) -> dict:
    """Per budgeted rule (rulelang.engine.budgets): its budget, what it gave in each run and across
    runs, and the day it ran out in each run (null: it did not), with how many runs it ran out in.
    Points as integers; money in the program's currency."""
    dec = model.decimals
    out = {}
    for k, (name, budget, kind) in enumerate(rulelang_budgets.budgeted(model)):
        money = kind == "discount"
        shown = (lambda v: Decimal(int(v)).scaleb(-dec)) if money else int
        used = [shown(used[k]) for used, _ in per_run]
        days = [None if int(at[k]) < 0 else str(pd.Timestamp(int(at[k])).date()) for _, at in per_run]
        out[name] = {
            "unit": model.currency if money else "points",
            "budget": float(shown(budget)) if money else budget,
            "used": metrics.spread(used, dec if money else None),
            "used_by_run": [float(u) if money else u for u in used],
            "ran_out_by_run": days,
            "runs_ran_out": sum(d is not None for d in days),
        }
    return out


def _start_ns(sc: Scenario) -> int | None:
    """The replayed period's first moment (int64 ns), when the scenario gives a period."""
    return pd.Timestamp(sc.period.start).value if sc.period is not None else None


def rewards_table(results: list, model, dec: int) -> pd.DataFrame:
    """Per reward (catalog order): mean redemptions, points, cost and partner share per run, and count P5/P95."""
    names = [r.name for r in model.rewards]
    counts = np.array([[int(r.rewards["count"].get(n, 0)) for n in names] for r in results], dtype=np.int64).reshape(
        len(results), len(names)
    )
    rows = []
    for j, n in enumerate(names):
        col = {k: [int(r.rewards[k].get(n, 0)) for r in results] for k in ("points", "cost", "partner_share")}
        s = metrics.spread(counts[:, j].tolist(), None)
        rows.append(
            {
                "reward": n,
                "count": s["mean"],
                "count_p5": s["p5"],
                "count_p95": s["p95"],
                "points": metrics.spread(col["points"], None)["mean"],
                "cost": round(float(np.mean(col["cost"])) / 10**dec, dec),
                "partner_share": round(float(np.mean(col["partner_share"])) / 10**dec, dec),
            }
        )
    return pd.DataFrame(rows, columns=["reward", "count", "count_p5", "count_p95", "points", "cost", "partner_share"])
