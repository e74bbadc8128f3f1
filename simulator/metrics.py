"""Ledger -> the figures finance signs: per-run exact values, the monthly roll-forward, and the
summary across runs (mean, P5, P50, P95). Definitions: docs/simulator.md "## Figures".

Per run everything is exact: points are integers, money is integer minor units, ratios are
Fractions. Only the summary across runs turns them into floats (rounded to the currency's
decimals for money).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pandas as pd
from numba import njit

from rulelang.engine import NAT, NS_PER_DAY

POINT_FIGURES = (
    "points_issued", "points_redeemed", "points_expired", "points_clawed_back", "points_capped", "points_outstanding",
)  # fmt: skip
COUNT_FIGURES = ("rows_read", "rows_used", "rows_rejected", "members") + POINT_FIGURES
MONEY_FIGURES = (
    "reward_cost", "partner_funded", "liability", "program_cost", "revenue_baseline", "revenue_with_program",
    "revenue_lift", "incremental_margin", "net_benefit",
)  # fmt: skip
# A program with discounts has these too (a program without them: none, so its outputs are as before).
DISCOUNT_FIGURES = ("discount_cost", "discount_partner_funded")
RATIO_FIGURES = ("redemption_rate", "breakage_rate", "urr", "revenue_lift_pct", "roi")
# A program with benefits has these too (without them: none, so its outputs are as before).
BENEFIT_FIGURES = ("benefit_cost", "benefit_partner_funded")
# Ledger kinds whose money is a cost of its own, apart from the points' (reward_cost and
# partner_funded): kind -> the program's list of what posts it (a `Model` attribute) and its
# figures (cost, partner-funded), in summary.json and monthly.csv after partner_funded and inside
# program_cost, for a program that has some of that kind.
# A program with an automatic voucher has these too: what the vouchers used cost (their cost at
# issue times the scenario's `vouchers.use_rate`) and the partners' share of that. Their
# redemptions are not in reward_cost and partner_funded.
VOUCHER_FIGURES = ("voucher_cost", "voucher_partner_funded")
COST_KINDS = {"discount": ("discounts", DISCOUNT_FIGURES), "benefit": ("benefits", BENEFIT_FIGURES), "voucher": ("vouchers", VOUCHER_FIGURES)}
# A program that pays with points has this too: the money members paid with points at the till
# (`redeem` postings of the ledger's reward PAYMENT_REWARD, docs/semantics.md), told apart from
# the catalog's reward_cost and, like it, inside program_cost (its points are redeemed points).
PAYMENT_FIGURES = ("points_payment_cost",)
PAYMENT_REWARD = "pay_with_points"
COST_KIND_FIGURES = DISCOUNT_FIGURES + BENEFIT_FIGURES + VOUCHER_FIGURES + PAYMENT_FIGURES
# A program with pending points (`points available after N days`) has this point figure too, and a
# monthly column of it: the points earned but not yet available at the end (a part of
# points_outstanding; the liability counts both).
PENDING_FIGURES = ("points_pending",)
# Figures only some programs have: a program without them has none of them in its outputs.
OPTIONAL_FIGURES = COST_KIND_FIGURES + PENDING_FIGURES


def cost_figures(kind: str) -> tuple[str, str]:
    """The cost and the partner-funded figure of a COST_KINDS kind."""
    return COST_KINDS[kind][1]


def cost_kinds_of(model) -> tuple[str, ...]:
    """The COST_KINDS the program has something of (discounts, benefits), in table order."""
    return tuple(kind for kind, (attr, _) in COST_KINDS.items() if getattr(model, attr, ()))
# summary.json's figures in the order a finance reader wants them: (figure, label, unit kind);
# the report, the terminal and the workbook all show them so.
FIGURE_LABELS = (
    ("members", "Members", "count"),
    ("points_issued", "Points issued", "points"),
    ("points_redeemed", "Points redeemed", "points"),
    ("points_expired", "Points expired (breakage)", "points"),
    ("points_clawed_back", "Points clawed back (refunds)", "points"),
    ("points_capped", "Points not issued (caps)", "points"),
    ("points_outstanding", "Points outstanding at the end", "points"),
    ("points_pending", "Points pending at the end (not yet available)", "points"),
    ("redemption_rate", "Redemption rate", "ratio"),
    ("breakage_rate", "Breakage rate", "ratio"),
    ("reward_cost", "Cost of rewards redeemed", "money"),
    ("partner_funded", "Funded by partners", "money"),
    ("discount_cost", "Discounts given", "money"),
    ("discount_partner_funded", "Discounts funded by partners", "money"),
    ("benefit_cost", "Cost of benefits given", "money"),
    ("benefit_partner_funded", "Benefits funded by partners", "money"),
    ("voucher_cost", "Cost of vouchers used", "money"),
    ("voucher_partner_funded", "Vouchers funded by partners", "money"),
    ("points_payment_cost", "Paid with points at the till", "money"),
    ("liability", "Liability at the end", "money"),
    ("program_cost", "Program cost", "money"),
    ("revenue_baseline", "Revenue without the program", "money"),
    ("revenue_with_program", "Revenue with the program", "money"),
    ("revenue_lift", "Revenue lift", "money"),
    ("revenue_lift_pct", "Revenue lift (percent of the baseline)", "percent"),
    ("incremental_margin", "Incremental gross margin", "money"),
    ("net_benefit", "Net benefit", "money"),
    ("roi", "Return on program cost", "ratio"),
    ("rows_read", "Rows read", "count"),
    ("rows_used", "Rows used", "count"),
    ("rows_rejected", "Rows rejected", "count"),
    ("rows_outside_period", "Rows outside the period", "count"),
)
MONTHLY_POINTS = ("opening", "issued", "clawed_back", "redeemed", "expired", "closing", "capped", "shortfall")
MONTHLY_MONEY = ("reward_cost", "partner_funded", "liability", "revenue_baseline", "revenue_with_program")
# P5/P50/P95 are values some run produced (the smallest with at least that share of runs at or
# below it), never an interpolation between runs: finance signs figures that occurred.
PERCENTILE_METHOD = "inverted_cdf"
KIND_COLUMN = {
    "earn": "issued",
    "clawback": "clawed_back",
    "redeem": "redeemed",
    "expire": "expired",
    "capped": "capped",
    "shortfall": "shortfall",
}
# Which money sum each kind's cost and partner share go to: a discount's to the discounts, every
# other kind's (a redemption's) to the rewards. A table, so a new money kind is a row.
MONEY_BUCKETS = ("reward", "discount", "benefit")
MONEY_BUCKET = {"discount": 1, "benefit": 2}


def round_half_up(x: Fraction) -> int:
    """The nearest integer, halves away from zero (money to the minor unit)."""
    r = math.floor(abs(x) + Fraction(1, 2))
    return r if x >= 0 else -r


def ratio(num: int, den: int) -> Fraction | None:
    """num / den exactly, or None (shown as null) when den is 0."""
    return Fraction(num, den) if den else None


@dataclass(frozen=True)
class RunInput:
    """What one run hands to the metrics besides its ledger."""

    rows_read: int
    rows_used: int
    rows_rejected: int
    members: int
    revenue_baseline: int  # minor units, whole history in the period
    revenue_with_program: int
    point_cost: Fraction  # currency units per point
    decimals: int
    margin: float
    tiers_end: dict  # tier name -> members at the end


# The kinds summed per posting: those with a monthly points column, then `discount` (no points:
# its money goes to the discounts' sums, MONEY_BUCKET).
KINDS = (*KIND_COLUMN, "discount", "benefit")


def kind_codes(ledger: pd.DataFrame) -> np.ndarray:
    """Each posting's kind as its index in KINDS (-1 for another kind), int8; text or Categorical column."""
    col = ledger["kind"]
    cat = col.array if isinstance(col.dtype, pd.CategoricalDtype) else pd.Categorical(col)
    lut = np.array([KINDS.index(c) if c in KINDS else -1 for c in cat.categories], dtype=np.int8)
    return _lookup(lut, cat.codes)


@njit(cache=True, nogil=True)
def _lookup(lut, codes):
    # lut[codes] with -1 for a missing value's code -1 (twice as fast as numpy's take here).
    out = np.empty(codes.shape[0], dtype=np.int8)
    for i in range(codes.shape[0]):
        c = codes[i]
        out[i] = lut[c] if c >= 0 else -1
    return out


def figures_from(p: dict[str, int], reward_cost: int, partner: int, x: RunInput, urr: Fraction, discount: tuple[int, int] | None = None,
                 benefit: tuple[int, int] | None = None, pending: int | None = None, voucher: tuple[int, int] | None = None,
                 payment: int | None = None) -> dict:
    """Exact figures of one run from its points per kind, its reward cost and partner share (minor
    units) and its ultimate redemption rate (simulator.finance.simulated: the run's own chain ladder).
    `discount`: a program with discounts, (money they took off, the partners' share of it): inside
    the program cost; `x.revenue_with_program` is then already net of it, and the incremental margin
    is the margin on the lift before discounts (the discount is counted once, as a cost).
    `benefit`: a program with benefits, (what they cost, the partners' share of it): inside the
    program cost. `pending`: a program with pending points, the points still pending at the end
    (a part of the outstanding points, and so of the liability). `voucher`: a program with an
    automatic voucher, (what the vouchers used cost, the partners' share of it): inside the program
    cost (`reward_cost` and `partner` are then the catalog's only). `payment`: a program that pays
    with points, the money paid with points (a part of `reward_cost` as the ledger sums it): shown
    apart from the catalog's reward cost, inside the program cost."""
    outstanding = p["earn"] - p["clawback"] - p["redeem"] - p["expire"]
    scale = 10**x.decimals
    liability = round_half_up(outstanding * x.point_cost * scale * urr)
    given, funded = discount if discount is not None else (0, 0)
    benefit_cost, benefit_funded = benefit if benefit is not None else (0, 0)
    voucher_cost, voucher_funded = voucher if voucher is not None else (0, 0)
    program_cost = reward_cost - partner + liability + (given - funded) + (benefit_cost - benefit_funded) + (voucher_cost - voucher_funded)
    lift = x.revenue_with_program - x.revenue_baseline
    margin = round_half_up(Fraction(lift + given) * Fraction(str(x.margin)))
    net = margin - program_cost
    extra = {"discount_cost": given, "discount_partner_funded": funded} if discount is not None else {}
    if benefit is not None:
        extra |= dict(zip(BENEFIT_FIGURES, benefit, strict=True))
    if pending is not None:
        extra["points_pending"] = pending
    if voucher is not None:
        extra |= dict(zip(VOUCHER_FIGURES, voucher, strict=True))
    if payment is not None:
        extra["points_payment_cost"] = payment
        reward_cost -= payment  # (after the program cost, which counts both)
    return extra | {
        "rows_read": x.rows_read,
        "rows_used": x.rows_used,
        "rows_rejected": x.rows_rejected,
        "members": x.members,
        "points_issued": p["earn"],
        "points_redeemed": p["redeem"],
        "points_expired": p["expire"],
        "points_clawed_back": p["clawback"],
        "points_capped": p["capped"],
        "points_outstanding": outstanding,
        "redemption_rate": ratio(p["redeem"], p["earn"]),
        "breakage_rate": ratio(p["expire"], p["earn"]),
        "urr": urr,
        "reward_cost": reward_cost,
        "partner_funded": partner,
        "program_cost": program_cost,
        "liability": liability,
        "revenue_baseline": x.revenue_baseline,
        "revenue_with_program": x.revenue_with_program,
        "revenue_lift": lift,
        "revenue_lift_pct": None if not x.revenue_baseline else Fraction(100 * lift, x.revenue_baseline),
        "incremental_margin": margin,
        "net_benefit": net,
        "roi": ratio(net, program_cost),
        "tiers": dict(x.tiers_end),
    }


def month_index(start: pd.Timestamp, until: pd.Timestamp) -> pd.PeriodIndex:
    """Every calendar month from the start's to the end's."""
    return pd.period_range(start.to_period("M"), until.to_period("M"), freq="M")


def month_starts(months: pd.PeriodIndex) -> np.ndarray:
    """The first nanosecond of each month in `months` and of the month after (int64 ns)."""
    first = (months[0].year - 1970) * 12 + months[0].month - 1 if len(months) else 0
    return np.arange(first, first + len(months) + 1).astype("datetime64[M]").astype("datetime64[ns]").view(np.int64)


def as_ns(t: np.ndarray) -> np.ndarray:
    """Datetimes (or integer nanoseconds) as int64 nanoseconds since the epoch; no copy when they
    are datetime64[ns] or int64 already."""
    t = np.asarray(t)
    return t.astype(np.int64, copy=False) if t.dtype.kind in "iu" else t.astype("datetime64[ns]", copy=False).view(np.int64)


def month_table(months: pd.PeriodIndex) -> np.ndarray:
    """Each day's position in `months`, from the first month's first day to the last's last (whole days)."""
    days = (month_starts(months) - month_starts(months)[0]) // NS_PER_DAY
    return np.repeat(np.arange(len(months), dtype=np.int64), np.diff(days))


@njit(cache=True, nogil=True, inline="always")
def month_of(t, first, table, nm):
    """Month position of `t` (ns) by `month_table` from `first` (ns): -1 before, nm after (numba)."""
    # A day-table lookup rather than a binary search: months change every few postings, and the
    # search's branches mispredict (about 8x slower at 1M rows).
    if t < first:
        return -1
    if t >= first + table.shape[0] * NS_PER_DAY:  # (t - first could overflow)
        return nm
    return table[np.uint64(t - first) // np.uint64(NS_PER_DAY)]


@njit(cache=True, nogil=True)
def _month_sums(t, values, first, table, nm):
    out = np.zeros(nm, dtype=np.int64)
    for i in range(t.shape[0]):
        c = month_of(t[i], first, table, nm)
        if 0 <= c < nm:
            out[c] += values[i]
    return out


def by_month(t: np.ndarray, values: np.ndarray, months: pd.PeriodIndex) -> np.ndarray:
    """Exact integer sums of `values` per month of `t` (every t must fall in `months`)."""
    return _month_sums(as_ns(t), np.asarray(values, dtype=np.int64), month_starts(months)[0], month_table(months), len(months))


@dataclass(frozen=True)
class LedgerSums:
    """A ledger's exact sums: over all postings, and per month of the posting."""

    by_kind: np.ndarray  # points per KINDS
    cost: int  # the points' money: reward cost and partner share of every posting not of another MONEY_BUCKET
    partner: int
    cells: np.ndarray  # (month, kind) points
    cost_m: np.ndarray
    partner_m: np.ndarray
    discount: np.ndarray  # (2,): discounts' money off and partners' share of it
    discount_m: np.ndarray  # (month, 2): the same per month
    # (cohort, development, flow) points: the month the lot was earned, the months since, and the
    # kinds that move a lot's points (TRIANGLE_KINDS, simulator.finance.triangles' FLOWS order)
    triangle: np.ndarray
    benefit: np.ndarray  # (2,): what benefits cost and partners' share of it
    benefit_m: np.ndarray  # (month, 2): the same per month
    # (month,): the money discounts took off purchases, their reversals on refunds aside: what the
    # members' purchases (measure's sales_m, refunds aside too) were not paid
    discount_given_m: np.ndarray


# The kinds a cohort triangle follows: the first four of KINDS, in triangles.FLOWS' order.
TRIANGLE_KINDS = ("earn", "clawback", "redeem", "expire")


@njit(cache=True, nogil=True)
def _ledger_sums(t, earned_on, kinds, points, cost, partner, first, table, nm, nk, nf, bucket):
    by_kind = np.zeros(nk, dtype=np.int64)
    cells = np.zeros((nm, nk), dtype=np.int64)
    money_m = np.zeros((bucket.max() + 1 if bucket.shape[0] else 1, nm, 2), dtype=np.int64)  # (bucket, month, cost/partner)
    triangle = np.zeros((nm, nm, nf), dtype=np.int64)
    total = np.zeros((money_m.shape[0], 2), dtype=np.int64)
    given_m = np.zeros((money_m.shape[0], nm), dtype=np.int64)  # (bucket, month): costs above 0 only
    for i in range(t.shape[0]):
        k = kinds[i]
        c = month_of(t[i], first, table, nm)
        if cost[i] != 0 or partner[i] != 0:  # most postings move points only
            b = bucket[k] if 0 <= k < nk else 0
            total[b, 0] += cost[i]
            total[b, 1] += partner[i]
            if 0 <= c < nm:
                money_m[b, c, 0] += cost[i]
                money_m[b, c, 1] += partner[i]
                if cost[i] > 0:
                    given_m[b, c] += cost[i]
        if 0 <= k < nk:
            by_kind[k] += points[i]
            if 0 <= c < nm:
                cells[c, k] += points[i]
                if k < nf:  # a posting that moves a lot's points: its cohort is its lot's month
                    e = month_of(earned_on[i], first, table, nm)
                    if 0 <= e <= c:
                        triangle[e, c - e, k] += points[i]
    return by_kind, total, cells, money_m, triangle, given_m


def ledger_sums(ledger: pd.DataFrame, months: pd.PeriodIndex, kinds: np.ndarray | None = None) -> LedgerSums:
    """Points per kind, reward cost and partner share (and each COST_KINDS kind's apart): in total,
    per (month, kind) cell and per (cohort, development, flow) cell of the cohort triangle, in one pass."""
    kinds = kind_codes(ledger) if kinds is None else kinds
    cols = [np.asarray(ledger[c].to_numpy(), dtype=np.int64) for c in ("points", "cost", "partner_share")]
    by_kind, total, cells, money_m, triangle, given_m = _ledger_sums(
        as_ns(ledger["timestamp"].to_numpy()),
        as_ns(ledger["earned_on"].to_numpy()),
        np.asarray(kinds),
        *cols,
        month_starts(months)[0],
        month_table(months),
        len(months),
        len(KINDS),
        len(TRIANGLE_KINDS),
        np.array([MONEY_BUCKET.get(k, 0) for k in KINDS], dtype=np.int64),
    )
    d, b = MONEY_BUCKETS.index("discount"), MONEY_BUCKETS.index("benefit")
    return LedgerSums(by_kind, int(total[0, 0]), int(total[0, 1]), cells, money_m[0, :, 0].copy(), money_m[0, :, 1].copy(),
                      total[d].copy(), money_m[d].copy(), triangle, total[b].copy(), money_m[b].copy(), given_m[d].copy())


# The sign of each KINDS kind in a lot's points: earned in, clawed back, redeemed and expired out.
_LOT_SIGN = np.array([{"earn": 1, "clawback": -1, "redeem": -1, "expire": -1}.get(k, 0) for k in KINDS], dtype=np.int64)


@njit(cache=True, nogil=True)
def _pending_at(t, earned_on, kinds, points, sign, moments, window):
    out = np.zeros(moments.shape[0], dtype=np.int64)
    for i in range(t.shape[0]):
        k = kinds[i]
        if k < 0 or sign[k] == 0 or earned_on[i] == NAT:
            continue
        available = earned_on[i] + window  # the lot is available from this moment on
        j = np.searchsorted(moments, t[i])  # the first moment at or after the posting
        while j < moments.shape[0] and moments[j] < available:
            out[j] += sign[k] * points[i]
            j += 1
    return out


def voucher_sums(ledger: pd.DataFrame, months: pd.PeriodIndex, voucher: str, kinds: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The automatic voucher's redemptions' money at issue: (cost, partner share) in all, and per
    month (month, 2). Exact; adds up over parts of the customers."""
    kinds = kind_codes(ledger) if kinds is None else kinds
    mask = (np.asarray(kinds) == KINDS.index("redeem")) & (ledger["reward"].to_numpy() == voucher)
    t = ledger["timestamp"].to_numpy()[mask]
    cost = np.asarray(ledger["cost"].to_numpy()[mask], dtype=np.int64)
    partner = np.asarray(ledger["partner_share"].to_numpy()[mask], dtype=np.int64)
    monthly = np.stack([by_month(t, cost, months), by_month(t, partner, months)], axis=1) if len(months) else np.zeros((0, 2), dtype=np.int64)
    return np.array([cost.sum(), partner.sum()], dtype=np.int64), monthly


def vouchers_used(at_issue_m: np.ndarray, use_rate: float | None) -> np.ndarray:
    """What the vouchers used cost per month (cost, partner share): each month's cost at issue times
    the use rate (None: 1), rounded half up to the minor unit. Exact in expectation: a voucher is
    used with that probability, so its expected cost is the rate times its cost."""
    if use_rate is None:
        return at_issue_m.copy()
    rate = Fraction(str(use_rate))
    return np.array([[round_half_up(int(c) * rate) for c in row] for row in at_issue_m], dtype=np.int64).reshape(at_issue_m.shape)


def pending_by_month(ledger: pd.DataFrame, months: pd.PeriodIndex, pending_days: int, end, kinds: np.ndarray | None = None) -> np.ndarray:
    """The points pending (docs/semantics.md, "Pending points") at each month's close: the last
    moment of the month, or `end` (the period's end) when that comes first. A lot earned on day D
    is pending before the start of day D + pending_days; its points at a moment are what its
    postings (`earned_on` D) up to that moment add and take. Exact, and it adds up over parts of
    the customers as the other sums do."""
    kinds = kind_codes(ledger) if kinds is None else kinds
    closes = np.minimum(month_starts(months)[1:] - 1, as_ns(np.array([np.datetime64(pd.Timestamp(end), "ns")]))[0])
    return _pending_at(
        as_ns(ledger["timestamp"].to_numpy()),
        as_ns(ledger["earned_on"].to_numpy()),
        np.asarray(kinds),
        np.asarray(ledger["points"].to_numpy(), dtype=np.int64),
        _LOT_SIGN,
        np.ascontiguousarray(closes, dtype=np.int64),
        pending_days * NS_PER_DAY,
    )


def monthly_from(
    cells: np.ndarray,
    cost: np.ndarray,
    partner: np.ndarray,
    months: pd.PeriodIndex,
    x: RunInput,
    revenue: pd.DataFrame,
    members: pd.Series,
    tier_counts: pd.DataFrame,
    urr_m: list[Fraction],
    discount_m: np.ndarray | None = None,
    benefit_m: np.ndarray | None = None,
    pending_m: np.ndarray | None = None,
    voucher_m: np.ndarray | None = None,
    payment_m: np.ndarray | None = None,
) -> pd.DataFrame:
    """One run's roll-forward from `ledger_sums`' per-month sums (which add up exactly over parts of
    the customers): opening + issued - clawed_back - redeemed - expired = closing, exactly.
    The liability is each month's closing points x point cost x `urr_m`, the URR as estimated at
    that month's end (simulator.finance.simulated).

    `revenue` has columns revenue_baseline, revenue_with_program (minor units) indexed by month;
    `members` the members joined by each month's end; `tier_counts` members per tier at each end;
    `discount_m`, `benefit_m`: for a program with them, each month's cost and partner share (after
    partner_funded); `pending_m`: for a program with pending points, the points pending at each
    month's close (`pending_by_month`), after the points' columns.
    """
    # Columns gathered, then one frame: a frame grown a column at a time rebuilds its blocks for
    # each of some twenty columns (a few ms at the end of every simulation, with one core idle).
    cols = {col: cells[:, i].astype(np.int64) for i, col in enumerate(KIND_COLUMN.values())}
    net = cols["issued"] - cols["clawed_back"] - cols["redeemed"] - cols["expired"]
    closing = net.cumsum().astype(np.int64)
    cols["closing"] = closing
    cols["opening"] = (closing - net).astype(np.int64)
    cols["reward_cost"] = cost
    cols["partner_funded"] = partner
    factor = x.point_cost * 10**x.decimals
    cols["liability"] = [round_half_up(c * factor * u) for c, u in zip(closing.tolist(), urr_m, strict=True)]
    cols["members"] = members.reindex(months).to_numpy(dtype=np.int64)
    for col in tier_counts.columns:
        cols[f"tier_{col}"] = tier_counts[col].reindex(months).to_numpy(dtype=np.int64)
    for col in ("revenue_baseline", "revenue_with_program"):
        cols[col] = revenue[col].reindex(months, fill_value=0).to_numpy().astype(np.int64)
    discounts = discount_m is not None
    if discounts:  # a program with discounts: their money per month, after the rewards'
        cols["discount_cost"], cols["discount_partner_funded"] = discount_m[:, 0].copy(), discount_m[:, 1].copy()
    index = months.astype(str)
    index.name = "month"
    if benefit_m is not None:  # a program with benefits: their cost per month, after the discounts'
        cols["benefit_cost"], cols["benefit_partner_funded"] = benefit_m[:, 0].copy(), benefit_m[:, 1].copy()
    if voucher_m is not None:  # a program with an automatic voucher: what those used cost per month, after the benefits'
        cols["voucher_cost"], cols["voucher_partner_funded"] = voucher_m[:, 0].copy(), voucher_m[:, 1].copy()
    if payment_m is not None:  # a program that pays with points: that money apart from the catalog's reward cost
        cols["reward_cost"] = cost - payment_m
        cols["points_payment_cost"] = payment_m.copy()
    extra = [f for f in COST_KIND_FIGURES if f in cols]
    money = list(MONTHLY_MONEY[:2]) + extra + list(MONTHLY_MONEY[2:])
    if pending_m is not None:
        cols["points_pending"] = np.asarray(pending_m, dtype=np.int64)
    order = list(MONTHLY_POINTS) + [f for f in PENDING_FIGURES if f in cols] + ["members"] + [f"tier_{c}" for c in tier_counts.columns] + money
    return pd.DataFrame({c: cols[c] for c in order}, index=index).reset_index()


def _text_codes(col: pd.Series, with_values: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Integer codes (-1 for missing) of a text or Categorical column, and the values they stand for."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return col.array.codes, col.cat.categories.to_numpy(dtype=object) if with_values else None
    codes, values = pd.factorize(np.asarray(col.to_numpy(dtype=object), dtype=object))
    return codes, np.asarray(values, dtype=object)


def payment_sums(ledger: pd.DataFrame, months: pd.PeriodIndex, kinds: np.ndarray | None = None) -> tuple[int, np.ndarray]:
    """The money paid with points at the till (`redeem` postings of PAYMENT_REWARD): in all, and per
    month of the posting (months outside `months` counted in all only, as ledger_sums counts them)."""
    kinds = kind_codes(ledger) if kinds is None else kinds
    reward, names = _text_codes(ledger["reward"])
    code = np.flatnonzero(np.asarray(names == PAYMENT_REWARD, dtype=bool))
    cost = np.asarray(ledger["cost"].to_numpy(), dtype=np.int64)
    pay = (np.asarray(kinds) == KINDS.index("redeem")) & (np.asarray(reward) == (code[0] if len(code) else -2)) & (cost != 0)
    t = as_ns(ledger["timestamp"].to_numpy())[pay]
    first, last = month_starts(months)[0], month_starts(months)[-1]
    inside = (t >= first) & (t < last)
    return int(cost[pay].sum()), by_month(t[inside], cost[pay][inside], months)


def rewards(ledger: pd.DataFrame, kinds: np.ndarray | None = None) -> pd.DataFrame:
    """Per reward: redemptions (count), points, cost and partner share (minor units)."""
    kinds = kind_codes(ledger) if kinds is None else kinds
    reward, names = _text_codes(ledger["reward"])
    member, _ = _text_codes(ledger["customer_id"], with_values=False)
    cols = [np.asarray(ledger[c].to_numpy(), dtype=np.int64) for c in ("row", "points", "cost", "partner_share")]
    t = ledger["timestamp"].to_numpy().view(np.int64)
    sums = _reward_sums(np.asarray(kinds), KINDS.index("redeem"), reward, member, t, *cols, len(names))
    used = np.flatnonzero(sums[:, 4])
    used = used[np.argsort(names[used], kind="stable")]
    columns = ("count", "points", "cost", "partner_share")
    return pd.DataFrame({c: sums[used, i] for i, c in enumerate(columns)}, index=pd.Index(names[used], name="reward"))


_SPAN = 256  # postings of one row compared pairwise; a longer row with several keys is sorted


@njit(cache=True, nogil=True, inline="always")
def _same_key(t, reward, member, i, j):
    return t[i] == t[j] and reward[i] == reward[j] and member[i] == member[j]


@njit(cache=True, nogil=True)
def _reward_sums(kinds, redeem, reward, member, t, row, points, cost, partner, size):
    # Per reward code: redemptions, points, cost, partner share, postings. A redemption posts once
    # per lot touched; its postings share the member, the row, the time and the reward, so the
    # redemptions are the distinct such keys. The engine posts in row order, so a row's postings
    # are close together and are compared as they pass; otherwise they are grouped and counted again.
    out = np.zeros((size, 5), dtype=np.int64)
    prev = -1  # the last redemption posting (reading it at -1 is harmless: its row cannot match)
    last_row = np.iinfo(np.int64).min
    start = 0  # the first redemption posting of its row
    simple = True  # rows in order, none long with several keys
    for i in range(kinds.shape[0]):
        r = reward[i]
        if kinds[i] != redeem or r < 0:
            continue
        out[r, 1] += points[i]
        out[r, 2] += cost[i]
        out[r, 3] += partner[i]
        out[r, 4] += 1
        ri = row[i]
        same_row = ri == last_row
        simple &= ri >= last_row
        # Bitwise, not short-circuit: branches here mispredict on every other redemption.
        new = not (same_row & (t[i] == t[prev]) & (r == reward[prev]) & (member[i] == member[prev]))
        if new and same_row and prev - start > _SPAN:
            simple = False  # a long row: counted by sorting below
        elif new and same_row:
            # Another key in the row (seldom): new unless an earlier posting of the row has it.
            for j in range(start, prev):
                if kinds[j] == redeem and row[j] == ri and _same_key(t, reward, member, i, j):
                    new = False
                    break
        start = start if same_row else i
        out[r, 0] += new
        prev = i
        last_row = ri
    if not simple:
        sel = np.flatnonzero((kinds == redeem) & (reward >= 0))
        out[:, 0] = _count_by_row(sel, reward, member, t, row, size)
    return out


@njit(cache=True, nogil=True)
def _count_by_row(idx, reward, member, t, row, size):
    # Distinct (time, reward, member) keys per row, rows in any order: a counting sort by row,
    # then each row's keys sorted (stable sorts, last key first) and counted where they change.
    count = np.zeros(size, dtype=np.int64)
    n = idx.shape[0]
    if n == 0:
        return count
    lo = row[idx].min()
    off = np.zeros(row[idx].max() - lo + 2, dtype=np.int64)
    for i in idx:
        off[row[i] - lo + 1] += 1
    off = np.cumsum(off)
    grouped = np.empty(n, dtype=np.int64)
    for i in idx:
        grouped[off[row[i] - lo]] = i
        off[row[i] - lo] += 1
    a = 0
    while a < n:
        b = a + 1
        while b < n and row[grouped[b]] == row[grouped[a]]:
            b += 1
        grp = grouped[a:b]
        grp = grp[np.argsort(member[grp], kind="mergesort")]
        grp = grp[np.argsort(reward[grp], kind="mergesort")]
        grp = grp[np.argsort(t[grp], kind="mergesort")]
        for k in range(b - a):
            if k == 0 or not _same_key(t, reward, member, grp[k], grp[k - 1]):
                count[reward[grp[k]]] += 1
        a = b
    return count


# --- across runs ---------------------------------------------------------------------------------


def spread(values: list, digits: int | None) -> dict:
    """{"mean","p5","p50","p95"} over runs (runs where a value is undefined are left out)."""
    vals = np.array([float(v) for v in values if v is not None], dtype=np.float64)
    if len(vals) == 0:
        return {"mean": None, "p5": None, "p50": None, "p95": None}
    qs = np.percentile(vals, [5, 50, 95], method=PERCENTILE_METHOD)
    out = {"mean": float(np.mean(vals)), "p5": float(qs[0]), "p50": float(qs[1]), "p95": float(qs[2])}
    return {k: _tidy(v, digits) for k, v in out.items()}


def _tidy(v: float, digits: int | None) -> float | int:
    # Counts and points print as integers when they are whole (always so when runs = 1).
    if digits is None:
        v = round(v, 4)
        return int(v) if v.is_integer() else v
    v = round(v, digits)
    return int(v) if digits == 0 else v


def difference(a, b) -> float | int | None:
    """a - b of two figures as summary.json shows them, exactly (by way of their decimal forms): a
    difference of amounts is an amount (0.45 - 0.413793 is 0.036207, not 0.036206999999999996).
    None when either is missing (None, or NaN)."""
    if a is None or b is None or a != a or b != b:
        return None
    d = Decimal(repr(a)) - Decimal(repr(b))
    return int(d) if isinstance(a, int) and isinstance(b, int) else float(d)


def summarise(per_run: list[dict], decimals: int) -> dict:
    """Every figure across runs as {"mean","p5","p50","p95"}; money in currency units."""
    out: dict = {}
    scale = 10**decimals
    for name in COUNT_FIGURES:
        out[name] = spread([r[name] for r in per_run], None)
    for name in MONEY_FIGURES + tuple(f for f in COST_KIND_FIGURES if f in per_run[0]):
        out[name] = spread([Fraction(r[name], scale) for r in per_run], decimals)
    for name in (f for f in PENDING_FIGURES if f in per_run[0]):
        out[name] = spread([r[name] for r in per_run], None)
    for name in RATIO_FIGURES:
        out[name] = spread([r[name] for r in per_run], 6)
    names = sorted(
        {t for r in per_run for t in r["tiers"]}, key=lambda t: list(per_run[0]["tiers"]).index(t) if t in per_run[0]["tiers"] else 0
    )
    out["tiers"] = {t: spread([r["tiers"].get(t, 0) for r in per_run], None) for t in names}
    return out
