"""Tier levels outside the engine: before each row, and at given moments (month ends).

The ledger does not carry tiers, so the simulator recomputes them from the rows it evaluated and
the postings it got back, following docs/semantics.md "Tiers": the metric over the window counts
rows before the current one in processing order. Everything is a cumulative sum plus a
per-member binary search, column-at-a-time.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numba import njit


def lex_search(m_rows: np.ndarray, t_rows: np.ndarray, m_q: np.ndarray, t_q: np.ndarray, side: str) -> np.ndarray:
    """Positions in rows sorted by (member, time) where (member, time) queries would insert.

    Members are non-negative integer codes (customer codes)."""
    t_rows = np.asarray(t_rows, dtype="datetime64[ns]").view("int64")
    t_q = np.asarray(t_q, dtype="datetime64[ns]").view("int64")
    m_rows = np.asarray(m_rows, dtype=np.int64)
    m_q = np.asarray(m_q, dtype=np.int64)
    return _lex_search(m_rows, t_rows, m_q, t_q, side == "right")


@njit(cache=True, nogil=True)
def _lex_search(m_rows, t_rows, m_q, t_q, right):
    # Members' row ranges from one counting pass (codes are small non-negative integers), then a
    # binary search on time within the queried member's range: a few steps, close in memory.
    n = m_rows.shape[0]
    top = 0
    for i in range(n):
        top = max(top, m_rows[i] + 1)
    for i in range(m_q.shape[0]):
        top = max(top, m_q[i] + 1)
    off = np.zeros(top + 1, dtype=np.int64)
    for i in range(n):
        off[m_rows[i] + 1] += 1
    for k in range(top):
        off[k + 1] += off[k]
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


def contributions(spec, rows: pd.DataFrame, earned: np.ndarray) -> np.ndarray:
    """What each row adds to the tier metric: spend (minor units), earned points, or a visit."""
    if spec.metric == "spend":
        return np.where(rows["_purchase"].to_numpy() | rows["_refund"].to_numpy(), rows["_minor"].to_numpy(), 0).astype(np.int64)
    if spec.metric == "points":
        return np.asarray(earned, dtype=np.int64)
    return rows["_visit"].to_numpy().astype(np.int64)


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
    return (ts - pd.DateOffset(months=spec.n)).to_numpy()


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
    hi = np.arange(len(member))
    return _levels(spec, decimals, member, t, contrib, member, t, hi)


def at_moments(spec, decimals: int, member: np.ndarray, t: np.ndarray, contrib: np.ndarray, m_q: np.ndarray, t_q: np.ndarray) -> np.ndarray:
    """Tier level of members `m_q` at moments `t_q`, counting every row with time <= the moment."""
    hi = lex_search(member, t, m_q, t_q, "right")
    return _levels(spec, decimals, member, t, contrib, m_q, t_q, hi)[0]


def counts_at(
    spec, decimals: int, member: np.ndarray, t: np.ndarray, contrib: np.ndarray, m_q: np.ndarray, t_join: np.ndarray, moments: np.ndarray
) -> np.ndarray:
    """Members `m_q` (joined at `t_join`) per tier at each of `moments`: (moment, tier) int64 counts.

    The same levels as `at_moments` for every (member, moment) pair, counting only members who had
    joined by the moment, in one pass over each member's rows instead of a search per pair.
    """
    moments = np.asarray(moments, dtype="datetime64[ns]")
    if spec.window == "calendar_year":
        lo, prev, lo_right, cal = _year_start(moments), _year_start(moments, 1), False, True
    else:
        lo, prev, lo_right, cal = _window_start(spec, moments), moments, True, False
    as_ns = [np.asarray(x, dtype="datetime64[ns]").view("int64") for x in (t, t_join, moments, lo, prev)]
    return _counts_at(
        np.asarray(member, dtype=np.int64), as_ns[0], np.asarray(contrib, dtype=np.int64), thresholds(spec, decimals),
        np.asarray(m_q, dtype=np.int64), *as_ns[1:], lo_right, cal, len(spec.names),
    )  # fmt: skip


_NAT = np.iinfo(np.int64).min


@njit(cache=True, nogil=True, inline="always")
def _seek(t, p, a, b, q, right):
    # Moves position p within [a, b) to where q inserts (after equal times when `right`); the
    # moments rise, so p mostly steps forward a row or two from its last place.
    while p < b and (t[p] < q or (right and t[p] == q)):
        p += 1
    while p > a and (t[p - 1] > q or (not right and t[p - 1] == q)):
        p -= 1
    return p


@njit(cache=True, nogil=True, inline="always")
def _level_of(limits, metric):
    # `_level` for one metric: thresholds rise (the checker wants each above the one before), so
    # counting those reached is the right-side search.
    k = 0
    for x in limits:
        k += x <= metric
    return max(k - 1, 0)


@njit(cache=True, nogil=True)
def _counts_at(m_rows, t_rows, contrib, limits, m_q, t_join, moments, lo_t, prev_t, lo_right, cal, ntiers):
    n = m_rows.shape[0]
    top = 0
    for i in range(n):
        top = max(top, m_rows[i] + 1)
    for i in range(m_q.shape[0]):
        top = max(top, m_q[i] + 1)
    off = np.zeros(top + 1, dtype=np.int64)
    for i in range(n):
        off[m_rows[i] + 1] += 1
    for k in range(top):
        off[k + 1] += off[k]
    c = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        c[i + 1] = c[i] + contrib[i]
    nq = moments.shape[0]
    out = np.zeros((nq, ntiers), dtype=np.int64)
    for i in range(m_q.shape[0]):
        mq = m_q[i]
        tj = t_join[i]
        a = off[mq] if mq >= 0 else 0
        b = off[mq + 1] if mq >= 0 else 0
        hi = a
        lo = a
        pv = a
        for j in range(nq):
            if tj == _NAT or tj > moments[j]:
                continue
            hi = _seek(t_rows, hi, a, b, moments[j], True)
            lo = _seek(t_rows, lo, a, b, lo_t[j], lo_right)
            if cal:
                pv = _seek(t_rows, pv, a, b, prev_t[j], False)
                level = max(_level_of(limits, c[hi] - c[lo]), _level_of(limits, c[lo] - c[pv]))
            else:
                level = _level_of(limits, c[hi] - c[min(lo, hi)])
            out[j, level] += 1
    return out
