"""New customers in a horizon: customers who join after the history, each a past new customer's
first year replayed from the moment they join.

Once per simulation (`fit`):
- The rate (`acquisition.per_month`, else the history's own): the customers whose first purchase
  falls in the history's last `min(6, K - 3)` complete calendar months (K: its complete months),
  per month. The first three complete months are never counted (customers who were there before
  the history began show up in them for the first time), and the last months are (a history whose
  customers all joined at its start, a cohort like CDNOW's, gets 0: none joined recently). With
  fewer than 4 complete months nothing is measured and the rate is 0 (`per_month` sets one).
- The past new customers copied (the sources): customers whose first purchase is on or after the
  start of the history's fourth complete month; when there are none (a cohort, a short history),
  every customer with a purchase. Each source's rows from its first purchase up to 12 months later
  (a source seen for less than a year gives what was seen), without the data's own `enroll` rows.
- Every run's number of new customers: per horizon month a Poisson draw with the rate (arrivals
  of independent customers at a steady rate), counter-based; only each run's total is kept
  (`month_counts` draws a run's months again), so that the id table covers the most new customers
  any run has (`capacity`).
- New ids: `new-1`, `new-2`, ... (the k-th new customer of a run, in month then draw order),
  behind a prefix no real id starts with (`~` put in front of `new-` until none does): a new id can
  never equal a real one. Their codes follow the real customers' (`first_code + k`).

Per run (`draw`): each new customer picks a source uniformly and a moment in their month (a whole
second, uniform over the month); the source's first-year rows are shifted so its first purchase
falls at that moment, and cut at the horizon's end. The new customer has the source's attributes
(the customers file's columns: birthday, segment, ...) but no `enrolled` date: they enrol, when
they do, in the simulation. They join the program like the real customers: the enrolment share
of them, picked by the scenario's rule (their draws keyed by their ids). Their rows are future
rows (simulator.horizon): `_pos` is the source's history row each copies, `_row` the counter
`FUTURE_ROW + code * FUTURE_SLOTS + j` (j = 0 for the enrol row, 1.. for the copies).

Streams: 91 (the month's count), 92 (the source), 93 (the moment), and simulator.enrollment's 11
for the pick, keyed by the new ids.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numba import njit
from scipy import stats

from simulator import enrollment, metrics, rng
from simulator.history import History
from simulator.horizon import FUTURE_ROW, FUTURE_SLOTS, MAX_CUSTOMERS, HorizonError

STREAM_COUNT, STREAM_SOURCE, STREAM_START = 91, 92, 93
FIRST_YEAR_MONTHS = 12
SKIPPED_MONTHS = 3  # a history's first complete months, where customers already there show up first
WINDOW_MONTHS = 6  # the most recent complete months the default rate is measured over
_NS = 10**9


@dataclass(frozen=True)
class Acquisition:
    """What every run's new customers are drawn from (picklable)."""

    per_month: float
    rate_given: bool  # True: the scenario's `acquisition.per_month`; False: measured from the history
    window: tuple[str, str] | None  # the months the rate was measured over (first, last), or None
    new_in_window: int
    first_code: int  # the real customers' count: new codes start here
    totals: np.ndarray  # per run: its new customers (`month_counts` gives them by month)
    seed: int
    ids: np.ndarray  # object, `capacity` new ids
    keys: np.ndarray  # uint64: every customer's key, real then new (`first_code + capacity`)
    month_bounds: np.ndarray  # int64 ns: the horizon months' starts, then the horizon's end + 1 ns
    source_code: np.ndarray  # the sources' customer codes
    source_first: np.ndarray  # int64 ns: each source's first purchase
    source_off: np.ndarray  # source s's rows are source_rows[source_off[s]:source_off[s + 1]]
    source_rows: np.ndarray  # history rows
    sources_new: bool  # whether the sources are past new customers (else every customer)
    months_seen: float = 0.0  # the sources' mean months of first year inside the history (12: whole years)

    @property
    def capacity(self) -> int:
        return len(self.ids)

    def month_counts(self, run: int) -> np.ndarray:
        """Run `run`'s new customers in each month of the horizon (drawn again: only the runs'
        totals are kept, so a million runs of a long horizon hold a million numbers)."""
        return _month_counts(self.per_month, len(self.month_bounds) - 1, self.seed, run)

    def describe(self) -> dict:
        window = (
            f"customers whose first purchase falls in {self.window[0]} to {self.window[1]} ({self.new_in_window}), per month"
            if self.window is not None
            else "not measured: the history has fewer than 4 complete months"
        )
        out = {
            "per_month": round(float(self.per_month), 6),
            "source": "the scenario (acquisition.per_month)" if self.rate_given else "the history",
            "measured": window,
            "joined_per_run": {"mean": round(float(self.totals.mean()), 3) if len(self.totals) else 0.0, "most": self.capacity},
        }
        if self.capacity:
            prefix = _prefix_of(self.ids)
            out |= {
                "copied": "past new customers' first 12 months" if self.sources_new else "every customer's first 12 months (the history has no later first purchases)",
                "sources": int(len(self.source_code)),
                # Below 12, the copies understate a first year: the history ends before theirs does.
                "first_year_months_seen": round(float(self.months_seen), 2),
                "ids": f"{prefix}1, {prefix}2, ... (no real id starts with `{prefix}`)",
            }
        return out


def none_in_slices() -> dict:
    """What summary.json says of new customers in a history replayed in slices (none are drawn)."""
    return {"per_month": 0.0, "source": "the scenario (acquisition.per_month)", "measured": "not measured: a history replayed in slices"}


def _prefix_of(ids: np.ndarray) -> str:
    return str(ids[0]).rstrip("0123456789")


def complete_months(start: pd.Timestamp, until: pd.Timestamp) -> pd.PeriodIndex:
    """The calendar months wholly inside the history (from its first day to `until`'s day)."""
    first = start.normalize()
    lo = first.to_period("M") if first.day == 1 else first.to_period("M") + 1
    last_day = until.normalize()
    hi = last_day.to_period("M") if (last_day + pd.Timedelta(days=1)).day == 1 else last_day.to_period("M") - 1
    if hi < lo:
        return pd.period_range(lo, periods=0, freq="M")
    return pd.period_range(lo, hi, freq="M")


def fit(history: History, hz, per_month: float | None, runs: int, seed: int) -> Acquisition:
    """The new customers' rate, sources and every run's counts (`capacity` 0: no run has any)."""
    h = history
    rows = h.rows
    ts = metrics.as_ns(rows["timestamp"].to_numpy())
    first_row = h.first_purchase
    buyers = np.flatnonzero(first_row >= 0)
    first_ts = ts[first_row[buyers]]
    months = complete_months(h.start, h.until)
    k = len(months)
    window = None
    new_in_window = 0
    if k > SKIPPED_MONTHS:
        w = months[-min(WINDOW_MONTHS, k - SKIPPED_MONTHS) :]
        lo, hi = w[0].start_time.value, w[-1].end_time.value
        new_in_window = int(np.count_nonzero((first_ts >= lo) & (first_ts <= hi)))
        window = (str(w[0]), str(w[-1]))
        measured = new_in_window / len(w)
    else:
        measured = 0.0
    rate = float(per_month) if per_month is not None else measured
    horizon_months = hz.months
    bounds = np.array([(hz.origin + pd.DateOffset(months=i)).value for i in range(horizon_months)] + [hz.end.value + 1], dtype=np.int64)
    totals = np.array([int(_month_counts(rate, horizon_months, seed, r).sum()) for r in range(runs)] if rate > 0 else np.zeros(runs), dtype=np.int64)
    capacity = int(totals.max()) if runs else 0
    if capacity == 0:
        # No run has a new customer: nothing to copy and no id to make.
        none = np.zeros(0, dtype=np.int64)
        return Acquisition(rate, per_month is not None, window, new_in_window, h.customers, totals, int(seed), np.zeros(0, dtype=object), np.asarray(h.keys, dtype=np.uint64), bounds, none, none, np.zeros(1, dtype=np.int64), none, False)
    if h.customers + capacity >= MAX_CUSTOMERS:
        raise HorizonError(f"acquisition: {capacity:,} new customers and {h.customers:,} real ones are more than a horizon takes ({MAX_CUSTOMERS - 1:,}); give a smaller acquisition.per_month")
    # Sources: past new customers (first purchase from the fourth complete month on), else everyone.
    cutoff = months[SKIPPED_MONTHS].start_time.value if k > SKIPPED_MONTHS else None
    late = buyers[first_ts >= cutoff] if cutoff is not None else buyers[:0]
    sources = late if len(late) else buyers
    if not len(sources) and capacity:
        raise HorizonError("acquisition: the history has no purchase for a new customer to copy; set acquisition.per_month: 0")
    src_first = ts[first_row[sources]]
    limit = (pd.DatetimeIndex(src_first) + pd.DateOffset(months=FIRST_YEAR_MONTHS)).asi8
    end_ns = h.until.value
    seen = np.minimum(limit, end_ns + 1) - src_first
    months_seen = float(np.mean(seen / (limit - src_first))) * FIRST_YEAR_MONTHS
    off, flat = _source_rows(np.asarray(rows["_m"].to_numpy(), dtype=np.int64), ts, h.enroll_rows, first_row[sources], limit)
    ids = _new_ids(h, capacity)
    return Acquisition(
        per_month=rate,
        rate_given=per_month is not None,
        window=window,
        new_in_window=new_in_window,
        first_code=h.customers,
        totals=totals,
        seed=int(seed),
        ids=ids,
        keys=np.concatenate([np.asarray(h.keys, dtype=np.uint64), rng.customer_keys(ids)]),
        month_bounds=bounds,
        source_code=sources.astype(np.int64),
        source_first=src_first,
        source_off=off,
        source_rows=flat,
        sources_new=bool(len(late)),
        months_seen=months_seen,
    )


def _month_counts(rate: float, months: int, seed: int, run: int) -> np.ndarray:
    """Run `run`'s Poisson draws, one a month (stream 91, counter: the month)."""
    if not rate > 0:
        return np.zeros(months, dtype=np.int64)
    u = rng.uniform(seed, run, np.zeros(months, dtype=np.uint64), np.arange(months, dtype=np.uint64), STREAM_COUNT)
    return np.maximum(stats.poisson.ppf(u, rate), 0).astype(np.int64)


def _new_ids(h: History, capacity: int) -> np.ndarray:
    """`new-1` .. `new-<capacity>` behind a prefix no real id starts with."""
    real = pd.Series(np.asarray(h.ids, dtype=object)).astype(str)
    prefix = "new-"
    while real.str.startswith(prefix).any():  # each turn is longer: it ends by the longest id's length
        prefix = "~" + prefix
    return np.array([f"{prefix}{i}" for i in range(1, capacity + 1)], dtype=object)


@njit(cache=True, nogil=True)
def _source_rows(m, ts, enroll_rows, first, limit):
    # Each source's rows from its first purchase (a row of its own, customers' rows contiguous and
    # in time order) while before `limit`, the data's enrol rows left out.
    n = m.shape[0]
    off = np.zeros(first.shape[0] + 1, dtype=np.int64)
    for s in range(first.shape[0]):
        c = m[first[s]]
        i = first[s]
        count = 0
        while i < n and m[i] == c and ts[i] < limit[s]:
            count += not enroll_rows[i]
            i += 1
        off[s + 1] = off[s] + count
    flat = np.empty(off[-1], dtype=np.int64)
    for s in range(first.shape[0]):
        c = m[first[s]]
        i = first[s]
        k = off[s]
        while i < n and m[i] == c and ts[i] < limit[s]:
            if not enroll_rows[i]:
                flat[k] = i
                k += 1
            i += 1
    return off, flat


@dataclass
class Newcomers:
    """One run's new customers: their rows (future rows, code order), who of them joins, and the
    customers table the engine reads (`cast`), made once per run when first asked for."""

    acq: Acquisition
    source: np.ndarray  # per new customer: the source's customer code
    chosen: np.ndarray  # bool per new customer slot (`capacity`): joins the program
    rows: pd.DataFrame
    baseline: np.ndarray  # their revenue per month of the simulation, minor units
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _cast: tuple | None = field(default=None, repr=False)

    @property
    def members(self) -> int:
        return self.acq.first_code + self.acq.capacity

    def cast(self, base) -> tuple:
        """(customers table, ledger id dtype) over the real customers and the new ones, for the
        engine: a new customer has its source's attributes and no `enrolled` date."""
        with self._lock:
            if self._cast is None:
                self._cast = _cast(base, self.acq, self.source)
            return self._cast


def _cast(base, acq: Acquisition, source: np.ndarray) -> tuple:
    real = base.customers
    slots = np.full(acq.capacity, source[0] if len(source) else 0, dtype=np.int64)
    slots[: len(source)] = source  # (slots no new customer of this run fills are never read)
    new = real.iloc[slots].reset_index(drop=True)
    new["customer_id"] = acq.ids
    if "enrolled" in new.columns:
        new["enrolled"] = pd.Series(pd.NaT, index=new.index, dtype=real["enrolled"].dtype)
    table = pd.concat([real.reset_index(drop=True), new], ignore_index=True)

    def dtype():
        cats = pd.Index(np.concatenate([np.asarray(base.id_dtype.categories, dtype=object), acq.ids]), dtype=object)
        return pd.CategoricalDtype(cats)

    return table, base.cached(("simulator.acquisition", "id_dtype", acq.capacity), dtype)


def draw(acq: Acquisition, history: History, months: pd.PeriodIndex, share: float, pick: str, seed: int, run: int) -> Newcomers | None:
    """Run `run`'s new customers and their rows; None when the run has none."""
    counts = acq.month_counts(run)
    n = int(counts.sum())
    if n == 0:
        return None
    month = np.repeat(np.arange(len(counts)), counts)
    keys = acq.keys[acq.first_code : acq.first_code + n]
    ns = len(acq.source_code)
    s = np.minimum((rng.uniform(seed, run, keys, 0, STREAM_SOURCE) * ns).astype(np.int64), ns - 1)
    lo, hi = acq.month_bounds[month], acq.month_bounds[month + 1]
    start = lo + np.floor(rng.uniform(seed, run, keys, 0, STREAM_START) * ((hi - lo) // _NS)).astype(np.int64) * _NS
    shift = start - acq.source_first[s]
    lines = acq.source_off[s + 1] - acq.source_off[s]
    owner = np.repeat(np.arange(n), lines)
    pos = acq.source_rows[np.repeat(acq.source_off[s], lines) + (np.arange(len(owner)) - np.repeat(np.cumsum(lines) - lines, lines))]
    rows = history.rows
    t = metrics.as_ns(rows["timestamp"].to_numpy())[pos] + shift[owner]
    keep = t < acq.month_bounds[-1]  # cut at the horizon's end (a basket's lines share a time: cut whole)
    pos, t, owner = pos[keep], t[keep], owner[keep]
    j = 1 + np.arange(len(owner)) - np.searchsorted(owner, owner)  # 1.. within each new customer
    minor = np.asarray(rows["_minor"].to_numpy(), dtype=np.int64)[pos]
    purchase = rows["_purchase"].to_numpy()[pos]
    refund = rows["_refund"].to_numpy()[pos]
    spend = np.bincount(owner, weights=np.where(purchase, minor, 0), minlength=n)
    chosen = np.zeros(acq.capacity, dtype=bool)
    chosen[:n] = enrollment.choose(np.ones(n, dtype=bool), spend, keys, share, pick, seed, run)
    code = acq.first_code + np.arange(n, dtype=np.int64)
    # Each member's enrol row goes just before its first row (its first purchase, at `start`).
    firsts = np.searchsorted(owner, np.arange(n))
    joins = np.flatnonzero(chosen[:n])
    at = firsts[joins] + np.arange(len(joins))
    is_enrol = np.zeros(len(owner) + len(joins), dtype=bool)
    is_enrol[at] = True

    def put(copied, enrol):
        out = np.empty(len(is_enrol), dtype=np.result_type(copied, enrol))
        out[~is_enrol] = copied
        out[is_enrol] = enrol
        return out

    counter = FUTURE_ROW + code * FUTURE_SLOTS
    no = np.zeros(len(joins), dtype=bool)
    frame = pd.DataFrame(
        {
            "timestamp": put(t, start[joins]).view("datetime64[ns]"),
            "_row": put(counter[owner] + j, counter[joins]),
            "_m": put(code[owner], code[joins]),
            "_minor": put(minor, np.zeros(len(joins), dtype=np.int64)),
            "_purchase": put(purchase, no),
            "_refund": put(refund, no),
            "_visit": put(rows["_visit"].to_numpy()[pos], no),
            "_pos": put(pos, pos[firsts[joins]]),
            "_enroll": is_enrol,
        },
        copy=False,
    )
    money = np.where(purchase | refund, minor, 0)
    baseline = metrics.by_month(t.view("datetime64[ns]"), money, months)
    return Newcomers(acq, acq.source_code[s], chosen, frame, baseline)
