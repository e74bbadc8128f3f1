"""The finance figures of simulated runs: each run's URR from its own cohort triangle, and its
accounting roll-forward; then both across runs (summary, accounting.csv, triangles.csv).

A run's triangle is the (cohort, development, flow) sums `simulator.measure` adds up over the
run's postings (exact integers, the same over slices and workers); `triangles.development` makes
it the triangle `loyalty triangles` makes of a ledger file, and `triangles.redemption` projects
it (one code path for both).

**Which URR.** The liability at the end uses the run's estimate from every month of the run. The
monthly liability and the accounting's `expected_redemption: estimated` use the estimate as it
stood at each month's end (from the postings up to then), as finance books it: the last month's
is the liability's. Where the chain ladder has nothing to project from (fewer than two cohorts
with points kept, or no redemption yet) the URR is 1 (FALLBACK_URR): every point kept is taken
to be redeemed, the prudent assumption IFRS 15 B46 makes while breakage cannot be estimated
(and the old formula's value when nothing had been redeemed or had expired). The summary counts
the runs and month-ends that used it (`urr_estimate`).

**The URR's own uncertainty.** Each run's final URR comes with Mack's standard error (NumPy,
`triangles.chain_ladder`: cheap, so every run has one). The runs' spread of the URR is the
simulation's uncertainty (which members come, what they buy and redeem); Mack's error is the
estimate's (a finite triangle's factors are themselves uncertain). The summary gives both, and a
liability interval that combines them: for each run, LIABILITY_DRAWS URRs drawn from
normal(URR, Mack's error), counter-based from the seed (stream STREAM_URR), each bounded to
[0, 1] and times the run's outstanding points x point cost, rounded half up to the minor unit;
the interval is the P5/P50/P95 of all runs' draws together. A run whose error cannot be
estimated (or which fell back) contributes its liability alone, LIABILITY_DRAWS times.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pandas as pd

from rulelang.errors import LoyaltyError
from simulator import metrics, rng
from simulator.finance import accounting, triangles

FALLBACK_URR = 1.0
ALL = triangles.ALL
STREAM_URR = 101  # rng stream of the URR draws of the liability interval
LIABILITY_DRAWS = 200  # URRs drawn per run for the liability interval


@dataclass(frozen=True)
class RunURR:
    """A run's URR: the estimate at the end (`final`, what the liability uses), each month-end's
    (`by_month`), both with the fallback applied, and how many month-ends fell back."""

    final: float
    by_month: np.ndarray  # float, one per month of the simulation
    estimated: bool  # the final estimate is the chain ladder's (not the fallback)
    fallback_months: int
    # Mack's standard error of the final URR (NaN: not estimable, or the run fell back)
    std_error: float = float("nan")

    @property
    def exact(self) -> Fraction:
        """The final URR as the exact decimal it prints as (money is computed from it exactly)."""
        return as_fraction(self.final)


def as_fraction(rate: float) -> Fraction:
    """A rate as the exact decimal of its shortest form: 0.97 is 97/100, never a binary fraction."""
    return Fraction(repr(float(rate)))


def checked_span(months: pd.PeriodIndex) -> pd.PeriodIndex:
    """The simulation's months, or a LoyaltyError when there are more than a cohort triangle
    follows (`triangles.MAX_MONTHS`, as for a ledger file): each run sums months x months cells."""
    if len(months) > triangles.MAX_MONTHS:
        raise LoyaltyError(
            f"the simulation spans {len(months):,} months ({months[0]} to {months[-1]}), more than the {triangles.MAX_MONTHS} "
            "(50 years) whose cohort triangles a run follows for its liability; shorten the `period` or the `horizon`"
        )
    return months


def run_development(triangle: np.ndarray, months: pd.PeriodIndex) -> triangles.Development:
    """The run's cohorts over the simulation's months (cohort 0 is the first month)."""
    return triangles.development(ALL, months[0], triangle)


def _rate(urr: float, projectable: bool) -> tuple[float, bool]:
    """A chain-ladder URR as the books use it, and whether it is one: else the fallback rate."""
    usable = projectable and bool(np.isfinite(urr)) and urr > 0
    return (urr if usable else FALLBACK_URR), usable


def run_urr(triangle: np.ndarray, months: pd.PeriodIndex) -> RunURR:
    """The run's URR at the end and at each month's end, from its triangle sums."""
    dev = run_development(triangle, months)
    n = len(months)
    by_month = np.empty(n, dtype=np.float64)
    usable = np.zeros(n, dtype=bool)
    std_error = float("nan")
    for m in range(n - 1):
        # The month-ends' rates alone (no errors, no cohort table): what the books use.
        by_month[m], usable[m] = _rate(*triangles.urr_only(triangles.as_of(dev, m)))
    # Mack's error only for the final estimate.
    final = triangles.redemption(dev, errors=True)
    by_month[-1], usable[-1] = _rate(final.urr, final.projectable)
    if usable[-1]:
        std_error = float(final.std_error)
    return RunURR(float(by_month[-1]), by_month, bool(usable[-1]), int((~usable).sum()), std_error)


# --- the accounting of a run -------------------------------------------------------------------------


def run_accounting(config, cells: np.ndarray, sales_m: np.ndarray, urr: RunURR, months: pd.PeriodIndex, point_cost: Fraction, decimals: int) -> pd.DataFrame | None:
    """The run's monthly roll-forward in minor units (simulator.finance.accounting), or None when
    the scenario asks for no accounting. `cells`: the run's (month, kind) points (metrics.KINDS)."""
    if config is None:
        return None
    col = {k: cells[:, i].astype(np.int64) for i, k in enumerate(metrics.KINDS)}
    rates = urr.by_month if config.expected_redemption == "estimated" else config.expected_redemption
    labels = list(months.strftime("%Y-%m"))
    if config.method == "deferred_revenue":
        return accounting.deferred_revenue(
            sales_m, col["earn"], col["redeem"], rates, config.value_per_point, decimals, labels
        )
    cost = Decimal(point_cost.numerator) / Decimal(point_cost.denominator)
    # Points that leave unredeemed: expired, and clawed back with a refunded purchase.
    return accounting.provision(col["earn"], col["redeem"], col["expire"] + col["clawback"], rates, cost, decimals, labels)


def lines(method: str) -> tuple[str, ...]:
    return accounting.REVENUE_COLUMNS if method == "deferred_revenue" else accounting.PROVISION_COLUMNS


def accounting_table(frames: list[pd.DataFrame], method: str, decimals: int) -> pd.DataFrame:
    """accounting.csv: one row per month and line of the roll-forward, with run 0's amount and the
    mean, P5, P50, P95 over runs, in currency units. Run 0's rows balance to the unit; percentiles
    of each cell need not add up across lines (each is some run's own value)."""
    names = lines(method)
    months = frames[0]["month"].to_numpy()
    stack = np.stack([f[list(names)].to_numpy(dtype=np.int64) for f in frames])  # run, month, line
    unit = Decimal(1).scaleb(-decimals)  # amounts printed with the currency's decimals (0.00, not 0)
    rows = []
    for m, month in enumerate(months):
        for j, name in enumerate(names):
            values = stack[:, m, j]
            s = metrics.spread([Fraction(int(v), 10**decimals) for v in values], decimals)
            rows.append({"month": month, "line": name, "run_0": (Decimal(int(values[0])) * unit).quantize(unit), **s})
    return pd.DataFrame(rows, columns=["month", "line", "run_0", "mean", "p5", "p50", "p95"])


def accounting_summary(frames: list[pd.DataFrame], method: str, decimals: int) -> dict:
    """The summary's `accounting`: the balance at the end and what the months released, over runs."""
    scale = 10**decimals

    def over_runs(values) -> dict:
        return metrics.spread([Fraction(int(v), scale) for v in values], decimals)

    if method == "deferred_revenue":
        out = {
            "closing_deferred_revenue": over_runs(f["closing"].iloc[-1] for f in frames),
            "revenue_deferred": over_runs(f["deferred"].sum() for f in frames),
            "revenue_recognised": over_runs(
                (f["recognised_on_redemption"] + f["recognised_breakage"] + f["change_of_estimate"]).sum() for f in frames
            ),
            "breakage_recognised": over_runs(f["recognised_breakage"].sum() for f in frames),
        }
    else:
        out = {
            "closing_provision": over_runs(f["closing"].iloc[-1] for f in frames),
            "provided": over_runs(f["provided"].sum() for f in frames),
            "used_on_redemption": over_runs(f["used_on_redemption"].sum() for f in frames),
            "breakage_released": over_runs(f["released_breakage"].sum() for f in frames),
            "change_of_estimate": over_runs(f["change_of_estimate"].sum() for f in frames),
        }
    return {"method": method, **out}


# --- across runs -------------------------------------------------------------------------------------


def urr_summary(urrs: list[RunURR], per_run: list[dict], point_cost: Fraction, decimals: int, seed: int) -> dict:
    """The summary's `urr_estimate`: how the URR was made, the runs that fell back, Mack's
    standard error over the runs and the liability interval that adds it to the runs' spread
    (module docstring). `per_run`: each run's figures (metrics.figures_from)."""
    fallback_runs = sum(not u.estimated for u in urrs)
    errors = [u.std_error if np.isfinite(u.std_error) else None for u in urrs]
    out = {
        "method": "chain ladder on each run's own cohort triangle of redeemed points (docs/simulator.md, Breakage and the liability triangle)",
        "monthly_liability": "each month's points outstanding x point cost x the URR as estimated at that month's end",
        "std_error": metrics.spread(errors, 6),
        "std_error_runs": sum(e is not None for e in errors),
        "liability_interval": liability_interval(
            urrs, [f["points_outstanding"] for f in per_run], [f["liability"] for f in per_run], point_cost, decimals, seed
        ),
        "liability_interval_method": (
            f"{LIABILITY_DRAWS} URRs per run drawn from normal(the run's URR, its Mack standard error), bounded to [0, 1], "
            "x the run's outstanding points x point cost; P5/P50/P95 over all runs' draws"
        ),
        "fallback_urr": FALLBACK_URR,
        "fallback_runs": fallback_runs,
        "fallback_month_ends": int(sum(u.fallback_months for u in urrs)),
    }
    if fallback_runs:
        out["warning"] = (
            f"{fallback_runs} of {len(urrs)} runs had no chain ladder estimate at the end (fewer than two cohorts with points, or no "
            f"redemption): their liability takes every point outstanding as redeemed (URR {FALLBACK_URR:g})"
        )
    return out


def urr_draws(urr: RunURR, seed: int, run: int) -> np.ndarray:
    """The run's LIABILITY_DRAWS URRs: normal(URR, Mack's error) by Box-Muller on counter-based
    uniforms, bounded to [0, 1]; the URR itself each time where its error is not estimable."""
    if not np.isfinite(urr.std_error):
        return np.full(LIABILITY_DRAWS, urr.final)
    # Box-Muller: two uniforms a normal; 1 - u is in (0, 1], so its log is finite.
    u = rng.uniform(seed, run, np.zeros(2 * LIABILITY_DRAWS, dtype=np.int64), np.arange(2 * LIABILITY_DRAWS, dtype=np.int64), STREAM_URR)
    z = np.sqrt(-2.0 * np.log1p(-u[:LIABILITY_DRAWS])) * np.cos(2.0 * np.pi * u[LIABILITY_DRAWS:])
    return np.clip(urr.final + urr.std_error * z, 0.0, 1.0)


def liability_interval(urrs: list[RunURR], outstanding: list[int], liabilities: list[int], point_cost: Fraction, decimals: int, seed: int) -> dict:
    """{"mean","p5","p50","p95"} of the liability over every run's URR draws (`urr_draws`), in
    currency units; each draw's liability rounded half up to the minor unit. A run without
    Mack's error counts its own `liabilities` (minor units) LIABILITY_DRAWS times."""
    per_unit = float(point_cost * 10**decimals)
    minor = []
    for run, (u, points, own) in enumerate(zip(urrs, outstanding, liabilities, strict=True)):
        if np.isfinite(u.std_error):
            minor.append(np.floor(points * per_unit * urr_draws(u, seed, run) + 0.5).astype(np.int64))
        else:
            minor.append(np.full(LIABILITY_DRAWS, own, dtype=np.int64))
    return metrics.spread([Fraction(int(v), 10**decimals) for v in np.concatenate(minor)], decimals)


@dataclass(frozen=True)
class RunTriangles:
    """Run 0's triangles and URR with Mack's errors: `table` as triangles.csv holds it (cohort x
    development), `cohorts` as urr.csv holds it (each cohort's projection, then the overall)."""

    table: pd.DataFrame
    cohorts: pd.DataFrame
    overall: triangles.Redemption


def run_triangles(triangle: np.ndarray, months: pd.PeriodIndex) -> RunTriangles:
    """Run 0's triangles over the months its postings span (as `loyalty triangles` reads its
    ledger), with Mack's standard errors."""
    increments, first = triangles.trimmed(triangle, months[0])
    dev = triangles.development(ALL, first, increments)
    estimate = triangles.redemption(dev, errors=True)
    return RunTriangles(triangles.triangle_table([dev]), triangles.cohort_rows(estimate), estimate)
