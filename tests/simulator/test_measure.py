"""A path's sums (simulator.measure), read through what `simulate` returns: a history small enough
to work out by hand, and a generated one whose ledger is summed plainly with pandas."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from simulator import metrics
from simulator.api import simulate
from simulator.measure import Partial, _row_sums
from tests.simulator.simkit import ENGINE, program, sample, scenario

# Test Club (simkit): tiers by spend over 365 days, Basic from 0 and Plus from 300 CNY; 1 point
# per CNY, twice that at Plus; 50 points on joining; points expire after 3 months.
HAND_MADE = pd.DataFrame(
    [
        ("A", "2026-01-10 09:00", "purchase", 200.00),
        ("A", "2026-02-05 09:00", "purchase", 150.00),  # Basic before it (200); Plus after (350)
        ("A", "2026-03-12 09:00", "purchase", 100.00),  # at Plus: 10% uplift, 110.00
        ("A", "2026-04-20 09:00", "purchase", 55.50),  # at Plus: 61.05
        ("B", "2026-02-20 09:00", "purchase", 50.00),
        ("B", "2026-04-02 09:00", "purchase", 400.00),  # Basic before it (50)
        ("B", "2026-04-10 09:00", "refund", 100.00),  # B's spend 350 at April's end: Plus
        ("C", "2026-04-15 09:00", "purchase", 10.00),
    ],
    columns=["customer_id", "timestamp", "event", "amount"],
).astype({"timestamp": "datetime64[ns]"})
HAND_CUSTOMERS = pd.DataFrame({"customer_id": ["A", "B", "C", "D"]})  # D never buys, so never joins


def test_monthly_figures_of_a_history_worked_out_by_hand():
    every_buyer_joins = scenario(
        runs=1,
        enrollment={"share": 1.0, "pick": "random"},
        redemption={"probability": 0.0, "choice": "cheapest"},
        response={"spend_uplift": {"Basic": 0.0, "Plus": 0.1}, "visit_uplift": 0.0},
    )
    result = simulate(program(), HAND_MADE, HAND_CUSTOMERS, every_buyer_joins, workers=1, engine=ENGINE)
    m = result.monthly.set_index("month")
    assert m.index.tolist() == ["2026-01", "2026-02", "2026-03", "2026-04"]
    # Joined at their first purchase: A in January, B in February, C in April.
    assert m["members"].tolist() == [1, 2, 2, 3]
    # Tiers at each month's end from the spend the program saw (with its uplift): A 200, 350,
    # 460, 521.05; B -, 50, 50, 350; C -, -, -, 10.
    assert m["tier_Basic"].tolist() == [1, 1, 1, 1]
    assert m["tier_Plus"].tolist() == [0, 1, 1, 2]
    # Revenue: purchases less refunds; with the program, A's purchases at Plus are 10% more.
    assert m["revenue_baseline"].tolist() == [Decimal("200.00"), Decimal("200.00"), Decimal("100.00"), Decimal("365.50")]
    lift = [Decimal("0.00"), Decimal("0.00"), Decimal("10.00"), Decimal("6.05") - Decimal("0.50")]
    assert (m["revenue_with_program"] - m["revenue_baseline"]).tolist() == lift
    # Points: January A 50 + 200; February A 150 (Basic before it), B 50 + 50; March A 110 x 2;
    # April A 61 x 2, B 400, C 50 + 10, and A's January 250 expire.
    assert m["issued"].tolist() == [250, 250, 220, 582]
    assert m["expired"].tolist() == [0, 0, 0, 250]
    assert m["closing"].tolist() == [250, 500, 720, 1052]
    assert result.summary["members"]["mean"] == 3


@pytest.fixture(scope="module", params=["cheapest", "dearest"])
def one_run(request):
    """A generated history simulated once, so that the ledger returned is the run's whole ledger."""
    tx, cu = sample(customers=40, months=8, seed=5)
    sc = scenario(runs=1, redemption={"probability": 0.5, "choice": request.param})
    return simulate(program(), tx, cu, sc, workers=1, engine=ENGINE)


def test_ledger_figures_match_a_groupby(one_run):
    ledger, m = one_run.ledger, one_run.monthly
    kind = ledger["kind"].astype(str)
    month = ledger["timestamp"].dt.to_period("M").astype(str)
    for k, col in metrics.KIND_COLUMN.items():
        want = ledger[kind == k].groupby(month[kind == k])["points"].sum()
        assert m[col].tolist() == want.reindex(m["month"], fill_value=0).tolist()
    for col, name in (("cost", "reward_cost"), ("partner_share", "partner_funded")):
        want = ledger.groupby(month)[col].sum().reindex(m["month"], fill_value=0)
        assert m[name].tolist() == [Decimal(int(v)) / 100 for v in want]
    figures = {f: one_run.summary[f]["mean"] for f in ("points_issued", "points_redeemed", "points_expired", "points_clawed_back")}
    assert figures == {f"points_{c}": int(ledger.loc[kind == k, "points"].sum()) for k, c in
                       (("earn", "issued"), ("redeem", "redeemed"), ("expire", "expired"), ("clawback", "clawed_back"))}  # fmt: skip


def test_rewards_count_distinct_redemptions(one_run):
    ledger = one_run.ledger
    red = ledger[ledger["kind"].astype(str) == "redeem"].astype({"reward": str, "customer_id": str})
    assert len(red) > 0
    want = red.groupby("reward").agg(points=("points", "sum"), cost=("cost", "sum"), partner_share=("partner_share", "sum"))
    want.insert(0, "count", red.drop_duplicates(["reward", "customer_id", "timestamp", "row"]).groupby("reward").size())
    got = one_run.rewards.set_index("reward").loc[want.index]
    assert got["count"].tolist() == want["count"].tolist() and got["points"].tolist() == want["points"].tolist()
    assert (got[["cost", "partner_share"]] * 100).round().astype(int).to_numpy().tolist() == want[["cost", "partner_share"]].to_numpy().tolist()
    assert (one_run.rewards.set_index("reward").drop(want.index)["count"] == 0).all()


def test_joinings_are_counted_at_the_first_month_end_at_or_after_them():
    months = metrics.month_index(pd.Timestamp("2026-01-01"), pd.Timestamp("2026-03-31"))
    ends = np.array([mo.end_time for mo in months], dtype="datetime64[ns]")
    t = np.array(
        ["2025-12-31T23:59:59", "2026-01-01", "2026-01-31T23:59:59.999999", "2026-01-31T23:59:59.9999995", "2026-02-14", "2026-04-01"],
        dtype="datetime64[ns]",
    )
    n = len(t)
    flags = np.ones(n, dtype=bool)
    delta, joins, sales = _row_sums(
        t.view(np.int64), flags, ~flags, np.arange(n) * 100, np.zeros(n, dtype=np.int64), flags,
        metrics.month_starts(months)[0], metrics.month_table(months), len(months), ends.view(np.int64),
    )  # fmt: skip
    # The month ends strictly before each row: how many a binary search finds.
    before = np.searchsorted(ends, t, side="left")
    assert before.tolist() == [0, 0, 0, 1, 1, 3]
    assert joins.tolist() == np.bincount(before, minlength=len(months) + 1).tolist() == [3, 2, 0, 1]  # by the end of Jan, Feb, Mar, and after
    assert delta.tolist() == [100 + 200 + 300, 400, 0]
    assert sales.tolist() == delta.tolist()  # every row a purchase, none of it there before the program


@pytest.mark.parametrize(("left", "right"), [(["cake", "coffee"], ["cake", "coffee"]), (["coffee"], ["cake", "coffee"]), (["mug"], [])])
def test_partials_add_their_rewards_by_name_in_order_of_first_appearance(left, right):
    def partial(names, base):
        table = pd.DataFrame({c: np.arange(len(names), dtype=np.int64) + base for c in ("count", "points", "cost", "partner_share")}, index=pd.Index(names, name="reward"))
        zero = np.zeros(2, dtype=np.int64)
        return Partial(1, 2, zero, 0, 0, zero, zero, zero, zero, zero, zero, table, None)

    a, b = partial(left, 1), partial(right, 10)
    want = pd.concat([a.rewards, b.rewards]).groupby(level=0, sort=False).sum()
    pd.testing.assert_frame_equal(a.add(b).rewards, want)
