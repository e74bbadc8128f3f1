"""A path's sums (simulator.measure) agree with the same figures computed plainly from its rows and ledger."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator import metrics, montecarlo, tiers
from simulator.api import simulate
from simulator.measure import _row_sums, measure
from tests.simulator.simkit import ENGINE, program, sample, scenario


@pytest.fixture(scope="module")
def paths():
    """(setup months, decimals, rows, ledger, partial) of each simulated path."""
    seen = []

    def spy(setup, model, rows, ledger, chosen, run, keep_ledger):
        p = measure(setup, model, rows, ledger, chosen, run, keep_ledger)
        seen.append((setup.months, setup.history.decimals, rows.copy(), ledger.copy(), p))
        return p

    mp = pytest.MonkeyPatch()
    mp.setattr(montecarlo, "measure", spy)
    try:
        tx, cu = sample(customers=40, months=8, seed=5)
        simulate(program(), tx, cu, scenario(runs=3), workers=1, engine=ENGINE)
    finally:
        mp.undo()
    assert len(seen) == 3
    return seen


def test_ledger_figures_match_a_groupby(paths):
    for months, _, _, ledger, p in paths:
        kind = ledger["kind"].astype(str)
        assert p.by_kind.tolist() == [int(ledger.loc[kind == k, "points"].sum()) for k in metrics.KINDS]
        assert (p.cost, p.partner) == (ledger["cost"].sum(), ledger["partner_share"].sum())
        month = ledger["timestamp"].dt.to_period("M")
        for i, mo in enumerate(months):
            assert p.cells[i].tolist() == [int(ledger.loc[(month == mo) & (kind == k), "points"].sum()) for k in metrics.KINDS]
            assert p.cost_m[i] == ledger.loc[month == mo, "cost"].sum()
            assert p.partner_m[i] == ledger.loc[month == mo, "partner_share"].sum()


def test_rewards_count_distinct_redemptions(paths):
    for _, _, _, ledger, p in paths:
        red = ledger[ledger["kind"].astype(str) == "redeem"].astype({"reward": str, "customer_id": str})
        assert len(red) > 0
        want = red.groupby("reward").agg(points=("points", "sum"), cost=("cost", "sum"), partner_share=("partner_share", "sum"))
        want.insert(0, "count", red.drop_duplicates(["reward", "customer_id", "timestamp", "row"]).groupby("reward").size())
        assert p.rewards.index.tolist() == want.index.tolist()
        assert p.rewards.to_numpy().tolist() == want.to_numpy().tolist()


def test_row_figures_match_a_plain_computation(paths):
    for months, _, rows, _, p in paths:
        moved = rows["_purchase"] | rows["_refund"]
        delta = np.where(moved, rows["_minor"], 0) - rows["_orig"]
        month = rows["timestamp"].dt.to_period("M")
        assert p.delta_m.tolist() == [int(delta[(month == mo).to_numpy()].sum()) for mo in months]
        joined = rows.loc[rows["_enroll"], "timestamp"]
        assert p.joined_m.tolist() == [int((joined <= mo.end_time).sum()) for mo in months]
        assert p.rows == len(rows)


def test_tier_counts_match_levels_looked_up_per_member(paths):
    spec = program().model.tiers
    for months, decimals, rows, _, p in paths:
        ends = np.array([mo.end_time for mo in months], dtype="datetime64[ns]")
        m, t = rows["_m"].to_numpy(), rows["timestamp"].to_numpy()
        spend = np.where(rows["_purchase"] | rows["_refund"], rows["_minor"], 0)
        enrolled = rows["_enroll"].to_numpy()
        level = tiers.at_moments(spec, decimals, m, t, spend, np.repeat(m[enrolled], len(ends)), np.tile(ends, enrolled.sum()))
        level = level.reshape(-1, len(ends))
        joined = t[enrolled][:, None] <= ends[None, :]
        want = np.stack([((level == i) & joined).sum(axis=0) for i in range(len(spec.names))], axis=1)
        assert p.tiers_m.tolist() == want.tolist()
        assert p.tiers_m[:, 1:].sum() > 0  # someone reached a higher tier


def test_rows_are_placed_among_month_ends_as_positions_would():
    months = metrics.month_index(pd.Timestamp("2026-01-01"), pd.Timestamp("2026-03-31"))
    ends = np.array([mo.end_time for mo in months], dtype="datetime64[ns]")
    t = np.array(
        ["2025-12-31T23:59:59", "2026-01-01", "2026-01-31T23:59:59.999999", "2026-01-31T23:59:59.9999995", "2026-02-14", "2026-04-01"],
        dtype="datetime64[ns]",
    )
    n = len(t)
    flags = np.ones(n, dtype=bool)
    before = np.empty(n, dtype=np.int8)
    spend, delta, enrolled, joins = _row_sums(
        t.view(np.int64), flags, ~flags, np.arange(n) * 100, np.zeros(n, dtype=np.int64), flags,
        metrics.month_starts(months)[0], metrics.month_table(months), len(months), ends.view(np.int64), before,
    )  # fmt: skip
    assert before.tolist() == tiers.positions(t, ends, strict=True).tolist() == [0, 0, 0, 1, 1, 3]
    assert delta.tolist() == [100 + 200 + 300, 400, 0]
    assert spend.tolist() == [0, 100, 200, 300, 400, 500] and enrolled.tolist() == list(range(n))
    assert joins.tolist() == [3, 2, 0, 1]  # by the end of Jan, Feb, Mar, and after


@pytest.mark.parametrize(("left", "right"), [(["cake", "coffee"], ["cake", "coffee"]), (["coffee"], ["cake", "coffee"]), (["mug"], [])])
def test_partials_add_their_rewards_by_name_in_order_of_first_appearance(left, right):
    from simulator.measure import Partial

    def partial(names, base):
        table = pd.DataFrame({c: np.arange(len(names), dtype=np.int64) + base for c in ("count", "points", "cost", "partner_share")}, index=pd.Index(names, name="reward"))
        zero = np.zeros(2, dtype=np.int64)
        return Partial(1, 2, zero, 0, 0, zero, zero, zero, zero, zero, zero, table, None)

    a, b = partial(left, 1), partial(right, 10)
    want = pd.concat([a.rewards, b.rewards]).groupby(level=0, sort=False).sum()
    pd.testing.assert_frame_equal(a.add(b).rewards, want)
