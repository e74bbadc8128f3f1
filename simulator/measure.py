"""One path's exact integer sums: figures by kind, monthly cells, members, tiers and rewards.

`measure` reduces an evaluated path (its rows and ledger) to a `Partial`; partials over disjoint
customers add up (simulator.chunked), and `montecarlo.finish` turns the total into figures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit

from rulelang.engine import NAT
from simulator import metrics


@dataclass
class Partial:
    """One path's exact integer sums over some customers: they add up over disjoint customer sets."""

    members: int
    rows: int  # rows of the evaluated path
    by_kind: np.ndarray  # points per metrics.KINDS, whole ledger
    cost: int
    partner: int
    cells: np.ndarray  # (month, kind) points
    cost_m: np.ndarray
    partner_m: np.ndarray
    delta_m: np.ndarray  # revenue with the program minus the baseline, per month
    joined_m: np.ndarray  # members joined by each month's end
    tiers_m: np.ndarray  # (month, tier) members at each month's end
    rewards: pd.DataFrame  # metrics.rewards
    ledger: pd.DataFrame | None
    triangle: np.ndarray | None = None  # (cohort, development, flow) points (metrics.LedgerSums)
    sales_m: np.ndarray | None = None  # members' purchases per month (minor units): the sales that earn points
    baseline_m: np.ndarray | None = None  # the forecast rows' own revenue per month (simulator.horizon), whole path
    discount: np.ndarray | None = None  # (2,): discounts' money off and partners' share (metrics.LedgerSums)
    discount_m: np.ndarray | None = None  # (month, 2): the same per month
    benefit: np.ndarray | None = None  # (2,): what benefits cost and partners' share (metrics.LedgerSums)
    benefit_m: np.ndarray | None = None  # (month, 2): the same per month

    def add(self, other: Partial) -> Partial:
        """The sums of both parts (the ledger is kept by the caller)."""
        sums = {
            f: getattr(self, f) + getattr(other, f)
            for f in ("members", "rows", "by_kind", "cost", "partner", "cells", "cost_m", "partner_m", "delta_m", "joined_m", "tiers_m")
        }
        for f in ("triangle", "sales_m", "discount", "discount_m", "benefit", "benefit_m"):  # (None in a part made without them)
            mine, theirs = getattr(self, f), getattr(other, f)
            sums[f] = theirs if mine is None else mine if theirs is None else mine + theirs
        if self.rewards.index.equals(other.rewards.index):  # the same rewards redeemed (the usual case): no regrouping
            rewards = self.rewards + other.rewards
        else:
            rewards = pd.concat([self.rewards, other.rewards]).groupby(level=0, sort=False).sum()
        # A slice's future revenue (simulator.chunked with a horizon) adds up like the sums.
        base = None if self.baseline_m is None and other.baseline_m is None else sum(b for b in (self.baseline_m, other.baseline_m) if b is not None)
        return Partial(**sums, rewards=rewards, ledger=None, baseline_m=base)


def measure(setup, model, rows: pd.DataFrame, evaluation, chosen: np.ndarray, run: int, keep_ledger: bool) -> Partial:
    """The exact sums of one evaluated path (over the customers it covers); `evaluation`: the
    engine's ledger and, for a tiered program, its members per tier at each month's end."""
    ledger = evaluation.ledger
    months = setup.months
    ends = np.asarray(months.end_time, dtype="datetime64[ns]")
    kinds = metrics.kind_codes(ledger)
    t = rows["timestamp"].to_numpy()
    purchase, refund, minor, orig, enroll = (rows[c].to_numpy() for c in ("_purchase", "_refund", "_minor", "_orig", "_enroll"))
    delta, joins, sales = _row_sums(
        metrics.as_ns(t),
        purchase,
        refund,
        minor,
        orig,
        enroll,
        metrics.month_starts(months)[0],
        metrics.month_table(months),
        len(months),
        ends.view(np.int64),
    )
    joined_m = np.cumsum(joins[: len(months)])  # members joined by each month's end
    # Members per tier at each month's end, from the engine (a member counts from joining on).
    tier_counts = evaluation.tier_counts if model.tiers is not None else np.zeros((len(months), 0), dtype=np.int64)
    sums = metrics.ledger_sums(ledger, months, kinds)
    return Partial(
        members=int(chosen.sum()),
        rows=len(rows),
        by_kind=sums.by_kind,
        cost=sums.cost,
        partner=sums.partner,
        cells=sums.cells,
        cost_m=sums.cost_m,
        partner_m=sums.partner_m,
        delta_m=delta,
        joined_m=joined_m,
        tiers_m=tier_counts,
        rewards=metrics.rewards(ledger, kinds),
        ledger=ledger if keep_ledger else None,
        triangle=sums.triangle,
        sales_m=sales,
        discount=sums.discount if model.discounts else None,
        discount_m=sums.discount_m if model.discounts else None,
        benefit=sums.benefit if model.benefits else None,
        benefit_m=sums.benefit_m if model.benefits else None,
    )


@njit(cache=True, nogil=True)
def _row_sums(t, purchase, refund, minor, orig, enroll, first, table, nm, ends):
    # One pass over the rows: the revenue the program adds per month (spend now minus the
    # original) and the joinings, each counted at the first month end at or after it: its month's,
    # unless the row falls after that month's end_time (the last nanosecond of the month).
    n = t.shape[0]
    delta = np.zeros(nm, dtype=np.int64)
    sales = np.zeros(nm, dtype=np.int64)
    joins = np.zeros(nm + 1, dtype=np.int64)
    for i in range(n):
        # Branch-free: the flags vary row to row, and mispredicted branches cost more than the work.
        x = minor[i] * (purchase[i] | refund[i])
        c = metrics.month_of(t[i], first, table, nm)
        if 0 <= c < nm:
            delta[c] += x - orig[i]
            sales[c] += minor[i] * purchase[i]
            before = c + (t[i] > ends[c])
        else:
            before = max(c, 0)
        joins[before] += enroll[i] & (t[i] != NAT)
    return delta, joins, sales
