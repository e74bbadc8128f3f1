"""Deferred revenue (IFRS 15 / ASC 606) and the cost-method provision: the standard's own example and
KPMG's variants to the unit, the roll-forward balanced for any monthly flows, and bad flows refused."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from simulator.finance.accounting import (
    AccountingError,
    allocate,
    check_balanced,
    deferred_revenue,
    provision,
    recognise,
)
from tests.strategies import monthly_point_flows


def revenue(frame) -> list[int]:
    """Each period's revenue: on redemption + breakage + change of estimate."""
    return (frame["recognised_on_redemption"] + frame["recognised_breakage"] + frame["change_of_estimate"]).tolist()


# --- IFRS 15 IE267-IE270 ------------------------------------------------------------------------------


def test_ifrs15_ie267_to_ie270_to_the_unit():
    # Sales of 100,000 earn 10,000 points with a standalone selling price of 0.95 a point (value 1,
    # 95% expected to be redeemed): 100,000 x 9,500 / 109,500 = 8,675.80, allocated 8,676.
    # Year 1: 4,500 redeemed of 9,500 expected: 8,676 x 4,500 / 9,500 = 4,109.68 -> 4,110.
    # Year 2: 8,500 redeemed so far of 9,700 now expected: 8,676 x 8,500 / 9,700 = 7,602.68 -> 7,603,
    # less the 4,110 already recognised: 3,493.
    frame = deferred_revenue([100_000, 0], [10_000, 0], [4_500, 4_000], [Decimal("0.95"), Decimal("0.97")], value_per_point=1, decimals=0)
    assert frame["deferred"].tolist() == [8_676, 0]
    assert revenue(frame) == [4_110, 3_493]
    assert frame["closing"].tolist() == [8_676 - 4_110, 8_676 - 4_110 - 3_493]
    check_balanced(frame)


def test_the_allocation_by_relative_standalone_selling_price():
    assert allocate(100_000, 10_000, 1, "0.95", 0) == 8_676
    assert 100_000 - allocate(100_000, 10_000, 1, "0.95", 0) == 91_324  # the goods' share (IE269)
    # In minor units: 1,000.00 of sales, 5,000 points worth 0.01 each, all expected redeemed:
    # 100,000 x 5,000 / 105,000 = 4,761.90 cents -> 4,762.
    assert allocate(100_000, 5_000, "0.01", 1, 2) == 4_762


@pytest.mark.parametrize(("estimate", "year_2"), [(9_900, 3_552), (9_200, 4_140)])
def test_kpmg_variants_to_the_unit(estimate, year_2):
    # KPMG's variant of the example (its 10A and 10B, as issue 20 quotes them): 9,000 allocated to the
    # points; year 1: 4,500 redeemed of 9,700 expected: 9,000 x 4,500 / 9,700 = 4,175.26 -> 4,175.
    # Year 2: 8,500 redeemed so far; the estimate rises to 9,900 (9,000 x 8,500 / 9,900 = 7,727.27:
    # 7,727 - 4,175 = 3,552) or falls to 9,200 (8,315.22: 8,315 - 4,175 = 4,140).
    frame = recognise([9_000, 0], [10_000, 0], [4_500, 4_000], [Decimal(9_700) / 10_000, Decimal(estimate) / 10_000])
    assert revenue(frame) == [4_175, year_2]
    check_balanced(frame)


def test_the_published_figures_need_rounding_to_nearest():
    # Truncating would give year 1 4,109 (IFRS), rounding up 4,176 (KPMG): only the nearest unit
    # gives both published figures, and that is what a month's revenue is made of.
    ifrs = deferred_revenue([100_000], [10_000], [4_500], "0.95", 1, 0)
    kpmg = recognise([9_000], [10_000], [4_500], "0.97")
    assert (revenue(ifrs), revenue(kpmg)) == ([4_110], [4_175])


def test_the_change_of_estimate_is_the_catch_up():
    # IFRS year 2 at the old estimate (9,500): 8,676 x 8,500 / 9,500 = 7,762.74; at the new
    # (9,700): 7,602.68; the catch-up is -160.06 -> -160. On redemption: 4,000 points x 8,676 /
    # 10,000 = 3,470.4 -> 3,470; breakage what remains: 3,493 + 160 - 3,470 = 183.
    frame = deferred_revenue([100_000, 0], [10_000, 0], [4_500, 4_000], ["0.95", "0.97"], 1, 0)
    year_2 = frame.iloc[1]
    assert (year_2.change_of_estimate, year_2.recognised_on_redemption, year_2.recognised_breakage) == (-160, 3_470, 183)
    # Year 1 has no earlier estimate: no catch-up; 4,500 x 0.8676 = 3,904.2 -> 3,904 on redemption.
    assert (frame.iloc[0].change_of_estimate, frame.iloc[0].recognised_on_redemption) == (0, 3_904)


def test_everything_expected_is_recognised_once_redeemed():
    # Redemptions reaching the points expected recognise the whole allocation, never more.
    frame = recognise([1_000, 0, 0], [100, 0, 0], [50, 40, 10], "0.9")
    assert frame["recognised_to_date"].tolist() == [556, 1_000, 1_000]  # 1,000 x 50 / 90 = 555.56
    assert frame["closing"].iloc[-1] == 0


# --- the cost method ------------------------------------------------------------------------------------


def test_cost_method_provision_worked_by_hand():
    # 0.02 a point (2 cents); month 0: 1,000 earned, 200 redeemed, rate 0.9: 800 x 2 x 0.9 = 1,440.
    # Month 1: +500 -300, rate 0.8: 1,000 x 2 x 0.8 = 1,600; at the old rate it would be 1,800, so
    # the change of estimate is -200; provided 500 x 2 x 0.9 = 900, used 300 x 2 x 0.9 = 540.
    # Month 2: 100 redeemed, 400 expire, rate 1: 500 x 2 = 1,000 (change +200 from 800 at 0.8);
    # released: 1,600 + 0 - 160 - 800 = 640.
    frame = provision([1_000, 500, 0], [200, 300, 100], [0, 0, 400], ["0.9", "0.8", "1"], "0.02", 2)
    assert frame["closing"].tolist() == [1_440, 1_600, 1_000]
    assert frame["change_of_estimate"].tolist() == [0, -200, 200]
    assert frame["provided"].tolist() == [1_800, 900, 0]
    assert frame["used_on_redemption"].tolist() == [360, 540, 160]
    assert frame["released_breakage"].tolist() == [0, 0, 640]
    check_balanced(frame)


# --- any flows: the roll-forward balances to the unit ----------------------------------------------------


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(monthly_point_flows())
def test_the_roll_forwards_balance_to_the_unit_for_any_monthly_flows(flows):
    frame = deferred_revenue(
        flows["sales"], flows["earned"], flows["redeemed"], flows["rates"], flows["value_per_point"], flows["decimals"]
    )
    check_balanced(frame)
    # The closing balance is what was allocated and not yet recognised, and recognition never
    # exceeds the allocation.
    allocated = np.cumsum(frame["deferred"].to_numpy())
    assert (frame["closing"].to_numpy() == allocated - frame["recognised_to_date"].to_numpy()).all()
    assert ((frame["closing"] >= 0) & (frame["recognised_to_date"] >= 0)).all()
    # Each month's revenue is the difference of the rounded cumulative formula (no drift).
    cum = [0]
    for t in range(len(frame)):
        issued, redeemed = int(frame["points_issued"].iloc[t]), int(frame["points_redeemed"].iloc[t])
        if issued:
            share = min(Decimal(1), redeemed / (issued * flows["rates"][t]))
            cum.append(int((Decimal(int(allocated[t])) * share).to_integral_value(rounding="ROUND_HALF_UP")))
        else:
            cum.append(0)
    assert revenue(frame) == list(np.diff(cum))
    cost = provision(flows["earned"], flows["redeemed"], flows["expired"], flows["rates"], flows["value_per_point"], flows["decimals"])
    check_balanced(cost)
    assert (cost["points_outstanding"] >= 0).all()


# --- on a simulated year: the URR estimated month by month feeds the books -------------------------------


def test_a_simulated_year_books_balance_every_month_with_the_estimated_urr(coffee_ledger):
    from simulator.finance.triangles import flows_by_month, urr_by_month

    ledger, _, monthly = coffee_ledger
    flows = flows_by_month(ledger)
    rates = urr_by_month(ledger)["urr"].to_numpy()
    sales = [round(Decimal(str(v)) * 100) for v in monthly["revenue_with_program"]]  # CNY, 2 decimals
    kept = (flows["earned"] - flows["clawed_back"]).tolist()
    books = deferred_revenue(sales, kept, flows["redeemed"].tolist(), rates, "0.02", 2, months=flows["month"].tolist())
    check_balanced(books)
    # January's estimate rests on January alone (the URR is the share redeemed so far), so all of
    # January's allocation is recognised; later estimates see the cohorts develop and defer.
    assert books["closing"].iloc[0] == 0 and (books["closing"].iloc[1:] > 0).all()
    assert books["change_of_estimate"].iloc[1:].ne(0).all()
    cost = provision(
        flows["earned"].tolist(), flows["redeemed"].tolist(), (flows["expired"] + flows["clawed_back"]).tolist(), rates, "0.02", 2
    )
    check_balanced(cost)
    # The provision at the year's end is the points outstanding x 2 cents x the final URR.
    outstanding = int(monthly["closing"].iloc[-1])
    assert cost["closing"].iloc[-1] == round(Decimal(outstanding) * 2 * Decimal(repr(float(rates[-1]))))


# --- bad flows --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: recognise([10, 0], [5, 0], [3, 3], "0.9"), "points_redeemed: month 1: 6 points redeemed so far, more than the 5 issued"),
        (lambda: recognise([10], [5], [3], "1.2"), "expected_redemption: month 0: 1.2 is not a redemption rate in (0, 1]"),
        (lambda: recognise([10], [5], [3], 0), "expected_redemption: month 0: 0 is not a redemption rate"),
        (lambda: recognise([10, 1], [5], [3], "0.5"), "points_issued: 1 months given, expected 2"),
        (lambda: deferred_revenue([-5], [5], [0], "0.5", 1, 0), "sales_minor: month 0: -5 is negative"),
        (lambda: recognise([10.5], [5], [0], "0.5"), "allocated_minor: month 0: 10.5 is not a whole number"),
        (lambda: provision([5], [3], [3], "0.5", 1, 0), "more points redeemed and expired so far than earned"),
        (lambda: recognise([10], [5], [3], float("nan")), "expected_redemption: month 0: nan is not a number"),
        (lambda: recognise([10], [5], [3], "most"), "expected_redemption: month 0: 'most' is not a number"),
        (lambda: deferred_revenue([10], [5], [3], "0.5", "1 CNY", 2), "value_per_point: '1 CNY' is not a number"),
        (lambda: provision([5], [3], [0], "0.5", None, 0), "cost_per_point: None is not a number"),
        (lambda: recognise([10, 0], [5, 0], [3, 0], "0.5", months=["2026-01"]), "months: 1 months given, expected 2"),
    ],
)
def test_bad_flows_are_refused_naming_the_argument_and_month(call, message):
    with pytest.raises(AccountingError) as info:
        call()
    assert message in str(info.value)


def test_an_unbalanced_roll_forward_is_caught():
    frame = recognise([100], [10], [5], "0.5")
    frame.loc[0, "closing"] += 1
    with pytest.raises(AccountingError, match="does not balance"):
        check_balanced(frame)
