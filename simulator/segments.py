"""RFM segments and lifecycle stages of the customers at the start of the replayed period.

Made once per simulation from each customer's purchases before the period (`Prior`, kept by
simulator.io from the rows before the scenario's `period`):

- *Scores.* Recency (the latest purchase), frequency (purchase rows) and monetary value (purchase
  spend, minor units) each score 1 to 5 by quintile over every customer with a purchase before the
  period: a customer's score is 1 + floor(5 x b / n), where b counts the customers strictly worse
  on that measure and n all of them. Equal values therefore always share a score (the score of
  the first of them in rank order), whatever the customers' ids or the order of the rows; a
  measure on which many customers tie (frequency 1) leaves the scores above it empty, and fewer
  than five customers use only some of the five scores (one customer scores 1 on each).
- *Segments.* The table of segment boxes published with the R package `rfm` (`rfm_segment`'s
  example, rfm 0.2.0): each names ranges of the recency, frequency and monetary scores. Its boxes
  contain one another (New and Promising lie inside Potential loyalist, Cannot lose them inside
  At risk), so a customer takes the smallest box that holds its scores, and of boxes of one size
  the first listed; scores no box holds are `Others`. A customer with no purchase before the
  period has no scores: `No history`.
- *Stages.* `new`: no purchase before the period; `active`: the latest one at most 90 days before
  its start; `at risk`: 91 to 180 days; `lapsed`: longer ago. Fixed days, the same for everyone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

from rulelang.engine import NS_PER_DAY
from simulator import metrics
from simulator.measure import GROUP_FIELDS, MONEY_PAIRS

# (name, recency, frequency, monetary) ranges of the scores, both ends included: the published
# table's rows in its order (rfm 0.2.0, `rfm_segment`), named as this project writes them.
BOXES = (
    ("Champions", (4, 5), (4, 5), (4, 5)),
    ("Loyal", (2, 5), (3, 5), (3, 5)),
    ("Potential loyalist", (3, 5), (1, 3), (1, 3)),
    ("New", (4, 5), (1, 1), (1, 1)),
    ("Promising", (3, 4), (1, 1), (1, 1)),
    ("Need attention", (2, 3), (2, 3), (2, 3)),
    ("About to sleep", (2, 3), (1, 2), (1, 2)),
    ("At risk", (1, 2), (2, 5), (2, 5)),
    ("Cannot lose them", (1, 1), (4, 5), (4, 5)),
    ("Lost", (1, 2), (1, 2), (1, 2)),
)
OTHERS = "Others"
NO_HISTORY = "No history"
SEGMENTS = tuple(b[0] for b in BOXES) + (OTHERS, NO_HISTORY)
STAGES = ("new", "active", "at risk", "lapsed")
ACTIVE_DAYS = 90  # the latest purchase at most this many days before the period: active
LAPSED_AFTER_DAYS = 180  # longer ago than this: lapsed; between the two: at risk


def _box_table() -> np.ndarray:
    """The segment code of every (recency, frequency, monetary) score, indexed [r - 1, f - 1, m - 1]."""
    table = np.full((5, 5, 5), SEGMENTS.index(OTHERS), dtype=np.int8)
    size = np.full((5, 5, 5), np.iinfo(np.int64).max, dtype=np.int64)
    for code, (_, r, f, m) in enumerate(BOXES):
        inside = np.zeros((5, 5, 5), dtype=bool)
        inside[r[0] - 1 : r[1], f[0] - 1 : f[1], m[0] - 1 : m[1]] = True
        n = (r[1] - r[0] + 1) * (f[1] - f[0] + 1) * (m[1] - m[0] + 1)
        smaller = inside & (n < size)  # strictly smaller: of equal boxes the first listed stays
        table[smaller] = code
        size[smaller] = n
    return table


SEGMENT_OF_SCORES = _box_table()


def quintile_scores(values: np.ndarray) -> np.ndarray:
    """1 to 5 per value, higher values scoring higher: 1 + floor(5 x (values strictly lower) / n)."""
    values = np.asarray(values)
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=np.int8)
    # Each value's count of strictly lower values: its first position among the sorted values
    # (the start of its run of equals), put back in the values' order.
    order = np.argsort(values, kind="stable")
    ranked = values[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    first = np.repeat(starts, np.diff(np.r_[starts, n]))
    below = np.empty(n, dtype=np.int64)
    below[order] = first
    return (1 + (5 * below) // n).astype(np.int8)


def segment_codes(r: np.ndarray, f: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Each customer's segment code (an index into SEGMENTS) from its three scores (1 to 5)."""
    return SEGMENT_OF_SCORES[np.asarray(r) - 1, np.asarray(f) - 1, np.asarray(m) - 1]


@dataclass(frozen=True)
class Prior:
    """Each customer's purchases before the period: the latest one (int64 ns), how many, their spend."""

    ids: np.ndarray  # customer ids (objects), one per customer with a purchase before the period
    last: np.ndarray
    purchases: np.ndarray
    spend: np.ndarray  # minor units

    @staticmethod
    def empty() -> Prior:
        return Prior(np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))

    @staticmethod
    def of_rows(ids, t_ns: np.ndarray, purchase: np.ndarray, minor: np.ndarray) -> Prior:
        """The summary of rows (customer id, time, purchase flag, amount in minor units), column at a time."""
        frame = pd.DataFrame(
            {
                "id": np.asarray(ids, dtype=object)[purchase],
                "t": np.asarray(t_ns, dtype=np.int64)[purchase],
                "x": np.asarray(minor, dtype=np.int64)[purchase],
            }
        )
        return Prior.joined([_summary(frame)])

    @staticmethod
    def of_codes(categories, codes: np.ndarray, t_ns: np.ndarray, purchase: np.ndarray, minor: np.ndarray) -> Prior:
        """`of_rows` for dictionary-encoded ids (a Categorical's categories and codes, -1: none):
        the rows summed per code in one pass, no id hashed."""
        last, count, spend = _per_code(np.asarray(codes), np.asarray(t_ns, dtype=np.int64), np.asarray(purchase), np.asarray(minor, dtype=np.int64), len(categories))
        has = np.flatnonzero(count)
        ids = np.asarray(categories, dtype=object)[has]
        order = np.argsort(ids, kind="stable")  # in id order, as `joined` gives them
        return Prior(ids[order], last[has][order], count[has][order], spend[has][order])

    @staticmethod
    def joined(parts: list[Prior]) -> Prior:
        """The summaries of disjoint parts of the rows (record batches) as one: per customer, the
        latest purchase, and the counts and spend added. Sorted by id, whatever the parts' order."""
        parts = [p for p in parts if len(p.ids)]
        if not parts:
            return Prior.empty()
        frame = pd.DataFrame(
            {
                "id": np.concatenate([p.ids for p in parts]),
                "last": np.concatenate([p.last for p in parts]),
                "purchases": np.concatenate([p.purchases for p in parts]),
                "spend": np.concatenate([p.spend for p in parts]),
            }
        )
        g = frame.groupby("id", sort=True).agg({"last": "max", "purchases": "sum", "spend": "sum"})
        return Prior(
            g.index.to_numpy(dtype=object), g["last"].to_numpy(np.int64), g["purchases"].to_numpy(np.int64), g["spend"].to_numpy(np.int64)
        )


@njit(cache=True, nogil=True)
def _per_code(codes, t, purchase, minor, size):
    # Per code: the latest purchase, the purchases and their spend (exact int64).
    last = np.full(size, np.iinfo(np.int64).min, dtype=np.int64)
    count = np.zeros(size, dtype=np.int64)
    spend = np.zeros(size, dtype=np.int64)
    for i in range(codes.shape[0]):
        c = codes[i]
        if c >= 0 and purchase[i]:
            count[c] += 1
            spend[c] += minor[i]
            if t[i] > last[c]:
                last[c] = t[i]
    return last, count, spend


def _summary(frame: pd.DataFrame) -> Prior:
    g = frame.groupby("id", sort=True).agg(last=("t", "max"), purchases=("t", "size"), spend=("x", "sum"))
    return Prior(
        g.index.to_numpy(dtype=object), g["last"].to_numpy(np.int64), g["purchases"].to_numpy(np.int64), g["spend"].to_numpy(np.int64)
    )


@dataclass(frozen=True)
class Segmentation:
    """Each customer's segment and stage (codes into SEGMENTS and STAGES), by customer code, with
    the customers' ids (to place a ledger's postings) and each (segment, stage) group's revenue in
    the replayed history (every customer's, members or not: `with_baseline`)."""

    segment: np.ndarray  # int8
    stage: np.ndarray  # int8
    ids: np.ndarray | pd.Index | None = None  # the customers' ids by code
    baseline: np.ndarray | None = None  # revenue per group (minor units)
    revenue: np.ndarray | None = None  # revenue per customer (minor units): the pyramid's ranking
    tiers: tuple[str, ...] = ()  # the program's tiers, lowest first (members are also counted by their tier at the end)

    @property
    def group(self) -> np.ndarray:
        """One code per (segment, stage) pair: segment x len(STAGES) + stage."""
        return self.segment.astype(np.int16) * len(STAGES) + self.stage

    def codes_of(self, ids, chosen: np.ndarray) -> np.ndarray:
        """The customer codes of a path's ledger's `ids` (its categories; -1: not a customer here).
        The engine lists the base's customers, or the path's members, in code order: then no id
        is looked up (hashing every id would cost a simulation more than the rest of the
        breakdown), only a few compared; otherwise each is looked up."""
        for codes in (np.arange(len(self.segment)), np.flatnonzero(chosen[: len(self.segment)])):
            if len(codes) == len(ids) and all(self.ids[codes[k]] == ids[k] for k in (0, len(ids) // 2, -1) if len(ids)):
                return codes
        return pd.Index(np.asarray(self.ids, dtype=object)).get_indexer(np.asarray(ids, dtype=object))

    def cut(self, lo: int, hi: int) -> Segmentation:
        """Customers lo .. hi (a slice of the history, simulator.chunked), without a baseline."""
        return self.take(slice(lo, hi))

    def take(self, codes) -> Segmentation:
        """The customers `codes` (a slice, or codes ascending: one file of a dataset, simulator.cluster), without a baseline."""
        ids = None if self.ids is None else (self.ids[codes] if isinstance(codes, slice) else np.asarray(self.ids, dtype=object)[codes])
        return Segmentation(self.segment[codes], self.stage[codes], ids, tiers=self.tiers)

    def with_baseline(self, rows: pd.DataFrame) -> Segmentation:
        """With each group's revenue: the purchases and refunds of history rows (simulator.history)."""
        m, minor, purchase, refund = (rows[c].to_numpy() for c in ("_m", "_minor", "_purchase", "_refund"))
        revenue = _revenue_by(m, minor, purchase, refund, len(self.segment))
        return replace(self, revenue=revenue, baseline=_sums_by(self.group, revenue, GROUPS))

    def counts(self) -> dict[str, dict[str, int]]:
        """Customers per segment and per stage."""
        seg = np.bincount(self.segment, minlength=len(SEGMENTS))
        st = np.bincount(self.stage, minlength=len(STAGES))
        return {"segment": {n: int(seg[i]) for i, n in enumerate(SEGMENTS)}, "stage": {n: int(st[i]) for i, n in enumerate(STAGES)}}


@njit(cache=True, nogil=True)
def _revenue_by(m, minor, purchase, refund, size):
    # Exact int64 sums per customer of the rows' money (np.bincount's weights would be floats).
    out = np.zeros(size, dtype=np.int64)
    for i in range(m.shape[0]):
        if purchase[i] or refund[i]:
            out[m[i]] += minor[i]
    return out


@njit(cache=True, nogil=True)
def _sums_by(codes, values, size):
    out = np.zeros(size, dtype=np.int64)
    for i in range(codes.shape[0]):
        out[codes[i]] += values[i]
    return out


GROUPS = len(SEGMENTS) * len(STAGES)


def scored(prior: Prior, start_ns: int) -> pd.DataFrame:
    """Every customer of `prior` with its scores, segment and stage, as of the period's start."""
    r = quintile_scores(prior.last)  # the later the latest purchase, the better
    f = quintile_scores(prior.purchases)
    m = quintile_scores(prior.spend)
    days = (int(start_ns) - prior.last) // NS_PER_DAY  # whole days since the latest purchase
    stage = np.where(days <= ACTIVE_DAYS, 1, np.where(days <= LAPSED_AFTER_DAYS, 2, 3)).astype(np.int8)
    return pd.DataFrame({"customer_id": prior.ids, "r": r, "f": f, "m": m, "segment": segment_codes(r, f, m), "stage": stage, "days": days})


def _positions(ids: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Each of `ids`' position in `among` (-1: not there), hashed by Arrow (text ids; a few times
    faster than pandas' object hash table), or by pandas for ids of another type."""
    try:
        found = pc.index_in(pa.array(ids, type=pa.string()), value_set=pa.array(among, type=pa.string()))
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pd.Index(among).get_indexer(pd.Index(ids))
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def of_history(prior: Prior | None, start_ns: int | None, history, tiers: tuple[str, ...] = ()) -> Segmentation:
    """`assign` over a history's customers, with each group's revenue in it (simulator.history)."""
    return replace(assign(prior, start_ns, history.customer_ids), tiers=tuple(tiers)).with_baseline(history.rows)


def assign(prior: Prior | None, start_ns: int | None, customer_ids) -> Segmentation:
    """The segment and stage of each of `customer_ids` (a simulation's customers, by code), scored
    among every customer with a purchase before the period (also those with no row in it)."""
    n = len(customer_ids)
    segment = np.full(n, SEGMENTS.index(NO_HISTORY), dtype=np.int8)
    stage = np.zeros(n, dtype=np.int8)  # new
    if prior is not None and len(prior.ids) and start_ns is not None:
        s = scored(prior, start_ns)
        at = _positions(np.asarray(customer_ids, dtype=object), s["customer_id"].to_numpy(dtype=object))
        known = at >= 0
        segment[known] = s["segment"].to_numpy()[at[known]]
        stage[known] = s["stage"].to_numpy()[at[known]]
    return Segmentation(segment, stage, customer_ids)


# segments.csv's columns (`breakdown`): run 0's exact figures of each group, which add up to run
# 0's own figures, then the program cost and revenue lift over the runs.
COLUMNS = (
    "dimension", "group", "customers", "members", "points_issued", "points_redeemed", "points_expired", "points_outstanding",
    *(f for pair in MONEY_PAIRS for f in pair), "liability", "program_cost",
    "revenue_baseline", "revenue_with_program", "revenue_lift",
    "cost_per_member", "cost_share_of_revenue", "program_cost_p5", "program_cost_p50", "program_cost_p95",
    "revenue_lift_p5", "revenue_lift_p50", "revenue_lift_p95",
)  # fmt: skip
DIMENSIONS = {"segment": SEGMENTS, "stage": STAGES}
NOT_A_MEMBER = "not a member"


def _shared(total: int, weights: np.ndarray, rate: Fraction) -> np.ndarray:
    """`total` shared out by `weights` x `rate`: each share rounded half up, and what rounding leaves
    over given to the largest weight, so that the shares add up to `total` exactly."""
    share = np.array([math.floor(Fraction(int(w)) * rate + Fraction(1, 2)) for w in weights], dtype=np.int64)
    if len(share):
        share[int(np.argmax(weights))] += total - int(share.sum())
    return share


def group_figures(sums: np.ndarray, baseline: np.ndarray, liability: int, urr, point_cost, decimals: int, vouchers: tuple | None = None) -> dict[str, np.ndarray]:
    """One run's exact figures per group (rows of `sums`, measure.GROUP_FIELDS) from its sums, the
    groups' revenue in the replayed history and the run's total liability, which is shared out by
    each group's outstanding points at the run's URR (`_shared`), so that the groups' liabilities
    add up to the run's exactly. `vouchers`: a program with an automatic voucher, the run's cost of
    the vouchers used and its partners' share, shared out alike by each group's vouchers at issue."""
    col = {f: sums[:, i] for i, f in enumerate(GROUP_FIELDS)}
    outstanding = col["earn"] - col["clawback"] - col["redeem"] - col["expire"]
    share = _shared(liability, outstanding, Fraction(point_cost) * 10**decimals * Fraction(urr))
    for f, used in zip(metrics.VOUCHER_FIGURES, vouchers or (0, 0), strict=True):
        at_issue = col[f]
        col[f] = _shared(used, at_issue, Fraction(used, int(at_issue.sum())) if at_issue.sum() else Fraction(0))
    # Every kind of money the program gives (rewards, discounts, benefits), less what partners fund.
    cost = share + sum(col[c] - col[p] for c, p in MONEY_PAIRS)
    # Revenue with the program is what members paid: net of the discounts (as the summary's).
    lift = col["revenue_delta"] - col["discount_cost"]
    return {
        "members": col["members"],
        "points_issued": col["earn"],
        "points_redeemed": col["redeem"],
        "points_expired": col["expire"],
        "points_outstanding": outstanding,
        **{f: col[f] for pair in MONEY_PAIRS for f in pair},
        "liability": share,
        "program_cost": cost,
        "revenue_baseline": baseline,
        "revenue_with_program": baseline + lift,
        "revenue_lift": lift,
    }


def run_figures(seg: Segmentation, sums: np.ndarray, figures: dict, point_cost, decimals: int) -> tuple[dict, dict | None]:
    """A run's figures per (segment, stage) group and, for a tiered program, per tier at the end
    with a last row for the customers who did not join (their revenue; nothing else)."""
    liability, urr = figures["liability"], figures["urr"] or 0
    vouchers = tuple(figures[f] for f in metrics.VOUCHER_FIGURES) if metrics.VOUCHER_FIGURES[0] in figures else None
    by_group = group_figures(sums[:GROUPS], seg.baseline, liability, urr, point_cost, decimals, vouchers)
    if not seg.tiers:
        return by_group, None
    tier_sums = np.vstack([sums[GROUPS:], np.zeros((1, sums.shape[1]), dtype=np.int64)])
    members_revenue = sums[GROUPS:, GROUP_FIELDS.index("member_revenue")]
    baseline = np.append(members_revenue, int(seg.baseline.sum()) - int(members_revenue.sum()))
    return by_group, group_figures(tier_sums, baseline, liability, urr, point_cost, decimals, vouchers)


def breakdown(seg: Segmentation, runs: list[tuple[dict, dict | None]], decimals: int) -> pd.DataFrame:
    """segments.csv: per segment, per stage and (a tiered program) per tier at the end, run 0's
    figures (`run_figures`), money in currency units, and the program cost and revenue lift at
    P5/P50/P95 over the runs."""
    customers = np.bincount(seg.group, minlength=GROUPS)
    rows = []
    for dim, names in DIMENSIONS.items():
        # A group of this dimension is a set of (segment, stage) groups.
        of = np.arange(GROUPS) // len(STAGES) if dim == "segment" else np.arange(GROUPS) % len(STAGES)
        for k, name in enumerate(names):
            at = of == k
            if customers[at].sum():
                rows.append(_row(dim, name, int(customers[at].sum()), [r[0] for r in runs], at, decimals))
    if seg.tiers:
        joined = runs[0][1]["members"]
        everyone = int(customers.sum())
        for k, name in enumerate((*seg.tiers, NOT_A_MEMBER)):
            at = np.arange(len(seg.tiers) + 1) == k
            count = int(joined[k]) if k < len(seg.tiers) else everyone - int(joined.sum())
            rows.append(_row("tier", name, count, [r[1] for r in runs], at, decimals))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _row(dim: str, name: str, customers: int, runs: list[dict], at: np.ndarray, decimals: int) -> dict:
    scale = 10**decimals
    total = {f: int(v[at].sum()) for f, v in runs[0].items()}
    cost = [int(r["program_cost"][at].sum()) for r in runs]
    lift = [int(r["revenue_lift"][at].sum()) for r in runs]
    qc, ql = (np.percentile(np.array(v, dtype=np.float64), [5, 50, 95], method=metrics.PERCENTILE_METHOD) / scale for v in (cost, lift))
    return (
        {"dimension": dim, "group": name, "customers": customers}
        | {f: (_money(v, decimals) if f in _MONEY else v) for f, v in total.items()}
        | {
            "cost_per_member": _money_ratio(total["program_cost"], total["members"], decimals),
            "cost_share_of_revenue": round(total["program_cost"] / total["revenue_with_program"], 6)
            if total["revenue_with_program"]
            else None,
            "program_cost_p5": round(float(qc[0]), decimals),
            "program_cost_p50": round(float(qc[1]), decimals),
            "program_cost_p95": round(float(qc[2]), decimals),
            "revenue_lift_p5": round(float(ql[0]), decimals),
            "revenue_lift_p50": round(float(ql[1]), decimals),
            "revenue_lift_p95": round(float(ql[2]), decimals),
        }
    )


_MONEY = {*(f for pair in MONEY_PAIRS for f in pair), "liability", "program_cost", "revenue_baseline", "revenue_with_program", "revenue_lift"}


def _money(minor: int, decimals: int):
    return Decimal(int(minor)).scaleb(-decimals)


def _money_ratio(minor: int, n: int, decimals: int):
    """minor / n in currency units, rounded half up to the currency's decimals (None when n is 0)."""
    if not n:
        return None
    return (Decimal(int(minor)) / Decimal(n)).scaleb(-decimals).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


# The pyramid's curve is drawn through this many points at most (a page per 100k customers stays small).
PYRAMID_POINTS = 200
TOP_SHARE = Fraction(1, 5)  # the pyramid's top: the fifth of the customers who spend most


@dataclass(frozen=True)
class Pyramid:
    """Customers ranked by their revenue in the replayed history (most first, ties by id), with the
    cumulative shares of revenue and of run 0's program cost they account for."""

    customers: int
    top: int  # customers in the top fifth (rounded half up)
    top_revenue_share: float
    top_cost_share: float | None  # None when the program cost nothing
    curve: pd.DataFrame  # customer_share, revenue_share, cost_share (at most PYRAMID_POINTS rows)


def customer_costs(seg: Segmentation, ledger: pd.DataFrame, point_cost, urr, decimals: int) -> np.ndarray:
    """Run 0's program cost per customer (minor units, float): the rewards they redeemed less the
    partners' share, and their outstanding points at the URR, as the summary's program cost is."""
    kinds = metrics.kind_codes(ledger)
    sign = np.zeros(len(metrics.KINDS) + 1, dtype=np.int64)
    for k, s in (("earn", 1), ("clawback", -1), ("redeem", -1), ("expire", -1)):
        sign[metrics.KINDS.index(k)] = s
    cid = ledger["customer_id"]
    cat = cid.array if isinstance(cid.dtype, pd.CategoricalDtype) else pd.Categorical(cid)
    code = pd.Index(np.asarray(seg.ids, dtype=object)).get_indexer(np.asarray(cat.categories, dtype=object))
    who = np.where(cat.codes >= 0, code[cat.codes], -1)
    known = who >= 0
    n = len(seg.segment)
    points = ledger["points"].to_numpy(dtype=np.int64) * sign[kinds]
    money = ledger["cost"].to_numpy(dtype=np.int64) - ledger["partner_share"].to_numpy(dtype=np.int64)
    outstanding = np.bincount(who[known], weights=points[known], minlength=n)
    paid = np.bincount(who[known], weights=money[known], minlength=n)
    return paid + outstanding * float(Fraction(point_cost) * 10**decimals * Fraction(urr or 0))


def pyramid(seg: Segmentation, costs: np.ndarray) -> Pyramid:
    """The VIP pyramid of `seg`'s customers (their revenue) against their costs (`customer_costs`)."""
    n = len(seg.revenue)
    order = np.argsort(-seg.revenue, kind="stable")
    revenue = np.cumsum(seg.revenue[order].astype(np.float64))
    cost = np.cumsum(costs[order])
    total_revenue, total_cost = (float(revenue[-1]), float(cost[-1])) if n else (0.0, 0.0)
    top = min(n, math.floor(TOP_SHARE * n + Fraction(1, 2)))
    at = np.unique(np.linspace(0, n, min(n, PYRAMID_POINTS) + 1).round().astype(np.int64))
    head = lambda c, k: float(c[k - 1]) if k else 0.0  # noqa: E731 - the cumulative sum of the first k
    curve = pd.DataFrame(
        {
            "customer_share": at / max(n, 1),
            "revenue_share": [head(revenue, k) / total_revenue if total_revenue else 0.0 for k in at],
            "cost_share": [head(cost, k) / total_cost if total_cost else 0.0 for k in at],
        }
    )
    return Pyramid(
        n,
        top,
        head(revenue, top) / total_revenue if total_revenue else 0.0,
        head(cost, top) / total_cost if total_cost else None,
        curve,
    )


def migration(seg: Segmentation, ledger: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Run 0's members counted by their tier at the start against their tier at the end (the
    tiers of their first and last postings; the lowest for a member with none), and by their RFM
    segment at the start against their tier at the end. None for a program without tiers."""
    if not seg.tiers or not len(ledger):
        return None
    names = list(seg.tiers)
    who = ledger["customer_id"].astype(str).to_numpy()
    tier = ledger["tier"].astype(str).to_numpy()
    frame = pd.DataFrame({"who": who, "tier": tier})
    g = frame.groupby("who", sort=False)["tier"]
    first, last = g.first(), g.last()
    lowest = names[0]
    first = first.where(first.isin(names), lowest)
    last = last.where(last.isin(names), lowest)
    tiers = pd.crosstab(pd.Categorical(first, categories=names), pd.Categorical(last, categories=names), dropna=False)
    tiers.index.name, tiers.columns.name = "tier at the start", "tier at the end"
    code = pd.Index(np.asarray(seg.ids, dtype=object).astype(str)).get_indexer(last.index)
    segment = np.array(SEGMENTS, dtype=object)[seg.segment[code[code >= 0]]]
    by_segment = pd.crosstab(
        pd.Categorical(segment, categories=list(SEGMENTS)), pd.Categorical(last.to_numpy()[code >= 0], categories=names), dropna=False
    )
    by_segment = by_segment[by_segment.sum(axis=1) > 0]
    by_segment.index.name, by_segment.columns.name = "segment at the start", "tier at the end"
    return tiers, by_segment
