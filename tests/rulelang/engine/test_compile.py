"""The compiled engine on small hand-computed cases, its compile step, and its clear errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import rulelang
from rulelang import ast
from rulelang.engine import compile as engine
from rulelang.engine import kernel as Kn
from rulelang.engine.columns import CompileError
from rulelang.engine.data import prepare
from rulelang.errors import LoyaltyError

HEAD = 'program "t"\ncurrency CNY\npoint_cost 0.01 CNY\n'


def _rows(*rows):
    cols = ["customer_id", "timestamp", "amount", "event", "transaction_id", "reward"]
    return pd.DataFrame([dict(zip(cols, r + ("",) * (len(cols) - len(r)), strict=True)) for r in rows])


def _ledger(text, rows, until=None):
    program = rulelang.loads(HEAD + text)
    return program.evaluate(rows, until=until, engine="compiled")


def _points(led, kind):
    sel = led[led["kind"] == kind]
    return list(zip(sel["rule"], sel["points"], strict=True))


def test_largest_remainder_gives_the_rounded_point_to_the_first_rule_on_a_tie():
    led = _ledger("earn a: 1 point per 3 CNY\nearn b: 1 point per 3 CNY\nround nearest\n", _rows(("m", "2028-01-01 10:00", 2.0)))
    # Each rule earns 2/3; the total 4/3 rounds to 1, which goes to `a` (equal fractions: first declared).
    assert _points(led, "earn") == [("a", 1)]


def test_stacked_and_chained_multipliers():
    text = "earn base: 1 point per 1 CNY\nearn m1: 1.5x base\nearn m2: 2x base\nearn m3: 3x m1\n"
    led = _ledger(text, _rows(("m", "2028-01-01 10:00", 10.0)))
    # base 10; m1 adds 0.5 * 10; m2 adds 1 * 10; m3 scales m1's extra part by 2.
    assert _points(led, "earn") == [("base", 10), ("m1", 5), ("m2", 10), ("m3", 10)]


def test_best_of_keeps_the_largest_and_gives_a_lost_rule_its_frequency_back():
    # 2028-01-04 is a Tuesday. `big` (30) beats `tue` (2 x 10 = 20) on the first basket; `big`
    # is then used for the day, and `tue`, which lost and so was not used, keeps the second.
    text = ("earn base: 1 point per 1 CNY\nearn tue: 3x base when weekday == tue once per day\n"
            "earn big: 30 points once per day\nbest of tue, big\n")
    rows = _rows(("m", "2028-01-04 10:00", 10.0), ("m", "2028-01-04 11:00", 10.0), ("m", "2028-01-05 10:00", 15.0))
    led = _ledger(text, rows)
    assert _points(led, "earn") == [("base", 10), ("big", 30), ("base", 10), ("tue", 20), ("base", 15), ("big", 30)]
    # A tie goes to the first listed: `tue` 2 x 15 = 30 against `big`'s 30 on a Tuesday.
    led = _ledger(text, _rows(("m", "2028-01-11 10:00", 15.0)))
    assert _points(led, "earn") == [("base", 15), ("tue", 30)]


def test_cap_allocates_in_declaration_order_and_posts_the_rest_as_capped():
    rows = _rows(("m", "2028-01-01 10:00", 10.0), ("m", "2028-01-01 11:00", 10.0), ("m", "2028-01-02 09:00", 3.0))
    led = _ledger("earn a: 1 point per 1 CNY\nearn b: 5 points\nlimit 20 points per day\n", rows)
    assert _points(led, "earn") == [("a", 10), ("b", 5), ("a", 5), ("a", 3), ("b", 5)]
    assert _points(led, "capped") == [("a", 5), ("b", 5)]


def test_partial_then_full_refund_claws_back_exactly_what_was_issued():
    rows = _rows(("m", "2028-01-01 10:00", 9.0, "purchase", "t1"), ("m", "2028-01-02 10:00", -3.0, "refund", "t1"),
                 ("m", "2028-01-03 10:00", -6.0, "refund", "t1"), ("m", "2028-01-04 10:00", -1.0, "refund", "zz"))
    led = _ledger("earn a: 1 point per 2 CNY\nround up\n", rows)
    assert _points(led, "earn") == [("a", 5)]  # 4.5 rounded up
    assert _points(led, "clawback") == [("a", 2), ("a", 3)]  # ceil(5 * 1/3), then the rest
    assert led.attrs["unmatched_refunds"] == 1


def test_month_expiry_clamps_to_the_end_of_february():
    rows = _rows(("m", "2028-01-31 10:00", 7.0))
    led = _ledger("earn a: 1 point per 1 CNY\nexpire after 1 months\n", rows, until="2028-03-01")
    exp = led[led["kind"] == "expire"]
    assert list(exp["timestamp"]) == [pd.Timestamp("2028-02-29")] and list(exp["points"]) == [7]


def test_tier_condition_uses_the_tier_before_the_row():
    text = "tiers by spend over 30 days {\n  Green from 0\n  Gold from 100\n}\nearn base: 1 point per 1 CNY\nearn gold: 2x base when tier >= Gold\n"
    rows = _rows(("m", "2028-01-01 10:00", 100.0), ("m", "2028-01-02 10:00", 10.0), ("m", "2028-02-15 10:00", 10.0))
    led = _ledger(text, rows)
    # The first purchase reaches Gold, so the second doubles; 44 days later the window is empty again.
    assert _points(led, "earn") == [("base", 100), ("base", 10), ("gold", 10), ("base", 10)]


def test_redeem_rows_spend_oldest_lots_and_unaffordable_ones_are_declined():
    rows = _rows(("m", "2028-01-01 10:00", 30.0), ("m", "2028-01-02 10:00", 30.0), ("m", "2028-01-03 10:00", 0.0, "redeem", "", "r"),
                 ("m", "2028-01-04 10:00", 0.0, "redeem", "", "r"))
    led = _ledger("earn a: 1 point per 1 CNY\nreward r: 40 points cost 1.5 CNY funded 50% by p\n", rows)
    red = led[led["kind"] == "redeem"]
    assert list(red["points"]) == [30, 10] and list(red["cost"]) == [150, 0] and list(red["partner_share"]) == [75, 0]
    assert led.attrs["declined_redemptions"] == 1


def test_earn_columns_are_exact_numerators_over_the_common_denominator():
    program = rulelang.loads(HEAD + 'earn a: 1 point per 3 CNY\nearn b: 2 points when amount >= 5\nearn c: 1.5x b\n')
    cp = engine.compile_model(program.model)
    batch = prepare(_rows(("m", "2028-01-01 10:00", 6.0), ("m", "2028-01-02 10:00", 1.0)), program.model)
    cols = cp.earn_columns(batch)
    exact = cols / cp.den
    assert np.allclose(exact, [[2, 1 / 3], [2, 0], [1, 0]])
    assert (cols % 1 == 0).all() and cols.dtype == np.int64


def test_amounts_that_could_overflow_are_refused_with_a_clear_error():
    program = rulelang.loads(HEAD + "earn a: 1 point per 0.07 CNY\nearn b: 1.1x a\n")
    batch = prepare(_rows(("m", "2028-01-01 10:00", 9e13)), program.model)
    with pytest.raises(LoyaltyError, match="overflow"):
        engine.run(program.model, batch)


def test_a_construct_that_cannot_compile_names_the_rule_and_place():
    program = rulelang.loads(HEAD + "earn a: 1 point per 1 CNY when month(date) == 1\n")
    rule = program.model.rules[0]
    bad = dataclasses.replace(rule, condition=ast.Compare("==", ast.Call(ast.Ident("nope"), (ast.Name("date"),)), ast.Number(1)))
    model = dataclasses.replace(program.model, rules=(bad,))
    batch = prepare(_rows(("m", "2028-01-01 10:00", 1.0)), program.model)
    with pytest.raises(CompileError, match=r"<program>:4:1: rule `a`.*nope"):
        engine.run(model, batch)


def test_a_postings_member_tier_kind_and_rule_or_reward_pack_into_one_column_and_back():
    # (member, tier code, kind, rule, reward): the largest member code, the largest tier code, no
    # rule, the largest rule and reward codes.
    postings = [(2**31 - 1, 0, Kn.EARN, 0, -1), (0, Kn.MAX_TIERS + 1, Kn.EXPIRE, -1, -1), (7, 3, Kn.REDEEM, -1, 2**15 - 2), (3, 1, Kn.CLAWBACK, 2**15 - 2, -1)]
    out = Kn.new_postings(len(postings))
    for cnt, (member, tier, kind, rule, reward) in enumerate(postings):
        Kn._post(out, cnt, Kn.holder_bits(member, tier), 0, kind, rule, 1, 0, reward, 0, 0, cnt)
    codes = [np.empty(len(postings), dtype=t) for t in (np.int32, np.int8, np.int16, np.int16, np.int16)]
    Kn.unpack(out[Kn.OUT_WHO, : len(postings)], *codes)
    member, kind, rule, reward, tier = codes
    assert member.tolist() == [p[0] for p in postings] and kind.tolist() == [p[2] for p in postings]
    assert tier.tolist() == [p[1] for p in postings]
    assert (rule - 1).tolist() == [p[3] for p in postings] and (reward - 1).tolist() == [p[4] for p in postings]


def test_more_tiers_than_a_posting_can_number_are_refused():
    model = rulelang.loads(HEAD + "tiers by spend over 12 months {\n  A from 0\n  B from 10\n}\nearn a: 1 point per 1 CNY\n").model
    many = dataclasses.replace(model.tiers, names=tuple(f"T{i}" for i in range(Kn.MAX_TIERS + 1)), thresholds=tuple(range(Kn.MAX_TIERS + 1)))
    with pytest.raises(LoyaltyError, match=f"{Kn.MAX_TIERS + 1} tiers; the compiled engine numbers at most {Kn.MAX_TIERS}"):
        engine.compile_model(dataclasses.replace(model, tiers=many))


def test_more_rules_than_a_posting_can_number_are_refused():
    model = rulelang.loads(HEAD + "earn a: 1 point per 1 CNY\n").model
    with pytest.raises(LoyaltyError, match="32768 rules; the compiled engine numbers at most 32767"):
        engine.compile_model(dataclasses.replace(model, rules=model.rules * 2**15))


@pytest.mark.parametrize("scratch", [16, 40])
def test_postings_beyond_the_scratch_block_resume_at_a_member_and_grow(monkeypatch, scratch):
    from rulelang.engine import kernel

    text = "earn a: 1 point per 1 CNY\nearn b: 5 points when amount >= 10\nexpire after 1 month\n"
    rows = _rows(*[(m, f"2028-01-{d:02d} 10:00", 10.0 + d) for m in ("x", "y", "z") for d in range(1, 29, 3)])
    full = _ledger(text, rows, until="2028-12-31")
    assert len(full) == 3 * 10 * 3  # earn a, earn b and one expiry per row: 30 postings a member
    grown = []
    real_grow = kernel.grow
    monkeypatch.setattr(engine, "SCRATCH", scratch)
    monkeypatch.setattr(kernel, "grow", lambda *a: grown.append(a[2]) or real_grow(*a))
    pd.testing.assert_frame_equal(_ledger(text, rows, until="2028-12-31"), full)
    # 16 cannot hold one member's 30 postings: the block grows; 40 holds one member at a time.
    assert grown == ([30] if scratch == 16 else [])


@pytest.mark.parametrize(("threads", "scratch"), [(2, None), (3, None), (7, None), (2, 16), (3, 40)])
def test_members_shared_among_threads_give_the_same_ledger(monkeypatch, threads, scratch):
    text = "earn a: 1 point per 1 CNY\nearn b: 5 points when amount >= 10 once per day\nlimit 30 points per day\nexpire after 1 month\n"
    text += "reward r: 20 points cost 1 CNY\n"
    rows = [(m, f"2028-01-{d:02d} 10:00", 4.0 + d, "purchase", f"{m}{d}") for m in ("u", "v", "w", "x", "y") for d in range(1, 29, 2 + len(m) % 3)]
    rows += [("v", "2028-02-01 09:00", -5.0, "refund", "v1"), ("x", "2028-02-02 09:00", 0.0, "redeem", "", "r")]
    batch = prepare(_rows(*rows).sort_values(["customer_id", "timestamp"], kind="stable"), rulelang.loads(HEAD + text).model, until="2028-12-31")
    cp = engine.compile_model(rulelang.loads(HEAD + text).model)
    one = cp.run(batch, threads=1)
    monkeypatch.setattr(engine, "THREAD_ROWS", 0)
    if scratch is not None:  # parts outgrow their stretch of the block and grow columns of their own
        monkeypatch.setattr(engine, "SCRATCH", scratch)
    shared = cp.run(batch, threads=threads)
    pd.testing.assert_frame_equal(shared, one)
    assert shared.attrs == one.attrs
    member = batch.frame["member"].to_numpy()
    parts = engine.member_parts(member, threads)
    assert parts[0][0] == 0 and parts[-1][1] == len(member) and len(parts) == min(threads, 5)
    # Each part starts where a member starts: no member's rows are split between threads.
    assert all(member[a] != member[a - 1] for a, _ in parts[1:])


@pytest.mark.parametrize("seed", range(4))
def test_unit_facts_match_the_numpy_they_replace(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 60))
    member = np.sort(rng.integers(0, 6, n)).astype(np.int32)
    unit = np.cumsum(rng.random(n) < 0.6) - 1 if n else np.zeros(0, np.int64)
    unit = unit - unit[0] if n else unit
    starts = np.flatnonzero(np.r_[True, unit[1:] != unit[:-1]]) if n else np.zeros(0, np.int64)
    units = int(unit[-1]) + 1 if n else 0
    amount = rng.integers(-5_000, 5_000, n).astype(np.int64)
    refund_of = np.where(rng.random(n) < 0.3, rng.integers(0, max(units, 1), n), -1).astype(np.int32)
    total, slot, refunded, max_rows, max_lines, max_amount, max_total, ok = Kn.unit_facts(member, starts, amount, refund_of, units)
    want_total = np.add.reduceat(amount, starts) if n else np.zeros(0, np.int64)
    targets = np.unique(refund_of[refund_of >= 0])
    want_slot = np.full(max(units, 1), -1, dtype=np.int32)
    want_slot[targets] = np.arange(len(targets))
    assert ok and total.tolist() == want_total.tolist() and slot.tolist() == want_slot.tolist() and refunded == len(targets)
    runs = np.diff(np.r_[np.flatnonzero(np.r_[True, member[1:] != member[:-1]]), n]) if n else np.zeros(0, np.int64)
    assert max_rows == int(runs.max(initial=0))
    assert max_lines == int(np.diff(np.r_[starts, n]).max(initial=0))
    assert (max_amount, max_total) == (int(np.abs(amount).max(initial=0)), int(np.abs(want_total).max(initial=0)))
    if n:
        bad = refund_of.copy()
        bad[0] = max(units, 1)
        assert not Kn.unit_facts(member, starts, amount, bad, units)[-1]


@pytest.mark.parametrize(("threads", "scratch"), [(2, None), (3, None), (3, 16)])
def test_members_shared_among_threads_report_the_same_tiers(monkeypatch, threads, scratch):
    text = "tiers by points over 20 days {\n  A from 0\n  B from 30\n  C from 60\n}\nearn a: 1 point per 1 CNY\nearn b: 2x a when tier >= B\n"
    text += "expire after 10 days\n"
    rows = [(m, f"2028-01-{d:02d} 10:00", 4.0 + d, "purchase", f"{m}{d}") for m in ("u", "v", "w", "x", "y") for d in range(1, 29, 2 + len(m) % 3)]
    model = rulelang.loads(HEAD + text).model
    batch = prepare(_rows(*rows).sort_values(["customer_id", "timestamp"], kind="stable"), model, until="2028-03-31")
    cp = engine.compile_model(model)
    ends = pd.period_range("2027-12", "2028-03", freq="M").end_time.to_numpy()
    one = cp.evaluate(batch, threads=1, moments=ends, row_tiers=True)
    monkeypatch.setattr(engine, "THREAD_ROWS", 0)
    if scratch is not None:  # a part outgrows its stretch: the kernel reruns a member; counted once
        monkeypatch.setattr(engine, "SCRATCH", scratch)
    shared = cp.evaluate(batch, threads=threads, moments=ends, row_tiers=True)
    pd.testing.assert_frame_equal(shared.ledger, one.ledger)
    assert shared.tier_counts.tolist() == one.tier_counts.tolist()
    assert one.tier_counts.sum(axis=1).tolist() == [0, 5, 5, 5]  # five members from January on
    assert one.tier_counts[1:, 1:].sum() > 0  # some reach a higher tier by a month's end
    assert shared.row_tier.tolist() == one.row_tier.tolist() and shared.row_metric.tolist() == one.row_metric.tolist()
    assert {"A", "B"} <= set(one.ledger["tier"].astype(str))


def test_the_report_moments_must_rise():
    model = rulelang.loads(HEAD + "earn a: 1 point per 1 CNY\n").model
    batch = prepare(_rows(("m", "2028-01-01 10:00", 1.0)), model)
    with pytest.raises(LoyaltyError, match="must rise"):
        engine.compile_model(model).evaluate(batch, moments=np.array(["2028-02-01", "2028-01-01"], dtype="datetime64[ns]"))


def test_per_unit_points_count_whole_units_and_huge_quantities_are_refused():
    program = rulelang.loads(HEAD + 'earn u: 10 points per unit when sku == "C"\nearn b: 5 points when basket.total(sku == "C") >= 20\n')
    rows = _rows(("m", "2028-01-01 10:00", 12.0, "purchase", "T1"), ("m", "2028-01-01 10:00", 9.0, "purchase", "T1"),
                 ("m", "2028-01-02 10:00", 30.0, "purchase", "T2"))
    rows = rows.assign(sku=["C", "C", "X"], quantity=[2.5, 1, 4])
    led = _ledger('earn u: 10 points per unit when sku == "C"\nearn b: 5 points when basket.total(sku == "C") >= 20\n', rows)
    assert _points(led, "earn") == [("u", 30), ("b", 5)]  # 2 + 1 units; 12 + 9 = 21 of C
    cp = engine.compile_model(program.model)
    batch = prepare(rows.assign(quantity=[1e17, 1, 1]), program.model)
    with pytest.raises(LoyaltyError, match="units a line"):
        cp.run(batch)


def test_a_program_without_per_unit_rules_gives_the_kernel_no_units():
    program = rulelang.loads(HEAD + "earn a: 1 point per 1 CNY\n")
    batch = prepare(_rows(("m", "2028-01-01 10:00", 6.0)).assign(quantity=[3]), program.model)
    cp = engine.compile_model(program.model)
    from rulelang.engine.columns import Env

    assert engine.row_arrays(cp, batch, Env(program.model, batch)).units.shape == (0,)


def test_discounts_percentages_are_computed_a_column_at_a_time_half_up():
    program = rulelang.loads(HEAD + "earn base: 1 point per 1 CNY\ndiscount d: 12.5%\ndiscount e: 5 CNY\n")
    rows = _rows(("m", "2028-01-01 10:00", 0.04), ("m", "2028-01-01 11:00", 0.12), ("m", "2028-01-01 12:00", 10.0))
    batch = prepare(rows, program.model)
    from rulelang.engine.columns import Env

    env = Env(program.model, batch)
    out = engine.discount_rows(program.model, env, env.amount().num, 1, 1000)
    # 12.5% of 4, 12 and 1000 cents: 0.5 -> 1 (half up), 1.5 -> 2, 125. Only the percentage has a column.
    assert out["discount_amount"].tolist() == [[1, 2, 125]]
    assert out["discount_bit"].shape == (2, 1)


def test_discounts_in_the_kernel_give_the_interpreters_ledger_on_the_shapes():
    text = ("tiers by spend over 12 months {\n  Silver from 0\n  Gold from 0.01\n}\nearn base: 1 point per 1 CNY\n"
            "discount gold_capped: 20% up to 30 CNY when tier >= Gold\n"
            'discount second_shirt: 50% on the cheapest line when category == "shirts"\n'
            'discount yogurt_bogof: buy 3 get 1 free when category == "yogurt" funded 100% by supplier\n'
            "discount coupon: 10 CNY when basket.total >= 100 CNY once per month\n")
    rows = pd.DataFrame({
        "customer_id": "m", "timestamp": ["2026-03-01"] + ["2026-03-02"] * 6 + ["2026-03-05"],
        "transaction_id": ["T0"] + ["T1"] * 6 + ["T1"], "event": ["purchase"] * 7 + ["refund"],
        "amount": [10, 100, 40, 6, 5, 3, 200, 120], "category": ["x", "shirts", "shirts", "yogurt", "yogurt", "yogurt", "x", ""],
        "quantity": [1, 1, 1, 3, 2, 3, 1, 0],
    })
    program = rulelang.loads(HEAD + text)
    got = program.evaluate(rows, engine="compiled")
    pd.testing.assert_frame_equal(got, program.evaluate(rows, engine="reference"))
    d = got[got["kind"] == "discount"]
    assert d.loc[d["cost"] > 0, ["rule", "cost"]].astype({"rule": str}).values.tolist() == [
        ["gold_capped", 3000], ["second_shirt", 2000], ["yogurt_bogof", 300], ["coupon", 1000]]
    assert int(d["cost"].sum()) < 6300 and (d.loc[d["cost"] < 0, "row"] == 7).all()  # the refund reverses a share of each


def test_a_program_without_discounts_passes_the_kernel_nothing_for_them():
    program = rulelang.loads(HEAD + "earn base: 1 point per 1 CNY\n")
    arrays = engine.program_arrays(engine.compile_model(program.model))
    assert all(len(getattr(arrays, f)) == 0 for f in arrays._fields if f.startswith("discount_"))


def test_benefits_post_their_cost_after_the_points_and_are_not_taken_back():
    text = ("benefit wrap: cost 0.335 CNY when amount >= 10 at most 3 times per day funded 33% by partner\n"
            "earn base: 1 point per 1 CNY\n"
            "benefit tote: cost 15 CNY on enroll\n")
    rows = _rows(
        ("a", "2026-03-01 09:00", 0, "enroll", "e1"),
        *(("a", "2026-03-01 10:00", 10, "purchase", "t1") for _ in range(4)),
        ("a", "2026-03-02 10:00", 40, "refund", "t1"),
    )
    got = _ledger(text, rows)
    shown = got[["kind", "rule", "points", "cost", "partner_share", "row"]].astype({"kind": str, "rule": str}).values.tolist()
    # Each firing costs 0.335 CNY, 34 fen half up; three firings (the daily limit) 102 fen, the
    # partner's 33% of it 33.66, 34 fen. The refund takes back the points, not the wraps.
    assert shown == [
        ["benefit", "tote", 0, 1500, 0, 0],
        ["earn", "base", 40, 0, 0, 1],
        ["benefit", "wrap", 0, 102, 34, 1],
        ["clawback", "base", 40, 0, 0, 5],
    ]
    assert list(got["rule"].cat.categories) == ["", "base", "wrap", "tote"]  # the rules, then the benefits
    reference = rulelang.loads(HEAD + text).evaluate(rows, engine="reference")
    pd.testing.assert_frame_equal(got, reference)


def test_a_program_without_benefits_compiles_none():
    cp = engine.compile_model(rulelang.loads(HEAD + "earn base: 1 point per 1 CNY\n").model)
    assert len(cp.bn_cost) == 0 and engine.program_arrays(cp).point_rules == len(cp.kind) == 1


def test_recency_and_open_windows_worked_examples_compile_to_the_references_ledger():
    """docs/semantics.md's recency and open-window examples: the compiled engine posts what the
    reference does (the document's ledger is checked against the reference there)."""
    from pandas.testing import assert_frame_equal

    from rulelang import interpret
    from tests.rulelang.test_semantics_examples import _frame, examples

    chosen = [p for p in examples() if p.id.startswith(("Recency", "Open campaign windows"))]
    assert len(chosen) == 2
    for param in chosen:
        program, transactions, options, _ = param.values
        model = rulelang.loads(program).model
        batch = prepare(_frame(transactions), model, None, options.get("until"))
        assert_frame_equal(engine.run(model, batch), interpret.run(model, batch))


def test_events_named_by_text_match_the_data_as_its_event_column_is_read():
    """`on "TEXT"` names what other systems export; capitals and edge spaces do not matter, as in
    the data. Both engines post the same ledger."""
    from rulelang import interpret

    program = rulelang.loads('currency CNY\nearn base: 1 point per 1 CNY\nearn news: 50 points on "Newsletter.Subscribed" once\n'
                             'earn app: 20 points on "app:install/v2" at most 2 times per month\n'
                             'benefit gift: cost 5 CNY on "crm.birthday-week" once per year\n')
    tx = pd.DataFrame({"customer_id": "a", "timestamp": pd.date_range("2026-01-01", periods=6, freq="D"),
                       "amount": [10, None, None, None, None, None],
                       "event": ["purchase", " newsletter.subscribed", "NEWSLETTER.SUBSCRIBED", "app:install/v2", "crm.birthday-week", "app:install"]})
    batch = prepare(tx, program.model)
    got = engine.run(program.model, batch)
    pd.testing.assert_frame_equal(got, interpret.run(program.model, batch))
    assert list(zip(got["rule"], got["points"], got["cost"], got["row"], strict=True)) == [
        ("base", 10, 0, 0), ("news", 50, 0, 1), ("app", 20, 0, 3), ("gift", 0, 500, 4)]
