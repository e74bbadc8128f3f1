"""`loyalty backtest`: how good was the forecast? Fit on the history before a split, forecast the
months after it, and compare with what happened.

For each split (the last day of a month): the forecast is `simulate`'s own, with the scenario's
period ending at the split and a horizon of the whole calendar months after it that the history
covers (simulator.horizon: each run draws its own model parameters, then each customer's
purchases); the actual is the history's rows after the split, replayed through the program with
the same assumptions. Compared per month and in total, each with the forecast's P5/P50/P95 over
the runs:

- for the customers known at the split (a purchase on or before it, matched by id): purchases,
  revenue and active customers. A purchase is a purchase day: a customer's purchases on one day
  are one purchase, as the models count them (simulator.forecast.summary) and as Fader, Hardie &
  Lee (2005) aggregate the CDNOW data; revenue is the purchases' spend (before any uplift);
  an active customer made a purchase in the month (or, in the total, in the window);
- points issued and redeemed through the program, for the known customers (the actual replay
  then holds only their rows: the forecast draws no new customers);
- the new customers' actual figures beside them, when there are any (a forecast of new customers
  is not drawn here);
- the plain BG/NBD forecast of the known customers' purchases (the fit's point estimate, sum of
  the conditional expectations, FHL 2005 eq. 10), the benchmark the simulation's forecast is
  measured against.

The errors: a total's % error is (forecast mean - actual) / actual; the monthly MAPE is the mean
over the months of |forecast mean - actual| / actual (months with an actual of 0 left out). Over
several splits, `coverage` counts how often each actual total fell inside the forecast's P5-P95.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from rulelang.engine import needed_columns
from rulelang.errors import LoyaltyError
from simulator import api, horizon, io, metrics, outputs
from simulator.forecast import bgnbd, summary
from simulator.history import annotated, sorted_rows
from simulator.scenario import Period, Scenario

FORMAT = "loyalty-backtest/1"
FILES = ("backtest.json", "backtest.svg")
MIN_MONTHS_BEFORE = 3  # --splits picks month ends with at least this many months of history before
MIN_MONTHS_AFTER = 3  # ... and at least this many whole months after
_NS_PER_DAY = 86_400 * 10**9
# The compared figures: (key, label, kind); kind "money" is minor units, shown in currency units.
CUSTOMER_SERIES = (("purchases", "purchases", "count"), ("revenue", "revenue", "money"), ("active_customers", "active customers", "count"))
POINT_SERIES = (("points_issued", "points issued", "issued"), ("points_redeemed", "points redeemed", "redeemed"))


class BacktestError(LoyaltyError):
    """A backtest that cannot be made from the data (the models cannot be fitted, rows rejected)."""


class SplitError(BacktestError):
    """A split the backtest cannot make: not a month end, outside the history (a usage error)."""


@dataclass(frozen=True)
class Comparison:
    """One figure per month: the actual, and the forecast of every run."""

    actual: np.ndarray  # (months,) float: points, counts, or minor units
    forecast: np.ndarray  # (runs, months)
    whole_actual: float | None = None  # the window's total when it is not the months' sum (active customers)
    whole_forecast: np.ndarray | None = None  # (runs,)

    @property
    def actual_total(self) -> float:
        return float(self.actual.sum()) if self.whole_actual is None else float(self.whole_actual)

    @property
    def forecast_totals(self) -> np.ndarray:
        return self.forecast.sum(axis=1) if self.whole_forecast is None else self.whole_forecast

    @property
    def total_error(self) -> float | None:
        a = self.actual_total
        return (float(self.forecast_totals.mean()) - a) / a if a else None

    @property
    def monthly_mape(self) -> float | None:
        m = self.forecast.mean(axis=0)
        has = self.actual != 0
        return float(np.mean(np.abs(m[has] - self.actual[has]) / self.actual[has])) if has.any() else None

    @property
    def inside(self) -> bool:
        lo, _, hi = quantiles(self.forecast_totals)
        return bool(lo <= self.actual_total <= hi)

    def to_dict(self, months: pd.PeriodIndex, scale: float) -> dict:
        def band(values) -> dict:
            p5, p50, p95 = quantiles(values)
            return {"mean": _num(float(np.mean(values)) * scale), "p5": _num(p5 * scale), "p50": _num(p50 * scale), "p95": _num(p95 * scale)}

        return {
            "actual": _num(self.actual_total * scale),
            "forecast": band(self.forecast_totals),
            "total_error_pct": _pct(self.total_error),
            "monthly_mape_pct": _pct(self.monthly_mape),
            "inside_p5_p95": self.inside,
            "monthly": [{"month": str(m), "actual": _num(float(a) * scale), **band(self.forecast[:, i])} for i, (m, a) in enumerate(zip(months, self.actual, strict=True))],
        }


def quantiles(values) -> tuple[float, float, float]:
    """P5, P50, P95 as `simulate` takes them: values some run produced (simulator.metrics)."""
    q = np.percentile(np.asarray(values, dtype=np.float64), [5, 50, 95], method=metrics.PERCENTILE_METHOD)
    return float(q[0]), float(q[1]), float(q[2])


def _num(v: float) -> float | int:
    return int(v) if float(v).is_integer() else round(float(v), 6)


def _pct(v: float | None) -> float | None:
    return None if v is None else round(100.0 * v, 2)


@dataclass(frozen=True)
class SplitResult:
    """One split's comparison."""

    split: dt.date
    last_day: dt.date  # the window's last day (the last whole month the history covers)
    months: pd.PeriodIndex  # the window's months
    known_customers: int
    new_customers: int
    known: dict  # CUSTOMER_SERIES and POINT_SERIES key -> Comparison
    new: dict  # CUSTOMER_SERIES key -> actual total (empty when no new customer bought)
    plain_bgnbd: float  # the plain forecast of the known customers' purchases
    notes: tuple[str, ...]

    @property
    def weeks(self) -> float:
        return (self.last_day - self.split).days / 7.0

    def to_dict(self, decimals: int) -> dict:
        scale = {key: 10.0**-decimals if kind == "money" else 1.0 for key, _, kind in CUSTOMER_SERIES}
        purchases = self.known["purchases"].actual_total
        return {
            "split": self.split.isoformat(),
            "first_forecast_day": (self.split + dt.timedelta(days=1)).isoformat(),
            "last_day": self.last_day.isoformat(),
            "months": len(self.months),
            "weeks": round(self.weeks, 4),
            "customers_known_at_split": self.known_customers,
            "new_customers": self.new_customers,
            "known_customers": {key: c.to_dict(self.months, scale.get(key, 1.0)) for key, c in self.known.items()},
            "new_customers_actual": {key: _num(v * scale[key]) for key, v in self.new.items()},
            "plain_bgnbd": {
                "what": "point estimate, sum of the known customers' conditional expected purchases (FHL 2005 eq. 10)",
                "purchases": round(self.plain_bgnbd, 2),
                "total_error_pct": _pct((self.plain_bgnbd - purchases) / purchases if purchases else None),
            },
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class BacktestResult:
    """Every split's comparison, and how often the actual fell inside the forecast's band."""

    splits: list[SplitResult]
    program: str
    currency: str
    decimals: int
    runs: int
    seed: int
    source: str

    def coverage(self) -> dict:
        keys = [k for k, _, _ in CUSTOMER_SERIES + POINT_SERIES]
        return {k: {"inside_p5_p95": sum(s.known[k].inside for s in self.splits), "splits": len(self.splits)} for k in keys}

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "scenario": self.source,
            "program": self.program,
            "currency": self.currency,
            "runs": self.runs,
            "seed": self.seed,
            "percentile_method": metrics.PERCENTILE_METHOD,
            "purchases_counted_as": "purchase days: a customer's purchases on one day are one purchase (as the models count them)",
            "coverage": self.coverage(),
            "splits": [s.to_dict(self.decimals) for s in self.splits],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def render_text(self) -> str:
        lines = [f"{self.program}: backtest of {self.source}, {self.runs} run(s), seed {self.seed}; a purchase is a customer's purchase day, money in {self.currency}"]
        head = f"  {'':<18}{'actual':>14}{'forecast':>14}{'P5':>14}{'P50':>14}{'P95':>14}{'error':>9}{'MAPE':>8}  inside P5-P95"
        for s in self.splits:
            lines += [
                "",
                f"split {s.split}: fitted to the history through it, forecast {s.split + dt.timedelta(days=1)} to {s.last_day} "
                f"({len(s.months)} months, {s.weeks:.1f} weeks); {s.known_customers:,} customers known at the split",
                head,
            ]
            for key, label, kind in CUSTOMER_SERIES + POINT_SERIES:
                c = s.known[key]
                scale = 10.0**-self.decimals if kind == "money" else 1.0
                p5, p50, p95 = quantiles(c.forecast_totals)
                cells = [c.actual_total, float(c.forecast_totals.mean()), p5, p50, p95]
                shown = "".join(f"{_fmt(v * scale, kind == 'money', self.decimals):>14}" for v in cells)
                lines.append(f"  {label:<18}{shown}{_fmt_pct(c.total_error):>9}{_fmt_pct(c.monthly_mape, signed=False):>8}  {'yes' if c.inside else 'NO'}")
            actual = s.known["purchases"].actual_total
            err = (s.plain_bgnbd - actual) / actual if actual else None
            lines.append(f"  plain BG/NBD (point estimate, sum of conditional expectations): purchases {s.plain_bgnbd:,.1f}, error {_fmt_pct(err).strip()}")
            if s.new:
                shown = ", ".join(f"{label} {_fmt(s.new[key] * (10.0**-self.decimals if kind == 'money' else 1.0), kind == 'money', self.decimals).strip()}" for key, label, kind in CUSTOMER_SERIES)
                lines.append(f"  new customers after the split ({s.new_customers:,}; not forecast here): {shown}")
            lines += [f"  note: {n}" for n in s.notes]
        cov = self.coverage()
        lines += ["", f"actual total inside the forecast's P5-P95 over {len(self.splits)} split(s): " + ", ".join(f"{label} {cov[k]['inside_p5_p95']}/{cov[k]['splits']}" for k, label, _ in CUSTOMER_SERIES + POINT_SERIES)]
        return "\n".join(lines)

    def write(self, out: str | Path, inputs: dict) -> Path:
        """backtest.json and backtest.svg into folder `out`, as one set swapped in at once."""
        from rulelang import refuse_input_as_output

        refuse_input_as_output({"--out": out}, inputs)
        return outputs.write_set(out, {"backtest.json": lambda p: p.write_text(self.to_json(), encoding="utf-8"), "backtest.svg": lambda p: p.write_text(self.chart(), encoding="utf-8")})

    def chart(self) -> str:
        """The forecast's P50 and P5-P95 band against the actual, per month: a row per split, a
        column per figure (SVG, deterministic: the report's chart settings)."""
        from simulator.report import PALETTE, _plt_setup, _svg, plt

        _plt_setup()
        series = CUSTOMER_SERIES + POINT_SERIES
        fig, axes = plt.subplots(len(self.splits), len(series), figsize=(3.2 * len(series), 2.8 * len(self.splits)), squeeze=False)
        for row, s in enumerate(self.splits):
            x = np.arange(len(s.months))
            for col, (key, label, kind) in enumerate(series):
                ax = axes[row][col]
                c = s.known[key]
                scale = 10.0**-self.decimals if kind == "money" else 1.0
                q = np.array([quantiles(c.forecast[:, i]) for i in range(len(x))]).reshape(len(x), 3) * scale
                ax.fill_between(x, q[:, 0], q[:, 2], color=PALETTE[0], alpha=0.2, label="forecast P5–P95")
                ax.plot(x, q[:, 1], color=PALETTE[0], marker="o", markersize=3, label="forecast P50")
                ax.plot(x, c.actual * scale, color=PALETTE[1], marker="s", markersize=3, label="actual")
                ax.set_title(f"{label}, split {s.split}" + (f" ({self.currency})" if kind == "money" else ""), loc="left", fontsize=9)
                ax.set_xticks(x, [str(m) for m in s.months], rotation=60, ha="right", fontsize=7)
                ax.grid(axis="y", color="#dddddd")
                ax.spines[["top", "right"]].set_visible(False)
                if row == 0 and col == 0:
                    ax.legend(frameon=False, fontsize=7)
        fig.tight_layout()
        return '<?xml version="1.0" encoding="utf-8" standalone="no"?>\n' + str(_svg(fig)) + "\n"


def _fmt(v: float, money: bool, decimals: int) -> str:
    if money:
        return f"{v:,.{decimals}f}"
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.1f}"


def _fmt_pct(v: float | None, signed: bool = True) -> str:
    if v is None:
        return "n/a"
    return f"{100 * v:+.1f}%" if signed else f"{100 * v:.1f}%"


# --- the backtest -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Data:
    """The scenario's history, loaded once, in canonical columns (the runs read it as a frame)."""

    frame: pd.DataFrame
    customers: pd.DataFrame | None
    first_day: dt.date
    last_day: dt.date
    decimals: int


def run(
    scenario: Scenario,
    splits: Sequence[dt.date] | int,
    *,
    transactions=None,
    customers=None,
    runs: int | None = None,
    seed: int | None = None,
    workers: int | None = None,
) -> BacktestResult:
    """Backtest `scenario`'s forecast at each split (dates, each a month's last day), or at
    `splits` month ends spread over the history (an int). `transactions`/`customers` (a path or
    a DataFrame) replace the scenario's; `runs`/`seed` its own."""
    prog = api.load_program(scenario.program if scenario.program is not None else _no_program(scenario))
    model = prog.model
    sc = replace(scenario, runs=runs if runs is not None else scenario.runs, seed=seed if seed is not None else scenario.seed, horizon=None)
    if transactions is None:
        tx_path, cu_path = scenario.data_paths()
        transactions, customers = tx_path, customers if customers is not None else cu_path
    data = _load(sc, model, transactions, customers)
    days = choose_splits(data.first_day, data.last_day, splits) if isinstance(splits, int) else [_check_split(d, data) for d in splits]
    if not days:
        raise SplitError("--split: give at least one split date")
    results = [_one_split(prog, sc, data, day, workers) for day in sorted(set(days))]
    return BacktestResult(results, model.name, model.currency, model.decimals, sc.runs, sc.seed, scenario.source)


def _no_program(sc: Scenario):
    raise BacktestError(f"{sc.source}: error: program: the scenario names no program; add `program: your_program.loyalty`")


def _load(sc: Scenario, model, transactions, customers) -> _Data:
    cust = None
    if customers is not None:
        cust = io.load_customers(customers, columns=sc.columns, timestamp_format=sc.timestamp_format).frame
    tx = io.load_transactions(transactions, columns=sc.columns, currency_decimals=model.decimals, period=sc.period, **io.load_options(sc, model, customers))
    if tx.rows_used == 0:
        raise BacktestError(f"{tx.source}: error: no usable transaction rows ({tx.rows_read} read, {tx.rows_rejected} rejected); nothing to backtest")
    if tx.rows_rejected:
        raise BacktestError(f"{tx.source}: error: {tx.rows_rejected:,} row(s) rejected; a backtest compares every row, so mend them first (`loyalty simulate --rejects FILE` lists them with reasons)\n{tx.report()}")
    frame = tx.frame
    day = metrics.as_ns(frame["timestamp"].to_numpy()) // _NS_PER_DAY
    first = sc.period.start if sc.period is not None else _date(int(day.min()))
    last = sc.period.end if sc.period is not None else _date(int(day.max()))
    return _Data(frame, cust, first, last, model.decimals)


def _date(day_number: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=day_number)


def _month_end(day: dt.date) -> dt.date:
    return (pd.Timestamp(day) + pd.offsets.MonthEnd(0)).date()


def _whole_months_after(split: dt.date, last_day: dt.date) -> int:
    """The calendar months after the split (a month end) that end on or before `last_day`."""
    n = (last_day.year - split.year) * 12 + last_day.month - split.month
    return n if _month_end(last_day) == last_day else n - 1


def _check_split(day: dt.date, data: _Data) -> dt.date:
    if _month_end(day) != day:
        raise SplitError(f"--split {day}: expected the last day of a month (such as {_month_end(day)}): forecast and actual are compared per calendar month")
    if not data.first_day <= day < data.last_day:
        raise SplitError(f"--split {day}: outside the history ({data.first_day} to {data.last_day}); give a month end inside it")
    if _whole_months_after(day, data.last_day) < 1:
        raise SplitError(f"--split {day}: the history ({data.first_day} to {data.last_day}) has no whole month after it; give an earlier month end")
    return day


def choose_splits(first: dt.date, last: dt.date, n: int) -> list[dt.date]:
    """n month ends spread evenly over those with at least MIN_MONTHS_BEFORE months of history
    before and MIN_MONTHS_AFTER whole months after (the latest always among them)."""
    if n < 1:
        raise SplitError(f"--splits {n}: give 1 or more")
    ends = pd.date_range(pd.Timestamp(first), pd.Timestamp(last), freq="ME")
    start = pd.Timestamp(first) + pd.DateOffset(months=MIN_MONTHS_BEFORE) - pd.Timedelta(days=1)
    candidates = [d.date() for d in ends if d >= start and _whole_months_after(d.date(), last) >= MIN_MONTHS_AFTER]
    if not candidates:
        raise SplitError(
            f"--splits: the history ({first} to {last}) has no month end with {MIN_MONTHS_BEFORE} months before it and "
            f"{MIN_MONTHS_AFTER} whole months after; give --split DATE"
        )
    picks = np.unique(np.rint(np.linspace(len(candidates) - 1, 0, min(n, len(candidates)))).astype(int))
    return [candidates[i] for i in picks]


def _one_split(prog, sc: Scenario, data: _Data, split: dt.date, workers) -> SplitResult:
    months_after = _whole_months_after(split, data.last_day)
    origin = pd.Timestamp(split) + pd.Timedelta(days=1)
    last_day = (origin + pd.DateOffset(months=months_after) - pd.Timedelta(days=1)).date()
    window = pd.period_range(origin.to_period("M"), periods=months_after, freq="M")
    notes = []
    if last_day < data.last_day:
        notes.append(f"the history's days after {last_day} (to {data.last_day}) are not a whole month: left out of the comparison")
    # The runs read the loaded frame: its columns are canonical already.
    base = replace(sc, columns=MappingProxyType({}), timestamp_format=None)
    frame = data.frame
    day = metrics.as_ns(frame["timestamp"].to_numpy()) // _NS_PER_DAY
    split_n, last_n = (split - dt.date(1970, 1, 1)).days, (last_day - dt.date(1970, 1, 1)).days
    # Customers by id: codes of the ids as text (one per distinct id).
    ids = pd.factorize(frame["customer_id"].astype(str).to_numpy())[0]
    purchase = _purchases(frame, data.decimals)
    known_ids = np.unique(ids[purchase & (day <= split_n)])
    if len(known_ids) == 0:
        raise BacktestError(f"--split {split}: no customer bought on or before it; give a later split")
    # The forecast: simulate's, the period ending at the split, the horizon the months after it.
    fc_sc = replace(base, period=Period(data.first_day, split), horizon=months_after)
    try:
        forecast = api.simulate(prog, frame, data.customers, fc_sc, workers=workers)
    except horizon.HorizonError as exc:
        raise BacktestError(f"{exc} (the forecast from the history through --split {split})") from None
    with_future, draws = _forecast_draws(prog, fc_sc, frame, data.customers, window)
    if with_future < len(known_ids):
        notes.append(
            f"{len(known_ids) - with_future:,} customer(s) known at the split have no purchase with a positive total to copy: "
            "the forecast gives them no future (simulator.horizon); their actual purchases are counted"
        )
    # The actual: the known customers' rows through the window's end, replayed the same way.
    in_window = day <= last_n
    is_known = np.zeros(int(ids.max()) + 1, dtype=bool)
    is_known[known_ids] = True
    known_row = is_known[ids]
    actual = api.simulate(prog, frame[in_window & known_row], data.customers, replace(base, period=Period(data.first_day, last_day)), workers=workers)
    after = in_window & (day > split_n) & purchase
    minor = np.rint(frame["amount"].to_numpy(dtype=np.float64) * 10**data.decimals).astype(np.int64)
    mine = after & known_row
    actual_series = _customer_series(ids[mine], day[mine], minor[mine], window)
    known = {}
    for key, _, _ in CUSTOMER_SERIES:
        per_month, whole = actual_series[key]
        f = np.array([d[key][0] for d in draws], dtype=np.float64)
        fw = np.array([d[key][1] for d in draws], dtype=np.float64)
        known[key] = Comparison(per_month.astype(np.float64), f, whole, fw) if key == "active_customers" else Comparison(per_month.astype(np.float64), f)
    for key, _, col in POINT_SERIES:
        # The actual replay's redemptions are drawn too (the scenario's assumption): its mean over the runs.
        known[key] = Comparison(_monthly(actual.monthly, col, window).mean(axis=0), _monthly(forecast.monthly, col, window))
    newer = after & ~known_row
    new = {}
    if newer.any():
        ns = _customer_series(ids[newer], day[newer], minor[newer], window)
        new = {key: float(ns[key][1] if ns[key][1] is not None else ns[key][0].sum()) for key, _, _ in CUSTOMER_SERIES}
    n_new = len(np.unique(ids[newer]))
    if n_new:
        notes.append(f"{n_new:,} customer(s) first bought after the split: their figures are shown apart, not forecast (new customers are not drawn)")
    plain = _plain_bgnbd(frame, split, data.decimals, (last_day - split).days / summary.DAYS_PER_UNIT)
    return SplitResult(split, last_day, window, int(len(known_ids)), n_new, known, new, plain, tuple(notes))


def _purchases(frame: pd.DataFrame, decimals: int) -> np.ndarray:
    """The rows the models read as purchases: the event `purchase` (every row without an event
    column) with an amount of 0 or more (simulator.forecast.summary)."""
    ok = (frame["event"] == "purchase").to_numpy(dtype=bool) if "event" in frame.columns else np.ones(len(frame), dtype=bool)
    return ok & (frame["amount"].to_numpy(dtype=np.float64) >= 0)


def _customer_series(customer, day, minor, window: pd.PeriodIndex, each_a_purchase: bool = False) -> dict:
    """Purchases (purchase days), revenue (minor units) and active customers per month of the
    window, and the active customers over the whole window. `each_a_purchase`: every entry is
    one purchase (a forecast's drawn purchases: the models, fitted to purchase days, draw purchase
    days; two drawn on one day are two, as the model counts them)."""
    ts = (np.asarray(day, dtype=np.int64) * _NS_PER_DAY).view("datetime64[ns]")
    codes = pd.factorize(customer)[0].astype(np.int64)
    first = np.ones(len(codes), dtype=bool) if each_a_purchase else _first_of_group(codes, day)
    month = metrics.by_month  # exact per-month sums
    mcode = _month_codes(ts, window)
    active_m = np.zeros(len(window), dtype=np.int64)
    if len(codes):
        pairs = np.unique(mcode * (codes.max() + 1) + codes)
        np.add.at(active_m, pairs // (codes.max() + 1), 1)
    return {
        "purchases": (month(ts[first], np.ones(int(first.sum()), dtype=np.int64), window), None),
        "revenue": (month(ts, minor, window), None),
        "active_customers": (active_m, float(len(np.unique(codes)))),
    }


def _first_of_group(codes: np.ndarray, day: np.ndarray) -> np.ndarray:
    """True on one row per (customer, day)."""
    order = np.lexsort((day, codes))
    first = np.zeros(len(codes), dtype=bool)
    c, d = codes[order], day[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (c[1:] != c[:-1]) | (d[1:] != d[:-1])
    first[order[new]] = True
    return first


def _month_codes(ts: np.ndarray, window: pd.PeriodIndex) -> np.ndarray:
    p = pd.DatetimeIndex(ts).to_period("M")
    return np.asarray(window.get_indexer(p), dtype=np.int64)


def _monthly(monthly: pd.DataFrame, col: str, window: pd.PeriodIndex) -> np.ndarray:
    """(runs, months of the window) of a monthly.csv column."""
    m = monthly[monthly["month"].isin({str(p) for p in window})]
    table = m.pivot(index="run", columns="month", values=col).reindex(columns=[str(p) for p in window], fill_value=0)
    return table.to_numpy(dtype=np.float64)


def _forecast_draws(prog, sc: Scenario, frame: pd.DataFrame, customers, window: pd.PeriodIndex) -> tuple[int, list[dict]]:
    """Each run's future purchases as `simulate` draws them (the same history, fits and counters:
    simulator.api), summarised per month of the window (purchases, revenue, active customers),
    and how many customers have a future."""
    model = prog.model
    keep = needed_columns(model)[0]
    tx = io.load_transactions(frame, currency_decimals=model.decimals, period=sc.period, keep=keep, **io.load_options(sc, model, customers))
    until = pd.Timestamp(sc.period.end) + pd.Timedelta(days=1) - pd.Timedelta(nanoseconds=1)
    history = annotated(sorted_rows(tx.frame, model.decimals, until))
    hz = horizon.fit(history, sc.horizon, sc.runs, sc.seed)
    months = metrics.month_index(pd.Timestamp(sc.period.start), hz.end)
    out = [len(hz.code)]
    for r in range(sc.runs):
        fut = horizon.draw(hz, history, months, sc.seed, r).rows
        visit = fut["_visit"].to_numpy()
        ts = fut["timestamp"].to_numpy()[visit]
        day = metrics.as_ns(ts) // _NS_PER_DAY
        # Per basket: its customer and its spend (the basket's lines added up).
        starts = np.flatnonzero(visit)
        spend = np.add.reduceat(fut["_minor"].to_numpy(), starts) if len(starts) else np.zeros(0, dtype=np.int64)
        s = _customer_series(fut["_m"].to_numpy()[visit], day, spend, window, each_a_purchase=True)
        out.append({k: (v[0], v[1]) for k, v in s.items()})
    return out[0], out[1:]


def _plain_bgnbd(frame: pd.DataFrame, split: dt.date, decimals: int, weeks: float) -> float:
    """The plain BG/NBD forecast of the known customers' purchases in the `weeks` after the split:
    `loyalty fit --until SPLIT`'s point estimate, its conditional expectations summed."""
    s = summary.summarize(frame, split, decimals, "--split")
    fit = bgnbd.fit(s.x, s.t_x, s.T)
    return float(bgnbd.conditional_expected_purchases(fit.params, weeks, s.x, s.t_x, s.T).sum())


# --- the command --------------------------------------------------------------------------------


def _fail(message: str, code: int) -> None:
    import sys

    import click

    from rulelang.errors import visible

    click.echo(visible(message), err=True)
    sys.exit(code)


def _command():
    import click

    @click.command("backtest")
    @click.argument("scenario", type=click.Path(exists=True, dir_okay=False))
    @click.option("--split", "split", multiple=True, metavar="DATE", help="the last day fitted to, a month end (YYYY-MM-DD); give it more than once for several splits")
    @click.option("--splits", "n_splits", type=click.IntRange(min=1, max=240), help="this many month ends spread over the history, instead of --split")
    @click.option("--runs", type=click.IntRange(min=1), help="Monte Carlo runs (overrides the scenario)")
    @click.option("--seed", type=click.IntRange(min=0), help="random seed (overrides the scenario)")
    @click.option("--out", "out", type=click.Path(file_okay=False), help="write backtest.json and backtest.svg (the chart) into this folder")
    @click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="text for people, json for scripts and CI")
    def backtest_cmd(scenario, split, n_splits, runs, seed, out, fmt):
        """Fit on the history before a split, forecast after it, and compare with what happened."""
        from rulelang import refuse_input_as_output
        from simulator.scenario import load_scenario

        if bool(split) == (n_splits is not None):
            raise click.UsageError("give --split DATE (once or more) or --splits N, not both or neither")
        days = []
        for text in split:
            try:
                days.append(dt.date.fromisoformat(text))
            except ValueError:
                raise click.BadParameter(f"{text!r} is not a date; write it like 1997-09-30", param_hint="--split") from None
        if Path(scenario).suffix not in (".yaml", ".yml"):
            raise click.BadParameter(f"{scenario}: expected a scenario (.yaml) naming its program and transactions", param_hint="SCENARIO")
        try:
            sc = load_scenario(scenario)
            if sc.program is None:
                raise BacktestError(f"{scenario}: error: program: the scenario names no program; add `program: your_program.loyalty`")
            tx, cu = sc.data_paths()
            inputs = {"scenario": scenario, "program": sc.program, "transactions": tx, "customers": cu}
        except LoyaltyError as exc:
            _fail(str(exc), 1)
        if out is not None:
            try:
                refuse_input_as_output({"--out": out}, inputs)
                outputs.check_target(out, FILES)
            except LoyaltyError as exc:
                _fail(str(exc), 2)
        try:
            result = run(sc, n_splits if n_splits is not None else days, runs=runs, seed=seed)
        except SplitError as exc:
            _fail(str(exc), 2)
        except LoyaltyError as exc:
            _fail(str(exc), 1)
        if out is not None:
            try:
                result.write(out, inputs)
            except LoyaltyError as exc:
                _fail(str(exc), 2)
        click.echo(result.to_json().rstrip("\n") if fmt == "json" else result.render_text())

    return backtest_cmd


commands = [_command()]
