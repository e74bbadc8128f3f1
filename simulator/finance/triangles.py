"""Cohort triangles of points and the ultimate redemption rate (URR), by chain ladder with Mack's errors.

A cohort is the points earned in one calendar month (the month of a posting's `earned_on`, its
lot); a cohort develops by the months since (0 for the month it was earned). For every cohort and
development month the triangle holds the points earned and, cumulatively, those clawed back,
redeemed and expired. Postings of kinds `capped` and `shortfall` move no points and are left out.

The URR is the share of a cohort's points that will ever be redeemed. The cumulative redeemed
triangle is projected to ultimate by the chain ladder (volume-weighted development factors, no
tail beyond the oldest cohort's age) with Mack's (1993) standard errors, computed here in NumPy as
the casact `chainladder` package computes them (its MackChainladder, sigma of the last age by
log-linear extrapolation; the tests hold the two equal, the package being their oracle).
That package reads a 0 as no value: a ratio from a cohort with nothing redeemed yet is left out, a
development month with no ratio at all has factor 1, and a cohort with nothing redeemed so far
projects to 0. Where Mack's error cannot be estimated (too few ratios) it is NaN, never a guess.
A cohort's URR = its ultimate redeemed points / its points earned net of clawbacks (a refunded
purchase's points were never really given), its standard error Mack's divided by the same; the
overall URR and its error are the totals' (Mack's total error counts the cohorts' correlation).

Per tier, a lot (a member's points earned on one day) belongs to the tier its first `earn`
posting was made at, so each lot's redemptions and expiries stay with the points they spend even
when the member has moved tier since.

Points are integers throughout; only the projections and ratios are floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from rulelang.engine import read_datetimes
from rulelang.errors import DataError

REQUIRED = ("customer_id", "timestamp", "kind", "points", "earned_on")
KINDS = ("earn", "capped", "clawback", "shortfall", "redeem", "expire")
# The kinds that move a lot's points, each with the triangle column it adds to.
FLOWS = {"earn": "earned", "clawback": "clawed_back", "redeem": "redeemed", "expire": "expired"}
# A posting of more points than this is no real ledger's; it also keeps every int64 sum exact.
MAX_POINTS = 10**15
# Bounds on what a ledger may ask for: a triangle is months x months per group.
MAX_MONTHS = 600  # 50 years of cohorts
MAX_TIERS = 50
ALL = "(all)"  # the group of the whole ledger: not a tier name (tier names are identifiers)
ROW_NOTE = "row numbers count data rows from 1; the header is not counted"
LEDGER_HINT = (
    "a ledger has the columns customer_id, timestamp, kind, points, earned_on (and optionally tier), "
    "as `loyalty simulate` writes them to ledger.parquet (docs/semantics.md, The ledger)"
)


# --- reading a ledger -------------------------------------------------------------------------------


def read_ledger(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    """A ledger from a CSV or Parquet file (or a DataFrame), validated (see `validated_ledger`)."""
    from simulator import io  # the project's one reader: text read as text, bad files named

    name, raw = io.read_table(source, "ledger")
    return validated_ledger(raw, name)


def validated_ledger(raw: pd.DataFrame, source: str = "<ledger>") -> pd.DataFrame:
    """The ledger's postings with exact types, or a DataError naming the file, row and column.

    Returns the columns `row` (data row from 1), customer_id, timestamp, kind (categorical of the
    six kinds), points (int64), earned_on, tier (text; "" when the ledger has none). Checked: every
    kind is one of the six, points are whole numbers 0..10^15, timestamps are date-times, every
    posting that moves points names its lot (`earned_on`) and is not before it, and no lot gives
    out more points than were earned into it (a ledger cut after its first postings would).
    """
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise DataError(f"{source}: error: the ledger has no column {', '.join(f'`{c}`' for c in missing)}; {LEDGER_HINT}")
    n = len(raw)
    if n == 0:
        raise DataError(f"{source}: error: the ledger has no postings, so no earned points to build cohorts from; {LEDGER_HINT}")
    codes = pd.Index(KINDS).get_indexer(raw["kind"].astype("string").str.strip().fillna("").astype(object))
    _refuse(source, raw["kind"], codes < 0, "kind", f"is not a kind of posting; expected one of {', '.join(KINDS)}")
    kind = pd.Categorical.from_codes(codes, categories=KINDS)
    points = _whole_points(raw["points"], source)
    timestamp = _datetimes(raw["timestamp"], source, "timestamp", required=np.ones(n, dtype=bool))
    moves = np.isin(np.asarray(kind.codes), [KINDS.index(k) for k in FLOWS])
    earned_on = _datetimes(raw["earned_on"], source, "earned_on", required=moves)
    tier = raw["tier"].astype("string").fillna("").astype(object) if "tier" in raw.columns else pd.Series("", index=raw.index, dtype=object)
    ledger = pd.DataFrame(
        {
            "row": np.arange(1, n + 1, dtype=np.int64),
            "customer_id": raw["customer_id"].astype("string").fillna("").astype("category"),
            "timestamp": timestamp,
            "kind": kind,
            "points": points,
            "earned_on": earned_on,
            "tier": tier.astype("category"),
        }
    )
    early = moves & (_month(ledger["timestamp"]) < _month(ledger["earned_on"]))
    if early.any():
        at = int(np.flatnonzero(early)[0])
        raise DataError(
            f"{source}: error: row {at + 1}, column `timestamp`: a {ledger['kind'].iloc[at]} at {ledger['timestamp'].iloc[at]} "
            f"spends points earned on {ledger['earned_on'].iloc[at].date()}, a later month; a posting cannot move points before they are earned ({ROW_NOTE})"
        )
    months = _month(ledger.loc[moves, "timestamp"])
    if len(months) and months.max() - _month(ledger.loc[moves, "earned_on"]).min() >= MAX_MONTHS:
        raise DataError(
            f"{source}: error: the ledger spans more than {MAX_MONTHS} months from its first earned lot to its last posting; "
            "cut it to the years you want to follow (cohort triangles are months by months)"
        )
    tiers = ledger["tier"].cat.categories
    if ALL in set(tiers):
        at = int(np.flatnonzero((ledger["tier"] == ALL).to_numpy())[0])
        raise DataError(
            f"{source}: error: row {at + 1}, column `tier`: {ALL!r} names the whole ledger here, so no tier may be called that; rename it ({ROW_NOTE})"
        )
    if len(tiers) > MAX_TIERS:
        raise DataError(
            f"{source}: error: column `tier` holds {len(tiers):,} different tiers, more than {MAX_TIERS}; a program has a few tiers"
        )
    _check_lots(ledger[moves], source)
    if not (ledger["kind"] == "earn").any() or int(ledger.loc[ledger["kind"] == "earn", "points"].sum()) == 0:
        raise DataError(
            f"{source}: error: the ledger has no earned points (no `earn` posting with points), so there are no cohorts to follow; {LEDGER_HINT}"
        )
    return ledger


def _refuse(source: str, values: pd.Series, bad: np.ndarray, column: str, what: str) -> None:
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        shown = values.iloc[at]
        cell = "an empty cell" if pd.isna(shown) or str(shown).strip() == "" else repr(str(shown))
        raise DataError(f"{source}: error: row {at + 1}, column `{column}`: {cell} {what} ({ROW_NOTE})")


def _whole_points(values: pd.Series, source: str) -> np.ndarray:
    if pd.api.types.is_integer_dtype(values.dtype) and not isinstance(values.dtype, pd.CategoricalDtype):
        number = values.to_numpy(dtype=np.float64, na_value=np.nan)
        exact = values.to_numpy(dtype=np.int64, na_value=0)
    else:
        text = values.astype("string").str.strip() if not pd.api.types.is_float_dtype(values.dtype) else values
        number = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        exact = None
    whole = np.isfinite(number) & (number == np.floor(number)) & (number >= 0) & (number <= MAX_POINTS)
    _refuse(source, values, ~whole, "points", f"is not a whole number of points from 0 to {MAX_POINTS:,} (the kind gives the direction)")
    return exact if exact is not None else number.astype(np.int64)


def _datetimes(values: pd.Series, source: str, column: str, required: np.ndarray) -> pd.Series:
    read = read_datetimes(values)
    out = read.values.reset_index(drop=True)
    given = values.notna().to_numpy() & (values.astype("string").fillna("").str.strip() != "").to_numpy()
    bad = (given & out.isna().to_numpy()) | read.out_of_range
    _refuse(source, values, bad, column, "is not a date-time; write it as ISO 8601, like 2026-01-31 or 2026-01-31 10:00:00")
    _refuse(
        source,
        values,
        required & out.isna().to_numpy(),
        column,
        "where a date is needed: every earn, clawback, redeem and expire posting names the day its lot was earned",
    )
    return out


def _month(values: pd.Series) -> np.ndarray:
    """Months since year 0 (NaT gives a large negative number, never used)."""
    dt = pd.DatetimeIndex(values)
    return dt.year.to_numpy(dtype=np.int64, na_value=-(10**6)) * 12 + dt.month.to_numpy(dtype=np.int64, na_value=1) - 1


def _check_lots(moving: pd.DataFrame, source: str) -> None:
    """No lot (member, earned_on) gives out more points than it took in."""
    signed = np.where(moving["kind"].to_numpy() == "earn", 1, -1) * moving["points"].to_numpy()
    keys = [moving["customer_id"].cat.codes.to_numpy(), moving["earned_on"].to_numpy()]
    balance = pd.Series(signed).groupby(keys).sum()
    if (balance >= 0).all():
        return
    customer_code, day = balance.index[np.flatnonzero(balance.to_numpy() < 0)[0]]
    in_lot = (keys[0] == customer_code) & (keys[1] == day) & (moving["kind"].to_numpy() != "earn")
    first = moving.iloc[int(np.flatnonzero(in_lot)[0])]
    raise DataError(
        f"{source}: error: row {first['row']}: customer {first['customer_id']}'s points earned on {pd.Timestamp(day).date()} are spent "
        f"(redeemed, expired or clawed back) beyond what the ledger shows was earned into that lot; a ledger must hold every lot's earn "
        f"postings (start it at the program's launch, or at a date before which all points were used up) ({ROW_NOTE})"
    )


# --- the triangles ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Development:
    """One group's cohorts: `cumulative[c, a, f]` the points of flow f (FLOWS' order) of cohort c,
    up to development month a (int64; cells beyond the ledger's last month are 0 and not `known`)."""

    group: str
    cohorts: pd.PeriodIndex  # the months, first earned to the ledger's last
    cumulative: np.ndarray  # int64 [cohort, age, flow]
    known: np.ndarray  # bool [cohort, age]: the month cohort + age is within the ledger

    def flow(self, name: str) -> np.ndarray:
        return self.cumulative[:, :, list(FLOWS.values()).index(name)]

    @property
    def latest(self) -> np.ndarray:
        """Each cohort's last known development month's cumulative points [cohort, flow]."""
        return self.cumulative[:, -1, :]

    @property
    def exposure(self) -> np.ndarray:
        """Each cohort's points earned net of those clawed back so far (the URR's denominator)."""
        return self.latest[:, 0] - self.latest[:, 1]


def developments(ledger: pd.DataFrame, by_tier: bool = False) -> list[Development]:
    """The whole ledger's cohorts (group `(all)`), then each tier's when `by_tier` and the ledger has
    tiers. `ledger` is as `validated_ledger` returns it (or a simulated ledger)."""
    moving = ledger[ledger["kind"].isin(list(FLOWS))]
    earned_month = _month(moving["earned_on"])
    ts_month = _month(moving["timestamp"])
    first, last = int(earned_month.min()), int(ts_month.max())
    size = last - first + 1
    cohort, age = earned_month - first, ts_month - earned_month
    flow = pd.Categorical(moving["kind"].astype(object), categories=list(FLOWS)).codes.astype(np.int64)
    months = pd.period_range(pd.Period(year=first // 12, month=first % 12 + 1, freq="M"), periods=size, freq="M")
    groups = {ALL: np.ones(len(moving), dtype=bool)}
    if by_tier:
        lot_tier = _lot_tiers(moving)
        groups |= {t: lot_tier == t for t in sorted(set(lot_tier)) if t != ""}
    out = []
    points = moving["points"].to_numpy(dtype=np.int64)
    for name, mask in groups.items():
        flat = (cohort[mask] * size + age[mask]) * len(FLOWS) + flow[mask]
        sums = pd.Series(points[mask]).groupby(flat).sum()  # exact int64 sums
        increments = np.zeros(size * size * len(FLOWS), dtype=np.int64)
        increments[sums.index.to_numpy()] = sums.to_numpy()
        out.append(development(name, months[0], increments.reshape(size, size, len(FLOWS))))
    return out


def development(group: str, first: pd.Period, increments: np.ndarray) -> Development:
    """One group's cohorts from its points per (cohort, development month, flow) (int64, FLOWS'
    order; cohort 0 is the month `first`): the one way a triangle is built, whether its sums come
    from a ledger (`developments`) or from a simulated run's own sums (simulator.measure)."""
    size = increments.shape[0]
    months = pd.period_range(first, periods=size, freq="M")
    known = (np.arange(size)[None, :] + np.arange(size)[:, None]) < size
    return Development(group, months, np.cumsum(np.asarray(increments, dtype=np.int64), axis=1), known)


def trimmed(increments: np.ndarray, first: pd.Period) -> tuple[np.ndarray, pd.Period]:
    """Increments over a fixed span of months cut to the months a ledger of the same postings
    spans (`developments`): from the first cohort with points to the last month any points moved.
    All zero: the first month alone."""
    moved = increments.any(axis=2)  # [cohort, age]
    if not moved.any():
        return increments[:1, :1], first
    c, a = np.nonzero(moved)
    lo, hi = int(c.min()), int((c + a).max())
    n = hi - lo + 1
    return np.ascontiguousarray(increments[lo : hi + 1, :n]), first + lo


def as_of(dev: Development, month: int) -> Development:
    """The cohorts as they stood at the end of development month `month` of the first cohort
    (postings after it left out): the triangle a month-end estimate is made from."""
    n = month + 1
    increments = np.diff(dev.cumulative[:n, :n], axis=1, prepend=0)
    increments[(np.arange(n)[None, :] + np.arange(n)[:, None]) >= n] = 0
    return development(dev.group, dev.cohorts[0], increments)


def _lot_tiers(moving: pd.DataFrame) -> np.ndarray:
    """Each posting's lot's tier: the tier of the lot's first earn posting."""
    earns = moving[moving["kind"] == "earn"].drop_duplicates(["customer_id", "earned_on"])
    key = ["customer_id", "earned_on"]
    tiers = earns[key].assign(lot_tier=earns["tier"].astype(object)).astype({"customer_id": moving["customer_id"].dtype})
    joined = moving[key].merge(tiers, on=key, how="left")
    return joined["lot_tier"].fillna("").to_numpy(dtype=object)


def triangle_table(devs: list[Development]) -> pd.DataFrame:
    """The triangles as rows: tier (`(all)` for the whole ledger), cohort (YYYY-MM), development
    (months since), earned, and the cumulative clawed_back, redeemed, expired, then the redeemed and
    expired shares of the points earned net of clawbacks (empty when a cohort kept none)."""
    frames = []
    for dev in devs:
        c, a = np.nonzero(dev.known)
        exposure = dev.exposure[c]
        frames.append(
            pd.DataFrame(
                {
                    "tier": dev.group,
                    "cohort": dev.cohorts[c].strftime("%Y-%m"),
                    "development": a,
                    "earned": dev.latest[c, 0],
                    "clawed_back": dev.flow("clawed_back")[c, a],
                    "redeemed": dev.flow("redeemed")[c, a],
                    "expired": dev.flow("expired")[c, a],
                    "redeemed_share": _share(dev.flow("redeemed")[c, a], exposure),
                    "expired_share": _share(dev.flow("expired")[c, a], exposure),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _share(points: np.ndarray, exposure: np.ndarray) -> np.ndarray:
    """points / exposure, NaN where the exposure is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(exposure > 0, points / exposure.astype(np.float64), np.nan)


# --- chain ladder -----------------------------------------------------------------------------------


OVERFLOWED = 1e150  # Mack errors this large come from a sigma extrapolated past the largest float


@dataclass(frozen=True)
class ChainLadder:
    """A chain ladder projection: per origin (row) the latest value, the ultimate and Mack's
    standard error of it (0 for a fully developed origin; NaN where not estimable: fewer than three
    ages with two or more ratios, or a development month in which no origin has any value yet),
    and the totals."""

    latest: np.ndarray
    ultimate: np.ndarray
    std_error: np.ndarray
    factors: np.ndarray  # volume-weighted age-to-age factors, age a to a+1
    total_ultimate: float
    total_std_error: float
    # Mack's total error over the origins whose own error is estimable (the package's total); equal
    # to `total_std_error` when every origin's is.
    estimable_std_error: float

    @property
    def ibnr(self) -> float:
        """The total still to come: ultimate minus latest."""
        return self.total_ultimate - float(self.latest.sum())


def chain_ladder(cumulative: np.ndarray) -> ChainLadder:
    """Mack's chain ladder on a cumulative triangle `cumulative[origin, age]` (NaN where unknown;
    a staircase: origin i known up to the same calendar diagonal as every other), in NumPy, as
    the casact `chainladder` package computes it (MackChainladder on volume-weighted factors, no
    tail; tests hold the two equal on RAA and on random triangles).

    Mack (1993): per origin, the process risk (sigma^2 of each future age's development) and the
    parameter risk (the factors' own standard errors), each carried forward age by age; for the
    total, the parameter risk of the origins' sum (the origins share the factors, so their errors
    are correlated) with the process risks added in quadrature. sigma^2 of an age with a single
    ratio (the last) is extrapolated log-linearly from the others; the package's readings are
    kept: a 0 is no value, an age with no ratio has factor 1 in the projection and resets the
    risk carried past it, a sigma of 0 counts as not estimated.
    """
    tri = np.asarray(cumulative, dtype=np.float64)
    n_origin, n_age = tri.shape
    known = ~np.isnan(tri)
    latest_age = known.sum(axis=1) - 1
    if (latest_age < 0).any() or not all(known[i, : latest_age[i] + 1].all() for i in range(n_origin)):
        raise ValueError("every origin needs its known ages first, at least one")
    diagonal = int((np.arange(n_origin) + latest_age).max())
    staircase = np.add.outer(np.arange(n_origin), np.arange(n_age)) <= diagonal
    if not (known == staircase).all():
        raise ValueError("a triangle is known up to one calendar diagonal: origin i at ages 0..(last - i)")
    latest = tri[np.arange(n_origin), latest_age]
    if n_origin == 1 or n_age == 1:  # no age-to-age ratio at all: nothing develops
        std = np.where(latest_age == n_age - 1, 0.0, np.nan)
        total_std = 0.0 if (std == 0).all() else float("nan")
        return ChainLadder(latest, latest.copy(), std, np.ones(0), float(latest.sum()), total_std, 0.0)
    with np.errstate(all="ignore"):
        factors, ultimate, process, parameter, total_parameter = _mack(tri, latest, latest_age)
    # The package reads a 0 as no value: an origin with nothing yet projects to 0 (the chain ladder
    # multiplies what it has seen), with no error (Mack's mse is proportional to the ultimate squared).
    # An error the recursions leave at 0 (no ratio to estimate sigma from on its way) is one the
    # package does not report: NaN here, unless the origin is closed or has nothing to project.
    nothing = latest == 0
    with np.errstate(over="ignore"):
        std = np.sqrt(process**2 + parameter**2)
        estimable = float(np.sqrt(np.sum(process**2) + total_parameter**2))
    ultimate = np.where(nothing, 0.0, np.where(np.isfinite(ultimate), ultimate, np.nan))
    # A sigma extrapolated past the largest float gives errors that overflow (the package reports
    # the square root of the largest float there): not estimable, NaN here, never a number.
    std = np.where(nothing | (latest_age == n_age - 1), 0.0, np.where(np.isfinite(std) & (std != 0) & (std < OVERFLOWED), std, np.nan))
    total = float(ultimate.sum()) if np.isfinite(ultimate).all() else float("nan")
    estimable = estimable if np.isfinite(estimable) and 0 < estimable < OVERFLOWED else float("nan")
    total_std = estimable if np.isfinite(total) and np.isfinite(std).all() else float("nan")
    return ChainLadder(latest, ultimate, std, np.nan_to_num(factors, nan=1.0), total, total_std, estimable)


def _zero_as_nan(values: np.ndarray) -> np.ndarray:
    return np.where(values == 0, np.nan, values)


def _line_fit(y: np.ndarray, weight: np.ndarray | None = None) -> tuple[float, float]:
    """(slope, intercept) of y on 1..k, least squares over the weighted points, as the package's
    unconstrained regression computes it (its sums skip NaN; a zero sum is NaN)."""
    x = np.arange(1, len(y) + 1, dtype=np.float64)
    weight = np.ones(len(y)) if weight is None else weight
    xs, ys = np.where(weight == 0, np.nan, x), np.where(weight == 0, np.nan, y)
    x_mean = np.nansum(weight * xs) / np.nansum(weight)
    y_mean = np.nansum(ys * weight) / np.nansum(weight)
    numerator = np.nansum(weight * xs * ys) - np.nansum(xs * weight) * y_mean
    denominator = np.nansum(weight * xs * xs) - np.nansum(xs * weight) * x_mean
    slope = _zero_as_nan(numerator) / _zero_as_nan(denominator)
    return float(slope), float(y_mean - slope * x_mean)


def _mack(tri: np.ndarray, latest: np.ndarray, latest_age: np.ndarray):
    """Factors, ultimates, per-origin process and parameter risk at ultimate, and the total's
    parameter risk: the package's steps (Development, TailConstant(1), MackChainladder) for one
    monthly triangle, in the same order of operations so the figures agree to rounding."""
    n_origin, n_age = tri.shape
    values = _zero_as_nan(tri)
    x, y = values[:, :-1], values[:, 1:]
    # Volume-weighted regression through the origin: weight 1/x on each ratio y/x.
    paired = ~np.isnan(y)
    weight = np.where(paired, 1.0 / x, 1.0)
    weight = np.where(np.isnan(x) & paired, np.nan, weight)
    pair_weight = np.where(paired, weight, np.nan)
    denominator = _zero_as_nan(np.nansum(pair_weight * x * x, axis=0))
    factors = _zero_as_nan(np.nansum(pair_weight * x * y, axis=0)) / denominator
    residual = y - factors * x
    wss = np.nansum(residual**2 * pair_weight, axis=0)
    count = np.sum(paired & (np.nan_to_num(pair_weight) != 0), axis=0) - 1.0
    mse = wss / _zero_as_nan(count)
    sigma = np.sqrt(mse)
    std_err = np.sqrt(mse / denominator)
    # sigma where not estimable (one ratio): log-linear in the age from the others.
    log_sigma = np.log(np.where(sigma == 0, 1e-320, sigma))
    has = (~np.isnan(log_sigma)).astype(np.float64)
    slope, intercept = _line_fit(log_sigma, has)
    ages = np.arange(1, n_age, dtype=np.float64)
    fill = np.exp(ages * slope + intercept) * (1 - has)
    sigma = _zero_as_nan(np.nan_to_num(sigma) + np.nan_to_num(fill))
    # the factor's standard error where not estimable: sigma / sqrt(the oldest origin's value)
    exponent = (~np.isnan(values[0, 1:])).astype(np.float64)
    std_err = np.nan_to_num(std_err) + np.nan_to_num(np.isnan(std_err) * sigma / np.sqrt(values[0, :-1] ** (2 - exponent)))
    # The tail (factor 1) has no variation: 0, or NaN where the package's extrapolation fails.
    growth = np.where(factors <= 1, np.nan, factors)
    g_slope, g_intercept = _line_fit(np.log(growth - 1))
    tail_age = (np.log(0.001) - g_intercept) / g_slope
    s_slope, s_intercept = _line_fit(np.log(sigma))
    e_slope, e_intercept = _line_fit(np.log(_zero_as_nan(std_err)))
    sigma = np.append(sigma, np.exp(tail_age * s_slope + s_intercept) * 0)
    std_err = np.append(std_err, np.exp(tail_age * e_slope + e_intercept) * 0)
    # Ultimates: the latest value times the factors still to come (an age with no ratio: 1).
    filled = np.append(np.nan_to_num(factors, nan=1.0), 1.0)
    to_ultimate = np.cumprod(filled[::-1])[::-1]  # to_ultimate[a]: from age a on
    ultimate = latest * to_ultimate[latest_age]
    ultimate = np.where(np.isfinite(ultimate), ultimate, np.nan)
    # The full triangle: the run-off from the latest value to the ultimate, in the factors' shape.
    ages_all = np.arange(n_age)
    future = ages_all[None, :] > latest_age[:, None]
    steps = np.where(ages_all[None, :-1] >= latest_age[:, None], filled[None, :-1], 1.0)
    steps = np.where(np.isfinite(ultimate / ultimate)[:, None], steps, 1.0)
    grown = np.concatenate([np.ones((n_origin, 1)), np.cumprod(steps, axis=1)], axis=1) - 1
    emergence = grown / _zero_as_nan(grown[:, -1:])
    # Nothing still to come (factors of 1 ahead): the package's sum keeps the latest value.
    run_off = latest[:, None] + np.nan_to_num(emergence * (ultimate - latest)[:, None])
    full = np.where(future, run_off, tri)
    # Mack's recursions, age by age; risk reaches only future cells, and the ultimate after the tail.
    ldf = np.append(factors, 1.0)
    reach = np.concatenate([future, np.ones((n_origin, 1), dtype=bool)], axis=1)
    cell_sigma = np.nan_to_num(sigma[None, :] / _zero_as_nan(np.sqrt(full)))
    process_step = np.nan_to_num(full) * cell_sigma
    parameter_step = np.nan_to_num(full) * std_err[None, :]
    process = np.zeros(n_origin)
    parameter = np.zeros(n_origin)
    total_parameter = np.float64(0.0)
    from_latest = ages_all[None, :] >= latest_age[:, None]
    total_step = np.nan_to_num(np.nansum(np.where(from_latest, full, np.nan) * std_err[None, :], axis=0))
    for a in range(n_age):
        process = np.nan_to_num(np.sqrt(process_step[:, a] ** 2 + (ldf[a] * process) ** 2) * reach[:, a + 1])
        parameter = np.nan_to_num(np.sqrt(parameter_step[:, a] ** 2 + (ldf[a] * parameter) ** 2) * reach[:, a + 1])
        total_parameter = np.nan_to_num(np.sqrt(total_step[a] ** 2 + (ldf[a] * total_parameter) ** 2))
    return factors, ultimate, process, parameter, total_parameter


def project(cumulative: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The chain ladder's point estimate in NumPy: (volume-weighted age-to-age factors, each
    origin's ultimate) of a cumulative triangle as `chain_ladder` takes it, read as the casact
    package reads it (a ratio from an origin at 0 left out, an age with no ratio has factor 1, an
    origin at 0 projects to 0). The projection every URR uses, so a simulation can make one per
    run and per month; `chain_ladder` adds Mack's errors (tests hold the two to agree)."""
    tri = np.asarray(cumulative, dtype=np.float64)
    n_origin, n_age = tri.shape
    known = ~np.isnan(tri)
    latest_age = known.sum(axis=1) - 1
    if (latest_age < 0).any():
        raise ValueError("every origin needs its known ages first, at least one")
    latest = tri[np.arange(n_origin), latest_age]
    if n_age == 1:
        return np.ones(0), latest.copy()
    with np.errstate(invalid="ignore"):
        ratio = known[:, 1:] & (np.nan_to_num(tri[:, :-1]) > 0)
    num = np.where(ratio, tri[:, 1:], 0.0).sum(axis=0)
    den = np.where(ratio, tri[:, :-1], 0.0).sum(axis=0)
    factors = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)
    # to_ultimate[a]: the product of the factors from age a on (1 at the last age)
    to_ultimate = np.append(np.cumprod(factors[::-1])[::-1], 1.0)
    return factors, latest * to_ultimate[latest_age]


# --- the ultimate redemption rate -------------------------------------------------------------------


@dataclass(frozen=True)
class Redemption:
    """One group's ultimate redemption rate: per cohort (`cohorts`: cohort, earned, clawed_back,
    redeemed, expired, ultimate_redeemed, urr, std_error) and overall."""

    group: str
    cohorts: pd.DataFrame
    earned: int
    exposure: int  # earned net of clawbacks
    redeemed: int
    expired: int
    ultimate_redeemed: float
    urr: float
    std_error: float
    # The chain ladder has something to project from: two or more cohorts with points kept and a
    # redemption among them. Otherwise `urr` is only the share redeemed so far (or undefined).
    projectable: bool = True

    def as_dict(self) -> dict:
        def num(x: float) -> float | None:
            return None if not np.isfinite(x) else float(x)

        return {
            "group": self.group, "earned": self.earned, "exposure": self.exposure, "redeemed": self.redeemed, "expired": self.expired,
            "ultimate_redeemed": num(self.ultimate_redeemed), "urr": num(self.urr), "std_error": num(self.std_error),
        }  # fmt: skip


def redemption(dev: Development, errors: bool = True) -> Redemption:
    """The URR of one group's cohorts, by chain ladder on the cumulative redeemed points
    (`project`), with Mack's standard errors (`chain_ladder`, NumPy) when `errors` (else NaN).

    The chain ladder knows nothing of how many points a cohort has left; the ledger does. So a
    cohort with no points outstanding is closed (its ultimate is what it redeemed, with no error),
    a projection never exceeds the points still redeemable (kept less expired), and an error never
    exceeds half the room left (redeemable less redeemed: a quantity within a range of width w has
    a standard deviation of at most w / 2), for each cohort and for the total alike.
    """
    p = _projected(dev, errors)
    exposure, redeemed_now, expired_now = p.exposure, p.redeemed_now, p.expired_now
    std_error = np.where(p.closed, 0.0, np.minimum(p.mack, p.room / 2))
    # The package's total counts the origins whose error it could estimate; it is the whole's when
    # every other one is closed (known exactly).
    total_std = min(p.estimable, float(np.maximum(p.room, 0).sum()) / 2) if np.isfinite(std_error).all() else float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        urr = np.where(exposure > 0, p.ultimate / exposure, np.nan)
        urr_se = np.where(exposure > 0, std_error / exposure, np.nan)
    cohorts = pd.DataFrame(
        {
            "cohort": dev.cohorts.strftime("%Y-%m"),
            "earned": dev.latest[:, 0],
            "clawed_back": dev.latest[:, 1],
            "redeemed": redeemed_now,
            "expired": expired_now,
            "ultimate_redeemed": p.ultimate,
            "urr": urr,
            "std_error": urr_se,
        }
    )
    total = int(exposure.sum())
    return Redemption(
        group=dev.group,
        cohorts=cohorts,
        earned=int(dev.latest[:, 0].sum()),
        exposure=total,
        redeemed=int(redeemed_now.sum()),
        expired=int(expired_now.sum()),
        ultimate_redeemed=p.total_ultimate,
        urr=p.total_ultimate / total if total > 0 else float("nan"),
        std_error=total_std / total if total > 0 else float("nan"),
        projectable=p.projectable,
    )


def urr_only(dev: Development) -> tuple[float, bool]:
    """`redemption(dev)`'s (urr, projectable) alone, without its errors and cohort table: the
    month-end estimate a simulation makes for every run and month."""
    p = _projected(dev, errors=False)
    total = int(p.exposure.sum())
    return (p.total_ultimate / total if total > 0 else float("nan")), p.projectable


class _Projection(NamedTuple):
    exposure: np.ndarray  # per cohort: earned net of clawbacks
    redeemed_now: np.ndarray
    expired_now: np.ndarray
    room: np.ndarray  # redeemable (kept less expired) less redeemed
    closed: np.ndarray  # no points outstanding
    ultimate: np.ndarray
    mack: np.ndarray  # Mack's errors per cohort (NaN without `errors`)
    estimable: float  # Mack's total error (NaN without `errors`)
    total_ultimate: float
    projectable: bool


def _projected(dev: Development, errors: bool) -> _Projection:
    """Each cohort's ultimate redeemed points, kept within what the ledger says is possible."""
    exposure = dev.exposure
    redeemed_now, expired_now = dev.latest[:, 2], dev.latest[:, 3]
    redeemable = exposure - expired_now
    room = (redeemable - redeemed_now).astype(np.float64)
    closed = room <= 0
    # Months before the group's first points (a tier nobody held yet) are no cohorts: rows of
    # zeros would make the oldest ages' factors 0/0. They keep an ultimate of 0 and no URR.
    start = int(np.argmax(exposure > 0)) if (exposure > 0).any() else len(exposure) - 1
    redeemed = np.where(dev.known, dev.flow("redeemed"), np.nan).astype(np.float64)[start:, : len(exposure) - start]
    projected = np.concatenate([np.zeros(start), project(redeemed)[1]])
    if errors:
        ladder = chain_ladder(redeemed)
        mack, estimable = np.concatenate([np.zeros(start), ladder.std_error]), ladder.estimable_std_error
    else:
        mack, estimable = np.full(len(exposure), np.nan), float("nan")
    ultimate = np.where(closed, redeemed_now, np.minimum(projected, redeemable))
    total_ultimate = float(ultimate.sum()) if np.isfinite(ultimate).all() else float("nan")
    projectable = bool((exposure > 0).sum() >= 2 and redeemed_now.sum() > 0)
    return _Projection(exposure, redeemed_now, expired_now, room, closed, ultimate, mack, estimable, total_ultimate, projectable)


def cohort_rows(estimate: Redemption) -> pd.DataFrame:
    """urr.csv's rows of one group: each cohort's projection, then the group's overall (`(all)`)."""
    overall = pd.DataFrame(
        [{"cohort": ALL, "earned": estimate.earned, "clawed_back": estimate.earned - estimate.exposure, "redeemed": estimate.redeemed,
          "expired": estimate.expired, "ultimate_redeemed": estimate.ultimate_redeemed, "urr": estimate.urr, "std_error": estimate.std_error}]
    )  # fmt: skip
    return pd.concat([estimate.cohorts, overall], ignore_index=True)


@dataclass(frozen=True)
class TriangleReport:
    """What `analyse` finds: the triangles as rows, the whole ledger's URR, and each tier's."""

    table: pd.DataFrame
    overall: Redemption
    by_tier: dict[str, Redemption]
    first_month: str
    last_month: str


def analyse(ledger: pd.DataFrame, by_tier: bool = False) -> TriangleReport:
    """Triangles and URRs of a ledger (validated, or as a simulation returns it)."""
    devs = developments(ledger, by_tier)
    estimates = [redemption(d) for d in devs]
    months = devs[0].cohorts
    return TriangleReport(
        table=triangle_table(devs),
        overall=estimates[0],
        by_tier={e.group: e for e in estimates[1:]},
        first_month=str(months[0]),
        last_month=str(months[-1]),
    )


# --- inputs for the accounting ----------------------------------------------------------------------


def flows_by_month(ledger: pd.DataFrame) -> pd.DataFrame:
    """The points that moved in each calendar month (by the posting's timestamp), from the first
    month to the last: month (YYYY-MM), earned, clawed_back, redeemed, expired (int64), the
    monthly flows `accounting.deferred_revenue` and `accounting.provision` take."""
    moving = ledger[ledger["kind"].isin(list(FLOWS))]
    month = _month(moving["timestamp"])
    first, last = int(month.min()), int(month.max())
    table = moving.assign(month=month - first).pivot_table(index="month", columns="kind", values="points", aggfunc="sum", observed=False)
    table = table.reindex(index=range(last - first + 1), columns=list(FLOWS), fill_value=0).fillna(0).astype(np.int64)
    table.columns = list(FLOWS.values())
    labels = pd.period_range(pd.Period(year=first // 12, month=first % 12 + 1, freq="M"), periods=last - first + 1, freq="M")
    return table.reset_index(drop=True).assign(month=labels.strftime("%Y-%m"))[["month", *FLOWS.values()]]


def urr_by_month(ledger: pd.DataFrame) -> pd.DataFrame:
    """The URR as it would have been estimated at each month's end, from the postings up to then:
    month (YYYY-MM), urr, std_error: the `expected_redemption` by month of the accounting, whose
    changes are its changes of estimate. The first months' estimates rest on few cohorts (with
    one, the URR is the share redeemed so far); a caller may hold an assumed rate until enough
    months have passed."""
    end = pd.DatetimeIndex(ledger["timestamp"]).to_period("M")
    rows = []
    for month in pd.period_range(end.min(), end.max(), freq="M"):
        upto = ledger[(end <= month) & ledger["kind"].isin(list(FLOWS)).to_numpy()]
        if not ((upto["kind"] == "earn") & (upto["points"] > 0)).any():
            rows.append({"month": str(month), "urr": float("nan"), "std_error": float("nan")})
            continue
        estimate = redemption(developments(upto)[0])
        rows.append({"month": str(month), "urr": estimate.urr, "std_error": estimate.std_error})
    return pd.DataFrame(rows)
