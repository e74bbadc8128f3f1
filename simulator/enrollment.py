"""Enrolment: which customers join, and the `enroll` row that makes `on enroll` rules fire.

`share` of the customers who buy in the period join, at their first purchase. `pick: random`
takes the customers with the smallest enrolment draws (keyed by seed, run and customer, so a
customer's fate never depends on how the work was split); `top_spenders` takes the customers with
the most purchase spend in the period (ties by customer id), the same in every run. The number
who join is `round(share x eligible)` (half up), so `members` is exact, not a coin flip each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from numba import njit

from simulator import rng
from simulator.history import History, gather

STREAM = 11  # rng stream of the enrolment draws
PICKS = ("random", "top_spenders", "segment")


def pick(history: History, share: float, how: str, seed: int, run: int, among: np.ndarray | None = None) -> np.ndarray:
    """Boolean per customer code: who joins in this run (`among`: only those it marks may, `pick: segment`)."""
    first = history.first_purchase  # the same in every run: computed once
    spend = None
    if how == "top_spenders":
        rows = history.rows
        spend = spend_per_customer(rows, history.customers)
    can_join = first >= 0
    return choose(can_join if among is None else can_join & among, spend, history.keys, share, how, seed, run)


def in_segments(seg, enrollment) -> np.ndarray | None:
    """`pick: segment`: per customer code, whether its RFM segment (simulator.segments) is one of
    `enrollment.segments`; None for any other pick. The `share` then joins among them, at random."""
    if enrollment.pick != "segment":
        return None
    from simulator.segments import SEGMENTS

    wanted = np.zeros(len(SEGMENTS), dtype=bool)
    wanted[[SEGMENTS.index(s) for s in enrollment.segments]] = True
    return wanted[seg.segment]


def spend_per_customer(rows: pd.DataFrame, customers: int) -> np.ndarray:
    """Purchase spend (minor units) per customer code."""
    return np.bincount(rows["_m"].to_numpy(), weights=np.where(rows["_purchase"].to_numpy(), rows["_minor"].to_numpy(), 0), minlength=customers)


def choose(can_join: np.ndarray, spend: np.ndarray | None, keys: np.ndarray, share: float, how: str, seed: int, run: int) -> np.ndarray:
    """Boolean per customer code (ids in sorted order): who joins, among those who `can_join`."""
    eligible = np.flatnonzero(can_join)
    k = min(len(eligible), math.floor(share * len(eligible) + 0.5))
    chosen = np.zeros(len(can_join), dtype=bool)
    if k == 0:
        return chosen
    if k == len(eligible):
        chosen[eligible] = True  # everyone who can: no order needed
        return chosen
    # Stable sorts of `eligible`, which ascends: ties keep customer order.
    if how == "top_spenders":
        order = np.argsort(-spend[eligible], kind="stable")  # most spend first
    else:
        order = np.argsort(rng.uniform(seed, run, keys[eligible], 0, STREAM), kind="stable")
    chosen[eligible[order[:k]]] = True
    return chosen


def member_rows(history: History, chosen: np.ndarray, span: tuple[int, int] | None = None) -> pd.DataFrame:
    """The members' rows from their first purchase on, each preceded by an enrol row (`_enroll`).

    Rows before joining are dropped (the customer was not a member yet), and so are `enroll` rows
    already in the data, so a member enrols exactly once. `_ord` orders the rows for the engine.
    `span` (first, end) limits the history rows looked at to those of the chosen customers.
    """
    rows = history.rows
    r0, r1 = span if span is not None else (0, len(rows))
    # Each join is a kept row (a first purchase): its enrol row goes just before it. One pass
    # finds every history row the path keeps and where the enrol rows go; then one gather per column.
    src, enroll, order = _path_sources(rows["_m"].to_numpy(), chosen, history.first_purchase, history.enroll_rows, r0, r1)
    at = np.flatnonzero(enroll)
    # (`_event` stays behind: a path's events are the base's (simulator.batch), its enrol rows `_enroll`.)
    out = {c: gather(rows[c], src) for c in rows.columns if c != "_event"}
    for col, value in (("_minor", 0), ("_purchase", False), ("_refund", False), ("_visit", False)):
        out[col][at] = value  # the gathered arrays are this path's own; `at` are the enrol rows
    for col in ("transaction_id", "reward"):
        if col in out:
            out[col] = np.where(enroll, "", np.asarray(out[col], dtype=object))
    out["_pos"] = src  # each row's position in the history
    out["_ord"] = order
    out["_enroll"] = enroll
    return pd.DataFrame(out, copy=False)


@njit(cache=True, nogil=True)
def _path_sources(m, chosen, first, enroll_rows, r0, r1):
    # The history rows r0 .. r1 of chosen customers from their first purchase on, but for the
    # data's own enrol rows; each customer's first purchase preceded by a copy of it flagged as
    # the enrol row; and each row's `_ord`, 4 x its history row, + 1 but for an enrol row (which
    # so sorts just before the first purchase: 4p < 4p + 1).
    size = 0
    for i in range(r0, r1):
        c = m[i]
        if chosen[c] and i >= first[c] and not enroll_rows[i]:
            size += 2 if i == first[c] else 1
    src = np.empty(size, dtype=np.int64)
    enroll = np.zeros(size, dtype=np.bool_)
    order = np.empty(size, dtype=np.int64)
    k = 0
    for i in range(r0, r1):
        c = m[i]
        if chosen[c] and i >= first[c] and not enroll_rows[i]:
            if i == first[c]:
                src[k] = i
                enroll[k] = True
                order[k] = 4 * i
                k += 1
            src[k] = i
            order[k] = 4 * i + 1
            k += 1
    return src, enroll, order


@dataclass(frozen=True)
class Population:
    """All customers' enrolment facts (codes in sorted id order), for a path over a slice of them.

    The choice is made over everyone and then cut to customers `lo` .. `lo + n`, so a slice of
    the customers joins exactly as it would in the whole history.
    """

    can_join: np.ndarray
    spend: np.ndarray  # purchase spend, minor units
    keys: np.ndarray
    lo: int = 0
    packed: np.ndarray | None = None  # run r's choice as bits (np.packbits), when decided ahead

    def decided(self, share: float, how: str, seed: int, runs: int) -> Population:
        """The same population with every run's choice made once (a bit per customer and run)."""
        packed = np.stack([np.packbits(choose(self.can_join, self.spend, self.keys, share, how, seed, r)) for r in range(runs)])
        return replace(self, packed=packed)

    def pick(self, share: float, how: str, seed: int, run: int, n: int) -> np.ndarray:
        """Who joins among customers lo .. lo + n."""
        if self.packed is not None:
            return np.unpackbits(self.packed[run], count=len(self.can_join)).astype(bool)[self.lo : self.lo + n]
        return choose(self.can_join, self.spend, self.keys, share, how, seed, run)[self.lo : self.lo + n]
