"""Asserts and built-in invariants over concrete histories; the checks must be able to fail."""

from __future__ import annotations

import pandas as pd

from rulelang import ast
from rulelang.invariants import check_asserts, check_ledger, check_monotone, check_refund, observe, refund_neutral, search
from rulelang.program import loads

HEAD = 'program "T"\ncurrency CNY\npoint_cost 0.01 CNY\nexpire after 12 months\nreward r: 100 points cost 1 CNY\n'


def history(*rows) -> pd.DataFrame:
    """Rows of (timestamp, event, amount, transaction_id, reward) for one member."""
    return pd.DataFrame(
        [{"customer_id": "M1", "timestamp": t, "event": e, "amount": a, "transaction_id": tx, "reward": rw} for t, e, a, tx, rw in rows]
    )


def asserts(text: str, tx: pd.DataFrame):
    p = loads(text)
    return check_asserts(p.model, observe(p.model, tx), tuple(p.tree.of(ast.Assert)))


def test_assert_vocabulary_points_amount_and_rule_names():
    text = HEAD + "earn base: 1 point per 1 CNY\nearn bonus: 10 points when amount >= 50\nassert points <= 1.1 * amount\n"
    ok = history(("2026-01-01 10:00", "purchase", 100, "T1", ""))
    bad = history(("2026-01-01 10:00", "purchase", 50, "T1", ""))
    assert asserts(text, ok) == []
    (v,) = asserts(text, bad)
    assert v.row == 0 and v.rule == "bonus" and dict(v.values) == {"amount": "50", "points": "60"}


def test_rule_names_are_exact_points_before_rounding():
    text = HEAD + "earn base: 1 point per 1 CNY\nround nearest\nassert base <= amount\n"
    assert asserts(text, history(("2026-01-01 10:00", "purchase", 0.5, "T1", ""))) == []


def test_balance_and_period_totals():
    text = HEAD + "earn base: 1 point per 1 CNY\nassert points_this_month <= 100\nassert balance <= 120\n"
    tx = history(("2026-01-01 10:00", "purchase", 60, "T1", ""), ("2026-01-20 10:00", "purchase", 50, "T2", ""), ("2026-02-01 10:00", "purchase", 20, "T3", ""))
    found = asserts(text, tx)
    assert [(v.span.line, v.row) for v in found] == [(7, 1), (8, 2)]


def test_tier_comes_from_the_engine():
    text = HEAD + "tiers by spend over 365 days {\n  Green from 0\n  Gold from 100\n}\nearn base: 1 point per 1 CNY\nassert tier < Gold\n"
    tx = history(("2026-01-01 10:00", "purchase", 100, "T1", ""), ("2026-01-02 10:00", "purchase", 1, "T2", ""))
    assert [v.row for v in asserts(text, tx)] == [1]


def _ledger(*posts) -> pd.DataFrame:
    cols = ["customer_id", "timestamp", "kind", "rule", "points", "earned_on", "reward", "cost", "partner_share", "row"]
    return pd.DataFrame([dict(zip(cols, p, strict=True)) for p in posts], columns=cols).astype(
        {"timestamp": "datetime64[ns]", "earned_on": "datetime64[ns]", "points": "int64", "row": "int64"}
    )


def _tampered(text: str, tx: pd.DataFrame, ledger: pd.DataFrame):
    p = loads(text)
    obs = observe(p.model, tx)
    obs.ledger = ledger
    return {v.check for v in check_ledger(p.model, obs)}


def test_builtin_ledger_checks_hold_on_the_engine_and_catch_tampering():
    text = HEAD + "earn base: 1 point per 1 CNY\nlimit 100 points per day\n"
    tx = history(("2026-01-01 10:00", "purchase", 80, "T1", ""), ("2026-01-01 11:00", "redeem", 0, "", "r"))
    p = loads(text)
    assert check_ledger(p.model, observe(p.model, tx)) == []
    d = "2026-01-01"
    over_cap = _ledger(("M1", d, "earn", "base", 180, d, "", 0, 0, 0))
    negative = _ledger(("M1", d, "earn", "base", 80, d, "", 0, 0, 0), ("M1", d, "redeem", "", 100, d, "r", 100, 0, 1))
    assert "cap" in _tampered(text, tx, over_cap)
    assert {"balance", "ledger"} <= _tampered(text, tx, negative)


def test_frequency_limit_check_catches_extra_firings():
    text = HEAD + "earn gift: 5 points once per month\n"
    tx = history(("2026-01-01 10:00", "purchase", 1, "T1", ""), ("2026-01-02 10:00", "purchase", 1, "T2", ""))
    d1, d2 = "2026-01-01", "2026-01-02"
    twice = _ledger(("M1", d1, "earn", "gift", 5, d1, "", 0, 0, 0), ("M1", d2, "earn", "gift", 5, d2, "", 0, 0, 1))
    assert "frequency" in _tampered(text, tx, twice)


def test_full_refund_restores_the_balance():
    text = HEAD + "earn base: 1 point per 1 CNY\nearn big: 50 points when amount >= 100\n"
    p = loads(text)
    tx = history(("2026-01-01 10:00", "purchase", 120, "T1", ""), ("2026-01-05 10:00", "purchase", 30, "T2", ""))
    assert refund_neutral(p.model)
    assert check_refund(p.model, tx) == []


def test_refund_check_restricted_when_tiers_make_baskets_matter():
    text = HEAD + "tiers by spend over 365 days {\n  Green from 0\n  Gold from 100\n}\nearn base: 1 point per 1 CNY\n"
    assert not refund_neutral(loads(text).model)


def test_monotonicity_skipped_when_lint_says_it_is_intended():
    text = HEAD + "earn small: 20 points when amount < 10\n"
    p = loads(text)
    assert check_monotone(p.model, history(("2026-01-01 10:00", "purchase", 5, "T1", ""))) == []


def test_monotonicity_violation_found_with_hidden_arithmetic():
    text = HEAD + "earn small: 20 points when 10 - amount > 0\n"
    p = loads(text)
    (v,) = check_monotone(p.model, history(("2026-01-01 10:00", "purchase", 5, "T1", "")))
    assert v.check == "monotone" and v.rule == "small"


def test_search_is_deterministic_for_a_seed():
    p = loads(HEAD + "earn base: 1 point per 1 CNY\nearn weekend: 4x base when weekday == sat\nassert points <= 3 * amount\n")
    a = search(p.model, tuple(p.tree.of(ast.Assert)), examples=20, seed=3)
    b = search(p.model, tuple(p.tree.of(ast.Assert)), examples=20, seed=3)
    assert a.violation is not None and a.violation == b.violation
    pd.testing.assert_frame_equal(a.transactions, b.transactions)
    assert len(a.transactions) == 1


def test_discounts_stay_within_the_price_and_the_check_catches_tampering():
    from rulelang.invariants import check_discounts

    text = HEAD + "earn base: 1 point per 1 CNY\ndiscount d: 30%\ndiscount c: 50 CNY\nassert paid <= amount\n"
    p = loads(text)
    tx = history(("2026-01-01 10:00", "purchase", 40, "T1", ""), ("2026-01-01 10:00", "purchase", 25, "T1", ""),
                 ("2026-01-02 10:00", "refund", 20, "T1", ""), ("2026-01-03 10:00", "refund", 500, "T1", ""))
    obs = observe(p.model, tx)
    assert check_discounts(p.model, obs) == [] and asserts(text, tx) == []
    paid = next(r for r in obs.records if r.paid).paid
    assert sorted(paid.values()) == [0, 0]  # 30% then 50 CNY: 65 - 19.5 = 45.5 left, all of it taken
    first = next(r for r in obs.records if r.paid)
    first.paid[next(iter(first.paid))] = -1  # a line charged below nothing
    found = check_discounts(p.model, obs)
    assert {v.check for v in found} == {"discount"} and len(found) == 2  # the line, and the postings no longer add up
