"""The compiled engine produces the reference interpreter's ledger, posting for posting, on random
programs (generated as text, loaded through the parser and checker) and random member histories."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from pandas.testing import assert_frame_equal

import rulelang
from rulelang import interpret
from rulelang.engine import compile as engine
from rulelang.engine.data import prepare
from tests.strategies import diff_history, diff_program


def _both(program, frame, customers, policy, until=None):
    batch = prepare(frame, program.model, customers, until)
    expected = interpret.run(program.model, batch, policy)
    got = engine.run(program.model, batch, policy)
    return expected, got


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(text=diff_program(), history=diff_history())
def test_compiled_matches_reference(text, history):
    program = rulelang.loads(text)
    frame, customers, policy = history
    expected, got = _both(program, frame, customers, policy, until="2029-06-30")
    assert_frame_equal(got, expected)
    assert got.attrs == expected.attrs


def test_generated_programs_reach_best_of_groups():
    """The random programs above include `best of` groups, two of them at times, and groups with
    a multiplier: the differential test covers the construct, not only programs without it."""
    settings_ = settings(max_examples=2000, database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))  # no shrinking
    two = find(diff_program(), lambda text: text.count("\nbest of ") == 2, settings=settings_)
    assert len(rulelang.loads(two).model.groups) == 2


    def grouped_multiplier(text: str) -> bool:
        model = rulelang.loads(text).model
        grouped = {i for g in model.groups for i in g}
        return any(r.kind == "multiplier" and r.index in grouped for r in model.rules)

    assert grouped_multiplier(find(diff_program(), grouped_multiplier, settings=settings_))


def test_generated_programs_reach_tier_alternatives_and_lifetime():
    """The random programs include tiers with alternatives (`or 2 visits`) and tiers over a lifetime."""
    settings_ = settings(max_examples=2000, database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))

    def alternatives(text: str) -> bool:
        tiers = rulelang.loads(text).model.tiers
        return tiers is not None and sum(bool(a) for a in tiers.alternatives) == 2

    assert alternatives(find(diff_program(), alternatives, settings=settings_))
    lifetime = find(diff_program(), lambda text: " over lifetime {" in text, settings=settings_)
    assert rulelang.loads(lifetime).model.tiers.window == "lifetime"
    kept = find(diff_program(), lambda text: text.count(" keep ") == 2, settings=settings_)
    assert all(rulelang.loads(kept).model.tiers.keep_months[1:])


def test_programs_match_reference_on_generated_data(root):
    """The bundled and shared example programs: same ledger, and the ledger identity holds."""
    from tests.conftest import PROGRAMS, TARGET_PROGRAMS

    rng = np.random.default_rng(7)
    units = 700
    lines = rng.integers(1, 4, units)
    unit = np.repeat(np.arange(units), lines)
    n = len(unit)
    event = rng.choice(["purchase"] * 10 + ["refund", "enroll", "referral", "review"], units)
    # A refund names a basket a few units earlier (same member or not: unmatched ones count too).
    tx = np.where(event == "refund", [f"t{max(u - 3, 0)}" for u in range(units)], [f"t{u}" for u in range(units)])
    frame = pd.DataFrame({
        "customer_id": rng.integers(0, 30, units).astype(str)[unit],
        "timestamp": (pd.Timestamp("2026-11-01") + pd.to_timedelta(rng.integers(0, 500 * 24 * 60, units), unit="m"))[unit],
        "amount": rng.integers(0, 30000, n) / 100,
        "category": rng.choice(["pastry", "coffee", "fuel", "礼品卡"], n),
        "channel": rng.choice(["app", "store", "online"], units)[unit],
        "sku": rng.choice(["CEREAL-500G", "X"], n),
        "aisle": rng.choice(["organic", "dairy", None], n),
        "quantity": rng.integers(1, 12, n),
        "event": event[unit],
        "transaction_id": tx[unit],
        "_u_redeem": rng.random(n),
        "_u_choice": rng.random(n),
    })
    frame = frame[(frame["event"] != "refund") | ~frame.duplicated(["transaction_id", "event"])]
    frame = frame.sort_values(["customer_id", "timestamp"], kind="stable")
    customers = pd.DataFrame({"customer_id": [str(i) for i in range(30)],
                              "segment": rng.choice(["student", "vip"], 30),
                              "birthday": pd.Timestamp("1990-01-01") + pd.to_timedelta(rng.integers(0, 365, 30), unit="D")})
    paths = PROGRAMS + TARGET_PROGRAMS
    assert paths
    for path in paths:
        program = rulelang.load(path)
        policy = rulelang.engine.data.RedemptionPolicy(0.3, "cheapest")
        expected, got = _both(program, frame, customers, policy)
        assert_frame_equal(got, expected)
        assert got.attrs == expected.attrs
        assert (got["points"] >= 0).all()
        sign = got["kind"].map(rulelang.engine.ledger.SIGN).astype(int)  # every kind's direction (a discount's and a benefit's are 0)
        running = (got["points"] * sign).groupby(got["customer_id"]).cumsum()
        assert (running >= 0).all(), f"{path}: a balance went below zero"


@pytest.mark.parametrize("engine_name", ["compiled"])
def test_compiled_is_the_default_engine(engine_name):
    import inspect

    assert inspect.signature(rulelang.program.Program.evaluate).parameters["engine"].default == engine_name


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(text=diff_program(), history=diff_history(), threads=st.sampled_from([1, 2]))
def test_compiled_reports_the_reference_tiers(text, history, threads):
    """Members per tier at each month's end, and each row's tier and metric, as the reference says."""
    program = rulelang.loads(text)
    frame, customers, policy = history
    batch = prepare(frame, program.model, customers, "2029-06-30")
    ends = pd.period_range("2026-12", "2029-06", freq="M").end_time.to_numpy()
    expected = interpret.evaluate_batch(program.model, batch, policy, moments=ends, row_tiers=True)
    got = engine.compile_model(program.model).evaluate(batch, policy, threads=threads, moments=ends, row_tiers=True)
    assert_frame_equal(got.ledger, expected.ledger)
    assert got.tier_counts.tolist() == expected.tier_counts.tolist()
    assert got.row_tier.tolist() == expected.row_tier.tolist()
    assert got.row_metric.tolist() == expected.row_metric.tolist()
    # Every member is counted at every month end from their first row on, at one tier.
    first = batch.frame.groupby("member")["timestamp"].min().to_numpy()
    assert got.tier_counts.sum(axis=1).tolist() == [(first <= end).sum() for end in ends]


def test_generated_programs_reach_pending_points():
    """The random programs include pending windows, and histories where a redemption the whole
    balance affords is declined because part of it is still pending: the differential test covers
    the available balance, not only programs without a window."""
    settings_ = settings(max_examples=3000, database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))

    def waits(case) -> bool:
        text, (frame, customers, policy) = case
        program = rulelang.loads(text)
        if not program.model.pending_days:
            return False
        batch = prepare(frame, program.model, customers, "2029-06-30")
        declined = interpret.run(program.model, batch, policy).attrs["declined_redemptions"]
        whole = interpret.run(program.model.__class__(**{**program.model.__dict__, "pending_days": 0}), batch, policy)
        return declined > whole.attrs["declined_redemptions"]

    text, _ = find(st.tuples(diff_program(), diff_history()), waits, settings=settings_)
    assert rulelang.loads(text).model.pending_days > 0


def test_generated_programs_reach_automatic_vouchers():
    """The random programs include an automatic voucher, and histories where one is issued."""
    settings_ = settings(max_examples=3000, database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))

    def issues(case) -> bool:
        text, (frame, customers, policy) = case
        program = rulelang.loads(text)
        if program.model.voucher is None:
            return False
        ledger = interpret.run(program.model, prepare(frame, program.model, customers, "2029-06-30"), policy)
        return bool(((ledger["kind"] == "redeem") & (ledger["row"] == -1)).any())

    text, _ = find(st.tuples(diff_program(), diff_history()), issues, settings=settings_)
    assert rulelang.loads(text).model.voucher is not None


def test_generated_programs_reach_recency_open_windows_and_text_events():
    """The random programs above read the member's history, have open campaign windows and name
    events by text: the differential test covers those constructs too."""
    settings_ = settings(max_examples=2000, database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    for needle in ("visits_in(", "spend_in(", "days_since_last_purchase", "during from ", "during to ", 'on "newsletter.subscribed"'):
        text = find(diff_program(), lambda t, needle=needle: needle in t, settings=settings_)
        assert rulelang.loads(text).model is not None, needle
def test_generated_programs_and_histories_reach_paying_with_points():
    """The random programs include `pay with points` (with a cap and a minimum at times), and the
    random histories both draw payments and record them (`points_paid`): the differential test
    covers the construct both ways."""
    settings_ = settings(max_examples=2000, database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    text = find(diff_program(), lambda t: "pay with points" in t and "up to" in t.split("pay with points")[1] and "from" in t.split("pay with points")[1],
                settings=settings_)
    assert rulelang.loads(text).model.pay_with_points.minimum > 0
    frame, _, _ = find(diff_history(), lambda h: "points_paid" in h[0].columns and (h[0]["points_paid"].fillna(0) > 0).any(), settings=settings_)
    assert frame["points_paid"].notna().any()
    _, _, policy = find(diff_history(), lambda h: h[2] is not None and h[2].pay_probability > 0, settings=settings_)
    assert policy.pay_probability > 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(text=diff_program(), history=diff_history(), pay=st.sampled_from([0.5, 1.0]))
def test_compiled_matches_reference_paying_with_points(text, history, pay):
    """As test_compiled_matches_reference, on programs that all pay with points and histories
    whose members pay where the draws (a policy always asked to draw them) or the records say."""
    from hypothesis import assume

    from rulelang.engine.data import RedemptionPolicy

    assume("pay with points" in text)
    program = rulelang.loads(text)
    frame, customers, policy = history
    policy = dataclasses.replace(policy or RedemptionPolicy(0.0, "cheapest"), pay_probability=pay)
    expected, got = _both(program, frame, customers, policy, until="2029-06-30")
    assert_frame_equal(got, expected)
    assert got.attrs == expected.attrs


def test_generated_cases_run_budgets_out():
    """The random programs and histories above include budgets that run out (the global step
    closes a rule or a discount): the differential test covers budgets, not only unreached ones."""
    from rulelang.engine import budgets
    from rulelang.engine.compile import compile_model

    def closes(case) -> bool:
        text, (frame, customers, policy) = case
        model = rulelang.loads(text).model
        if not budgets.budgeted(model):
            return False
        batch = prepare(frame, model, customers, "2029-06-30")
        cp = compile_model(model)
        closed, _ = budgets.settle(model, lambda c: [cp.evaluate(batch, policy, threads=1, closed=c)])
        return bool(closed)

    settings_ = settings(max_examples=2000, database=None, deadline=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    text, _ = find(st.tuples(diff_program(), diff_history()), closes, settings=settings_)
    assert "budget" in text
