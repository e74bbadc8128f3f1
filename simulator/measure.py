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
from rulelang.engine import budgets as global_step
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
    discount_given_m: np.ndarray | None = None  # (month,): taken off purchases, reversals aside (metrics.LedgerSums)
    benefit: np.ndarray | None = None  # (2,): what benefits cost and partners' share (metrics.LedgerSums)
    benefit_m: np.ndarray | None = None  # (month, 2): the same per month
    payment: np.ndarray | None = None  # (1,): the money paid with points at the till (metrics.payment_sums)
    payment_m: np.ndarray | None = None  # (month,): the same per month
    groups: np.ndarray | None = None  # (segment-and-stage group, GROUP_FIELDS) sums (simulator.segments)
    pending_m: np.ndarray | None = None  # (month,): points pending at each month's close (metrics.pending_by_month)
    voucher: np.ndarray | None = None  # (2,): the automatic voucher's cost and partner share at issue (metrics.voucher_sums) ...
    voucher_m: np.ndarray | None = None  # (month, 2): ... per month; neither is in cost, partner, cost_m, partner_m
    # Budgets (rulelang.engine.budgets), per budgeted rule in program order: what it gave (points
    # or minor units), and the moment it ran out (ns; -1: it did not), the same in every part.
    budget_used: np.ndarray | None = None
    budget_out: np.ndarray | None = None

    def add(self, other: Partial) -> Partial:
        """The sums of both parts (the ledger is kept by the caller)."""
        sums = {
            f: getattr(self, f) + getattr(other, f)
            for f in ("members", "rows", "by_kind", "cost", "partner", "cells", "cost_m", "partner_m", "delta_m", "joined_m", "tiers_m")
        }
        for f in ("triangle", "sales_m", "discount", "discount_m", "discount_given_m", "benefit", "benefit_m", "groups", "pending_m",
                  "voucher", "voucher_m", "budget_used", "payment", "payment_m"):  # (None in a part made without them)
            mine, theirs = getattr(self, f), getattr(other, f)
            sums[f] = theirs if mine is None else mine if theirs is None else mine + theirs
        if self.rewards.index.equals(other.rewards.index):  # the same rewards redeemed (the usual case): no regrouping
            rewards = self.rewards + other.rewards
        else:
            rewards = pd.concat([self.rewards, other.rewards]).groupby(level=0, sort=False).sum()
        # A slice's future revenue (simulator.chunked with a horizon) adds up like the sums.
        base = (
            None
            if self.baseline_m is None and other.baseline_m is None
            else sum(b for b in (self.baseline_m, other.baseline_m) if b is not None)
        )
        groups, pending_m, voucher, voucher_m = sums.pop("groups"), sums.pop("pending_m"), sums.pop("voucher"), sums.pop("voucher_m")
        out = self.budget_out if self.budget_out is not None else other.budget_out
        return Partial(**sums, rewards=rewards, ledger=None, baseline_m=base, groups=groups, pending_m=pending_m, voucher=voucher, voucher_m=voucher_m,
                       budget_out=out)


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
    # The automatic voucher's money apart from the catalog rewards' (its cost counts when used).
    voucher, voucher_m = metrics.voucher_sums(ledger, months, model.voucher.name, kinds) if model.voucher else (np.zeros(2, np.int64), None)
    payment, payment_m = metrics.payment_sums(ledger, months, kinds) if model.pay_with_points is not None else (None, None)
    return Partial(
        members=int(chosen.sum()),
        rows=len(rows),
        by_kind=sums.by_kind,
        cost=sums.cost - int(voucher[0]),
        partner=sums.partner - int(voucher[1]),
        cells=sums.cells,
        cost_m=sums.cost_m - voucher_m[:, 0] if voucher_m is not None else sums.cost_m,
        partner_m=sums.partner_m - voucher_m[:, 1] if voucher_m is not None else sums.partner_m,
        delta_m=delta,
        joined_m=joined_m,
        tiers_m=tier_counts,
        rewards=metrics.rewards(ledger, kinds),
        ledger=ledger if keep_ledger else None,
        triangle=sums.triangle,
        sales_m=sales,
        discount=sums.discount if model.discounts else None,
        discount_m=sums.discount_m if model.discounts else None,
        discount_given_m=sums.discount_given_m if model.discounts else None,
        benefit=sums.benefit if model.benefits else None,
        benefit_m=sums.benefit_m if model.benefits else None,
        payment=np.array([payment], dtype=np.int64) if payment is not None else None,
        payment_m=payment_m,
        # (A horizon's future rows are not broken down: their revenue has no baseline by customer.)
        groups=group_sums(setup.segments, rows, ledger, kinds, chosen, model.voucher.name if model.voucher else None)
        if setup.segments is not None and setup.horizon is None
        else None,
        voucher=voucher if model.voucher else None,
        voucher_m=voucher_m,
        pending_m=metrics.pending_by_month(ledger, months, model.pending_days, _end(setup), kinds) if model.pending_days else None,
        **budget_sums(model, ledger, getattr(setup, "budget_closed", None)),
    )


def _end(setup):
    """The period's end: the horizon's, or the replayed history's."""
    return setup.horizon.end if setup.horizon is not None else setup.history.until


def budget_sums(model, ledger: pd.DataFrame, closed: dict | None) -> dict:
    """`Partial`'s budget fields: each budgeted rule's awards in this part's ledger, and when it ran
    out (from the run's closings, found over every customer). None for a program without budgets."""
    names = global_step.budgeted(model)
    if not names:
        return {}
    found = global_step.awards(model, [ledger])
    used = np.array([int(found.loc[found["rule"] == n, "amount"].sum()) for n, _, _ in names], dtype=np.int64)
    out = np.array([(closed or {})[n].ts if n in (closed or {}) else -1 for n, _, _ in names], dtype=np.int64)
    return {"budget_used": used, "budget_out": out}


# What each group's sums hold, in columns: members who joined, points per ledger kind
# (metrics.KINDS), reward cost and partner share, the revenue the program adds, and the members'
# own revenue in the replayed history. Rows: each (segment, stage) group (simulator.segments),
# then each tier the members hold at the end.
# Each money bucket's (cost, partner share) pair, in metrics.MONEY_BUCKETS' order: a new money
# kind is a row of metrics' tables, and its group sums follow.
# Last, the automatic voucher's money at issue (its redemptions, apart from the catalog's: what
# is used of it is shared out by simulator.segments).
MONEY_PAIRS = (("reward_cost", "partner_funded"), *(metrics.cost_figures(b) for b in metrics.MONEY_BUCKETS[1:]), metrics.VOUCHER_FIGURES)
GROUP_FIELDS = ("members", *metrics.KINDS, *(f for pair in MONEY_PAIRS for f in pair), "revenue_delta", "member_revenue")
# Each kind's money column pair in GROUP_FIELDS (metrics.MONEY_BUCKET: a discount's, a benefit's, else a reward's).
_BUCKET = np.array([metrics.MONEY_BUCKET.get(k, 0) for k in metrics.KINDS] + [0], dtype=np.int64)
_VOUCHER_BUCKET = len(metrics.MONEY_BUCKETS)


def group_sums(seg, rows: pd.DataFrame, ledger: pd.DataFrame, kinds: np.ndarray, chosen: np.ndarray, voucher: str | None = None) -> np.ndarray:
    """A path's sums per (segment, stage) group of its customers and per tier at the end
    (simulator.segments), exact integers that add up over customers as the path's own sums do.

    A member's tier at the end is the tier of its last posting (the engine packs each posting
    with the tier it was made at); a member with no posting holds the lowest tier."""
    from simulator.segments import GROUPS

    group = seg.group
    n = len(group)
    tiers = len(seg.tiers)
    out = np.zeros((GROUPS + tiers, len(GROUP_FIELDS)), dtype=np.int64)
    cid = ledger["customer_id"]
    cat = cid.array if isinstance(cid.dtype, pd.CategoricalDtype) else pd.Categorical(cid)
    code_of = seg.codes_of(cat.categories, chosen)
    tier_of = np.full(1, -1, dtype=np.int64)
    if tiers:
        tc = ledger["tier"]
        tcat = tc.array if isinstance(tc.dtype, pd.CategoricalDtype) else pd.Categorical(tc)
        names = {t: i for i, t in enumerate(seg.tiers)}
        tier_of = np.array([names.get(t, -1) for t in tcat.categories] + [-1], dtype=np.int64)
        tier_codes = np.asarray(tcat.codes)
    else:
        tier_codes = np.full(len(ledger), -1, dtype=np.int8)
    money = rows["_purchase"].to_numpy() | rows["_refund"].to_numpy()
    # The automatic voucher's redemptions (`voucher`: its reward's name), counted in its own pair.
    is_voucher = (np.asarray(kinds) == metrics.KINDS.index("redeem")) & (ledger["reward"].to_numpy() == voucher) if voucher else np.zeros(0, dtype=bool)
    _group_sums(
        out,
        group,
        np.ascontiguousarray(chosen[:n]),
        seg.revenue,
        tiers,
        rows["_m"].to_numpy(),
        rows["_minor"].to_numpy(),
        money,
        rows["_orig"].to_numpy(),
        code_of.astype(np.int64),
        np.asarray(cat.codes),
        np.asarray(kinds),
        *(np.asarray(ledger[c].to_numpy(), dtype=np.int64) for c in ("points", "cost", "partner_share")),
        tier_of,
        tier_codes,
        _BUCKET,
        is_voucher,
        _VOUCHER_BUCKET,
    )
    return out


@njit(cache=True, nogil=True)
def _group_sums(out, group, chosen, revenue, tiers, m, minor, money, orig, code_of, cat, kinds, points, cost, partner, tier_of, tier_codes, bucket, is_voucher, voucher_bucket):
    # Each member's tier at the end: its last posting's (postings are in time order per member).
    # Then one pass over the path's rows and one over its postings, each counted in the customer's
    # (segment, stage) group and, with tiers, in its tier's row. Rows and postings of a customer
    # the segmentation does not know (none without new customers) are left out.
    n = group.shape[0]
    ng = out.shape[0] - tiers
    nk = bucket.shape[0] - 1  # the kinds; then each money bucket's cost and partner share; then delta, revenue
    delta_at, revenue_at = out.shape[1] - 2, out.shape[1] - 1
    end = np.zeros(n, dtype=np.int64)
    if tiers:
        for i in range(cat.shape[0]):
            j = cat[i]
            c = code_of[j] if j >= 0 else -1
            k = tier_of[tier_codes[i]] if tier_codes[i] >= 0 else -1
            if c >= 0 and k >= 0:
                end[c] = k
    for c in range(n):
        if chosen[c]:
            out[group[c], 0] += 1
            out[group[c], revenue_at] += revenue[c]
            if tiers:
                out[ng + end[c], 0] += 1
                out[ng + end[c], revenue_at] += revenue[c]
    for i in range(m.shape[0]):
        c = m[i]
        if 0 <= c < n:
            x = minor[i] * money[i] - orig[i]
            out[group[c], delta_at] += x
            if tiers:
                out[ng + end[c], delta_at] += x
    for i in range(cat.shape[0]):
        j = cat[i]
        c = code_of[j] if j >= 0 else -1
        if c < 0:
            continue
        k = kinds[i]
        b = nk + 1 + 2 * (voucher_bucket if is_voucher.shape[0] and is_voucher[i] else bucket[k if 0 <= k < nk else nk])
        for t in range(2 if tiers else 1):
            g = group[c] if t == 0 else ng + end[c]
            if 0 <= k < nk:
                out[g, 1 + k] += points[i]
            out[g, b] += cost[i]
            out[g, b + 1] += partner[i]


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
