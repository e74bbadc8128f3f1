"""The reference interpreter: ledger identity on the example programs, missing values, details."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rulelang
from rulelang import values as V
from rulelang.engine import ledger as L
from rulelang.engine.data import RedemptionPolicy
from tests.conftest import PROGRAMS as EXAMPLE_PROGRAMS
from tests.conftest import TARGET_PROGRAMS
from tests.strategies import diff_history, diff_program


def _sample(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    try:
        from simulator.sample_data import generate
    except ImportError:  # the simulator's generator is optional here
        generate = None
    if generate is not None:
        tx, cu = generate(12, 14, seed)
    else:
        rng = np.random.default_rng(seed)
        n = 300
        tx = pd.DataFrame({
            "customer_id": rng.choice([f"C{i}" for i in range(12)], n),
            "timestamp": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 420 * 24, n), "h"),
            "amount": rng.integers(100, 30000, n) / 100,
            "category": rng.choice(["coffee", "pastry", "fuel"], n),
            "sku": rng.choice(["CEREAL-500G", "MILK"], n),
            "channel": rng.choice(["store", "online"], n),
        })
        cu = pd.DataFrame({"customer_id": [f"C{i}" for i in range(12)], "birthday": "1990-06-15"})
    tx = tx.sort_values(["customer_id", "timestamp"], kind="stable").reset_index(drop=True)
    rng = np.random.default_rng(seed + 1)
    tx["_u_redeem"] = rng.random(len(tx))
    tx["_u_choice"] = rng.random(len(tx))
    return tx, cu


def _check_identity(ledger: pd.DataFrame) -> None:
    sign = ledger["kind"].map(L.SIGN).to_numpy()
    for _, m in ledger.assign(delta=ledger["points"] * sign).groupby("customer_id", sort=False):
        running = m["delta"].cumsum().to_numpy()
        assert (running >= 0).all(), "the balance went below zero"
        assert (m["points"] >= 0).all()
        assert (m["timestamp"].diff().dropna() >= pd.Timedelta(0)).all(), "postings out of time order"
        # Expiry and redemption take lots that exist: per lot, never more out than in.
        per_lot = m[m["kind"] != "capped"].groupby("earned_on")["delta"].sum()
        assert (per_lot >= 0).all()


@pytest.mark.parametrize("path", EXAMPLE_PROGRAMS + TARGET_PROGRAMS, ids=lambda p: f"{p.parent.name}/{p.stem}")
@pytest.mark.parametrize("choice", [None, "cheapest", "dearest", "random"])
def test_ledger_identity_on_example_programs(path, choice):
    prog = rulelang.load(path)
    tx, cu = _sample(7)
    policy = RedemptionPolicy(0.6, choice) if choice else None
    ledger = prog.evaluate(tx, cu, until="2027-06-30", engine="reference", redemption=policy)
    assert list(ledger.columns) == list(L.COLUMNS)
    assert (ledger["kind"] == "earn").any()
    if choice:
        assert (ledger["kind"] == "redeem").any()
    _check_identity(ledger)
    assert ledger["customer_id"].tolist() == sorted(ledger["customer_id"].tolist())


def test_ledger_dtypes_match_the_shared_frame_builder():
    prog = rulelang.load(EXAMPLE_PROGRAMS[0])
    tx, cu = _sample(3)
    got = prog.evaluate(tx, cu, engine="reference")
    one = L.frame(["x"], *[np.zeros(1, dtype=np.int64)] * 10, ("r",), ("w",), np.zeros(1, dtype=np.int64), ("t",))
    assert got.dtypes.astype(str).tolist() == one.dtypes.astype(str).tolist()
    again = prog.evaluate(tx, cu, engine="reference")
    pd.testing.assert_frame_equal(got, again)


def _run(program: str, rows: list[dict], customers=None, **kw) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    df.insert(0, "customer_id", df.pop("customer_id") if "customer_id" in df else "a")
    return rulelang.loads(program).evaluate(df, customers, engine="reference", **kw)


def _earned(ledger: pd.DataFrame) -> dict:
    e = ledger[ledger["kind"] == "earn"]
    return e.groupby("rule")["points"].sum().to_dict()


def test_missing_customer_attribute_makes_comparison_false_and_its_negation_true():
    program = """currency CNY
earn bday: 100 points when month(date) == month(customer.birthday)
earn other: 7 points when not (month(date) == month(customer.birthday))
"""
    customers = pd.DataFrame({"customer_id": ["a", "b"], "birthday": ["1990-03-05", None]})
    rows = [
        {"customer_id": "a", "timestamp": "2026-03-01", "amount": 1},
        {"customer_id": "b", "timestamp": "2026-03-01", "amount": 1},
        {"customer_id": "z", "timestamp": "2026-03-01", "amount": 1},  # absent from the customers table
    ]
    ledger = _run(program, rows, customers)
    by = {c: _earned(g) for c, g in ledger.groupby("customer_id")}
    assert by == {"a": {"bday": 100}, "b": {"other": 7}, "z": {"other": 7}}


def test_division_by_zero_is_missing():
    program = """currency CNY
column discount: number
earn odd: 5 points when amount / discount > 1
earn even: 3 points when not (amount / discount > 1)
"""
    ledger = _run(program, [{"timestamp": "2026-03-01", "amount": 10, "discount": 0}, {"timestamp": "2026-03-02", "amount": 10, "discount": 2}])
    assert ledger[["rule", "points"]].values.tolist() == [["even", 3], ["odd", 5]]


def test_missing_text_is_the_empty_string():
    program = 'currency CNY\nearn blank: 4 points when category == ""\n'
    ledger = _run(program, [{"timestamp": "2026-03-01", "amount": 1, "category": None}, {"timestamp": "2026-03-02", "amount": 1, "category": "tea"}])
    assert ledger["row"].tolist() == [0]


def test_enrolled_from_enroll_row_then_days_enrolled():
    program = """currency CNY
earn loyal: 10 points when customer.days_enrolled >= 30
earn start: 1 point when customer.enrolled == 2026-01-05
"""
    rows = [
        {"timestamp": "2026-01-01", "amount": 1, "event": "purchase"},
        {"timestamp": "2026-01-05", "amount": 0, "event": "enroll"},
        {"timestamp": "2026-02-03", "amount": 1, "event": "purchase"},
        {"timestamp": "2026-02-04", "amount": 1, "event": "purchase"},
    ]
    ledger = _run(program, rows)
    assert ledger[["row", "rule"]].values.tolist() == [[0, "start"], [2, "start"], [3, "loyal"], [3, "start"]]


def test_enrolled_from_customers_file_wins():
    program = "currency CNY\nearn loyal: 10 points when customer.days_enrolled >= 30\n"
    customers = pd.DataFrame({"customer_id": ["a"], "enrolled": ["2025-01-01"]})
    ledger = _run(program, [{"timestamp": "2026-01-01", "amount": 1}], customers)
    assert _earned(ledger) == {"loyal": 10}


def test_multiplier_needs_target_points_after_its_limit_and_capped_firings_count():
    program = """currency CNY
earn visit: 10 points once per day
earn double: 2x visit
limit 15 points per day
"""
    rows = [{"timestamp": "2026-03-01 10:00", "amount": 1}, {"timestamp": "2026-03-01 11:00", "amount": 1}]
    ledger = _run(program, rows)
    # The first visit earns 10 + 10, capped to 15; the second is over `visit`'s limit, so nothing.
    assert ledger[["kind", "rule", "points", "row"]].values.tolist() == [["earn", "visit", 10, 0], ["earn", "double", 5, 0], ["capped", "double", 5, 0]]


def test_points_metric_tiers_and_visits():
    program = """currency CNY
tiers by visits over 7 days {
  New from 0
  Regular from 2
}
earn base: 1 point per 1 CNY
earn reg: 5 points when tier == Regular
"""
    rows = [
        {"timestamp": "2026-03-01 10:00", "amount": 1, "transaction_id": "A"},
        {"timestamp": "2026-03-01 10:00", "amount": 1, "transaction_id": "A"},
        {"timestamp": "2026-03-02 10:00", "amount": 1, "transaction_id": "B"},
        {"timestamp": "2026-03-03 10:00", "amount": 1, "transaction_id": "C"},
    ]
    ledger = _run(program, rows)
    # Basket A is one visit, so only C (after A and B) is Regular.
    assert ledger[ledger["rule"] == "reg"]["row"].tolist() == [3]


def test_redeem_row_declined_counts_and_posts_nothing():
    program = "currency CNY\nearn base: 1 point per 1 CNY\nreward cup: 50 points cost 2 CNY\n"
    rows = [{"timestamp": "2026-03-01", "amount": 40, "event": "purchase", "reward": None},
            {"timestamp": "2026-03-02", "amount": 0, "event": "redeem", "reward": "cup"}]
    ledger = _run(program, rows)
    assert ledger["kind"].tolist() == ["earn"] and ledger.attrs["declined_redemptions"] == 1


def test_calendar_helpers():
    assert V.add_months(dt.date(2027, 1, 31), 1) == dt.date(2027, 2, 28)
    assert V.add_months(dt.date(2028, 2, 29), 12) == dt.date(2029, 2, 28)
    assert V.add_months(dt.date(2026, 3, 31), -1) == dt.date(2026, 2, 28)
    assert V.period_key(dt.date(2026, 3, 8), "week") == V.period_key(dt.date(2026, 3, 2), "week")
    assert V.period_key(dt.date(2026, 3, 9), "week") != V.period_key(dt.date(2026, 3, 8), "week")
    assert V.end_of_year(2026).value == pd.Timestamp("2027-01-01").value - 1


def test_rounding_helpers():
    assert V.half_up(Fraction(5, 2)) == 3 and V.half_up(Fraction(-5, 2)) == -2
    assert V.largest_remainder([Fraction(4, 3), Fraction(2, 3)], 2) == [1, 1]
    assert V.largest_remainder([Fraction(5, 3), Fraction(5, 3)], 3) == [2, 1]
    assert V.to_minor(Fraction(3, 40), 2) == 8


def test_cells():
    assert V.cell_number(0.1) == Fraction(1, 10)
    assert V.cell_number("") is V.MISSING and V.cell_number(float("nan")) is V.MISSING
    assert V.cell_text(12.0) == "12" and V.cell_text(None) == ""
    assert V.cell_money(1.005, 2) == Fraction(100, 100)


TIERED = """currency CNY
tiers by spend over 30 days {
  Base from 0
  Gold from 100
}
earn base: 1 point per 1 CNY
earn boost: 2x base when tier >= Gold
expire after 60 days
reward r: 50 points cost 1 CNY
"""


def test_each_posting_carries_the_tier_it_was_made_at():
    # 120 CNY on 1 Jan (earned at Base: nothing before it), 10 CNY on 10 Jan (Gold: the 120 are in
    # the 30-day window) and 10 CNY on 20 Feb (Base again: the window lost them); the first lot
    # expires on 2 Mar, when the window holds only the 20 Feb purchase (Base); the second on
    # 11 Mar, at Base too.
    rows = [
        {"timestamp": "2026-01-01 10:00", "amount": 120},
        {"timestamp": "2026-01-10 10:00", "amount": 10},
        {"timestamp": "2026-02-20 10:00", "amount": 10},
    ]
    ledger = _run(TIERED, rows, until="2026-03-31")
    shown = ledger[["timestamp", "kind", "rule", "points", "tier"]].astype({"timestamp": str, "kind": str, "rule": str, "tier": str})
    assert shown.values.tolist() == [
        ["2026-01-01 10:00:00", "earn", "base", 120, "Base"],
        ["2026-01-10 10:00:00", "earn", "base", 10, "Gold"],
        ["2026-01-10 10:00:00", "earn", "boost", 10, "Gold"],
        ["2026-02-20 10:00:00", "earn", "base", 10, "Base"],
        ["2026-03-02 00:00:00", "expire", "", 120, "Base"],
        ["2026-03-11 00:00:00", "expire", "", 20, "Base"],
    ]


def test_an_expiry_carries_the_tier_held_at_its_moment_not_the_next_units():
    # Over 61 days, the 120 CNY of 1 Jan stay in the window until 3 Mar 10:00: the lot expires on
    # 2 Mar at Gold, and the next unit (5 Mar) is earned at Base.
    text = TIERED.replace("over 30 days", "over 61 days")
    rows = [
        {"timestamp": "2026-01-01 10:00", "amount": 120},
        {"timestamp": "2026-03-05 10:00", "amount": 10},
    ]
    ledger = _run(text, rows, until="2026-03-31")
    shown = ledger[["timestamp", "kind", "points", "tier"]].astype({"timestamp": str, "kind": str, "tier": str})
    assert shown.values.tolist() == [
        ["2026-01-01 10:00:00", "earn", 120, "Base"],
        ["2026-03-02 00:00:00", "expire", 120, "Gold"],  # 120 CNY within the 61 days before 2 Mar
        ["2026-03-05 10:00:00", "earn", 10, "Base"],  # 63 days after 1 Jan: out of the window
    ]


def test_a_program_without_tiers_leaves_the_tier_empty():
    ledger = _run("currency CNY\nearn a: 1 point per 1 CNY\n", [{"timestamp": "2026-01-01", "amount": 5}])
    assert ledger["tier"].astype(str).tolist() == [""] and ledger["tier"].cat.categories.tolist() == [""]


# --- per-unit points and basket sums ------------------------------------------------------------

_SHAPES = """currency EUR
earn cereal_units: 10 points per unit when sku == "CEREAL-500G"
earn big_order:    100 points when basket.total(category != "delivery") >= 100 EUR
earn yogurts:      20 points when basket.quantity(category == "yogurt") >= 3
"""


def _shapes_history(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    baskets = 200
    lines = rng.integers(1, 5, baskets)
    basket = np.repeat(np.arange(baskets), lines)
    n = len(basket)
    quantity = rng.choice(np.array([1, 2, 3, 2.5, np.nan, -1], dtype=float), n)
    return pd.DataFrame({
        "customer_id": "m",
        "timestamp": (pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(baskets), unit="h"))[basket],
        "transaction_id": [f"T{b}" for b in basket],
        "amount": rng.integers(0, 6000, n) / 100,
        "sku": rng.choice(["CEREAL-500G", "MILK"], n),
        "category": rng.choice(["delivery", "yogurt", "dairy"], n),
        "quantity": quantity,
    })


def test_per_unit_points_and_basket_sums_against_pandas():
    """Each basket's points from an independent pandas computation of the same definitions: whole
    units of the cereal lines (missing, negative: none), the non-delivery total, the yogurt count
    (missing when a counted line has no quantity)."""
    tx = _shapes_history(3)
    ledger = rulelang.loads(_SHAPES).evaluate(tx, engine="reference")
    units = np.where(tx["quantity"].isna() | (tx["quantity"] < 0), 0, np.floor(tx["quantity"].fillna(0)))
    cereal = (tx["sku"] == "CEREAL-500G") * units * 10
    g = tx.assign(cereal=cereal, counted=np.where(tx["category"] != "delivery", tx["amount"], 0.0),
                  yog=np.where(tx["category"] == "yogurt", tx["quantity"], 0.0),
                  yog_missing=(tx["category"] == "yogurt") & tx["quantity"].isna()).groupby("transaction_id", sort=False)
    want = pd.DataFrame({
        "cereal_units": g["cereal"].sum(),
        "big_order": np.where(g["counted"].sum().round(2) >= 100, 100, 0),
        "yogurts": np.where(~g["yog_missing"].any() & (g["yog"].sum() >= 3), 20, 0),
    }, index=g["cereal"].sum().index)
    first_row = tx.reset_index().groupby("transaction_id", sort=False)["index"].first()
    got = ledger[ledger["kind"] == "earn"].pivot_table(index="row", columns="rule", values="points", aggfunc="sum", observed=True)
    got = got.reindex(first_row.to_numpy()).reindex(columns=want.columns).fillna(0).astype(int)
    assert (got.to_numpy() == want.to_numpy().astype(int)).all()
    assert want["big_order"].any() and want["yogurts"].any() and want["cereal_units"].any()


def test_per_unit_points_need_a_quantity_column():
    tx = _shapes_history(4).drop(columns="quantity")
    with pytest.raises(rulelang.LoyaltyError, match="column `quantity` is used by rule\\(s\\) cereal_units"):
        rulelang.loads(_SHAPES).evaluate(tx, engine="reference")


def test_basket_quantity_of_a_condition_counts_lines_without_a_quantity_column():
    program = rulelang.loads('currency EUR\nearn two: 5 points when basket.quantity(category == "a") >= 2\n')
    tx = pd.DataFrame({"customer_id": "m", "timestamp": "2026-01-01 10:00", "transaction_id": "T1",
                       "amount": [1.0, 2.0, 3.0], "category": ["a", "b", "a"]})
    ledger = program.evaluate(tx, engine="reference")
    assert ledger[["kind", "rule", "points"]].values.tolist() == [["earn", "two", 5]]
    ledger = program.evaluate(tx.assign(category=["a", "b", "b"]), engine="reference")
    assert ledger.empty


# --- discounts ----------------------------------------------------------------------------------

_DISCOUNTS = """currency EUR
earn base: 1 point per 1 EUR
discount dairy:  10% when category == "dairy"
discount big:    12.5% when amount >= 30 EUR
discount coupon: 7 EUR when basket.total >= 60 EUR
discount bogof:  buy 2 get 1 free when category == "yogurt" funded 50% by supplier
"""


def _half_up(num: int, den: int) -> int:
    return (2 * num + den) // (2 * den)


def _oracle_basket(lines: list[tuple[int, str, int]]) -> tuple[list[int], dict]:
    """What each line pays and each discount takes off, straight from docs/semantics.md, with the
    buy-get units listed one by one: lines are (amount in cents, category, whole units)."""
    offers = {"dairy": [], "big": [], "bogof": [0] * len(lines)}
    for amount, category, _ in lines:
        offers["dairy"].append(_half_up(amount * 10, 100) if category == "dairy" and amount > 0 else 0)
        offers["big"].append(_half_up(amount * 125, 1000) if amount >= 3000 else 0)
    units = [(i, Fraction(a, u)) for i, (a, c, u) in enumerate(lines) if c == "yogurt" and a > 0 and u > 0 for _ in range(u)]
    units.sort(key=lambda x: (-x[1], x[0]))  # dearest first, ties in line order (a stable sort)
    free = [0] * len(lines)
    for p in range(len(units) // 3 * 3):
        if p % 3 == 2:
            free[units[p][0]] += 1
    for i, (a, _, u) in enumerate(lines):
        if free[i]:
            offers["bogof"][i] = _half_up(free[i] * a, u)
    off = [0] * len(lines)
    given = {"dairy": 0, "big": 0, "bogof": 0, "coupon": 0}
    for i in range(len(lines)):
        best = max(("dairy", "big", "bogof"), key=lambda d: (offers[d][i], -("dairy", "big", "bogof").index(d)))
        if offers[best][i] > 0:
            off[i] = offers[best][i]
            given[best] += off[i]
    if sum(a for a, _, _ in lines) >= 6000:
        left = [max(a - o, 0) for (a, _, _), o in zip(lines, off, strict=True)]
        amount = min(700, sum(left))
        if amount > 0:
            shares = V.largest_remainder([Fraction(amount * x, sum(left)) for x in left], amount)
            off = [o + s for o, s in zip(off, shares, strict=True)]
            given["coupon"] = amount
    return [a - o for (a, _, _), o in zip(lines, off, strict=True)], given


def test_discounts_against_a_reference_worked_from_the_definitions():
    """Every basket's discount postings and points from an independent computation of the
    semantics (offers per line, the largest, the coupon by largest remainder, units listed)."""
    rng = np.random.default_rng(11)
    baskets = 300
    size = rng.integers(1, 6, baskets)
    basket = np.repeat(np.arange(baskets), size)
    n = len(basket)
    tx = pd.DataFrame({
        "customer_id": "m",
        "timestamp": (pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(baskets), unit="h"))[basket],
        "transaction_id": [f"T{b}" for b in basket],
        "amount": rng.integers(0, 5000, n) / 100,  # (a negative purchase line is a refund: its own unit)
        "category": rng.choice(["dairy", "yogurt", "bakery"], n),
        "quantity": rng.integers(0, 5, n),
    })
    ledger = rulelang.loads(_DISCOUNTS).evaluate(tx, engine="reference")
    cents = np.round(tx["amount"].to_numpy() * 100).astype(int)
    for b in range(baskets):
        at = np.flatnonzero(basket == b)
        paid, given = _oracle_basket([(int(cents[i]), tx["category"].iat[i], int(tx["quantity"].iat[i])) for i in at])
        mine = ledger[ledger["row"] == at[0]]
        got = {str(r): int(c) for r, c in zip(mine.loc[mine["kind"] == "discount", "rule"], mine.loc[mine["kind"] == "discount", "cost"], strict=True)}
        assert got == {d: x for d, x in given.items() if x > 0}, b
        share = mine.loc[(mine["kind"] == "discount") & (mine["rule"] == "bogof"), "partner_share"]
        assert share.tolist() == ([_half_up(given["bogof"], 2)] if given["bogof"] else [])
        earned = int(mine.loc[mine["kind"] == "earn", "points"].sum())
        assert earned == max(sum(max(p, 0) for p in paid), 0) // 100, b  # 1 point per EUR paid, rounded down once
    assert set(ledger.loc[ledger["kind"] == "discount", "rule"].astype(str)) == {"dairy", "big", "coupon", "bogof"}


def test_a_full_refund_reverses_every_discount_and_a_program_without_discounts_pays_the_amount():
    tx = pd.DataFrame({
        "customer_id": "m", "timestamp": ["2026-03-01 10:00"] * 3 + ["2026-03-02 10:00", "2026-03-03 10:00"],
        "transaction_id": ["T1"] * 3 + ["T1", "T1"], "event": ["purchase"] * 3 + ["refund", "refund"],
        "amount": [40.00, 25.55, 13.10, 30.00, 100.00], "category": ["dairy", "yogurt", "dairy", "", ""], "quantity": [1, 3, 2, 0, 0],
    })
    ledger = rulelang.loads(_DISCOUNTS).evaluate(tx, engine="reference")
    d = ledger[ledger["kind"] == "discount"]
    assert (d.groupby("rule", observed=True)["cost"].sum() == 0).all() and (d["partner_share"].sum() == 0)
    assert (d.loc[d["row"] == 0, "cost"] > 0).all() and (d.loc[d["row"] > 0, "cost"] < 0).all()
    plain = rulelang.loads("currency EUR\nearn base: 1 point per 1 EUR\n").evaluate(tx.iloc[:3], engine="reference")
    assert plain["kind"].astype(str).tolist() == ["earn"] and int(plain["points"].iloc[0]) == 78  # 78.65 EUR, no discount


# --- best of ------------------------------------------------------------------------------------

_PROMOTIONS = """currency CNY
column category: text
earn base:     1 point per 1 CNY
earn pastry:   2x base when category == "pastry"
earn tuesday:  3x base when weekday == tue
earn big_shop: 30 points when basket.total >= 50
earn coffee:   5 points when category == "coffee"
"""


def _best_of_oracle(ungrouped: pd.DataFrame, group: list[str]) -> list[tuple]:
    """Each basket's earn postings without the group, then of the group's rules only the largest
    (ties: the first listed): a brute force over the ungrouped ledger (whole points only)."""
    out = []
    for _, unit in ungrouped[ungrouped["kind"] == "earn"].groupby("row", sort=True):
        points = dict(zip(unit["rule"].astype(str), unit["points"], strict=True))
        contenders = [(points[r], -k, r) for k, r in enumerate(group) if points.get(r, 0) > 0]
        kept = max(contenders)[2] if contenders else None
        out += [(int(row), rule, int(p)) for row, rule, p in zip(unit["row"], unit["rule"].astype(str), unit["points"], strict=True)
                if rule not in group or rule == kept]
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 9), st.sampled_from(["pastry", "coffee", "tea"]), st.sampled_from([0, 5, 10, 15, 30, 45])), min_size=1, max_size=12),
       st.permutations(["pastry", "tuesday", "big_shop", "coffee"]).flatmap(lambda p: st.integers(2, 4).map(lambda k: p[:k])))
def test_best_of_keeps_the_largest_award_of_each_basket(lines, group):
    """Whole-point awards, no limits or caps: the grouped ledger is the ungrouped one with, per
    basket, only the group's largest award kept; both engines."""
    frame = pd.DataFrame({
        "customer_id": "a", "timestamp": [f"2026-03-0{day} 10:00" for day, _, _ in lines],
        "transaction_id": [f"T{day}" for day, _, _ in lines], "category": [c for _, c, _ in lines], "amount": [a for _, _, a in lines],
    }).sort_values("timestamp", kind="stable")
    ungrouped = rulelang.loads(_PROMOTIONS).evaluate(frame, engine="reference")
    want = _best_of_oracle(ungrouped, list(group))
    grouped = rulelang.loads(_PROMOTIONS + "best of " + ", ".join(group) + "\n")
    for engine in ("reference", "compiled"):
        got = grouped.evaluate(frame, engine=engine)
        earned = got[got["kind"] == "earn"]
        assert [(int(r), str(u), int(p)) for r, u, p in zip(earned["row"], earned["rule"], earned["points"], strict=True)] == want


@settings(max_examples=150, deadline=None)
@given(text=diff_program(), history=diff_history(), window=st.sampled_from([1, 7, 30]))
def test_redemptions_spend_only_points_past_the_pending_window(text, history, window):
    """Whatever the program and history, every point a redemption spends (a data row's or the
    redemption policy's) was earned at least `window` days before the day it is spent; and a
    refund inside the window never leaves a shortfall."""
    if "points available after" not in text:
        text += f"points available after {window} days\n"
    program = rulelang.loads(text)
    frame, customers, policy = history
    ledger = program.evaluate(frame, customers, until="2029-06-30", engine="reference", redemption=policy)
    days = program.model.pending_days
    spent = ledger[ledger["kind"] == "redeem"]
    assert (spent["earned_on"] + pd.Timedelta(days=days) <= spent["timestamp"].dt.normalize()).all()
    expired = ledger[ledger["kind"] == "expire"]
    for _, s in ledger[ledger["kind"] == "shortfall"].iterrows():
        refund = frame.iloc[int(s["row"])]
        bought = frame[(frame["transaction_id"] == refund["transaction_id"]) & (frame["customer_id"] == refund["customer_id"])
                       & (frame["amount"] >= 0)]
        day = pd.Timestamp(bought["timestamp"].min()).normalize()
        lost = expired[(expired["customer_id"] == s["customer_id"]) & (expired["earned_on"] == day)]
        # Inside the window the basket's own lot is pending and whole, unless expiry took it.
        assert s["timestamp"] >= day + pd.Timedelta(days=days) or not lost.empty
