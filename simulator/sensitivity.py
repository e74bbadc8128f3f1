"""Sensitivity and break-even: how net benefit and liability move with each assumption, and the
spend uplift at which the program pays for itself.

Every figure comes from the main simulation's own paths: the same seed and runs (common random
numbers), so a run moved to another assumption differs from the base run only by what the move
changes, and the base case is exactly `simulate`'s. The history is loaded once (`api.prepared`);
an assumption that changes a path (enrolment, redemption, the uplifts) reruns the paths over it;
one that does not (margin, the URR) is arithmetic on each base run's sums.

Each assumption moves by a stated amount `delta` either way (`RANGES`, overridable), in its own
units (shares), clamped to what it may be. One rule for all: the URR and a distribution or a tier
mapping of uplifts differ by run or tier, so only a shift applies to them all alike.

The break-even spend uplift is, per run, the one spend uplift (the same for every tier, in place of
the scenario's) at which that run's net benefit is zero, found by the secant method on the run's
exact net benefit (nearly linear in the uplift); its P5/P50/P95 are over the runs' roots.
"""

from __future__ import annotations

import json
import multiprocessing
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType

import click

from rulelang.engine import available_cores
from rulelang.errors import LoyaltyError
from simulator import metrics, montecarlo
from simulator.scenario import Normal, Scenario, SegmentUplift

# --- the assumptions and their ranges -----------------------------------------------------------


def _clamp(x: float, lo: float, hi: float) -> float:
    # Rounded to 12 places: 0.35 + 0.1 is 0.45, not 0.44999999999999996, in the outputs.
    return min(max(round(x, 12), lo), hi)


def _shifted_uplift(value, delta: float, lo: float, hi: float):
    """An uplift moved by `delta`: a number, each tier of a mapping, or a distribution's mean."""
    if isinstance(value, Normal):
        # Each run's draw is mean + sd * z(run): moving the mean moves every run's draw by delta.
        return Normal(_clamp(value.mean + delta, -1.0, 1.0), value.sd)
    if isinstance(value, SegmentUplift):  # (by segment: each segment's moved, still by segment)
        return SegmentUplift({t: _clamp(v + delta, lo, hi) for t, v in value.items()})
    if hasattr(value, "items"):
        return MappingProxyType({t: _clamp(v + delta, lo, hi) for t, v in value.items()})
    return _clamp(float(value) + delta, lo, hi)


def _enrollment(sc: Scenario, delta: float) -> Scenario:
    return replace(sc, enrollment=replace(sc.enrollment, share=_clamp(sc.enrollment.share + delta, 0.0, 1.0)))


def _redemption(sc: Scenario, delta: float) -> Scenario:
    return replace(sc, redemption=replace(sc.redemption, probability=_clamp(sc.redemption.probability + delta, 0.0, 1.0)))


def _spend(sc: Scenario, delta: float) -> Scenario:
    return replace(sc, response=replace(sc.response, spend_uplift=_shifted_uplift(sc.response.spend_uplift, delta, -1.0, 1.0)))


def _visits(sc: Scenario, delta: float) -> Scenario:
    return replace(sc, response=replace(sc.response, visit_uplift=_shifted_uplift(sc.response.visit_uplift, delta, 0.0, 1.0)))


def spend_uplift_at(sc: Scenario, uplift: float) -> Scenario:
    """The scenario with one spend uplift for every tier (the break-even's variable)."""
    return replace(sc, response=replace(sc.response, spend_uplift=float(uplift)))


def with_margin(fig: dict, margin: float) -> dict:
    """A run's figures at another gross margin: the margin on its lift, net benefit and ROI again
    (the lift and the program cost do not depend on it)."""
    incremental = metrics.round_half_up(Fraction(fig["revenue_lift"]) * Fraction(str(margin)))
    net = incremental - fig["program_cost"]
    return {**fig, "incremental_margin": incremental, "net_benefit": net, "roi": metrics.ratio(net, fig["program_cost"])}


def run_urr(fig: dict, point_cost: Fraction, decimals: int) -> Fraction | None:
    """The redemption share a run's liability stands on: liability / (outstanding x point cost),
    whatever definition of the URR produced it (None when nothing is outstanding)."""
    value = fig["points_outstanding"] * point_cost * 10**decimals
    return Fraction(fig["liability"]) / value if value else None


def with_urr_moved(fig: dict, delta: float, point_cost: Fraction, decimals: int) -> dict:
    """A run's figures with its URR moved by `delta` (clamped to 0..1): the liability, the program
    cost (which carries it), net benefit and ROI again. A move of 0 changes nothing."""
    urr = run_urr(fig, point_cost, decimals)
    if urr is None:
        return dict(fig)
    moved = min(max(urr + Fraction(str(delta)), Fraction(0)), Fraction(1))
    liability = metrics.round_half_up(fig["points_outstanding"] * point_cost * 10**decimals * moved)
    change = liability - fig["liability"]
    cost = fig["program_cost"] + change
    net = fig["net_benefit"] - change
    return {**fig, "liability": liability, "program_cost": cost, "net_benefit": net, "roi": metrics.ratio(net, cost)}


@dataclass(frozen=True)
class Assumption:
    """One bar of the tornado: its name (a `--range` key), label, default move and why, and how a
    move applies: to the scenario (`path`: the paths rerun) or to a run's figures (`sums`)."""

    key: str
    label: str
    delta: float
    why: str
    path: Callable[[Scenario, float], Scenario] | None = None
    sums: str | None = None  # "margin" | "urr"


ASSUMPTIONS = (
    Assumption("enrollment.share", "Enrolment share", 0.10, "a sign-up forecast is seldom surer than ten points either way", path=_enrollment),
    Assumption("redemption.probability", "Redemption probability", 0.10, "pilots and peers put it within about ten points", path=_redemption),
    Assumption("response.spend_uplift", "Spend uplift", 0.02, "measured uplifts are a few percent with a standard error of one to two points", path=_spend),
    Assumption("response.visit_uplift", "Visit uplift", 0.02, "as the spend uplift: a few percent, known to a point or two", path=_visits),
    Assumption("urr", "Ultimate redemption rate (liability)", 0.10, "ten points: the stated range finance reviews a breakage estimate over", sums="urr"),
    Assumption("margin", "Gross margin", 0.05, "five points: a year's typical drift of a retailer's gross margin", sums="margin"),
)
RANGES = MappingProxyType({a.key: a.delta for a in ASSUMPTIONS})
BY_KEY = MappingProxyType({a.key: a for a in ASSUMPTIONS})

# `--range urr=se`: the URR moves by its standard error, by chain ladder on the cohort triangles
# of run 0's ledger (simulator.finance.triangles, as `loyalty triangles` estimates it).
URR_SE = "se"
URR_SE_WHY = "one standard error of the URR: chain ladder with Mack's error on run 0's cohort triangles (loyalty triangles)"

# The break-even: the secant method per run stops when a step moves the uplift less than this
# (0.001 percentage points), or after MAX_STEPS evaluations of the paths beyond the first two.
UPLIFT_TOLERANCE = 1e-5
MAX_STEPS = 6


def parse_ranges(given: tuple[str, ...] | list[str]) -> dict[str, float | str]:
    """`--range KEY=DELTA` values over the defaults (`urr=se`: the URR's standard error, `URR_SE`);
    a clear error naming the flag otherwise."""
    import difflib

    out = dict(RANGES)
    for text in given:
        key, sep, value = text.partition("=")
        key = key.strip()
        if not sep:
            raise LoyaltyError(f"--range {text}: error: expected KEY=DELTA, like `margin=0.05`; keys: {', '.join(RANGES)}")
        if key not in RANGES:
            close = difflib.get_close_matches(key, list(RANGES), n=1, cutoff=0.5)
            hint = f"; did you mean `{close[0]}`?" if close else f"; keys: {', '.join(RANGES)}"
            raise LoyaltyError(f"--range {text}: error: unknown assumption `{key}`{hint}")
        if key == "urr" and value.strip() == URR_SE:
            out[key] = URR_SE
            continue
        try:
            delta = float(value)
        except ValueError:
            delta = float("nan")
        if not 0 <= delta <= 1:  # (NaN fails too)
            also = ", or `se` for the URR's standard error" if key == "urr" else ""
            raise LoyaltyError(f"--range {text}: error: expected a move between 0 and 1 in the assumption's own units (0.05 means five points){also}, got `{value.strip()}`")
        out[key] = delta
    return out


# --- running paths of moved scenarios -----------------------------------------------------------

# A variant of the scenario: moves applied in order, each (assumption key, delta) or
# ("spend_uplift_at", uplift); () is the scenario itself.
MOVES: dict[str, Callable[[Scenario, float], Scenario]] = {a.key: a.path for a in ASSUMPTIONS if a.path is not None}
MOVES["spend_uplift_at"] = spend_uplift_at


def moved(sc: Scenario, moves: tuple) -> Scenario:
    """The scenario with `moves` applied in order."""
    for key, value in moves:
        sc = MOVES[key](sc, value)
    return sc


def _run_figures(task: tuple[int, list[tuple]]) -> list[dict]:
    """One run of several variants through the path, in a worker (or this process): their exact
    figures. The run's future rows (a horizon's) are drawn once for all of them."""
    run, variants = task
    # The per-process state `montecarlo.run_all`'s workers hold: the set-up and the parsed program.
    setup, program = montecarlo._SETUP, montecarlo._PROGRAM
    future = montecarlo.future_of(setup, run)
    out = []
    for moves in variants:
        mine = replace(setup, scenario=moved(setup.scenario, moves))
        partial = montecarlo.run_one(mine, program, run, future=future)
        out.append(montecarlo.finish(mine, program.model, partial, run).figures)
    return out


class Paths:
    """Runs of variants of one prepared simulation, each (variant, run) computed once: a pool of
    worker processes forked once with the set-up (or this process, for one worker)."""

    def __init__(self, setup: montecarlo.Setup, workers: int | None):
        self.setup = replace(setup, base=montecarlo.base_of(setup))  # built, before any fork
        self.workers = available_cores() if workers is None else workers
        self.cache: dict[tuple[str, int], dict] = {}
        self.pool: ProcessPoolExecutor | None = None
        self.paths_run = 0

    def __enter__(self) -> Paths:
        if self.workers > 1 and "fork" in multiprocessing.get_all_start_methods():
            # Forked workers inherit the set-up (history, base batch) instead of a pickled copy.
            context = multiprocessing.get_context("fork")
            self.pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=montecarlo._init, initargs=(self.setup, 1))
        else:
            montecarlo._init(self.setup, self.workers)
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def program(self):
        """The parsed program, in this process (for a path run here, such as run 0's ledger)."""
        if self.pool is not None:
            montecarlo._init(self.setup, self.workers)
        return montecarlo._PROGRAM

    def key(self, moves: tuple) -> str:
        """What identifies a variant: its assumptions (moves that change nothing share the base's)."""
        return json.dumps(moved(self.setup.scenario, moves).to_dict(), sort_keys=True)

    def figures(self, tasks: list[tuple[tuple, int]]) -> list[dict]:
        """Each (moves, run)'s figures, in order; the ones not yet computed in one batch."""
        keys = [(self.key(m), r) for m, r in tasks]
        todo: dict[tuple[str, int], tuple[tuple, int]] = {}
        for k, t in zip(keys, tasks, strict=True):
            if k not in self.cache:
                todo.setdefault(k, t)
        if todo:
            # One task per run, its variants together (they share the run's future rows).
            by_run: dict[int, list] = {}
            for k, (moves, run) in todo.items():
                by_run.setdefault(run, []).append((k, moves))
            work = [(run, [m for _, m in ks]) for run, ks in by_run.items()]
            if self.pool is not None:
                done = list(self.pool.map(_run_figures, work, chunksize=max(1, len(work) // (self.workers * 8))))
            else:
                done = [_run_figures(t) for t in work]
            for ks, figs in zip(by_run.values(), done, strict=True):
                self.cache.update((k, f) for (k, _), f in zip(ks, figs, strict=True))
            self.paths_run += len(todo)
        return [self.cache[k] for k in keys]


# --- the tornado and the break-even -------------------------------------------------------------


def _money(values: list[int], decimals: int) -> dict:
    """P5/P50/P95/mean over runs in currency units, as summary.json gives money."""
    return metrics.spread([Fraction(v, 10**decimals) for v in values], decimals)


def shown(value) -> str:
    """An assumption's value for people: a number, tiers' numbers, or a distribution's mean (and sd)."""
    if isinstance(value, Normal):
        return f"{value.mean:.4g} (sd {value.sd:.4g})"
    if hasattr(value, "items"):
        return ", ".join(f"{t} {v:.4g}" for t, v in value.items())
    return f"{value:.4g}"


def plain_value(value):
    """An assumption's value as JSON: a number, a mapping of tiers, or `{normal: {mean, sd}}`."""
    if isinstance(value, Normal):
        return {"normal": {"mean": value.mean, "sd": value.sd}}
    return dict(value) if hasattr(value, "items") else value


def _setting(sc: Scenario, key: str):
    """The value of a scenario key (`margin`, `redemption.probability`)."""
    section, _, name = key.partition(".")
    return getattr(getattr(sc, section), name) if name else getattr(sc, section)


def _urr_at(urr: float | None, delta: float) -> float | None:
    """A URR moved by delta, clamped to 0..1 (None: no points outstanding in any run)."""
    return None if urr is None else _clamp(urr + delta, 0.0, 1.0)


def tornado(paths: Paths, sc: Scenario, base: list[dict], ranges: dict[str, float], point_cost: Fraction, decimals: int) -> list[dict]:
    """Per assumption, low and high: its value and the P50 (and P5/P95) of net benefit and
    liability over the runs; sorted by the swing of net benefit, largest first."""
    runs = range(len(base))
    # Every path to rerun in one batch, so the workers share it evenly.
    path_moves = [((a.key, s * ranges[a.key]),) for a in ASSUMPTIONS if a.path is not None for s in (-1, 1)]
    rerun = paths.figures([(m, r) for m in path_moves for r in runs])
    by_move = {m: rerun[i * len(base) : (i + 1) * len(base)] for i, m in enumerate(path_moves)}
    urr_p50 = metrics.spread([run_urr(f, point_cost, decimals) for f in base], 6)["p50"]  # (runs with none left out)
    rows = []
    for a in ASSUMPTIONS:
        d = ranges[a.key]
        sides = {}
        for side, sign in (("low", -1), ("high", 1)):
            if a.path is not None:
                figs = by_move[((a.key, sign * d),)]
                value = _setting(a.path(sc, sign * d), a.key)
            elif a.sums == "margin":
                m = _clamp(sc.margin + sign * d, 0.0, 1.0)
                figs, value = [with_margin(f, m) for f in base], m
            else:
                figs = [with_urr_moved(f, sign * d, point_cost, decimals) for f in base]
                value = _urr_at(urr_p50, sign * d)
            sides[side] = {
                "value": plain_value(value),
                "shown": "–" if value is None else shown(value),
                "net_benefit": _money([f["net_benefit"] for f in figs], decimals),
                "liability": _money([f["liability"] for f in figs], decimals),
            }
        base_value = _urr_at(urr_p50, 0.0) if a.sums == "urr" else _setting(sc, a.key)
        swing = abs(sides["high"]["net_benefit"]["p50"] - sides["low"]["net_benefit"]["p50"])
        rows.append({
            "assumption": a.key, "label": a.label, "delta": d, "why": a.why, "swing": round(swing, decimals),
            "base_value": plain_value(base_value), "base_shown": "–" if base_value is None else shown(base_value), **sides,
        })  # fmt: skip
    rows.sort(key=lambda r: -r["swing"])  # (stable: equal swings keep the table's order)
    return rows


def _spend_of_run(sc: Scenario, run: int) -> float:
    """The one spend uplift run `run` of `sc` replays with (a number, or the run's draw)."""
    return float(sc.response.for_run(sc.seed, run).spend_uplift)


def break_even(paths: Paths, sc: Scenario, runs: int, step: float) -> dict:
    """Per run, the spend uplift (one for every tier) at which its net benefit is zero, by the
    secant method on the run's exact net benefit; the P5/P50/P95 of the roots over the runs."""
    points = {r: [] for r in range(runs)}
    if hasattr(sc.response.spend_uplift, "items"):
        # Tiers with uplifts of their own: from one uplift for all, 0 and one step up.
        for u in (0.0, step):
            for r, f in enumerate(paths.figures([((("spend_uplift_at", u),), r) for r in range(runs)])):
                points[r].append((u, f["net_benefit"]))
    else:
        # One number per run (the scenario's, or the run's draw from its distribution): the base
        # run and the tornado's high spend side are already points of each run's curve, at the
        # uplifts the run replayed with; a run whose high side is clamped to its base (an uplift
        # of 1) gets a point one step below instead.
        high = (("response.spend_uplift", step),)
        at_high = moved(sc, high)
        base, raised = paths.figures([((), r) for r in range(runs)]), paths.figures([(high, r) for r in range(runs)])
        for r in range(runs):
            u, v = _spend_of_run(sc, r), _spend_of_run(at_high, r)
            points[r] = [(u, base[r]["net_benefit"])] + ([(v, raised[r]["net_benefit"])] if v != u else [])
        short = [(r, points[r][0][0] - step if points[r][0][0] + step > 1 else points[r][0][0] + step) for r in range(runs) if len(points[r]) < 2]
        for (r, u), f in zip(short, paths.figures([((("spend_uplift_at", u),), r) for r, u in short]), strict=True):
            points[r].append((u, f["net_benefit"]))
    roots: dict[int, float | None] = {}
    active = list(range(runs))
    for _ in range(MAX_STEPS):
        asks = []
        for r in active:
            (ua, na), (ub, nb) = points[r][-2:]
            if nb == 0:
                roots[r] = ub
                continue
            if na == nb:  # flat: no move of the uplift changes this run's net benefit near here
                roots[r] = None
                continue
            u = ub - nb * (ub - ua) / (nb - na)
            if not -1.0 <= u <= 1.0:
                roots[r] = None  # no uplift the scenario allows pays for the program in this run
                continue
            if abs(u - ub) < UPLIFT_TOLERANCE:
                roots[r] = u
                continue
            asks.append((r, u))
        if not asks:
            break
        for (r, u), f in zip(asks, paths.figures([((("spend_uplift_at", u),), r) for r, u in asks]), strict=True):
            points[r].append((u, f["net_benefit"]))
        active = [r for r, _ in asks]
    for r in range(runs):
        if r not in roots:  # out of steps: the uplift tried whose net benefit is nearest zero
            roots[r] = min(points[r], key=lambda p: abs(p[1]))[0]
    found = [roots[r] for r in range(runs) if roots[r] is not None]
    # The net benefit at each root found (a step function of the uplift: whole points, cents).
    residual = [min(points[r], key=lambda p: abs(p[0] - roots[r]))[1] for r in range(runs) if roots[r] is not None]
    return {
        "spend_uplift": metrics.spread(found, 6),
        "runs_with_root": len(found),
        "runs": runs,
        "per_run": [None if roots[r] is None else round(roots[r], 9) for r in range(runs)],
        "evaluations": max(len(p) for p in points.values()),
        "largest_residual_minor": max((abs(v) for v in residual), default=None),
        "definition": "the one spend uplift, the same for every tier in place of the scenario's, at which a run's net benefit is zero",
    }


def urr_standard_error(paths: Paths) -> float:
    """The standard error of the URR estimated from run 0's ledger by chain ladder (Mack)."""
    import math

    from simulator.finance import triangles

    setup = paths.setup
    program = paths.program()
    ledger = montecarlo.whole(montecarlo.run_one(setup, program, 0, keep_ledger=True).ledger)
    se = triangles.analyse(ledger).overall.std_error if len(ledger) else float("nan")
    if not math.isfinite(se):
        raise LoyaltyError(
            "--range urr=se: error: the URR's standard error cannot be estimated from run 0's cohort triangles "
            "(too few months of points, or none redeemed); give the move as a number, like `urr=0.1`"
        )
    return round(se, 6)


@dataclass
class SensitivityResult:
    """What `loyalty sensitivity` found: the base figures, the tornado and the break-even."""

    program: object  # rulelang Program
    scenario: Scenario
    base: list[dict]  # each run's exact figures, as simulate's per_run
    rows: list[dict]
    breakeven: dict
    ranges: dict[str, float]
    paths_run: int
    urr_from_triangles: bool = False  # the URR's move is its standard error (`--range urr=se`)

    @property
    def decimals(self) -> int:
        return self.program.model.decimals

    @property
    def currency(self) -> str:
        return self.program.model.currency

    def to_dict(self) -> dict:
        dec = self.decimals
        return {
            "program": self.program.model.name,
            "currency": self.currency,
            "runs": len(self.base),
            "seed": self.scenario.seed,
            "percentile_method": metrics.PERCENTILE_METHOD,
            "base": {
                "net_benefit": _money([f["net_benefit"] for f in self.base], dec),
                "liability": _money([f["liability"] for f in self.base], dec),
            },
            "ranges": {k: {"delta": v, "why": URR_SE_WHY if k == "urr" and self.urr_from_triangles else BY_KEY[k].why} for k, v in self.ranges.items()},
            "tornado": self.rows,
            "break_even": self.breakeven,
            "assumptions": self.scenario.to_dict(),
            "paths_run": self.paths_run,
        }

    def json_text(self) -> str:
        """sensitivity.json's text: sorted keys, fixed layout (same inputs, same bytes)."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def sensitivity(program, transactions, customers=None, scenario=None, *, ranges: dict[str, float] | None = None, workers: int | None = None, engine: str = "compiled") -> SensitivityResult:
    """The tornado and the break-even of `simulate(program, transactions, customers, scenario)`,
    over its own runs and seed (its base case is that simulation's figures, run for run)."""
    from simulator import api, chunked

    ranges = dict(RANGES) if ranges is None else {**RANGES, **ranges}
    urr_se = ranges["urr"] == URR_SE
    n = chunked.parquet_rows(transactions)
    if n is not None and n > chunked.AUTO_ROWS:
        raise LoyaltyError(
            f"{transactions}: error: sensitivity replays a history in one piece, and this one has {n:,} rows "
            f"(simulate replays more than {chunked.AUTO_ROWS:,} in slices); run it on a shorter `period` or a sample of customers"
        )
    with api.prepared(program, transactions, customers, scenario, workers=workers, engine=engine) as ready:
        setup = ready.setup
        sc = setup.scenario
        prog = ready.program
        model = prog.model
        with Paths(setup, workers) as paths:
            if ranges["urr"] == URR_SE:
                ranges["urr"] = urr_standard_error(paths)
            base = paths.figures([((), r) for r in range(sc.runs)])
            rows = tornado(paths, sc, base, ranges, model.point_cost, model.decimals)
            be = break_even(paths, sc, sc.runs, ranges["response.spend_uplift"] or RANGES["response.spend_uplift"])
            return SensitivityResult(prog, sc, base, rows, be, ranges, paths.paths_run, urr_se)


# --- the page, the table and the command ---------------------------------------------------------

FILES = ("sensitivity.json", "sensitivity.csv", "sensitivity.html")
TABLE_COLUMNS = (
    "assumption", "delta", "low", "base", "high",
    "net_benefit_low", "net_benefit_high", "liability_low", "liability_high", "swing",
)  # fmt: skip


def table(result: SensitivityResult):
    """The tornado as a table (one row per assumption, by swing): values and P50s."""
    import pandas as pd

    rows = [
        [r["assumption"], r["delta"], r["low"]["shown"], r["base_shown"], r["high"]["shown"],
         r["low"]["net_benefit"]["p50"], r["high"]["net_benefit"]["p50"], r["low"]["liability"]["p50"], r["high"]["liability"]["p50"], r["swing"]]
        for r in result.rows
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def chart_tornado(result: SensitivityResult):
    """Two tornadoes side by side, net benefit and liability: per assumption a bar from the base
    P50 to the low side's and one to the high side's, largest swing on top."""
    import matplotlib.pyplot as plt
    import numpy as np

    from simulator.report import PALETTE, _svg

    d = result.to_dict()
    rows = d["tornado"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 0.9 + 0.5 * len(rows)), sharey=True)
    y = np.arange(len(rows))
    for ax, (key, title) in zip(axes, (("net_benefit", "Net benefit (P50)"), ("liability", "Liability (P50)")), strict=True):
        base = d["base"][key]["p50"]
        for side, colour in (("low", PALETTE[1]), ("high", PALETTE[0])):
            ends = np.array([r[side][key]["p50"] for r in rows], dtype=float)
            ax.barh(y, ends - base, left=base, color=colour, height=0.6, label=f"{side} value")
        ax.axvline(base, color="#222222", linewidth=1)
        ax.set_title(f"{title}, {result.currency}", loc="left", fontsize=12)
        ax.grid(axis="x", color="#dddddd")
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].set_yticks(y, [f"{r['label']}\n{r['low']['shown']} – {r['high']['shown']}" for r in rows])
    axes[0].invert_yaxis()
    axes[1].legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return _svg(fig)


def uplift_text(v) -> str:
    """A spend uplift as a percentage to two decimals (a break-even is read to a basis point)."""
    return "–" if v is None else f"{100 * float(v):.2f}%"


def render_page(result: SensitivityResult) -> str:
    """sensitivity.html: the cards, the tornado, its table, the ranges and the break-even."""
    from simulator.report import _env, _flatten, _plt_setup

    _plt_setup()
    d = result.to_dict()
    assumptions = [(k, v) for k, v in _flatten(result.scenario.to_dict()) if k not in ("program", "transactions", "customers")]
    env = _env()
    env.filters["uplift"] = uplift_text
    return env.get_template("sensitivity.html").render(d=d, be=d["break_even"], decimals=result.decimals, chart=chart_tornado(result), assumptions=assumptions)


def output_files(result: SensitivityResult) -> dict:
    """What `--out` writes: each file's name and a writer given its path."""
    from rulelang import formula_safe

    def text(make):
        return lambda p: p.write_text(make(), encoding="utf-8")

    return {
        "sensitivity.json": text(result.json_text),
        "sensitivity.csv": text(lambda: formula_safe(table(result)).to_csv(index=False, lineterminator="\n")),
        "sensitivity.html": text(lambda: render_page(result)),
    }


def _print_text(result: SensitivityResult) -> None:
    from rich.console import Console
    from rich.table import Table

    from simulator.commands import _markup, plain
    from simulator.report import fmt_number

    dec = result.decimals
    d = result.to_dict()

    def money(v):
        return fmt_number(v, "money", dec)

    t = Table(title=f"{_markup(d['program'])}: {d['runs']} run(s), seed {d['seed']}, P50 net benefit and liability in {_markup(d['currency'])}, by swing")
    for col in ("assumption", "move", "low", "base", "high", "net low", "net high", "liability low", "liability high", "swing"):
        t.add_column(col, justify="left" if col == "assumption" else "right")
    for r in d["tornado"]:
        t.add_row(
            r["assumption"], f"±{r['delta']:g}", _markup(r["low"]["shown"]), _markup(r["base_shown"]), _markup(r["high"]["shown"]),
            money(r["low"]["net_benefit"]["p50"]), money(r["high"]["net_benefit"]["p50"]),
            money(r["low"]["liability"]["p50"]), money(r["high"]["liability"]["p50"]), money(r["swing"]),
        )  # fmt: skip
    Console(file=sys.stdout, width=max(170, Console().width)).print(t)
    b = d["base"]
    click.echo(f"base: net benefit P50 {money(b['net_benefit']['p50'])} (P5 {money(b['net_benefit']['p5'])}, P95 {money(b['net_benefit']['p95'])}), liability P50 {money(b['liability']['p50'])}")
    be = d["break_even"]
    s = be["spend_uplift"]
    if s["p50"] is None:
        click.echo(f"break-even spend uplift: none in -100% to +100% in any of {be['runs']} runs")
    else:
        u = uplift_text
        click.echo(f"break-even spend uplift: P50 {u(s['p50'])} (P5 {u(s['p5'])}, P95 {u(s['p95'])}), {be['runs_with_root']} of {be['runs']} runs")
    click.echo(plain("ranges (each assumption moved down and up by): " + ", ".join(f"{k} {r['delta']:g}" for k, r in d["ranges"].items())))


@click.command("sensitivity")
@click.argument("target", metavar="PROGRAM_OR_SCENARIO", type=click.Path(exists=True, dir_okay=False))
@click.option("--runs", type=click.IntRange(min=1), help="Monte Carlo runs (overrides the scenario; the base case is simulate's with the same runs)")
@click.option("--seed", type=click.IntRange(min=0), help="random seed (overrides the scenario)")
@click.option("--transactions", type=click.Path(exists=True, dir_okay=False), help="transactions CSV or Parquet (default: the scenario's, else the bundled sample)")
@click.option("--customers", type=click.Path(exists=True, dir_okay=False), help="customers CSV or Parquet")
@click.option(
    "--range",
    "ranges",
    multiple=True,
    metavar="KEY=DELTA",
    help=f"move an assumption by DELTA either way instead of its default (repeatable; urr=se: the URR's standard error); keys: {', '.join(RANGES)}",
)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="also write sensitivity.json, sensitivity.csv and sensitivity.html into this folder")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="what to print")
@click.option("--workers", type=click.IntRange(min=1), help="cores to use (default: all available)")
@click.option("--engine", type=click.Choice(["compiled", "reference"]), default="compiled", show_default=True)
def sensitivity_cmd(target, runs, seed, transactions, customers, ranges, out_dir, fmt, workers, engine):
    """A tornado of net benefit and liability against each assumption, and the break-even spend uplift."""
    from simulator import commands as cmds
    from simulator import outputs
    from simulator.api import load_program
    from simulator.inspection import require_customers

    try:
        chosen = parse_ranges(ranges)
    except LoyaltyError as exc:
        raise click.BadParameter(str(exc).split(": error: ", 1)[-1], param_hint="--range") from None
    state: dict = {}
    with cmds._interruptible(Path(out_dir) if out_dir is not None else None, state):
        try:
            sc, tx, cu = cmds._inputs(target, transactions, customers, {"runs": runs, "seed": seed})
            if out_dir is not None:
                cmds._refuse_outputs_over_inputs(out_dir, None, [cmds._input_paths(target, sc, tx, cu)], FILES)
            require_customers(load_program(sc.program), cu)  # said in the command's words, not the API's
            result = sensitivity(sc.program, tx, cu, sc, ranges=chosen, workers=workers, engine=engine)
            if out_dir is not None:
                outputs.write_set(out_dir, output_files(result))
                state["written"] = True
        except LoyaltyError as exc:
            cmds._fail(exc)
    if fmt == "json":
        click.echo(result.json_text(), nl=False)
    else:
        _print_text(result)
    if out_dir is not None:
        click.echo(cmds.plain(f"wrote {out_dir}/: {', '.join(FILES)}"), err=fmt == "json")


commands = [sensitivity_cmd]
