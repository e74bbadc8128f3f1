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

from rulelang.engine import NAT, NS_PER_DAY
from simulator.metrics import as_ns


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


def contributions(spec, rows: pd.DataFrame, earned: np.ndarray) -> np.ndarray:
    """What each row adds to the tier metric: spend (minor units), earned points, or a visit."""
    if spec.metric == "spend":
        return np.where(rows["_purchase"].to_numpy() | rows["_refund"].to_numpy(), rows["_minor"].to_numpy(), 0).astype(np.int64, copy=False)
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


def at_moments(spec, decimals: int, member: np.ndarray, t: np.ndarray, contrib: np.ndarray, m_q: np.ndarray, t_q: np.ndarray) -> np.ndarray:
    """Tier level of members `m_q` at moments `t_q`, counting every row with time <= the moment."""
    hi = lex_search(member, t, m_q, t_q, "right")
    return _levels(spec, decimals, member, t, contrib, m_q, t_q, hi)[0]


def counts_at(
    spec,
    decimals: int,
    member: np.ndarray,
    t: np.ndarray,
    contrib: np.ndarray,
    m_q: np.ndarray,
    t_join: np.ndarray,
    moments: np.ndarray,
    before: np.ndarray | None = None,
) -> np.ndarray:
    """Members `m_q` (joined at `t_join`) per tier at each of `moments`: (moment, tier) int64 counts.

    The same levels as `at_moments` for every (member, moment) pair, counting only members who had
    joined by the moment; rows sorted by (member, time) as for `at_moments`. `before`, if the
    caller has it: each row's `positions(t, moments, strict=True)`.
    """
    moments = np.asarray(moments, dtype="datetime64[ns]")
    order = np.argsort(moments, kind="stable")  # the window bounds then rise with the moments
    at = moments[order]
    if spec.window == "calendar_year":
        lo, prev, cal = _year_start(at), _year_start(at, 1), True
    else:
        lo, prev, cal = _window_start(spec, at), at, False
    ns = [np.asarray(x, dtype="datetime64[ns]").view("int64") for x in (t, t_join, at, lo, prev)]
    out = np.empty((len(moments), len(spec.names)), dtype=np.int64)
    out[order] = _counts_at(
        np.asarray(member, dtype=np.int64), ns[0], np.asarray(contrib, dtype=np.int64), thresholds(spec, decimals),
        np.asarray(m_q, dtype=np.int64), *ns[1:], cal, len(spec.names), before,
    )  # fmt: skip
    return out


_TABLE_DAYS = 100_000  # moments further apart are searched for instead


def positions(t: np.ndarray, q: np.ndarray, strict: bool) -> np.ndarray:
    """How many of the rising `q` lie before each t (strictly, or at or before), in a small integer type.

    Times are datetime64 or int64 nanoseconds.
    """
    t, q = as_ns(t), as_ns(q)
    if len(q) and int(q[-1]) - int(q[0]) > _TABLE_DAYS * NS_PER_DAY:
        return np.searchsorted(q, t, side="left" if strict else "right")
    out = np.empty(len(t), dtype=np.int8 if len(q) < 127 else np.int64)
    _below(t, q, strict, out)
    return out


@njit(cache=True, nogil=True)
def _below(t, q, strict, out):
    # A day table answers the days no q falls in, a count the rest (a binary search mispredicts on
    # every row).
    n = t.shape[0]
    nq = q.shape[0]
    if nq == 0:
        out[:] = 0
        return
    base = q[0] - q[0] % NS_PER_DAY
    days = (q[nq - 1] - base) // NS_PER_DAY + 1
    table = np.zeros(days, dtype=np.int64)
    inside = np.zeros(days, dtype=np.bool_)
    for j in range(nq):
        d = (q[j] - base) // NS_PER_DAY
        inside[d] = True
        for k in range(d + 1, days):
            table[k] += 1
    end = base + days * NS_PER_DAY
    for r in range(n):
        x = t[r]
        if x < base:
            out[r] = 0
            continue
        if x >= end:
            out[r] = nq
            continue
        d = (x - base) // NS_PER_DAY
        if not inside[d]:
            out[r] = table[d]
        else:
            k = 0
            for j in range(nq):
                k += q[j] < x or (not strict and q[j] == x)
            out[r] = k


@njit(cache=True, nogil=True, inline="always")
def _level_of(limits, metric):
    # `_level` for one metric: thresholds rise (the checker wants each above the one before), so
    # counting those reached is the right-side search.
    k = 0
    for q in range(limits.shape[0]):  # (indexed: an iterator over the array is slower here)
        k += limits[q] <= metric
    return max(k - 1, 0)


@njit(cache=True, nogil=True)
def _member_ranges(m_rows, m_q):
    # Each queried member's rows [lo, hi) in rows sorted by member.
    k = m_q.shape[0]
    lo = np.zeros(k, dtype=np.int64)
    hi = np.zeros(k, dtype=np.int64)
    off = _offsets(m_rows, m_q)
    for i in range(k):
        if m_q[i] >= 0:
            lo[i] = off[m_q[i]]
            hi[i] = off[m_q[i] + 1]
    return lo, hi


def _counts_at(m_rows, t_rows, contrib, limits, m_q, t_join, moments, lo_t, prev_t, cal, ntiers, before=None):
    # A row adds to the metric at the moments from the first at or after it until its time leaves
    # the window: a run of moments, as the bounds rise. Windows are (start, moment] after a days or
    # months look-back, [1 Jan, moment] in a calendar year. (Separate kernels: fused, they ran
    # slower.)
    first = positions(t_rows, moments, True) if before is None else before
    until = positions(t_rows, lo_t, not cal)
    until_prev = positions(t_rows, prev_t, False) if cal else until
    # Queries in member order (the enrolment rows are) walk along the rows to their members.
    walk = bool(np.all(m_q[1:] >= m_q[:-1]))
    lo, hi = (np.zeros(0, dtype=np.int64),) * 2 if walk else _member_ranges(m_rows, m_q)
    return _tally(m_rows, m_q, walk, lo, hi, first, until, until_prev, contrib, limits, t_join, moments, cal, ntiers)


@njit(cache=True, nogil=True)
def _tally(m_rows, m_q, walk, lo, hi, first, until, until_prev, contrib, limits, t_join, moments, cal, ntiers):
    # Each member's runs go into a difference array over the moments, whose running sums are the
    # member's metric at each moment.
    nq = moments.shape[0]
    out = np.zeros((nq, ntiers), dtype=np.int64)
    d = np.zeros(nq + 1, dtype=np.int64)
    e = np.zeros(nq + 1, dtype=np.int64)
    n = m_rows.shape[0]
    p = 0
    a = 0
    b = 0
    for i in range(m_q.shape[0]):
        tj = t_join[i]
        if not walk:
            a = lo[i]
            b = hi[i]
        elif i == 0 or m_q[i] != m_q[i - 1]:
            while p < n and m_rows[p] < m_q[i]:
                p += 1
            a = p
            while p < n and m_rows[p] == m_q[i]:
                p += 1
            b = p
        for j in range(nq + 1):
            d[j] = 0
        for r in range(a, b):
            c = contrib[r]
            x = first[r]
            d[x] += c
            d[max(x, until[r])] -= c
        if cal:
            # Last calendar year's window: from its 1 Jan up to this year's.
            for j in range(nq + 1):
                e[j] = 0
            for r in range(a, b):
                e[until[r]] += contrib[r]
                e[max(until[r], until_prev[r])] -= contrib[r]
        metric = 0
        last = 0
        for j in range(nq):
            metric += d[j]
            level = _level_of(limits, metric)
            if cal:
                last += e[j]
                level = max(level, _level_of(limits, last))
            out[j, level] += (tj != NAT) & (tj <= moments[j])
    return out
