"""`loyalty test`: broken programs are caught with small counterexamples, clean ones pass."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner

import simulator.inspection as cli
from rulelang import ast
from rulelang.invariants import search
from rulelang.program import load, loads
from tests.conftest import PROGRAMS, TARGET_PROGRAMS

BROKEN = sorted((Path(__file__).parent / "broken").glob("*.loyalty"))
# What each broken program must be caught by.
EXPECTED = {
    "best_of_gift": ("assert", "spring_gift"),
    "bonus_any_purchase": ("assert", "bonus"),
    "net_of_delivery": ("assert", "cereal_units"),
    "once_bonus_doubled": ("assert", "weekend"),
    "review_budget": ("assert", None),
    "small_basket_bonus": ("monotone", "starter"),
    "stacked_multipliers": ("assert", None),
    "tier_bonus": ("assert", "gold"),
    "tier_alternative_bonus": ("assert", "gold"),  # reached through the spend alternative
    "winback_regulars": ("assert", "winback"),  # a recency edge: back 60 days after a purchase
    "yogurt_multibuy": ("assert", None),  # a discount, not a rule, breaks it
    "voucher_sweep": ("assert", None),  # pending points become available after the quarter's vouchers
}


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_program_is_caught_with_at_most_three_transactions(path):
    p = load(path)
    out = search(p.model, tuple(p.tree.of(ast.Assert)), examples=60, seed=0)
    check, rule = EXPECTED[path.stem]
    assert out.violation is not None, f"{path.name} was not caught"
    assert out.violation.check == check
    assert rule is None or out.violation.rule == rule
    assert 1 <= len(out.transactions) <= 3


def test_smallest_amount_for_a_bonus_on_any_purchase():
    p = load(Path(__file__).parent / "broken" / "bonus_any_purchase.loyalty")
    out = search(p.model, tuple(p.tree.of(ast.Assert)), examples=20, seed=0)
    assert list(out.transactions["amount"]) == [0.0]


def test_search_tells_progress_of_each_history_tried_and_finds_the_same():
    p = load(Path(__file__).parent / "broken" / "stacked_multipliers.loyalty")
    statements = tuple(p.tree.of(ast.Assert))
    told: list[int] = []
    shown = search(p.model, statements, examples=40, seed=3, progress=told.append)
    plain = search(p.model, statements, examples=40, seed=3)
    assert told == [1] * shown.tried and shown.tried >= 1
    assert (shown.tried, shown.violation) == (plain.tried, plain.violation)
    assert shown.transactions.equals(plain.transactions)
    clean = load(PROGRAMS[0])
    told.clear()
    assert search(clean.model, tuple(clean.tree.of(ast.Assert)), examples=7, seed=0, progress=told.append).violation is None
    assert told == [1] * 7


def test_cli_prints_the_counterexample_and_exits_1():
    path = Path(__file__).parent / "broken" / "bonus_any_purchase.loyalty"
    res = CliRunner().invoke(cli.test_cmd, [str(path), "--examples", "20", "--seed", "7"])
    assert res.exit_code == 1
    for part in ("assertion failed: assert points <= 5 * amount", "rule responsible: bonus", "smallest history found:", "its ledger:", "--seed 7"):
        assert part in res.output


@pytest.mark.parametrize("path", PROGRAMS + TARGET_PROGRAMS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_clean_programs_pass(path):
    res = CliRunner().invoke(cli.test_cmd, [str(path), "--examples", "10"])
    assert res.exit_code == 0, res.output
    assert "ok, 10 histories tried" in res.output


@pytest.mark.slow
@pytest.mark.parametrize("path", TARGET_PROGRAMS, ids=lambda p: p.name)
def test_shared_examples_pass_the_default_run(path):
    res = CliRunner().invoke(cli.test_cmd, [str(path)])
    assert res.exit_code == 0, res.output


def test_transactions_file_is_checked(tmp_path):
    path = Path(__file__).parent / "broken" / "bonus_any_purchase.loyalty"
    csv = tmp_path / "tx.csv"
    csv.write_text("customer_id,timestamp,amount\nA,2026-01-01 10:00,1000\nA,2026-01-02 10:00,3\n", encoding="utf-8")
    res = CliRunner().invoke(cli.test_cmd, [str(path), "--examples", "5", "--transactions", str(csv)])
    assert res.exit_code == 1
    assert "at row 2: amount = 3, points = 1003" in res.output
    assert "2 row(s) checked, 1 violation(s)" in res.output


def test_unreadable_transactions_file_exits_2(tmp_path):
    path = Path(__file__).parent / "broken" / "bonus_any_purchase.loyalty"
    res = CliRunner().invoke(cli.test_cmd, [str(path), "--transactions", str(tmp_path / "missing.csv")])
    assert res.exit_code == 2 and "does not exist" in res.output


def test_histories_try_the_amounts_where_a_best_of_changes_hands():
    """A fixed 50-point gift against double points (1 extra point per CNY) ties at 50 CNY: the
    amounts tried include it and a cent either side."""
    from rulelang.strategies import shape

    p = load(Path(__file__).parent / "broken" / "best_of_gift.loyalty")
    assert {4999, 5000, 5001} <= set(shape(p.model).amounts)


def test_histories_try_the_day_points_become_available_and_the_voucher_period_ends():
    from rulelang.strategies import shape

    s = shape(load(Path(__file__).parent / "broken" / "voucher_sweep.loyalty").model)
    assert {13, 14, 15} <= set(s.gaps)
    assert {dt.date(2026, 3, 31), dt.date(2026, 4, 1), dt.date(2026, 12, 31), dt.date(2027, 1, 1)} <= set(s.anchors)


def test_histories_step_over_the_recency_builtins_edges():
    """Gaps between rows either side of a `days_since_last_purchase` threshold and of each span
    (months as 28 to 31 days); a program without recency draws only the usual gaps."""
    from rulelang.strategies import GAPS, shape

    program = load(Path(__file__).parent / "broken" / "winback_regulars.loyalty")
    assert set(shape(program.model).gaps) == {59, 60, 61, 89, 91} - set(GAPS)
    monthly = loads("currency CNY\nearn a: 5 points when spend_in(2 months) >= 100\n")
    assert set(shape(monthly.model).gaps) == {55, 56, 57, 59, 60, 61, 62, 63} - set(GAPS)
    assert shape(loads("currency CNY\nearn a: 5 points when amount >= 100\n").model).gaps == ()
