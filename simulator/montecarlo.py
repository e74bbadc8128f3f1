"""Monte Carlo: `runs` paths of enrolment, response and redemption through the engine.

Path r draws everything from counter-based streams keyed by (seed, r, customer, row), so a path
is the same whichever process runs it and however runs are split among workers. Runs go to a
process pool (one worker per core available by default); results are gathered in run order, so
same seed -> same summary byte for byte, whatever the worker count.
"""

from __future__ import annotations

import importlib
import multiprocessing
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

import rulelang
from rulelang.engine import ENGINES, Batch, available_cores, member_parts, needed_columns
from rulelang.engine import budgets as global_step
from rulelang.errors import LoyaltyError
from simulator import acquisition, enrollment, horizon, metrics, redemption, response
from simulator import batch as batches
from simulator.finance import simulated
from simulator.history import History, with_columns
from simulator.measure import Partial, measure


@dataclass(frozen=True)
class Setup:
    """Everything a run needs; picklable, so workers receive it once."""

    program_text: str
    program_path: str
    history: History  # helper columns only: the engine reads `base`
    # The whole history, validated once (simulator.batch); or its Future, still being built while
    # a single process's first path does what needs no base (`base_of`).
    base: Batch | Future
    scenario: object  # simulator.scenario.Scenario
    engine: str
    counts: tuple[int, int, int]  # rows_read, rows_used, rows_rejected
    months: pd.PeriodIndex
    baseline: np.ndarray  # revenue of the replayed history per month (minor units): the same in every run
    population: enrollment.Population | None = None  # set when `history` is a slice of the customers
    horizon: object | None = None  # simulator.horizon.Horizon: the future after the history (None: none)
    acquisition: object | None = None  # simulator.acquisition.Acquisition: new customers in the horizon (None: none)
    newcomers: object | None = None  # simulator.acquisition.Newcomers: the run's own (set by `run_one`)
    segments: object | None = None  # simulator.segments.Segmentation of `history`'s customers (None: no breakdown)
    # Budgets (a global step, rulelang.engine.budgets): each run's closings settled over every
    # customer before a slice's work (the sliced replay, the Dask executor); None: `run_one` settles
    # them over the run's own parts. `budget_closed`: the run's, set by `run_one` for its parts.
    closings: dict | None = None
    budget_closed: dict | None = None


@dataclass(frozen=True)
class RunResult:
    """One path: its exact figures, monthly roll-forward, rewards table and (run 0) ledger, with its
    cohort triangle sums, URR and accounting roll-forward (simulator.finance.simulated)."""

    figures: dict
    monthly: pd.DataFrame
    rewards: pd.DataFrame
    ledger: pd.DataFrame | None
    triangle: np.ndarray | None = None
    urr: object | None = None  # simulated.RunURR
    accounting: pd.DataFrame | None = None
    groups: np.ndarray | None = None  # sums per (segment, stage) group (measure.GROUP_FIELDS), when broken down
    budgets: tuple | None = None  # (used, ran out at) per budgeted rule (measure.Partial's budget_used, budget_out)


_SETUP: Setup | None = None
_PROGRAM = None
_THREADS = 1  # the threads a path may use: every worker's core in one process, 1 in each of several


class _Engine:
    """A program ready to run batches: compiled once per process for the compiled engine."""

    def __init__(self, program, engine: str):
        if engine not in ENGINES:
            raise LoyaltyError(f"unknown engine `{engine}`; choose one of: {', '.join(ENGINES)}")
        self.model = program.model
        self.engine = engine
        self.exact_ids = "transaction_id" in needed_columns(program.model)[0]
        self.compiled = None
        self.columns = None  # the base's columns a path carries (None: all, for the interpreters)
        if engine == "compiled":
            from rulelang.engine import compile_model, copied_columns

            self.compiled = compile_model(program.model)
            self.columns = copied_columns(program.model)

    def evaluate(self, batch: Batch, policy, threads: int | None = None, moments=None, row_tiers: bool = False, closed: dict | None = None):
        """The batch's ledger, the members per tier at `moments` and, when `row_tiers`, each row's
        tier (`rulelang.engine` Evaluation); `closed`: the budgets' closings over every member."""
        if self.compiled is not None:
            return self.compiled.evaluate(batch, policy, threads=threads, moments=moments, row_tiers=row_tiers, closed=closed)
        more = {"closed": closed} if closed is not None else {}
        return importlib.import_module(ENGINES[self.engine]).evaluate_batch(self.model, batch, policy, moments=moments, row_tiers=row_tiers, **more)


def _init(setup: Setup, threads: int) -> None:
    global _SETUP, _PROGRAM, _THREADS
    _SETUP = setup
    _THREADS = threads
    # The same program text again (the next simulation in this process) keeps its parse and
    # compiled engine (`_engine_for`).
    if _PROGRAM is None or (_PROGRAM.source.text, _PROGRAM.source.path) != (setup.program_text, setup.program_path):
        _PROGRAM = rulelang.loads(setup.program_text, setup.program_path)


def base_of(setup: Setup) -> Batch:
    """The set-up's base batch, waiting for it if it is still being built."""
    return setup.base.result() if isinstance(setup.base, Future) else setup.base


def _evaluate(rows: pd.DataFrame, setup: Setup, program, policy, threads: int | None, span=None, moments=None, row_tiers: bool = False, closed=None):
    """The path's rows through the engine: the ledger, the members per tier at `moments` and, when
    `row_tiers`, each row's tier; a program with budgets with the run's closings (`closed`, else
    the set-up's)."""
    closed = setup.budget_closed if closed is None else closed
    engine = _engine_for(program, setup.engine)
    until = setup.horizon.end if setup.horizon is not None else None
    base = base_of(setup)
    cast = setup.newcomers.cast(base) if setup.newcomers is not None else None
    return engine.evaluate(batches.for_path(base, rows, engine.exact_ids, engine.columns, span, until, cast), policy, threads, moments, row_tiers, closed)


def end_of(setup: Setup) -> pd.Timestamp:
    """The simulation's last moment: the horizon's end, else the history's."""
    return setup.horizon.end if setup.horizon is not None else setup.history.until


_ENGINES: dict = {}


def _engine_for(program, engine: str) -> _Engine:
    key = (id(program), engine)
    if key not in _ENGINES:
        _ENGINES.clear()
        _ENGINES[key] = (_Engine(program, engine), program)
    return _ENGINES[key][0]


# Below this many history rows a path is not worth sharing among threads.
PART_ROWS = 200_000
# A thread's share of a larger history is cut into pieces of about this many rows, run one after
# another: what one piece's steps allocate is freed for the next to reuse, so a first call touches
# less fresh memory (each new page costs a fault; on a 1M history: about 150k faults, not 183k).
# Smaller pieces would each pay the steps' fixed costs (pandas' per-frame work) again.
PIECE_ROWS = 250_000


def run_one(setup: Setup, program, run: int, keep_ledger: bool = False, future=None, awards_under: dict | None = None) -> Partial:
    """Simulate path `run`: enrol, respond, redeem, evaluate, measure. `future`: the run's future
    rows (`future_of`) when already drawn (they depend on the seed and run only), else drawn here.

    In a single process the customers are shared among its threads, each running the whole
    path for its pieces of them (the heavy steps release the GIL); their sums add up exactly as
    slices of customers do (simulator.chunked), and run 0's ledger is the pieces in customer order.
    """
    sc = setup.scenario
    drawn = sc.response.for_run(sc.seed, run)  # the run's own uplifts, where the scenario gives distributions
    if drawn is not sc.response:
        sc = replace(sc, response=drawn)
        setup = replace(setup, scenario=sc)
    h = setup.history
    e = sc.enrollment
    if setup.population is None:
        chosen = enrollment.pick(h, e.share, e.pick, sc.seed, run, enrollment.in_segments(setup.segments, e))
    else:
        chosen = setup.population.pick(e.share, e.pick, sc.seed, run, h.customers)
    _engine_for(program, setup.engine)  # compiled once, before any thread asks for it
    # The run's future rows, every customer's (members' join their paths; all count in the baseline).
    future = future_of(setup, run) if future is None else future
    # The run's new customers (simulator.acquisition): their rows follow the future rows (their
    # codes follow the real customers'), and their part of the path is a part of its own.
    # (New customers have no history: with `pick: segment` they join only if `No history` is named.)
    share = e.share if e.pick != "segment" or "No history" in e.segments else 0.0
    newcomers = acquisition.draw(setup.acquisition, h, setup.months, share, e.pick, sc.seed, run) if setup.acquisition is not None else None
    if newcomers is not None:
        future = horizon.Future(_appended(future.rows, newcomers.rows), future.baseline + newcomers.baseline)
        chosen = np.concatenate([chosen, newcomers.chosen])
        setup = replace(setup, newcomers=newcomers)
    rows = future.rows if future is not None else None
    threads = _THREADS
    parts = _parts(h, threads)
    if newcomers is not None and len(parts) > 1:
        # Their rows copy any customer's: the whole base is their span.
        parts.append((h.customers, newcomers.members, 0, len(h.rows)))
    if awards_under is not None:
        # One pass of a global step over slices (simulator.api): the budgeted rules' awards here.
        return budget_awards(setup, program, run, chosen, parts, rows, awards_under)
    if global_step.budgeted(program.model):
        if setup.closings is None:
            # The global step over the run's own parts: its last pass is the run.
            _, done = settled(setup, program, run, chosen, parts, rows, keep_ledger)
            return _with_future(_summed(done, keep_ledger), future)
        setup = replace(setup, budget_closed=setup.closings[run])  # settled over every slice before
    if len(parts) == 1:
        return _with_future(_run_part(setup, program, run, chosen, None, keep_ledger, _THREADS, rows), future)
    # Thread t takes pieces t, t + threads, ... (pieces hold about equal rows).
    shares = [list(range(t, len(parts), threads)) for t in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        runs = [pool.submit(_run_share, setup, program, run, chosen, [parts[k] for k in share], keep_ledger, rows) for share in shares]
        by_part = {k: p for share, r in zip(shares, runs, strict=True) for k, p in zip(share, r.result(), strict=True)}
    done = [by_part[k] for k in range(len(parts))]
    return _with_future(_summed(done, keep_ledger), future)


def _summed(done: list[Partial], keep_ledger: bool) -> Partial:
    """The parts' sums added up, run 0's ledger as the pieces in customer order."""
    if len(done) == 1:
        return done[0]
    total = done[0]
    for p in done[1:]:
        total = total.add(p)
    if keep_ledger:
        total.ledger = Pieces(tuple(p.ledger for p in done), tuple(p.rows for p in done))
    return total


def future_of(setup: Setup, run: int):
    """Run `run`'s future rows, every customer's (simulator.horizon), or None without a horizon:
    they depend on the seed and the run only (new customers, drawn by enrolment, are not in them)."""
    if setup.horizon is None:
        return None
    return horizon.draw(setup.horizon, setup.history, setup.months, setup.scenario.seed, run)


def _appended(rows: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """The future rows with the new customers' after them (the future rows enrol no one)."""
    out = {}
    for c in new.columns:
        a = rows[c].to_numpy() if c in rows.columns else np.zeros(len(rows), dtype=new[c].dtype)
        out[c] = np.concatenate([a, new[c].to_numpy()])
    return pd.DataFrame(out, copy=False)


def _with_future(p: Partial, future) -> Partial:
    """The path's sums with its future's revenue per month (the baseline of the forecast months)."""
    if future is not None:
        p.baseline_m = future.baseline
    return p


@dataclass(frozen=True)
class Pieces:
    """Run 0's ledger as the ledgers of consecutive parts of the path, joined when first read
    (`whole`): a simulation asked only for its figures never copies its postings again."""

    ledgers: tuple
    rows: tuple

    def joined(self) -> pd.DataFrame:
        return join_ledgers(list(self.ledgers), list(self.rows))


def whole(ledger):
    """A ledger, joining it first if it is still in `Pieces` (None stays None)."""
    return ledger.joined() if isinstance(ledger, Pieces) else ledger


def join_ledgers(ledgers: list[pd.DataFrame], rows: list[int]) -> pd.DataFrame:
    """The ledgers of consecutive parts of a path as one, their path row numbers following on.

    Column by column: categoricals of one dtype join by their codes (pandas' concat would first
    hash every category of both to compare them).
    """
    first = ledgers[0]
    shift = np.cumsum([0] + list(rows[:-1]))
    out = {}
    for c in first.columns:
        cols = [led[c] for led in ledgers]
        d = first[c].dtype
        # Equal dtypes are compared only when few: comparing them hashes every category.
        if isinstance(d, pd.CategoricalDtype) and all(x.dtype is d or (len(d.categories) < 4096 and x.dtype == d) for x in cols):
            codes = np.concatenate([x.cat.codes.to_numpy() for x in cols])
            out[c] = pd.Categorical.from_codes(codes, dtype=d, validate=False)
        elif c == "row":
            out[c] = np.concatenate([_moved_on(x.to_numpy(), int(by)) for x, by in zip(cols, shift, strict=True)])
        else:
            out[c] = pd.concat(cols, ignore_index=True) if isinstance(d, pd.CategoricalDtype) else np.concatenate([x.to_numpy() for x in cols])
    joined = pd.DataFrame(out, columns=first.columns, copy=False)
    joined.attrs = {k: sum(led.attrs.get(k, 0) for led in ledgers) for k in first.attrs}
    return joined


def _parts(h: History, threads: int) -> list[tuple[int, int, int, int]]:
    """(first customer, end customer, first row, end row) of about equal shares of the rows:
    `threads` shares, each cut into pieces of about `PIECE_ROWS` rows."""
    n = len(h.rows)
    if threads <= 1 or n < PART_ROWS:
        return [(0, h.customers, 0, n)]
    m = h.rows["_m"].to_numpy()
    rows = member_parts(m, threads * max(1, round(n / (threads * PIECE_ROWS))))
    # Customer codes follow the rows: a part's customers run from its first row's to the next part's.
    firsts = [0] + [int(m[a]) for a, _ in rows[1:]] + [h.customers]
    return [(firsts[k], firsts[k + 1], a, b) for k, (a, b) in enumerate(rows)]


def shift_rows(ledger: pd.DataFrame, by: int) -> pd.DataFrame:
    """The ledger with its path row numbers moved on by `by` (postings without a row keep -1)."""
    return ledger if by == 0 else ledger.assign(row=_moved_on(ledger["row"].to_numpy(), by))


def _moved_on(row: np.ndarray, by: int) -> np.ndarray:
    return np.where(row >= 0, row + by, row)  # -1 (a posting of no row, such as an expiry) stays


def settled(setup: Setup, program, run: int, chosen: np.ndarray, parts: list, future=None, keep_ledger: bool = False) -> tuple[dict, list[Partial]]:
    """The run's budgets' closings over the customers of `parts` (rulelang.engine.budgets.settle),
    and each part's sums from the last pass, which is the run: each part prepared once (with its
    budgets open wherever a response reads a first pass), then run until every budget's closing
    is found (a program whose budgets are not reached runs once)."""
    policy = redemption.policy(setup.scenario.redemption.probability, setup.scenario.redemption.choice, _pay_probability(setup.scenario, program.model))
    ends = setup.months.end_time.to_numpy() if program.model.tiers is not None else None  # as `_evaluated`
    opened = replace(setup, budget_closed={})
    prepared = [_prepared(opened, program, run, chosen, None if len(parts) == 1 else part, 1, future) for part in parts]
    closed, last = global_step.settle(program.model, lambda c: [_evaluate(r, opened, program, policy, _THREADS, span, ends, closed=c) for r, _, span in prepared])
    done = replace(setup, budget_closed=closed)
    return closed, [measure(done, program.model, r, ev, mine, run, keep_ledger) for (r, mine, _), ev in zip(prepared, last, strict=True)]


def budget_awards(setup: Setup, program, run: int, chosen: np.ndarray, parts: list, future, closed: dict) -> pd.DataFrame:
    """The budgeted rules' awards (rulelang.engine.budgets.awards) of run `run` over the set-up's
    customers with the budgets closed as `closed`: a slice's share of one pass of the global step."""
    policy = redemption.policy(setup.scenario.redemption.probability, setup.scenario.redemption.choice, _pay_probability(setup.scenario, program.model))
    opened = replace(setup, budget_closed={})
    ledgers = []
    for part in parts:
        rows, _, span = _prepared(opened, program, run, chosen, None if len(parts) == 1 else part, 1, future)
        ledgers.append(_evaluate(rows, opened, program, policy, _THREADS, span, closed=closed).ledger)
    return global_step.awards(program.model, ledgers)


def settle_slices(model, runs: int, one_pass: Callable[[dict], dict]) -> dict:
    """Every run's closings over customers held in slices: `one_pass(closed)` (run -> closings, for
    the runs still open) goes over every slice and returns run -> the awards of every slice; each
    pass fixes one more closing of each run whose budgets are not settled (rulelang.engine.budgets)."""
    closed: dict[int, dict] = {r: {} for r in range(runs)}
    pending = set(range(runs))
    for _ in range(len(global_step.budgeted(model)) + 1):
        found = one_pass({r: dict(closed[r]) for r in sorted(pending)})
        for r in sorted(pending):
            nxt = global_step.first_overrun(model, found[r], closed[r])
            if nxt is None:
                pending.discard(r)
            else:
                closed[r][nxt[0]] = nxt[1]
        if not pending:
            return closed
    raise AssertionError("each pass closes one more budgeted rule of every open run")


def _run_share(setup: Setup, program, run: int, chosen: np.ndarray, parts: list, keep_ledger: bool, future=None) -> list[Partial]:
    """One thread's pieces of a path, in order. A piece's own steps (enrolment, response, draws)
    need no base; while the base is still being built beside them, the thread goes on to the next
    piece's own steps rather than wait for it."""
    out: list[Partial] = []
    ready: deque = deque()
    k = 0
    while len(out) < len(parts):
        base_pending = isinstance(setup.base, Future) and not setup.base.done()
        if k < len(parts) and (not ready or base_pending):
            ready.append(_prepared(setup, program, run, chosen, parts[k], 1, future))
            k += 1
        else:
            out.append(_evaluated(setup, program, run, *ready.popleft(), keep_ledger, 1))
    return out


def _run_part(setup: Setup, program, run: int, chosen: np.ndarray, part, keep_ledger: bool, threads: int | None, future=None) -> Partial:
    """One path over the customers of `part` (all when None)."""
    return _evaluated(setup, program, run, *_prepared(setup, program, run, chosen, part, threads, future), keep_ledger, threads)


def _evaluated(setup: Setup, program, run: int, rows: pd.DataFrame, chosen: np.ndarray, span, keep_ledger: bool, threads: int | None) -> Partial:
    """A prepared piece (`_prepared`) through the engine, and its sums."""
    sc = setup.scenario
    policy = redemption.policy(sc.redemption.probability, sc.redemption.choice, _pay_probability(sc, program.model))
    # The members per tier at each month's end come from the engine, which holds the tiers.
    ends = setup.months.end_time.to_numpy() if program.model.tiers is not None else None
    evaluation = _evaluate(rows, setup, program, policy, threads, span, ends)
    return measure(setup, program.model, rows, evaluation, chosen, run, keep_ledger)


def _prepared(setup: Setup, program, run: int, chosen: np.ndarray, part, threads: int | None, future=None) -> tuple[pd.DataFrame, np.ndarray, tuple | None]:
    """The path's rows over the customers of `part` (all when None), enrolled, responded and with
    their draws, ready for the engine; with the customers who joined and the history rows' span.
    `future`: the run's future rows (simulator.horizon), joined after each member's history."""
    sc = setup.scenario
    h = setup.history
    model = program.model
    seed = sc.seed
    span = None
    if part is not None:
        c0, c1, r0, r1 = part
        mine = np.zeros_like(chosen)
        mine[c0:c1] = chosen[c0:c1]
        chosen, span = mine, (r0, r1)
    rows = enrollment.member_rows(h, chosen, span)
    if future is not None:
        rows = horizon.joined(rows, future, chosen, part)
    # Every customer's random key, the new customers' after the real ones'.
    keys = setup.newcomers.acq.keys if setup.newcomers is not None else h.keys
    first = None
    if response.needs_first_pass(sc.response, model):
        policy = redemption.policy(sc.redemption.probability, sc.redemption.choice, _pay_probability(sc, model))
        # Only the goal gradient maps the ledger's customer ids back to codes.
        code_of = {cid: i for i, cid in enumerate(h.customer_ids)} if sc.response.goal_gradient is not None else {}
        if code_of and setup.newcomers is not None:
            code_of.update({cid: h.customers + i for i, cid in enumerate(setup.newcomers.acq.ids)})
        first = _evaluate(_pay_columns(_path_columns(rows, np.zeros(len(rows), dtype=bool), keys, seed, run), policy, keys, seed, run), setup, program,
                          policy, threads, span, row_tiers=model.tiers is not None,
                          closed={} if setup.budget_closed is not None else None)  # (budgets open: the same rows in every pass of the global step)
    f = response.factors(sc.response, model, rows, first, code_of if first is not None else {}, h.decimals, setup.segments)
    extra = response.extra_visits(rows, sc.response.visit_uplift, keys, seed, run, end_of(setup))
    is_extra = np.zeros(len(rows), dtype=bool)
    spawn = None
    if len(extra):
        spawn_pos = np.searchsorted(rows["_ord"].to_numpy(), extra["_ord"].to_numpy() - 2)
        # (`_ord` orders the merge; the merged rows need it no more.)
        rows, is_extra = response.merged(rows[[c for c in rows.columns if c in extra.columns]], extra, drop=("_ord",))
        if "_future" in rows.columns:  # an extra visit copying a future basket is an extra visit
            rows = with_columns(rows, {"_future": rows["_future"].to_numpy() & ~is_extra})
        spawn = response.interleave(np.full(len(rows) - len(extra), -1, dtype=np.int64), extra["_spawn"].to_numpy(), is_extra)
        f = response.interleave(f, f[spawn_pos], is_extra)
    # Added after the merge: one column less to interleave each, and draws keyed by row either way.
    rows = _path_columns(rows, is_extra, keys, seed, run, spawn)
    rows = _pay_columns(rows, redemption.policy(0.0, "cheapest", _pay_probability(sc, model)), keys, seed, run)
    # `_row` and `_ord` key and order the steps above; the engine and the sums read neither, so
    # the pieces a thread prepares ahead while the base is built hold less.
    return with_columns(rows, {"_minor": response.scaled(rows, f)}, drop=("_row", "_ord")), chosen, span


def _path_columns(rows: pd.DataFrame, is_extra: np.ndarray, keys: np.ndarray, seed: int, run: int, spawn: np.ndarray | None = None) -> pd.DataFrame:
    """The rows with the path's own columns: its pre-uplift revenue `_orig`, the extra-visit flags
    and the spawning rows (`_spawn`, -1 for the path's own rows), the draws."""
    money = rows["_purchase"].to_numpy() | rows["_refund"].to_numpy()
    own = {"_orig": np.where(money & ~is_extra, rows["_minor"].to_numpy(), 0), "_extra": is_extra}
    if spawn is not None or "_spawn" not in rows.columns:
        own["_spawn"] = spawn if spawn is not None else np.full(len(rows), -1, dtype=np.int64)
    if "_future" in rows.columns:
        # A future row names its basket by its own counter (simulator.horizon): its transaction id.
        base = own.get("_spawn", rows["_spawn"].to_numpy() if "_spawn" in rows.columns else None)
        own["_spawn"] = np.where(rows["_future"].to_numpy(), rows["_row"].to_numpy(), base)
    rows = with_columns(rows, own)
    u_redeem, u_choice = redemption.draws(rows, keys, seed, run)  # (keyed by `_extra` and `_spawn`)
    return with_columns(rows, {"_u_redeem": u_redeem, "_u_choice": u_choice})


def _pay_probability(sc, model) -> float:
    """The chance a member pays a basket partly with points: the scenario's, for a program with
    `pay with points` (0 for any other, which then draws nothing)."""
    return sc.redemption.pay_with_points if model.pay_with_points is not None else 0.0


def _pay_columns(rows: pd.DataFrame, policy, keys: np.ndarray, seed: int, run: int) -> pd.DataFrame:
    """The rows with their paying-with-points draws, when the policy pays with points and the history
    does not record the payments (`points_paid`, replayed instead)."""
    if policy.pay_probability <= 0 or "points_paid" in rows.columns:
        return rows
    return with_columns(rows, {"_u_pay": redemption.pay_draws(rows, keys, seed, run)})


def finish(setup: Setup, model, p: Partial, run: int) -> RunResult:
    """Figures, roll-forward and rewards of one path from its sums over all customers."""
    months = setup.months
    baseline = setup.baseline if p.baseline_m is None else setup.baseline + p.baseline_m
    # Revenue with the program is what members paid: net of the program's discounts.
    paid = baseline + p.delta_m - (p.discount_m[:, 0] if p.discount_m is not None else 0)
    revenue = pd.DataFrame({"revenue_baseline": baseline, "revenue_with_program": paid}, index=months)
    members = pd.Series(p.joined_m, index=months)
    names = list(model.tiers.names) if model.tiers is not None else []
    tier_counts = pd.DataFrame(p.tiers_m, index=months, columns=names) if names else pd.DataFrame(index=months)
    end_tiers = {c: int(tier_counts[c].iloc[-1]) for c in tier_counts.columns} if len(months) else {}
    x = metrics.RunInput(
        *setup.counts,
        members=p.members,
        revenue_baseline=int(revenue["revenue_baseline"].sum()),
        revenue_with_program=int(revenue["revenue_with_program"].sum()),
        point_cost=model.point_cost,
        decimals=model.decimals,
        margin=setup.scenario.margin,
        tiers_end=end_tiers,
    )
    urr = simulated.run_urr(p.triangle, months)
    # Automatic vouchers: their cost at issue times the use rate, month by month (the summary's is their sum).
    used_m = metrics.vouchers_used(p.voucher_m, setup.scenario.voucher_use_rate) if p.voucher_m is not None else None
    monthly = metrics.monthly_from(p.cells, p.cost_m, p.partner_m, months, x, revenue, members, tier_counts, [simulated.as_fraction(u) for u in urr.by_month],
                                   p.discount_m, p.benefit_m, p.pending_m, used_m, p.payment_m)
    monthly.insert(0, "run", run)
    by_kind = {k: int(p.by_kind[i]) for i, k in enumerate(metrics.KINDS)}
    # The sales the points came with, as paid: net of what the program's discounts took off them.
    sales = p.sales_m - p.discount_given_m if p.discount_given_m is not None else p.sales_m
    books = simulated.run_accounting(setup.scenario.accounting, p.cells, sales, urr, months, model.point_cost, model.decimals)
    discount = (int(p.discount[0]), int(p.discount[1])) if p.discount is not None else None
    benefit = (int(p.benefit[0]), int(p.benefit[1])) if p.benefit is not None else None
    pending = int(p.pending_m[-1]) if p.pending_m is not None and len(p.pending_m) else None  # at the period's end
    voucher = (int(used_m[:, 0].sum()), int(used_m[:, 1].sum())) if used_m is not None else None
    payment = int(p.payment[0]) if p.payment is not None else None
    figures = metrics.figures_from(by_kind, p.cost, p.partner, x, urr.exact, discount, benefit, pending, voucher, payment)
    # Run 0's triangle is kept for its outputs (triangles.csv, urr.csv); the others' are done with.
    spent = (p.budget_used, p.budget_out) if p.budget_used is not None else None
    return RunResult(figures, monthly, p.rewards, p.ledger, p.triangle if run == 0 else None, urr, books, p.groups, spent)


def baseline_revenue(history: History, months: pd.PeriodIndex) -> np.ndarray:
    """Revenue of the replayed history per month (all customers), minor units."""
    hist = history.rows
    money = hist["_purchase"].to_numpy() | hist["_refund"].to_numpy()
    return metrics.by_month(hist["timestamp"].to_numpy(), np.where(money, hist["_minor"].to_numpy(), 0), months)


def _run_in_worker(run: int) -> Partial:
    return run_one(_SETUP, _PROGRAM, run, keep_ledger=run == 0)


def worker_processes(runs: int, workers: int | None) -> int:
    """How many worker processes `run_all` forks (1: the paths run in this process)."""
    return min(available_cores() if workers is None else workers, runs)


def run_all(setup: Setup, runs: int, workers: int | None = None, progress: Callable[[int], None] | None = None) -> list[Partial]:
    """Every path's sums in run order, on `workers` cores (default: all available to the process):
    a worker process per core (at most one per run), or, for a single run or worker, one process
    whose paths share the cores as threads.

    A base still being built (a Future) is waited for only where a path first needs it, in a
    single process; worker processes are given it built.
    """
    workers = available_cores() if workers is None else workers
    processes = worker_processes(runs, workers)
    if processes <= 1:
        _init(setup, workers)
        out = []
        for r in range(runs):
            out.append(_run_in_worker(r))
            if progress:
                progress(1)
        return out
    setup = replace(setup, base=base_of(setup))
    # Forked workers inherit the set-up (history, base batch) instead of receiving a pickled copy.
    context = multiprocessing.get_context("fork") if "fork" in multiprocessing.get_all_start_methods() else None
    with ProcessPoolExecutor(max_workers=processes, initializer=_init, initargs=(setup, 1), mp_context=context) as pool:
        out = []
        for res in pool.map(_run_in_worker, range(runs), chunksize=max(1, runs // (processes * 8))):
            out.append(res)
            if progress:
                progress(1)
        return out
