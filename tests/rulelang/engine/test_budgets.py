"""Budgets (docs/semantics.md, "Budgets"): both engines against a brute-force oracle that replays
the whole history in one global time order, and the result the same however the members are cut."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rulelang
from rulelang.engine import budgets
from rulelang.engine import compile as engine
from rulelang.engine.data import prepare

HEAD = 'program "t"\ncurrency CNY\npoint_cost 0.01 CNY\nearn base: 1 point per 3 CNY\n'


def _oracle(rules: list[tuple[str, int, int, int]], discount: tuple[int, int] | None, rows: pd.DataFrame) -> tuple[dict, dict]:
    """A plain sequential replay of every row in the global order (moment, customer, row): each
    fixed rule `(name, points, at_least, budget)` and the discount `(percent, budget)` gives an
    award while it is open and the award fits, and closes for good at the first that does not."""
    left = {name: budget for name, _, _, budget in rules}
    left_d = discount[1] * 100 if discount else 0
    open_ = set(left) | ({"launch"} if discount else set())
    given_points: dict = {name: [] for name in left}
    given_off: list = []
    order = rows.assign(row=np.arange(len(rows))).sort_values(["timestamp", "customer_id", "row"], kind="stable")
    for row in order.itertuples():
        minor = int((Decimal(str(row.amount)) * 100).to_integral_value(ROUND_HALF_UP))
        if discount and "launch" in open_ and minor > 0:
            off = int((Decimal(minor) * discount[0] / 100).to_integral_value(ROUND_HALF_UP))
            if off > 0:
                if off > left_d:
                    open_.discard("launch")
                else:
                    left_d -= off
                    given_off.append((row.customer_id, row.row, off))
        for name, points, at_least, _ in rules:
            if name in open_ and row.amount >= at_least:
                if points > left[name]:
                    open_.discard(name)
                else:
                    left[name] -= points
                    given_points[name].append((row.customer_id, row.row, points))
    return given_points, {"launch": given_off}


def _given(led: pd.DataFrame, names, kind: str, col: str) -> dict:
    out = {}
    for name in names:
        sel = led[(led["kind"] == kind) & (led["rule"] == name)]
        out[name] = sorted(zip(sel["customer_id"].astype(object), sel["row"].astype(int), sel[col].astype(int), strict=True))
    return out


rule_st = st.tuples(st.integers(1, 50), st.integers(0, 60), st.integers(1, 400))  # points, at least (CNY), budget


@st.composite
def budget_cases(draw):
    rules = [(f"r{i}", *draw(rule_st)) for i in range(draw(st.integers(1, 3)))]
    rules = [(n, p, a, max(b, p)) for n, p, a, b in rules]  # the checker refuses a budget below one award
    discount = draw(st.one_of(st.none(), st.tuples(st.integers(1, 50), st.integers(1, 60))))
    n = draw(st.integers(1, 40))
    # Few moments and customers, so that ties in time are common.
    day = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    who = draw(st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=n, max_size=n))
    amount = draw(st.lists(st.integers(0, 90), min_size=n, max_size=n))
    rows = pd.DataFrame({"customer_id": who, "timestamp": pd.to_datetime("2028-01-01") + pd.to_timedelta(day, "D"), "amount": amount})
    return rules, discount, rows.sort_values("timestamp", kind="stable", ignore_index=True)


def _text(rules, discount) -> str:
    text = HEAD + "".join(f"earn {n}: {p} points when amount >= {a} CNY budget {b} points\n" for n, p, a, b in rules)
    return text + (f"discount launch: {discount[0]}% budget {discount[1]} CNY\n" if discount else "")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(budget_cases())
def test_both_engines_give_what_a_global_sequential_replay_gives(case):
    rules, discount, rows = case
    program = rulelang.loads(_text(rules, discount))
    want_points, want_off = _oracle(rules, discount, rows)
    for eng in ("compiled", "reference"):
        led = program.evaluate(rows, engine=eng)
        assert _given(led, want_points, "earn", "points") == {k: sorted(v) for k, v in want_points.items()}, eng
        if discount:
            assert _given(led, ["launch"], "discount", "cost") == {"launch": sorted(want_off["launch"])}, eng


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(budget_cases(), st.integers(1, 4))
def test_the_members_cut_into_parts_give_the_whole_batch_s_ledger(case, parts):
    """The global step over parts (as the simulator's threads, slices and workers run them) gives
    every part the same closings, so the parts' ledgers are the whole batch's."""
    rules, discount, rows = case
    program = rulelang.loads(_text(rules, discount))
    model = program.model
    whole = program.evaluate(rows, engine="compiled")
    ids = sorted(rows["customer_id"].unique())
    groups = [ids[k::parts] for k in range(parts)]
    batches = [prepare(rows[rows["customer_id"].isin(g)], model) for g in groups if g]
    cp = engine.compile_model(model)
    _, done = budgets.settle(model, lambda closed: [cp.evaluate(b, threads=1, closed=closed) for b in batches])
    got = pd.concat([e.ledger.assign(customer_id=e.ledger["customer_id"].astype(object)) for e in done], ignore_index=True)
    key = ["customer_id", "timestamp", "kind", "rule", "points", "cost"]
    flat = lambda led: sorted(map(tuple, led[key].astype({"kind": object, "rule": object, "customer_id": object}).to_numpy().tolist()))  # noqa: E731
    # (Each part numbers its own rows: the ledgers agree on everything else.)
    assert flat(got) == flat(whole)


def test_the_first_award_that_does_not_fit_closes_the_rule_for_everyone():
    rows = pd.DataFrame({"customer_id": ["b", "a", "c", "a"], "timestamp": pd.to_datetime(["2028-01-01"] * 2 + ["2028-01-02", "2028-01-03"]),
                         "amount": [10, 10, 10, 10]})
    # 40 + 40 = 80 of 100; c's 40 does not fit: closed from c's row on, though a later 20 would fit.
    program = rulelang.loads(HEAD + "earn big: 40 points budget 100 points\nearn small: 20 points when amount > 50 CNY\n")
    for eng in ("compiled", "reference"):
        led = program.evaluate(rows, engine=eng)
        big = led[(led["kind"] == "earn") & (led["rule"] == "big")]
        # Ties at one moment go by customer id: a before b.
        assert sorted(big["customer_id"].astype(str)) == ["a", "b"], eng


def test_a_budget_that_is_never_reached_changes_nothing():
    rows = pd.DataFrame({"customer_id": ["a", "b"], "timestamp": pd.to_datetime(["2028-01-01", "2028-01-02"]), "amount": [30, 60]})
    with_budget = rulelang.loads(HEAD + "earn big: 40 points budget 1000 points\n").evaluate(rows)
    without = rulelang.loads(HEAD + "earn big: 40 points\n").evaluate(rows)
    pd.testing.assert_frame_equal(with_budget, without)


def test_closing_one_rule_can_change_another_s_awards_after_it_and_the_engines_agree():
    """Two budgeted rules under a per-member limit: once `first` closes, `second` gets the room
    the limit no longer gives to `first`, so `second` runs out sooner than it would alone."""
    text = HEAD + "earn first: 30 points budget 60 points\nearn second: 30 points budget 90 points\nlimit 40 points per day\n"
    rows = pd.DataFrame({"customer_id": list("abcdef"), "timestamp": pd.to_datetime([f"2028-01-0{k}" for k in range(1, 7)]),
                         "amount": [3] * 6})
    program = rulelang.loads(text)
    ref = program.evaluate(rows, engine="reference")
    comp = program.evaluate(rows, engine="compiled")
    pd.testing.assert_frame_equal(ref, comp)
    second = ref[(ref["kind"] == "earn") & (ref["rule"] == "second")]
    # a, b: base 1, first 30, second 9 (the limit); from c on first is closed (60 given) and second
    # gets 30 each, until its next 30 would pass 90 (9 + 9 + 30 + 30 = 78): closed from e on.
    assert second["points"].tolist() == [9, 9, 30, 30]
    assert budgets.figures(program.model, budgets.awards(program.model, [ref]), {})[1].used == 78


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_do_not_change_the_closings(threads):
    rng = np.random.default_rng(3)
    n = engine.THREAD_ROWS + 20_000  # enough rows for the members to be shared among threads
    rows = pd.DataFrame({"customer_id": rng.integers(0, 9000, n), "timestamp": pd.to_datetime("2028-01-01") + pd.to_timedelta(rng.integers(0, 90, n), "D"),
                         "amount": rng.integers(1, 80, n)}).sort_values("timestamp", kind="stable", ignore_index=True)
    model = rulelang.loads(HEAD + "earn bonus: 25 points when amount >= 40 CNY budget 200000 points\n").model
    batch = prepare(rows, model)
    led = engine.compile_model(model).evaluate(batch, threads=threads).ledger
    assert led[led["rule"] == "bonus"]["points"].sum() == 200000 // 25 * 25
    ref = engine.compile_model(model).evaluate(batch, threads=1).ledger
    pd.testing.assert_frame_equal(led, ref)
