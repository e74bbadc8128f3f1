"""A horizon beyond the history: each customer's future purchases, drawn from fitted models.

Once per simulation (`fit`): the customers' purchase summary as of the history's end
(`forecast.summary`), the BG/NBD fit (number and timing of purchases, dropout), the Gamma-Gamma
fit (spend per purchase), each customer's own purchase baskets, and the history's month-of-year
seasonality. Per Monte Carlo run (`draw`): run r's parameters (row r of each fit's
`draw_parameters`: every run, run 0 included, takes its own draw from the sampling distribution),
then each customer's purchase times, each purchase's spend, and its contents: one of the
customer's own past baskets picked uniformly, its lines copied and their amounts scaled so the
basket totals the drawn spend (largest remainder, so the integer minor units add up exactly).

The future rows carry the helper columns of history rows (simulator.history) plus `_pos`, the
history row each line copies (the engine reads every other column from it: category, sku,
channel, quantity, ...), and `_future`. Their `_row`, the counter of their own draws (redemption,
extra visits) and their transaction id, is `FUTURE_ROW + code * FUTURE_SLOTS + j` for a
customer's j-th future purchase: above every input row, below the enrol rows' counters
(simulator.redemption), and never shared by two customers.

Seasonality: with at least 12 complete calendar months of history, a month-of-year's index is its
baskets per day (over the complete months of that month of the year) over the mean of the twelve;
otherwise every index is 1 (flat). Purchase times are drawn by BG/NBD in "model time" and warped
through the cumulative seasonal intensity of the horizon, scaled so the horizon maps onto itself:
each customer's number of purchases in the horizon is the model's, only their timing follows
the seasons.

Everything is counter-based: a customer's draws depend on its key, the seed and the run only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from numba import njit

from rulelang.errors import LoyaltyError
from simulator import metrics, rng
from simulator.forecast import bgnbd, gamma_gamma, summary
from simulator.forecast.mle import FitError
from simulator.history import History

STREAM_BASKET = 81  # rng stream of the future baskets' picks
FUTURE_ROW = 1 << 40  # future rows' counters start here (input rows are below it)
FUTURE_SLOTS = 1 << 16  # future purchases a customer may have in a horizon
MAX_CUSTOMERS = 1 << 24  # FUTURE_ROW + MAX_CUSTOMERS * FUTURE_SLOTS stays below the enrol counters
_NS_PER_DAY = 86_400 * 10**9
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_NS_PER_WEEK = 7 * _NS_PER_DAY


class HorizonError(LoyaltyError):
    """A history the horizon's models cannot be fitted to (the scenario key `horizon`)."""


@dataclass(frozen=True)
class Horizon:
    """What every run's future is drawn from (picklable: worker processes receive it once)."""

    months: int
    origin: pd.Timestamp  # the future starts here: the midnight after the history's last day
    end: pd.Timestamp  # its last nanosecond: origin + `months` calendar months - 1 ns
    bgnbd: bgnbd.BGNBDFit
    gamma_gamma: gamma_gamma.GammaGammaFit
    bgnbd_params: np.ndarray  # (runs, 4): run r's (r, alpha, a, b)
    gamma_gamma_params: np.ndarray  # (runs, 3): run r's (p, q, gamma)
    # The customers who get a future (a positive purchase basket in the history), by code:
    code: np.ndarray  # int64
    x: np.ndarray  # repeat purchase days through the history's end
    t_x: np.ndarray  # weeks, first purchase to the last
    T: np.ndarray  # weeks, first purchase to `origin`
    spend_x: np.ndarray  # repeat purchases whose spend informs the spend model (0: the population's)
    zbar: np.ndarray  # their mean spend, currency units
    # Their baskets: customer i's are basket_start[bask[i]:bask[i + 1]] (history rows), with
    # their number of lines and their total (minor units, > 0).
    bask: np.ndarray
    basket_start: np.ndarray
    basket_lines: np.ndarray
    basket_total: np.ndarray
    seasonal_index: np.ndarray  # 12 floats, January first (all 1: flat)
    seasonal: bool  # whether the index was estimated (else flat)
    warp_model: np.ndarray  # model time (weeks) at each day boundary of the horizon
    warp_real: np.ndarray  # real time (weeks from `origin`) at each day boundary
    decimals: int
    code_offset: int = 0  # a slice's first customer's code in the whole history (simulator.chunked)

    @property
    def weeks(self) -> float:
        return float(self.warp_real[-1])

    def describe(self) -> dict:
        """What the forecast rests on, for summary.json: its span, the fitted models, the seasonality."""
        return {
            "months": self.months,
            "first_day": self.origin.date().isoformat(),
            "last_day": self.end.date().isoformat(),
            "customers_with_a_future": int(len(self.code)),
            "parameters": "each run draws its own from the fits' sampling distributions (run r: row r of draw_parameters)",
            "bgnbd": self.bgnbd.to_dict(),
            "gamma_gamma": self.gamma_gamma.to_dict(),
            "seasonality": {
                "estimated": self.seasonal,
                "index": {month: round(float(v), 6) for month, v in zip(MONTHS, self.seasonal_index, strict=True)},
            },
        }


def months_of(value: int) -> pd.DateOffset:
    return pd.DateOffset(months=int(value))


@dataclass(frozen=True)
class Models:
    """The fitted models and the summary they were fitted to (`fit_models`)."""

    origin: pd.Timestamp
    end: pd.Timestamp
    code: np.ndarray  # the summarised customers' codes
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray  # to `origin`
    spend_x: np.ndarray
    zbar: np.ndarray
    bgnbd: bgnbd.BGNBDFit
    gamma_gamma: gamma_gamma.GammaGammaFit
    bgnbd_params: np.ndarray
    gamma_gamma_params: np.ndarray

    def part(self, lo: int, hi: int) -> Models:
        """The models with the summaries of customers lo .. hi only, coded from 0 (a slice's)."""
        k = (self.code >= lo) & (self.code < hi)
        return replace(self, code=self.code[k] - lo, x=self.x[k], t_x=self.t_x[k], T=self.T[k], spend_x=self.spend_x[k], zbar=self.zbar[k])


@dataclass(frozen=True)
class Summary:
    """The customers' purchase summary as of the history's end, by customer code (`summarised`):
    what the models are fitted to. Summaries of slices of the customers, their codes moved on to
    the whole's, join into the whole's (`joined`)."""

    code: np.ndarray  # int64
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray  # weeks, to the midnight after the history's end
    zbar: np.ndarray  # mean spend of the repeat purchases, currency units

    def moved(self, by: int) -> Summary:
        return Summary(self.code + by, self.x, self.t_x, self.T, self.zbar)

    @staticmethod
    def joined(parts: list[Summary]) -> Summary:
        return Summary(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("code", "x", "t_x", "T", "zbar")))


def fit_models(history: History, months: int, runs: int, seed: int) -> Models:
    """The customers' summary as of the history's end and the models fitted to it, with every
    run's parameters. Reads only the rows' times, customer codes, amounts and purchase flags, so
    it can run on the first stage of the history (`simulator.history.sorted_rows`) while the
    rest is built."""
    return models_from(summarised(history), history.until, history.customers, months, runs, seed)


def summarised(history: History) -> Summary:
    """The customers' purchase summary as of the history's end (`until`)."""
    h = history
    rows = h.rows
    m = np.asarray(rows["_m"].to_numpy(), dtype=np.int64)
    purchase = rows["_purchase"].to_numpy()
    frame = pd.DataFrame(
        {
            # Codes as the customers: the summary's customers come out in code order.
            "customer_id": pd.Categorical.from_codes(m, categories=pd.RangeIndex(h.customers)),
            "timestamp": rows["timestamp"].to_numpy(),
            "amount": rows["_minor"].to_numpy() / 10**h.decimals,
            "event": pd.Categorical.from_codes(purchase.astype(np.int8), categories=["other", "purchase"]),
        },
        copy=False,
    )
    try:
        s = summary.summarize(frame, h.until.date(), h.decimals, "the history's end")
    except LoyaltyError as exc:
        raise HorizonError(f"horizon: the history cannot be summarised for the purchase models: {exc}") from None
    # Observed through the end of the last day: T runs to `origin`, where the future starts.
    T = s.T + 1.0 / summary.DAYS_PER_UNIT
    return Summary(np.asarray(s.customer_id, dtype=str).astype(np.int64), s.x.astype(np.float64), s.t_x, T, s.mean_spend)


def models_from(s: Summary, until: pd.Timestamp, customers: int, months: int, runs: int, seed: int) -> Models:
    """The models fitted to the customers' summary (`customers` in all), with every run's parameters."""
    origin = until.normalize() + pd.Timedelta(days=1)
    end = origin + months_of(months) - pd.Timedelta(nanoseconds=1)
    if end > pd.Timestamp.max - pd.Timedelta(days=1):
        raise HorizonError(f"horizon: {months} months after {origin.date()} is past the last day the simulator can hold; give a shorter horizon")
    if customers >= MAX_CUSTOMERS:
        raise HorizonError(f"horizon: the history has {customers:,} customers; a horizon takes at most {MAX_CUSTOMERS - 1:,}")
    T = s.T
    try:
        bg = bgnbd.fit(s.x, s.t_x, T)
    except FitError as exc:
        raise HorizonError(f"horizon: the purchase model (BG/NBD) cannot be fitted to the history: {exc}") from None
    zbar = s.zbar
    repeat = (s.x > 0) & (zbar > 0)
    try:
        gg = gamma_gamma.fit(s.x[repeat], zbar[repeat])
    except FitError as exc:
        raise HorizonError(f"horizon: the spend model (Gamma-Gamma) cannot be fitted to the history: {exc}") from None
    return Models(
        origin=origin,
        end=end,
        code=s.code,
        x=s.x,
        t_x=s.t_x,
        T=T,
        spend_x=np.where(repeat, s.x, 0).astype(np.float64),
        zbar=np.where(repeat, zbar, 0.0),
        bgnbd=bg,
        gamma_gamma=gg,
        bgnbd_params=bgnbd.draw_parameters(bg, runs, seed),
        gamma_gamma_params=gamma_gamma.draw_parameters(gg, runs, seed),
    )


def fit(history: History, months: int, runs: int, seed: int, models: Models | None = None, season: tuple | None = None, code_offset: int = 0) -> Horizon:
    """Fit the horizon's models to the history (as of its end), once per simulation; `models`,
    when given, are `fit_models`' of the same history (made beside the history's second stage).
    For a slice of the customers (simulator.chunked): `models` are the whole history's, cut to
    the slice (`Models.part`), `season` the whole history's `seasonality_of_days`, and
    `code_offset` the slice's first customer's code, so that every draw and counter is the one
    of the whole history's path."""
    h = history
    md = models if models is not None else fit_models(h, months, runs, seed)
    rows = h.rows
    m = rows["_m"].to_numpy()
    purchase = rows["_purchase"].to_numpy()
    minor = rows["_minor"].to_numpy()
    # Baskets: first lines of purchases with a positive total (a refund is no basket to copy).
    visit = rows["_visit"].to_numpy() & purchase
    starts = np.flatnonzero(visit)
    lines, totals = _baskets(starts, visit, purchase, minor)
    keep = totals > 0
    starts, lines, totals = starts[keep], lines[keep], totals[keep]
    per_code = np.bincount(m[starts], minlength=h.customers)
    has = per_code[md.code] > 0  # customers with no purchase basket get no future
    code = md.code[has]
    bask = np.zeros(len(code) + 1, dtype=np.int64)
    np.cumsum(per_code[code], out=bask[1:])
    # The baskets of the customers kept, in code order (baskets are grouped by code already).
    kept = np.zeros(h.customers, dtype=bool)
    kept[code] = True
    take = np.flatnonzero(kept[m[starts]])
    index, estimated = season if season is not None else seasonality(rows["timestamp"].to_numpy()[starts], h.until)
    origin, end = md.origin, md.end
    model_t, real_t = warp_grid(index, origin, end)
    return Horizon(
        months=int(months),
        origin=origin,
        end=end,
        bgnbd=md.bgnbd,
        gamma_gamma=md.gamma_gamma,
        bgnbd_params=md.bgnbd_params,
        gamma_gamma_params=md.gamma_gamma_params,
        code=code,
        x=md.x[has],
        t_x=md.t_x[has],
        T=md.T[has],
        spend_x=md.spend_x[has],
        zbar=md.zbar[has],
        bask=bask,
        basket_start=starts[take],
        basket_lines=lines[take],
        basket_total=totals[take],
        seasonal_index=index,
        seasonal=estimated,
        warp_model=model_t,
        warp_real=real_t,
        decimals=h.decimals,
        code_offset=int(code_offset),
    )


def basket_starts(history: History) -> np.ndarray:
    """The times of the history's purchase baskets (first lines, totalling more than 0)."""
    rows = history.rows
    purchase = rows["_purchase"].to_numpy()
    visit = rows["_visit"].to_numpy() & purchase
    starts = np.flatnonzero(visit)
    _, totals = _baskets(starts, visit, purchase, rows["_minor"].to_numpy())
    return rows["timestamp"].to_numpy()[starts[totals > 0]]


@njit(cache=True, nogil=True)
def _baskets(starts, visit, purchase, minor):
    # Each basket's lines (its first line and the purchase lines after it up to the next basket
    # or other row) and their total, minor units.
    n = visit.shape[0]
    lines = np.empty(starts.shape[0], dtype=np.int64)
    totals = np.empty(starts.shape[0], dtype=np.int64)
    for k in range(starts.shape[0]):
        s = starts[k]
        e = s + 1
        while e < n and purchase[e] and not visit[e]:
            e += 1
        lines[k] = e - s
        t = 0
        for i in range(s, e):
            t += minor[i]
        totals[k] = t
    return lines, totals


def basket_days(basket_times: np.ndarray) -> pd.Series:
    """Baskets per day (days since 1970-01-01, ascending): what `seasonality_of_days` reads.
    The day counts of slices of the customers add up to the whole's (`Series.add`)."""
    day = metrics.as_ns(basket_times) // _NS_PER_DAY
    days, counts = np.unique(day, return_counts=True)
    return pd.Series(counts.astype(np.int64), index=days)


def seasonality(basket_times: np.ndarray, until: pd.Timestamp) -> tuple[np.ndarray, bool]:
    """The month-of-year index (12 floats, mean 1) of the baskets' times, and whether it was
    estimated: from the complete calendar months up to `until` when there are 12 or more, else flat."""
    return seasonality_of_days(basket_days(basket_times), until)


def seasonality_of_days(per_day: pd.Series, until: pd.Timestamp) -> tuple[np.ndarray, bool]:
    """`seasonality` from the baskets per day (`basket_days`)."""
    flat = np.ones(12)
    per_day = per_day[per_day > 0]
    if len(per_day) == 0:
        return flat, False
    day_no = np.asarray(per_day.index, dtype=np.int64)
    first = pd.Timestamp(int(day_no.min()) * _NS_PER_DAY)
    # Complete months: from the first month that starts on or after the first basket's day to the
    # last month that ends on or before the history's last day.
    lo = first.to_period("M") if first.day == 1 else first.to_period("M") + 1
    last_day = until.normalize()
    hi = last_day.to_period("M") if (last_day + pd.Timedelta(days=1)).day == 1 else last_day.to_period("M") - 1
    if hi < lo or (hi - lo).n + 1 < 12:
        return flat, False
    months = pd.period_range(lo, hi, freq="M")
    # Baskets per month: the day counts summed between the months' first days.
    bounds = pd.period_range(months[0], periods=len(months) + 1, freq="M").start_time.values.astype("datetime64[D]").astype(np.int64)
    cum = np.concatenate([[0], np.cumsum(per_day.to_numpy())])
    at = np.searchsorted(day_no, bounds, side="left")
    per_month = np.diff(cum[at])
    moy = months.month.to_numpy() - 1
    baskets = np.bincount(moy, weights=per_month, minlength=12)
    days = np.bincount(moy, weights=months.days_in_month.to_numpy(), minlength=12)
    rate = baskets / days
    if not rate.mean() > 0:
        return flat, False
    # A floor keeps the warp strictly increasing (a month with no baskets gets almost none).
    index = np.maximum(rate / rate.mean(), 1e-3)
    return index / index.mean(), True


def warp_grid(index: np.ndarray, origin: pd.Timestamp, end: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
    """(model time, real time) in weeks from `origin` at each day boundary of the horizon: the
    cumulative seasonal intensity scaled so the horizon's end maps onto itself."""
    days = int(np.ceil((end - origin).value / _NS_PER_DAY))
    bounds = origin + pd.to_timedelta(np.arange(days + 1), unit="D")
    real = np.minimum(np.arange(days + 1, dtype=np.float64), (end - origin).value / _NS_PER_DAY) / 7.0
    intensity = index[bounds.month.to_numpy()[:-1] - 1] * np.diff(real)
    cum = np.concatenate([[0.0], np.cumsum(intensity)])
    model = cum * (real[-1] / cum[-1]) if cum[-1] > 0 else real
    return model, real


@dataclass(frozen=True)
class Future:
    """One run's future rows (all customers, in code then time order) and their spend per month."""

    rows: pd.DataFrame
    baseline: np.ndarray  # minor units per month of the simulation's months


def draw(hz: Horizon, history: History, months: pd.PeriodIndex, seed: int, run: int) -> Future:
    """Run `run`'s future rows for every customer, and their revenue per month."""
    params = hz.bgnbd_params[run % len(hz.bgnbd_params)]
    keys = history.keys[hz.code]
    fp = bgnbd.sample_purchases(params, hz.x, hz.t_x, hz.T, keys, hz.weeks, seed, run)
    counts = fp.counts
    if len(counts) and int(counts.max()) >= FUTURE_SLOTS:
        raise HorizonError(f"horizon: a customer would make more than {FUTURE_SLOTS - 1:,} purchases in {hz.months} months; give a shorter horizon")
    spend = gamma_gamma.sample_spend(hz.gamma_gamma_params[run % len(hz.gamma_gamma_params)], hz.spend_x, hz.zbar, keys, fp.starts, seed, run)
    owner = np.repeat(np.arange(len(counts)), counts)
    j = np.arange(len(owner)) - fp.starts[owner]  # the purchase's number within its customer's
    real_weeks = np.interp(fp.times, hz.warp_model, hz.warp_real)
    # To the whole second (a till's time), within the horizon.
    seconds = np.rint(real_weeks * (_NS_PER_WEEK / 10**9)).astype(np.int64) * 10**9
    ts = hz.origin.value + np.minimum(seconds, (hz.end - hz.origin).value)
    ts = np.maximum(ts, hz.origin.value)
    u = rng.uniform(seed, run, keys[owner], j.astype(np.uint64), STREAM_BASKET)
    nb = hz.bask[owner + 1] - hz.bask[owner]
    pick = hz.bask[owner] + np.minimum((u * nb).astype(np.int64), nb - 1)
    target = np.maximum(np.rint(spend * 10**hz.decimals), 0).astype(np.int64)
    lines = hz.basket_lines[pick]
    src, minor = _lines(hz.basket_start[pick], lines, hz.basket_total[pick], target, np.asarray(history.rows["_minor"].to_numpy(), dtype=np.int64))
    first_line = np.zeros(len(src), dtype=bool)
    first_line[np.cumsum(lines) - lines] = True
    code = hz.code[owner]
    row_id = FUTURE_ROW + (code + hz.code_offset) * FUTURE_SLOTS + j
    rows = pd.DataFrame(
        {
            "timestamp": np.repeat(ts, lines).view("datetime64[ns]"),
            "_row": np.repeat(row_id, lines),
            "_m": np.repeat(code, lines),
            "_minor": minor,
            "_purchase": np.ones(len(src), dtype=bool),
            "_refund": np.zeros(len(src), dtype=bool),
            "_visit": first_line,
            "_pos": src,
        },
        copy=False,
    )
    return Future(rows, metrics.by_month(rows["timestamp"].to_numpy(), minor, months))


@njit(cache=True, nogil=True)
def _lines(start, lines, total, target, minor):
    # Each future basket's lines: the copied basket's history rows, and their amounts scaled from
    # the basket's total to the drawn one by largest remainder (ties to the earlier line), so
    # they add up to it exactly.
    n = 0
    for k in range(start.shape[0]):
        n += lines[k]
    src = np.empty(n, dtype=np.int64)
    out = np.empty(n, dtype=np.int64)
    width = 1
    for k in range(start.shape[0]):
        width = max(width, lines[k])
    rem = np.empty(width, dtype=np.int64)
    at = 0
    for k in range(start.shape[0]):
        s, c, a, want = start[k], lines[k], total[k], target[k]
        left = want
        for i in range(c):
            src[at + i] = s + i
            q = (minor[s + i] * want) // a
            rem[i] = (minor[s + i] * want) - q * a
            out[at + i] = q
            left -= q
        # Fewer than c units are left (each line lost less than one): they go one each to the
        # lines of the largest remainders, ties to the earlier line.
        for _ in range(left):
            best = 0
            for i in range(1, c):
                if rem[i] > rem[best]:
                    best = i
            out[at + best] += 1
            rem[best] = -1  # served
        at += c
    return src, out


def joined(rows: pd.DataFrame, future: pd.DataFrame, chosen: np.ndarray, part: tuple | None) -> pd.DataFrame:
    """A path's member rows with the members' future rows after each member's history (`_future`
    flags them); `_ord` numbered anew in the joined order. `part` (first customer, end customer,
    ...) limits the future rows to that customer range."""
    m = future["_m"].to_numpy()
    lo, hi = (0, len(m)) if part is None else (int(np.searchsorted(m, part[0])), int(np.searchsorted(m, part[1])))
    sel = np.arange(lo, hi)
    sel = sel[chosen[m[sel]]]
    fut = future.iloc[sel]
    if not len(fut):
        return _flagged(rows, np.zeros(len(rows), dtype=bool))
    from simulator.response import interleave

    ins = np.searchsorted(rows["_m"].to_numpy(), fut["_m"].to_numpy(), side="right")
    is_future = np.zeros(len(rows) + len(fut), dtype=bool)
    is_future[ins + np.arange(len(fut))] = True
    out = {}
    for c in rows.columns:
        if c in fut.columns:
            out[c] = interleave(rows[c].to_numpy(), fut[c].to_numpy(), is_future)
        elif c == "_enroll":
            out[c] = interleave(rows[c].to_numpy(), np.zeros(len(fut), dtype=bool), is_future)
        elif c != "_ord":
            raise AssertionError(f"a path column `{c}` the future rows do not have")
    return _flagged(pd.DataFrame(out, copy=False), is_future)


def _flagged(rows: pd.DataFrame, is_future: np.ndarray) -> pd.DataFrame:
    from simulator.history import with_columns

    return with_columns(rows, {"_ord": 4 * np.arange(len(rows), dtype=np.int64) + 1, "_future": is_future})
