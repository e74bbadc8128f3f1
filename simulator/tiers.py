"""Tier levels before each row without an engine pass: what the spend uplift needs of a path's
rows before the engine runs them.

The engine reports the tier of every posting and the members per tier at each month's end
(`rulelang.engine`); the response, which changes the rows before the engine sees them, reads a
tier by spend or visits straight off the rows here (docs/semantics.md "Tiers": the metric over
the window counts rows before the current one in processing order), and a tier by points off a
first engine pass's earnings. Column-at-a-time: a cumulative sum plus a per-member search or a
trailing window.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numba import njit

from rulelang.engine import NS_PER_DAY


def follow_rows(spec) -> bool:
    """Whether the tiers are a metric over a days/months/calendar-year window alone, which this
    module reads off the rows. Status rules (alternatives, `over lifetime`, `keep`, downgrades, reviews,
`counting the current purchase`) are the engine's
    alone: for them the simulator reads the engine's tier of each row (a first pass), never a
    second implementation here."""
    return (spec.window in ("days", "months", "years", "calendar_year") and not spec.alternatives and not spec.keep_months
            and not spec.one_level and not spec.review_months and not spec.counting)


def lex_search(m_rows: np.ndarray, t_rows: np.ndarray, m_q: np.ndarray, t_q: np.ndarray, side: str) -> np.ndarray:
    """Positions in rows sorted by (member, time) where (member, time) queries would insert.

    Members are non-negative integer codes (customer codes)."""
    t_rows = np.asarray(t_rows, dtype="datetime64[ns]").view("int64")
    t_q = np.asarray(t_q, dtype="datetime64[ns]").view("int64")
    m_rows = np.asarray(m_rows, dtype=np.int64)
    m_q = np.asarray(m_q, dtype=np.int64)
    return _lex_search(m_rows, t_rows, m_q, t_q, side == "right")


@njit(cache=True, nogil=True)
def _offsets(m_rows, m_q):
    # off[c] .. off[c + 1]: the rows of member code c, by one counting pass (codes are small
    # non-negative integers; rows sorted by member), for every code up to the largest seen.
    top = 0
    for i in range(m_rows.shape[0]):
        top = max(top, m_rows[i] + 1)
    for i in range(m_q.shape[0]):
        top = max(top, m_q[i] + 1)
    off = np.zeros(top + 1, dtype=np.int64)
    for i in range(m_rows.shape[0]):
        off[m_rows[i] + 1] += 1
    for c in range(top):
        off[c + 1] += off[c]
    return off


@njit(cache=True, nogil=True)
def _lex_search(m_rows, t_rows, m_q, t_q, right):
    # Members' row ranges from one counting pass, then a binary search on time within the queried
    # member's range: a few steps, close in memory.
    off = _offsets(m_rows, m_q)
    out = np.empty(m_q.shape[0], dtype=np.int64)
    for i in range(m_q.shape[0]):
        mq = m_q[i]
        tq = t_q[i]
        if mq < 0:
            out[i] = 0
            continue
        lo = off[mq]
        hi = off[mq + 1]
        while lo < hi:
            mid = (lo + hi) >> 1
            if t_rows[mid] < tq or (right and t_rows[mid] == tq):
                lo = mid + 1
            else:
                hi = mid
        out[i] = lo
    return out


def contributions(spec, rows: pd.DataFrame) -> np.ndarray:
    """What each row adds to a tier metric by spend (minor units) or visits; a metric by points
    needs the engine's earnings (an engine pass reports those tiers itself)."""
    if spec.metric == "spend":
        return np.where(rows["_purchase"].to_numpy() | rows["_refund"].to_numpy(), rows["_minor"].to_numpy(), 0).astype(np.int64, copy=False)
    if spec.metric == "visits":
        return rows["_visit"].to_numpy().astype(np.int64)
    raise ValueError("a tier by points is reported by the engine, not read off the rows")


def thresholds(spec, decimals: int) -> np.ndarray:
    """Integer thresholds: a whole-number metric reaches threshold x exactly when it reaches ceil(x)."""
    scale = 10**decimals if spec.metric == "spend" else 1
    return np.array([math.ceil(t * scale) for t in spec.thresholds], dtype=np.int64)


def _level(metric: np.ndarray, limits: np.ndarray) -> np.ndarray:
    return np.maximum(np.searchsorted(limits, metric, side="right") - 1, 0)


def _window_start(spec, t: np.ndarray) -> np.ndarray:
    ts = pd.DatetimeIndex(np.asarray(t, dtype="datetime64[ns]"))
    if spec.window == "days":
        return (ts - pd.Timedelta(days=spec.n)).to_numpy()
    # `over N years` is 12 N months, as the engine counts it.
    return (ts - pd.DateOffset(months=spec.n * (12 if spec.window == "years" else 1))).to_numpy()


def _year_start(t: np.ndarray, back: int = 0) -> np.ndarray:
    years = pd.DatetimeIndex(np.asarray(t, dtype="datetime64[ns]")).year.to_numpy() - back
    return pd.to_datetime({"year": years, "month": 1, "day": 1}).to_numpy() if len(years) else np.array([], dtype="datetime64[ns]")


def _levels(spec, decimals, m, t, contrib, m_q, t_q, hi) -> tuple[np.ndarray, np.ndarray]:
    """Levels (and metrics) for queries whose window ends just before row position `hi`."""
    c = np.concatenate([[0], np.cumsum(contrib, dtype=np.int64)])
    limits = thresholds(spec, decimals)
    if spec.window == "calendar_year":
        y0 = lex_search(m, t, m_q, _year_start(t_q), "left")
        y1 = lex_search(m, t, m_q, _year_start(t_q, 1), "left")
        ytd = c[hi] - c[y0]
        prev = c[y0] - c[y1]
        return np.maximum(_level(ytd, limits), _level(prev, limits)), ytd
    lo = lex_search(m, t, m_q, _window_start(spec, t_q), "right")
    metric = c[hi] - c[np.minimum(lo, hi)]
    return _level(metric, limits), metric


def before_rows(spec, decimals: int, member: np.ndarray, t: np.ndarray, contrib: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's tier level (and tier metric) held before the row; rows sorted by (member, order)."""
    if spec.window == "calendar_year":
        hi = np.arange(len(member))
        return _levels(spec, decimals, member, t, contrib, member, t, hi)
    # A rolling window's start moves forward with the rows, so one pass with a trailing pointer
    # per member finds what `_levels` would by a search per row.
    t_ns = np.asarray(t, dtype="datetime64[ns]").view(np.int64)
    start = t_ns - spec.n * NS_PER_DAY if spec.window == "days" else _window_start(spec, t).view(np.int64)
    metric = _rolling_before(np.asarray(member, dtype=np.int64), t_ns, np.asarray(contrib, dtype=np.int64), start)
    return _level(metric, thresholds(spec, decimals)), metric


def uplift_before_rows(spec, decimals: int, member: np.ndarray, t: np.ndarray, contrib: np.ndarray, uplifts: np.ndarray, purchase: np.ndarray) -> np.ndarray:
    """Per row: `uplifts` at the tier level held before the row (the last entry for any level past
    it) on purchase rows, 0.0 elsewhere; `before_rows`' levels, for a rolling window found and
    looked up in the same pass (no metric, level or window-start columns)."""
    if spec.window == "calendar_year":
        level, _ = before_rows(spec, decimals, member, t, contrib)
        return np.where(purchase, uplifts[np.minimum(level, len(uplifts) - 1)], 0.0)
    t_ns = np.asarray(t, dtype="datetime64[ns]").view(np.int64)
    days = spec.window == "days"
    start = np.zeros(0, dtype=np.int64) if days else _window_start(spec, t).view(np.int64)
    return _rolling_uplift(
        np.asarray(member, dtype=np.int64),
        t_ns,
        np.asarray(contrib, dtype=np.int64),
        start,
        spec.n * NS_PER_DAY if days else 0,
        thresholds(spec, decimals),
        np.asarray(uplifts, dtype=np.float64),
        np.asarray(purchase, dtype=np.bool_),
    )


@njit(cache=True, nogil=True)
def _rolling_uplift(m, t, contrib, start, span, limits, uplifts, purchase):
    # `_rolling_before`'s metric, its level and the uplift of that level, row by row. An empty
    # `start`: the window is the `span` before t.
    out = np.empty(m.shape[0], dtype=np.float64)
    top = uplifts.shape[0] - 1
    by_span = start.shape[0] == 0
    p = 0
    s = 0
    for i in range(m.shape[0]):
        # `_rolling_before`'s window (written out in both: as an inlined helper returning the pair,
        # it made this pass three times slower).
        if i == 0 or m[i] != m[i - 1]:
            p = i
            s = 0
        since = t[i] - span if by_span else start[i]
        while p < i and t[p] <= since:
            s -= contrib[p]
            p += 1
        # The level on every row, then picked by `purchase` (no branch around the search).
        u = uplifts[min(_level_of(limits, s), top)]
        out[i] = u if purchase[i] else 0.0
        s += contrib[i]
    return out


@njit(cache=True, nogil=True)
def _rolling_before(m, t, contrib, start):
    # metric[i]: contributions of the member's rows before i whose time is after start[i].
    out = np.empty(m.shape[0], dtype=np.int64)
    p = 0
    s = 0
    for i in range(m.shape[0]):
        # The trailing window before row i: its first row p and its sum s, moved on from row
        # i - 1's (rows grouped by member in time order; a member's first row starts an empty one).
        if i == 0 or m[i] != m[i - 1]:
            p = i
            s = 0
        while p < i and t[p] <= start[i]:
            s -= contrib[p]
            p += 1
        out[i] = s
        s += contrib[i]
    return out


@njit(cache=True, nogil=True, inline="always")
def _level_of(limits, metric):
    # `_level` for one metric: thresholds rise (the checker wants each above the one before), so
    # counting those reached is the right-side search.
    k = 0
    for q in range(limits.shape[0]):  # (indexed: an iterator over the array is slower here)
        k += limits[q] <= metric
    return max(k - 1, 0)
