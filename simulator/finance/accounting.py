"""Accounting for points: IFRS 15 / ASC 606 deferred revenue, and the cost-method provision.

Both are monthly roll-forwards in integer minor units over a pool of points (the program's points
as one portfolio, the practical expedient IFRS 15.4 allows), each month's row

    opening + deferred (or provided) - recognised on redemption - recognised breakage
            - change of estimate = closing

balanced exactly, every month (`check_balanced`).

**Deferred revenue** (`deferred_revenue`, IFRS 15 B39-B43 and IE267-IE270; ASC 606-10-55-41..49).
A month's sales are split between the goods and the points by relative standalone selling price:
the goods' is the sales amount, the points' is points x value per point x the expected redemption
rate, so the points get sales x ssp / (sales + ssp). That amount is deferred (a contract liability).
Revenue is recognised as points are redeemed, in proportion to the points expected to be redeemed:
cumulatively, recognised = allocated x min(1, redeemed / expected), where expected = points issued
x the current estimate of the redemption rate; when the estimate changes, the next month's figure
catches up cumulatively. Breakage (the points never redeemed) is thus recognised in proportion to
redemptions.

**Rounding.** Two amounts are rounded to the minor unit, half up: each month's allocation, and the
cumulative amount recognised by each month's end; a month's revenue is the difference of two
cumulative amounts. That is the rounding the standard's example uses (IFRS 15 IE267-IE270: year 1
revenue 8,676 x 4,500 / 9,500 = 4,109.68 is 4,110; year 2 is 8,676 x 8,500 / 9,700 = 7,602.68,
so 7,603 - 4,110 = 3,493; truncating would give 4,109, rounding up would give KPMG's 4,175.26 as
4,176) and it keeps the sum of the months' revenue equal to the rounded cumulative formula, with no
drift. Of a month's revenue, the change of estimate (the catch-up: the cumulative at the new
estimate less the cumulative at the previous one, both on this month's points) and the part on
redemption (the redeemed points' own share of the allocation, redeemed x allocated / issued) are
each rounded half up, and breakage is what remains, so the three add up to the month's revenue to
the unit. Rates are exact decimals (a float is read by its shortest decimal form, 0.97 as 0.97).

**Cost method** (`provision`): the provision for points outstanding is outstanding points x cost per
point x the expected redemption rate, rounded half up to the minor unit at each month's end. A
month's new points are provided at the previous estimate, redeemed points use the provision at it,
the change of estimate is the provision at the new estimate less that at the previous one, and the
release for points that expire or will not be redeemed is what remains.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import numpy as np
import pandas as pd

from rulelang.errors import LoyaltyError

REVENUE_COLUMNS = ("opening", "deferred", "recognised_on_redemption", "recognised_breakage", "change_of_estimate", "closing")
PROVISION_COLUMNS = ("opening", "provided", "used_on_redemption", "released_breakage", "change_of_estimate", "closing")


class AccountingError(LoyaltyError):
    """Flows an accounting roll-forward cannot be built from (the message names the argument and month)."""


def round_half_up(amount: Decimal) -> int:
    """`amount` to the nearest whole minor unit, halves away from zero."""
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def exact(value) -> Decimal:
    """A rate or price as an exact Decimal (a float by its shortest decimal form: 0.97 is 0.97)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float | np.floating):
        return Decimal(repr(float(value)))
    return Decimal(value)


def allocate(sales_minor: int, points: int, value_per_point, expected_redemption, decimals: int) -> int:
    """The part of a sale allocated to its points, in minor units, by relative standalone selling
    price: sales x ssp / (sales + ssp), ssp = points x value_per_point x expected_redemption (in the
    currency's units, `decimals` digits to the minor unit), rounded half up."""
    ssp = Decimal(points) * exact(value_per_point) * exact(expected_redemption) * (Decimal(10) ** decimals)
    total = Decimal(sales_minor) + ssp
    return 0 if total == 0 else round_half_up(Decimal(sales_minor) * ssp / total)


def _months(name: str, values, n: int | None = None, integer: bool = True) -> list:
    arr = list(np.asarray(values).ravel()) if not isinstance(values, list | tuple) else list(values)
    if n is not None and len(arr) != n:
        raise AccountingError(f"{name}: {len(arr)} months given, expected {n} (one value per month, as the other flows)")
    if integer:
        for i, v in enumerate(arr):
            if isinstance(v, float | np.floating) and not float(v).is_integer():
                raise AccountingError(f"{name}: month {i}: {v!r} is not a whole number (points and minor units are integers)")
        arr = [int(v) for v in arr]
    return arr


def _number(name: str, value) -> Decimal:
    """`value` as an exact Decimal, or an AccountingError naming `name`."""
    try:
        number = exact(value)
    except (InvalidOperation, TypeError, ValueError):
        number = Decimal("NaN")
    if not number.is_finite():
        raise AccountingError(f"{name}: {value!r} is not a number; give a decimal such as 0.9 or 0.01")
    return number


def _rates(name: str, values, n: int) -> list[Decimal]:
    if np.ndim(values) == 0:
        values = [values] * n
    rates = [_number(f"{name}: month {i}", v) for i, v in enumerate(_months(name, values, n, integer=False))]
    for i, r in enumerate(rates):
        if not (0 < r <= 1):
            raise AccountingError(
                f"{name}: month {i}: {r} is not a redemption rate in (0, 1]; give the share of points expected to be redeemed, like 0.9"
            )
    return rates


def _non_negative(name: str, values: list[int]) -> None:
    for i, v in enumerate(values):
        if v < 0:
            raise AccountingError(
                f"{name}: month {i}: {v} is negative; give the month's amount before refunds are netted, or net them so it is >= 0"
            )


def recognise(
    allocated_minor: Sequence[int],
    points_issued: Sequence[int],
    points_redeemed: Sequence[int],
    expected_redemption,
    months: Sequence | None = None,
) -> pd.DataFrame:
    """The deferred revenue roll-forward from the amounts already allocated to points each month.

    `allocated_minor[t]`, `points_issued[t]`, `points_redeemed[t]`: month t's amounts (integers);
    `expected_redemption`: the estimate of the share of issued points that will be redeemed, as
    known at month t's end (one rate, or one per month). Returns one row per month (`month`: the
    labels given, else 0, 1, ...) with REVENUE_COLUMNS in minor units, and the cumulative points
    issued, redeemed and expected to be redeemed, and the cumulative revenue recognised.
    """
    allocated = _months("allocated_minor", allocated_minor)
    n = len(allocated)
    issued = _months("points_issued", points_issued, n)
    redeemed = _months("points_redeemed", points_redeemed, n)
    rates = _rates("expected_redemption", expected_redemption, n)
    for name, values in (("allocated_minor", allocated), ("points_issued", issued), ("points_redeemed", redeemed)):
        _non_negative(name, values)
    if months is not None:
        _months("months", months, n, integer=False)
    rows = []
    cum_alloc = cum_issued = cum_redeemed = recognised_before = 0
    for t in range(n):
        cum_alloc += allocated[t]
        cum_issued += issued[t]
        cum_redeemed += redeemed[t]
        if cum_redeemed > cum_issued:
            raise AccountingError(f"points_redeemed: month {t}: {cum_redeemed} points redeemed so far, more than the {cum_issued} issued")
        previous_rate = rates[t - 1] if t else rates[t]
        recognised_now = _recognised(cum_alloc, cum_issued, cum_redeemed, rates[t])
        at_previous_estimate = _recognised(cum_alloc, cum_issued, cum_redeemed, previous_rate)
        change = recognised_now - at_previous_estimate
        on_redemption = round_half_up(Decimal(cum_alloc) * redeemed[t] / cum_issued) if cum_issued else 0
        total = recognised_now - recognised_before
        rows.append(
            {
                "month": t if months is None else months[t],
                "opening": cum_alloc - allocated[t] - recognised_before,
                "deferred": allocated[t],
                "recognised_on_redemption": on_redemption,
                "recognised_breakage": total - change - on_redemption,
                "change_of_estimate": change,
                "closing": cum_alloc - recognised_now,
                "points_issued": cum_issued,
                "points_redeemed": cum_redeemed,
                "points_expected": float(cum_issued * rates[t]),
                "recognised_to_date": recognised_now,
            }
        )
        recognised_before = recognised_now
    return _frame(rows, REVENUE_COLUMNS)


def _recognised(cum_alloc: int, cum_issued: int, cum_redeemed: int, rate: Decimal) -> int:
    """Revenue recognised to date: allocated x min(1, redeemed / expected), rounded half up."""
    if cum_issued == 0:
        return 0
    expected = cum_issued * rate
    return round_half_up(Decimal(cum_alloc) * min(Decimal(1), cum_redeemed / expected))


def deferred_revenue(
    sales_minor: Sequence[int],
    points_earned: Sequence[int],
    points_redeemed: Sequence[int],
    expected_redemption,
    value_per_point,
    decimals: int,
    months: Sequence | None = None,
) -> pd.DataFrame:
    """IFRS 15 / ASC 606 deferred revenue for points, month by month (see the module's docstring).

    `sales_minor[t]`: month t's sales that earned points (minor units); `points_earned[t]`,
    `points_redeemed[t]`: the month's points; `expected_redemption`: the estimated redemption rate
    at each month's end (one rate, or one per month: e.g. the URR of `triangles`); `value_per_point`:
    what a point is worth to a member when redeemed, in the currency's units; `decimals`: digits of
    the minor unit. Each month's allocation uses that month's estimate. Returns `recognise`'s frame
    with the month's sales and standalone selling price of its points beside.
    """
    sales = _months("sales_minor", sales_minor)
    n = len(sales)
    earned = _months("points_earned", points_earned, n)
    _non_negative("sales_minor", sales)
    _non_negative("points_earned", earned)
    rates = _rates("expected_redemption", expected_redemption, n)
    value = _number("value_per_point", value_per_point)
    if value < 0:
        raise AccountingError(f"value_per_point: {value} is negative; give what a redeemed point is worth to a member, like 0.01")
    allocated = [allocate(sales[t], earned[t], value, rates[t], decimals) for t in range(n)]
    out = recognise(allocated, earned, points_redeemed, rates, months)
    out.insert(1, "sales", np.asarray(sales, dtype=np.int64))
    return out


def provision(
    points_earned: Sequence[int],
    points_redeemed: Sequence[int],
    points_expired: Sequence[int],
    expected_redemption,
    cost_per_point,
    decimals: int,
    months: Sequence | None = None,
) -> pd.DataFrame:
    """The cost-method provision roll-forward: provision = outstanding points x cost per point x the
    expected redemption rate of the points outstanding (one rate, or one per month), in minor units
    (see the module's docstring). `points_expired` counts every point that leaves unredeemed
    (expired, clawed back). Returns one row per month with PROVISION_COLUMNS and the points outstanding."""
    earned = _months("points_earned", points_earned)
    n = len(earned)
    redeemed = _months("points_redeemed", points_redeemed, n)
    expired = _months("points_expired", points_expired, n)
    for name, values in (("points_earned", earned), ("points_redeemed", redeemed), ("points_expired", expired)):
        _non_negative(name, values)
    rates = _rates("expected_redemption", expected_redemption, n)
    if months is not None:
        _months("months", months, n, integer=False)
    unit = _number("cost_per_point", cost_per_point) * (Decimal(10) ** decimals)
    rows, outstanding, opening = [], 0, 0
    for t in range(n):
        outstanding += earned[t] - redeemed[t] - expired[t]
        if outstanding < 0:
            raise AccountingError(
                f"points_redeemed: month {t}: more points redeemed and expired so far than earned ({-outstanding} too many)"
            )
        previous_rate = rates[t - 1] if t else rates[t]
        closing = round_half_up(outstanding * unit * rates[t])
        at_previous_estimate = round_half_up(outstanding * unit * previous_rate)
        provided = round_half_up(earned[t] * unit * previous_rate)
        used = round_half_up(redeemed[t] * unit * previous_rate)
        rows.append(
            {
                "month": t if months is None else months[t],
                "opening": opening,
                "provided": provided,
                "used_on_redemption": used,
                "released_breakage": opening + provided - used - at_previous_estimate,
                "change_of_estimate": closing - at_previous_estimate,
                "closing": closing,
                "points_outstanding": outstanding,
            }
        )
        opening = closing
    return _frame(rows, PROVISION_COLUMNS)


def _frame(rows: list[dict], money: tuple[str, ...]) -> pd.DataFrame:
    out = pd.DataFrame(rows)
    for col in out.columns:
        if col in money or col in ("sales", "points_issued", "points_redeemed", "points_outstanding", "recognised_to_date"):
            out[col] = out[col].astype(np.int64)
    return out


def check_balanced(rollforward: pd.DataFrame) -> None:
    """Raise AccountingError unless every month's row balances and opens where the last closed.

    A provision's change of estimate adds to it (an expense); deferred revenue's is recognised
    (revenue), so it takes from the liability."""
    cols = rollforward.columns
    sign = -1 if "deferred" in cols else 1
    inflow = rollforward["deferred"] if "deferred" in cols else rollforward["provided"]
    outflows = [c for c in ("recognised_on_redemption", "recognised_breakage", "used_on_redemption", "released_breakage") if c in cols]
    computed = rollforward["opening"] + inflow - rollforward[outflows].sum(axis=1) + sign * rollforward["change_of_estimate"]
    off = np.flatnonzero(computed.to_numpy() != rollforward["closing"].to_numpy())
    if len(off):
        raise AccountingError(f"month {rollforward['month'].iloc[off[0]]}: the roll-forward does not balance")
    opened = rollforward["opening"].to_numpy()[1:] != rollforward["closing"].to_numpy()[:-1]
    if opened.any() or (len(rollforward) and rollforward["opening"].iloc[0] != 0):
        raise AccountingError("a month opens at a balance other than the previous month's closing")
