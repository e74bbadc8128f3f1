"""Metrics: exact figures and the roll-forward from hand-made ledgers, and the summary reconciling
with monthly.csv on a real run."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from rulelang.engine import ledger as L
from simulator import metrics
from simulator.api import simulate
from tests.simulator.simkit import ENGINE, program, sample, scenario


def _ledger(postings):
    """Postings as (customer, timestamp, kind, points, cost, partner_share, row, reward)."""
    df = pd.DataFrame(postings, columns=["customer_id", "timestamp", "kind", "points", "cost", "partner_share", "row", "reward"])
    df["timestamp"] = pd.to_datetime(df["timestamp"])
    df["rule"] = ""
    df["tier"] = ""
    df["earned_on"] = df["timestamp"].dt.normalize()
    return df[list(L.COLUMNS)]


LEDGER = _ledger(
    [
        ("A", "2026-01-05", "earn", 500, 0, 0, 0, ""),
        ("A", "2026-01-20", "capped", 40, 0, 0, 1, ""),
        ("A", "2026-02-03", "redeem", 300, 800, 200, 2, "coffee"),
        ("A", "2026-02-03", "redeem", 0, 0, 0, 2, "coffee"),
        ("B", "2026-01-10", "earn", 200, 0, 30, 3, ""),
        ("B", "2026-02-11", "clawback", 50, 0, 0, 4, ""),
        ("B", "2026-03-31", "expire", 100, 0, 0, -1, ""),
    ]
)

X = metrics.RunInput(10, 9, 1, 2, 100_000, 110_000, Fraction(1, 50), 2, 0.5, {"Green": 1, "Gold": 1})
MONTHS = metrics.month_index(pd.Timestamp("2026-01-01"), pd.Timestamp("2026-04-30"))


URR = Fraction(3, 5)


def _run_figures(ledger: pd.DataFrame, x: metrics.RunInput, urr: Fraction = URR) -> dict:
    """One run's figures from a whole ledger, as a run makes them: its sums, then the figures."""
    s = metrics.ledger_sums(ledger, MONTHS)
    return metrics.figures_from(dict(zip(metrics.KINDS, s.by_kind.tolist(), strict=True)), s.cost, s.partner, x, urr)


def test_run_figures_are_exact():
    f = _run_figures(LEDGER, X)
    assert f["points_issued"] == 700
    assert f["points_redeemed"] == 300
    assert f["points_clawed_back"] == 50
    assert f["points_expired"] == 100
    assert f["points_capped"] == 40
    assert f["points_outstanding"] == 700 - 50 - 300 - 100
    assert f["redemption_rate"] == Fraction(300, 700)
    assert f["breakage_rate"] == Fraction(100, 700)
    # 250 points x 0.02 CNY x a URR of 3/5 expected to be redeemed = 3.00 CNY = 300 minor units.
    assert f["liability"] == 300 and f["urr"] == URR
    assert f["reward_cost"] == 800 and f["partner_funded"] == 230
    assert f["program_cost"] == 800 - 230 + 300
    assert f["revenue_lift"] == 10_000
    assert f["incremental_margin"] == 5_000
    assert f["net_benefit"] == 5_000 - 870
    assert f["roi"] == Fraction(5_000 - 870, 870)
    # Rounded half up to the minor unit: 250 x 2 x 0.551 = 275.5 -> 276.
    assert _run_figures(LEDGER, X, Fraction("0.551"))["liability"] == 276
    assert f["revenue_lift_pct"] == 10


def test_monthly_roll_forward_and_totals():
    months = MONTHS
    revenue = pd.DataFrame({"revenue_baseline": [1, 2, 3, 4], "revenue_with_program": [1, 3, 3, 5]}, index=months)
    members = pd.Series([2, 2, 2, 2], index=months)
    tiers = pd.DataFrame({"Green": [2, 1, 1, 1], "Gold": [0, 1, 1, 1]}, index=months)
    s = metrics.ledger_sums(LEDGER, months)
    # Each month's closing points at the URR as estimated at its end.
    urr_m = [Fraction(1), Fraction(1, 2), URR, URR]
    m = metrics.monthly_from(s.cells, s.cost_m, s.partner_m, months, X, revenue, members, tiers, urr_m)
    assert m["month"].tolist() == ["2026-01", "2026-02", "2026-03", "2026-04"]
    assert m["issued"].tolist() == [700, 0, 0, 0]
    assert m["redeemed"].tolist() == [0, 300, 0, 0]
    assert m["clawed_back"].tolist() == [0, 50, 0, 0]
    assert m["expired"].tolist() == [0, 0, 100, 0]
    assert m["closing"].tolist() == [700, 350, 250, 250]
    assert m["opening"].tolist() == [0, 700, 350, 250]
    assert m["liability"].tolist() == [700 * 2, 350 * 2 // 2, 250 * 2 * 3 // 5, 250 * 2 * 3 // 5]
    assert m["liability"].iloc[-1] == _run_figures(LEDGER, X)["liability"]
    assert m["tier_Gold"].tolist() == [0, 1, 1, 1]
    assert m["reward_cost"].tolist() == [0, 800, 0, 0]


def test_rewards_count_redemptions_not_lot_postings():
    r = metrics.rewards(LEDGER)
    assert r.loc["coffee", "count"] == 1
    assert r.loc["coffee", "points"] == 300
    assert r.loc["coffee", "cost"] == 800 and r.loc["coffee", "partner_share"] == 200


def _random_ledger(seed: int, n: int = 400) -> pd.DataFrame:
    """Postings of every kind; redemptions post one to three lots, some rows redeem twice."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(["earn", "redeem", "clawback", "expire", "capped", "shortfall", "bonus"], n)
    row = rng.integers(0, n // 3, n)
    cust = np.array(["A", "B", "C"])[row % 3]
    base = pd.Timestamp("2025-12-20") + pd.to_timedelta(row * 7, unit="h")
    reward = np.where(kinds == "redeem", rng.choice(["mug", "cake", "coffee"], n), "")
    postings = list(
        zip(cust, base, kinds, rng.integers(0, 900, n), rng.integers(0, 3000, n), rng.integers(0, 50, n), row, reward, strict=True)
    )
    lots = [p for p in postings if p[2] == "redeem" for _ in range(rng.integers(0, 3))]
    return _ledger(postings + lots)


def _rewards_by_hand(ledger: pd.DataFrame) -> dict:
    red = ledger[ledger["kind"] == "redeem"]
    keys = set(zip(red["reward"], red["customer_id"], red["timestamp"], red["row"], strict=True))
    return {
        r: (sum(k[0] == r for k in keys), *(int(red.loc[red["reward"] == r, c].sum()) for c in ("points", "cost", "partner_share")))
        for r in sorted(set(red["reward"]))
    }


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("order", ["rows", "shuffled"])
@pytest.mark.parametrize("categorical", [False, True])
def test_rewards_match_a_count_of_distinct_redemptions_in_any_posting_order(seed, order, categorical):
    led = _random_ledger(seed)
    led = led.sort_values("row", kind="stable") if order == "rows" else led.sample(frac=1, random_state=seed)
    if categorical:
        led = led.astype({c: "category" for c in ("customer_id", "kind", "reward")})
    r = metrics.rewards(led.reset_index(drop=True))
    assert r.index.tolist() == sorted(r.index.tolist())
    assert {k: tuple(v) for k, v in zip(r.index, r.to_numpy().tolist(), strict=True)} == _rewards_by_hand(led)
    assert all(r[c].dtype == np.int64 for c in r.columns)


def test_rewards_count_a_long_row_with_many_keys():
    # One row posting 300 lots of three rewards for two members (sorted, not compared pairwise).
    lots = [("A" if i % 5 else "B", "2026-02-03", "redeem", 10, 100, 1, 7, ("mug", "cake", "coffee")[i % 3]) for i in range(300)]
    led = _ledger([("A", "2026-02-01", "earn", 900, 0, 0, 6, "")] + lots + [("B", "2026-02-04", "redeem", 300, 800, 0, 8, "cake")])
    r = metrics.rewards(led)
    assert {k: tuple(v) for k, v in zip(r.index, r.to_numpy().tolist(), strict=True)} == _rewards_by_hand(led)
    assert r["count"].tolist() == [3, 2, 2]  # cake: A, B and row 8; coffee and mug: A and B


@pytest.mark.parametrize("seed", range(3))
def test_ledger_sums_by_month_and_kind_match_a_groupby(seed):
    led = _random_ledger(seed)  # some postings fall before the first month
    months = metrics.month_index(pd.Timestamp("2026-01-01"), pd.Timestamp("2026-03-31"))
    s = metrics.ledger_sums(led, months)
    month = led["timestamp"].dt.to_period("M")
    inside = led[month.isin(months) & led["kind"].isin(metrics.KINDS)]
    cells = inside.groupby([inside["timestamp"].dt.to_period("M"), "kind"])["points"].sum()
    for i, mo in enumerate(months):
        assert s.cells[i].tolist() == [int(cells.get((mo, k), 0)) for k in metrics.KINDS]
        assert s.cost_m[i] == led.loc[month == mo, "cost"].sum()
        assert s.partner_m[i] == led.loc[month == mo, "partner_share"].sum()
    assert s.by_kind.tolist() == [int(led.loc[led["kind"] == k, "points"].sum()) for k in metrics.KINDS]
    assert (s.cost, s.partner) == (led["cost"].sum(), led["partner_share"].sum())
    # The cohort triangle: (month earned, months since, kind) of the postings that move a lot's
    # points, both months inside the simulation's.
    earned = led["earned_on"].dt.to_period("M")
    lots = led[month.isin(months) & earned.isin(months) & led["kind"].isin(metrics.TRIANGLE_KINDS)]
    lot_age = (lots["timestamp"].dt.to_period("M") - lots["earned_on"].dt.to_period("M")).apply(lambda d: d.n)
    by_cell = lots.groupby([lots["earned_on"].dt.to_period("M"), lot_age, "kind"])["points"].sum()
    expected = np.zeros((len(months), len(months), len(metrics.TRIANGLE_KINDS)), dtype=np.int64)
    for (cohort, age, kind), points in by_cell.items():
        expected[months.get_loc(cohort), age, metrics.TRIANGLE_KINDS.index(kind)] = points
    np.testing.assert_array_equal(s.triangle, expected)
    assert metrics.by_month(led["timestamp"].to_numpy(), led["points"].to_numpy(), months).tolist() == [
        int(led.loc[month == mo, "points"].sum()) for mo in months
    ]


def test_spread_statistics_and_undefined_values():
    s = metrics.spread([1, 2, 3, 4, 5], None)
    # Percentiles are values of some run (inverted CDF), the mean is a mean.
    assert s == {"mean": 3, "p5": 1, "p50": 3, "p95": 5}
    t = metrics.spread(list(range(1, 21)), None)
    assert (t["p5"], t["p50"], t["p95"]) == (1, 10, 19)
    assert metrics.spread([7, 1, 4, 2], None)["mean"] == 3.5
    assert metrics.spread([None, None], 6)["p50"] is None
    assert metrics.spread([Fraction(1, 3)], 2) == {"mean": 0.33, "p5": 0.33, "p50": 0.33, "p95": 0.33}
    assert metrics.round_half_up(Fraction(5, 2)) == 3 and metrics.round_half_up(Fraction(-5, 2)) == -3


@pytest.fixture(scope="module")
def one_run():
    tx, cu = sample()
    return simulate(program(), tx, cu, scenario(runs=1), workers=1, engine=ENGINE)


def test_summary_reconciles_with_monthly(one_run):
    s, m = one_run.summary, one_run.monthly
    for fig, col in (
        ("points_issued", "issued"),
        ("points_redeemed", "redeemed"),
        ("points_expired", "expired"),
        ("points_clawed_back", "clawed_back"),
        ("points_capped", "capped"),
    ):
        assert s[fig]["mean"] == int(m[col].sum()), fig
        assert s[fig]["p5"] == s[fig]["p50"] == s[fig]["p95"] == s[fig]["mean"]
    assert s["points_outstanding"]["mean"] == int(m["closing"].iloc[-1])
    assert s["liability"]["mean"] == float(m["liability"].iloc[-1])
    assert s["reward_cost"]["mean"] == float(sum(m["reward_cost"]))
    assert s["revenue_baseline"]["mean"] == float(sum(m["revenue_baseline"]))
    assert s["revenue_with_program"]["mean"] == float(sum(m["revenue_with_program"]))
    assert s["members"]["mean"] == int(m["members"].iloc[-1])
    tiers = {c[len("tier_") :]: int(m[c].iloc[-1]) for c in m.columns if c.startswith("tier_")}
    assert {k: v["mean"] for k, v in s["tiers"].items()} == tiers
    assert sum(tiers.values()) == s["members"]["mean"]
    assert s["rows_read"]["mean"] == s["rows_used"]["mean"] + s["rows_rejected"]["mean"] + s["rows_outside_period"]["mean"]


def test_ledger_output_matches_summary(one_run):
    led = one_run.ledger
    assert int(led.loc[led["kind"] == "earn", "points"].sum()) == one_run.summary["points_issued"]["mean"]
    assert (led["points"] >= 0).all()


DISCOUNTED = pd.concat([LEDGER, _ledger([
    ("A", "2026-01-05", "discount", 0, 300, 120, 0, ""),
    ("B", "2026-02-11", "discount", 0, 150, 0, 3, ""),
    ("B", "2026-03-02", "discount", 0, -50, 0, 4, ""),  # a refund reverses part of it
])], ignore_index=True).sort_values(["customer_id", "timestamp"], kind="stable").reset_index(drop=True)


def test_discount_money_is_kept_apart_from_the_rewards():
    s = metrics.ledger_sums(DISCOUNTED, MONTHS)
    plain = metrics.ledger_sums(LEDGER, MONTHS)
    assert (s.cost, s.partner) == (plain.cost, plain.partner) == (800, 230)
    assert s.cost_m.tolist() == plain.cost_m.tolist()
    assert s.discount.tolist() == [400, 120]
    assert s.discount_m.tolist() == [[300, 120], [150, 0], [-50, 0], [0, 0]]
    assert s.by_kind.tolist() == plain.by_kind.tolist()  # discounts move no points


def test_discounts_are_inside_the_program_cost_and_counted_once():
    s = metrics.ledger_sums(DISCOUNTED, MONTHS)
    by_kind = dict(zip(metrics.KINDS, s.by_kind.tolist(), strict=True))
    # The run's revenue with the program is net of the 400 of discounts.
    x = metrics.RunInput(10, 9, 1, 2, 100_000, 110_000 - 400, Fraction(1, 50), 2, 0.5, {})
    f = metrics.figures_from(by_kind, s.cost, s.partner, x, URR, (int(s.discount[0]), int(s.discount[1])))
    assert f["discount_cost"] == 400 and f["discount_partner_funded"] == 120
    assert f["program_cost"] == 800 - 230 + 300 + (400 - 120)
    assert f["revenue_lift"] == 10_000 - 400
    assert f["incremental_margin"] == 5_000  # the margin on the lift before discounts: the discount is a cost, once
    assert "discount_cost" not in _run_figures(LEDGER, X)


def test_monthly_has_discount_columns_only_for_a_program_with_discounts():
    revenue = pd.DataFrame({"revenue_baseline": [1, 2, 3, 4], "revenue_with_program": [1, 3, 3, 5]}, index=MONTHS)
    members = pd.Series([2, 2, 2, 2], index=MONTHS)
    s = metrics.ledger_sums(DISCOUNTED, MONTHS)
    args = (s.cells, s.cost_m, s.partner_m, MONTHS, X, revenue, members, pd.DataFrame(index=MONTHS), [URR] * 4)
    m = metrics.monthly_from(*args, s.discount_m)
    assert m["discount_cost"].tolist() == [300, 150, -50, 0] and m["discount_partner_funded"].tolist() == [120, 0, 0, 0]
    assert list(m.columns).index("discount_cost") == list(m.columns).index("partner_funded") + 1
    assert "discount_cost" not in metrics.monthly_from(*args).columns


def test_a_program_with_discounts_reports_their_cost_monthly_and_in_the_summary():
    """A discount program against the same program without them, on the same data and seed: the
    discounts are what the ledger says, revenue with the program falls by them, the program cost
    rises by their unfunded part, and each month's column adds up to the summary."""
    import rulelang
    from simulator.sample_data import generate
    from tests.simulator.simkit import PROGRAM_TEXT

    tx, cu = generate(40, 6, 5)
    extra = ('discount plus_price: 10% when tier >= Plus\n'
             'discount grocery_deal: buy 1 get 1 free when category == "grocery" funded 50% by supplier\n'
             "discount coupon: 5 CNY when basket.total >= 60 CNY once per month\n")
    plain = rulelang.loads(PROGRAM_TEXT, "plain.loyalty")
    with_discounts = rulelang.loads(PROGRAM_TEXT.replace("expire after", extra + "expire after"), "discounts.loyalty")
    sc = scenario(runs=1, response={"spend_uplift": 0.0, "visit_uplift": 0.0})
    a = simulate(plain, tx, cu, sc, workers=1, engine=ENGINE)
    b = simulate(with_discounts, tx, cu, sc, workers=1, engine=ENGINE)
    led = b.ledger[b.ledger["kind"] == "discount"]
    given, funded = int(led["cost"].sum()), int(led["partner_share"].sum())
    assert given > 0 and 0 < funded < given and "discount_cost" not in a.summary and "discount_cost" not in a.monthly
    s = b.summary
    assert s["discount_cost"]["mean"] == given / 100 and s["discount_partner_funded"]["mean"] == funded / 100
    assert float(b.monthly["discount_cost"].sum()) == given / 100
    assert s["revenue_with_program"]["mean"] == pytest.approx(a.summary["revenue_with_program"]["mean"] - given / 100, abs=1e-6)
    run = b.per_run[0]
    assert run["program_cost"] == run["reward_cost"] - run["partner_funded"] + run["liability"] + given - funded


@pytest.mark.parametrize("seed", range(3))
def test_benefit_costs_are_summed_apart_from_the_points_money(seed):
    led = _random_ledger(seed)
    rng = np.random.default_rng(seed + 10)
    benefit = rng.random(len(led)) < 0.3  # some postings become benefits: money, no points
    led["kind"] = np.where(benefit, "benefit", led["kind"].astype(str))
    led.loc[benefit, "points"] = 0
    months = metrics.month_index(pd.Timestamp("2026-01-01"), pd.Timestamp("2026-03-31"))
    s = metrics.ledger_sums(led, months)
    month = led["timestamp"].dt.to_period("M")
    for part, rows in ((None, ~benefit), ("benefit", benefit)):
        cost, share = led.loc[rows, "cost"].sum(), led.loc[rows, "partner_share"].sum()
        by_month = [(led.loc[rows & (month == mo), "cost"].sum(), led.loc[rows & (month == mo), "partner_share"].sum()) for mo in months]
        if part is None:
            assert (s.cost, s.partner) == (cost, share)
            assert list(zip(s.cost_m.tolist(), s.partner_m.tolist(), strict=True)) == by_month
        else:
            assert s.benefit.tolist() == [cost, share]
            assert [tuple(c) for c in s.benefit_m.tolist()] == by_month
    assert s.by_kind.tolist() == [int(led.loc[led["kind"] == k, "points"].sum()) for k in metrics.KINDS]


def test_program_cost_adds_what_benefits_cost_less_their_partner_funding():
    p = {"earn": 700, "clawback": 50, "redeem": 300, "expire": 100, "capped": 40, "shortfall": 0}
    plain = metrics.figures_from(p, 800, 230, X, URR)
    with_benefits = metrics.figures_from(p, 800, 230, X, URR, benefit=(5_000, 1_250))
    assert "benefit_cost" not in plain
    assert (with_benefits["benefit_cost"], with_benefits["benefit_partner_funded"]) == (5_000, 1_250)
    assert with_benefits["program_cost"] == plain["program_cost"] + 3_750
    assert with_benefits["net_benefit"] == plain["net_benefit"] - 3_750


# --- pending points ------------------------------------------------------------------------------


def _probed_pending(model, tx: pd.DataFrame, cu: pd.DataFrame, closes: list, until) -> list[int]:
    """The oracle for `pending_by_month`: the reference interpreter's own pending balance
    (`Member.balance - Member.available`) read at each close through a probe row (an event no rule
    fires on, after the member's first row), summed over the members."""
    from rulelang import interpret
    from rulelang.engine.data import prepare

    first = tx.groupby("customer_id")["timestamp"].min()
    probes = [dict(customer_id=c, timestamp=t, event="probe", amount=0.0) for t in closes for c, f in first.items() if f < t]
    rows = pd.concat([tx, pd.DataFrame(probes)], ignore_index=True).sort_values(["customer_id", "timestamp"], kind="stable")
    records: list = []
    interpret.run(model, prepare(rows, model, cu, until), observer=records.append)
    at = {t: 0 for t in closes}
    for rec in records:
        if rec.rows and rec.rows[0]["event"] == "probe":
            at[rec.rows[0]["timestamp"]] += rec.pending
    return [at[t] for t in closes]


@pytest.mark.parametrize("window", [1, 14, 45])
def test_pending_by_month_is_what_the_interpreter_holds_pending_at_each_close(window):
    import rulelang
    from simulator.sample_data import generate
    from tests.simulator.simkit import PROGRAM_TEXT

    text = PROGRAM_TEXT.replace("round down", f"round down\npoints available after {window} days")
    model = rulelang.loads(text, "pending.loyalty").model
    tx, cu = generate(30, 5, 11)
    until = tx["timestamp"].max()
    ledger = rulelang.loads(text).evaluate(tx, cu, until=until, engine="reference")
    months = metrics.month_index(tx["timestamp"].min(), until)
    got = metrics.pending_by_month(ledger, months, window, until)
    # Each month's last moment (the last one: the period's end), as the simulator closes months.
    closes = [min(pd.Timestamp(m.end_time).floor("ns"), until) for m in months]
    assert got.tolist() == _probed_pending(model, tx, cu, closes, until)
    assert got.max() > 0


def test_a_program_with_pending_points_reports_them_monthly_and_in_the_summary():
    """Pending points against the same program without a window: the points pending at each
    month's end are a part of the closing points (the liability counts them), the roll-forward
    still balances to the point, and the summary's figure is the last month's."""
    import rulelang
    from simulator.sample_data import generate
    from tests.simulator.simkit import PROGRAM_TEXT

    tx, cu = generate(40, 6, 5)
    plain = rulelang.loads(PROGRAM_TEXT, "plain.loyalty")
    pending = rulelang.loads(PROGRAM_TEXT.replace("round down", "round down\npoints available after 14 days"), "pending.loyalty")
    sc = scenario(runs=2, redemption={"probability": 0.9, "choice": "cheapest"})
    a = simulate(plain, tx, cu, sc, workers=1, engine=ENGINE)
    b = simulate(pending, tx, cu, sc, workers=1, engine=ENGINE)
    assert "points_pending" not in a.summary and "points_pending" not in a.monthly
    m = b.monthly
    assert (m["points_pending"] >= 0).all() and (m["points_pending"] <= m["closing"]).all() and m["points_pending"].max() > 0
    assert (m["opening"] + m["issued"] - m["clawed_back"] - m["redeemed"] - m["expired"] == m["closing"]).all()
    for run, r in enumerate(b.per_run):
        last = m[m["run"] == run].iloc[-1]
        assert r["points_pending"] == int(last["points_pending"]) <= r["points_outstanding"] == int(last["closing"])
    # Waiting 14 days before points can be spent redeems fewer of them on the same visits.
    assert b.summary["points_redeemed"]["mean"] < a.summary["points_redeemed"]["mean"]


# --- automatic vouchers ---------------------------------------------------------------------------


def test_vouchers_cost_their_value_at_issue_times_the_use_rate():
    """A quarterly voucher: its redemptions (the ledger's `redeem` postings of the reward, row -1)
    are out of reward_cost, and voucher_cost is each month's cost at issue times the use rate
    (rounded half up per month, the summary's the months' sum), inside the program cost."""
    import rulelang
    from simulator.sample_data import generate
    from tests.simulator.simkit import PROGRAM_TEXT

    text = PROGRAM_TEXT.replace("reward small:", "reward voucher: 150 points cost 1.55 CNY funded 20% by acme issued every quarter\nreward small:")
    program = rulelang.loads(text, "vouchers.loyalty")
    tx, cu = generate(40, 9, 5)
    res = simulate(program, tx, cu, scenario(runs=2, vouchers={"use_rate": 0.7}), workers=1, engine=ENGINE)
    led = res.ledger
    issued = led[(led["kind"] == "redeem") & (led["reward"] == "voucher")]
    assert len(issued) and (issued["row"] == -1).all() and set(issued["timestamp"].dt.month) <= {3, 6, 9, 12}
    catalog = led[(led["kind"] == "redeem") & (led["reward"] != "voucher")]
    run = res.per_run[0]
    assert run["reward_cost"] == int(catalog["cost"].sum())
    m = res.monthly[res.monthly["run"] == 0]
    at_issue = issued.groupby(issued["timestamp"].dt.strftime("%Y-%m"))["cost"].sum()
    want = [int((Fraction(int(at_issue.get(month, 0))) * Fraction(7, 10) + Fraction(1, 2)) // 1) for month in m["month"]]
    assert [round(float(v) * 100) for v in m["voucher_cost"]] == want
    assert run["voucher_cost"] == sum(want) > 0
    assert run["voucher_partner_funded"] == sum(int((Fraction(int(c)) * Fraction(7, 10) + Fraction(1, 2)) // 1)
                                                 for c in issued.groupby(issued["timestamp"].dt.strftime("%Y-%m"))["partner_share"].sum())
    assert run["program_cost"] == (run["reward_cost"] - run["partner_funded"] + run["liability"]
                                   + run["voucher_cost"] - run["voucher_partner_funded"])
    assert res.summary["voucher_cost"]["mean"] == pytest.approx(sum(r["voucher_cost"] for r in res.per_run) / 2 / 100, abs=0.006)
