"""A path's Batch gathered from the base equals what the engine's data contract makes of the path's rows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import rulelang
from rulelang.engine.data import prepare as engine_prepare
from rulelang.engine.masks import copied_columns
from simulator import batch, enrollment, io, redemption, response
from simulator.history import engine_frame, prepare
from tests.simulator.simkit import PROGRAM_TEXT, sample

# Rules that read transaction_id (so extra baskets need ids of their own) and a category.
EXTRA_RULES = 'earn tagged: 5 points when transaction_id != ""\nearn pastry: 1 point per 1 CNY when category == "pastry"\n'
PROGRAM = rulelang.loads(PROGRAM_TEXT + EXTRA_RULES, "test.loyalty")


@pytest.fixture(scope="module")
def path():
    tx, _ = sample(customers=30)
    h = prepare(io.load_transactions(tx).frame, 2)
    chosen = enrollment.pick(h, 0.7, "random", seed=5, run=1)
    rows = enrollment.member_rows(h, chosen)
    rows["_extra"] = False
    rows["_spawn"] = np.int64(-1)
    extra = response.extra_visits(rows, 0.5, h.keys, 5, 1, h.until)
    assert len(extra) and (rows["_refund"]).any()  # the case needs added baskets and refunds
    rows = pd.concat([rows, extra], ignore_index=True).sort_values("_ord", kind="stable").reset_index(drop=True)
    rows["_u_redeem"], rows["_u_choice"] = redemption.draws(rows, h.keys, 5, 1)
    rows["_minor"] = response.scaled(rows, np.where(rows["_purchase"].to_numpy(), 0.1, 0.0))
    return h, rows


def _engine_rows(h, rows):
    """The path's rows as the engine reads them: each row's event is its history row's, `enroll`
    on the enrol rows (a path carries no `_event` of its own: the batch takes the base's)."""
    events = h.rows["_event"].to_numpy(dtype=object)[rows["_pos"].to_numpy()]
    events[rows["_enroll"].to_numpy()] = "enroll"
    frame = engine_frame(rows.assign(_event=pd.Categorical(events)), h.customer_ids)
    return frame.assign(amount=frame["amount"] / 10**h.decimals)  # currency amounts, as a user gives them


def test_the_bases_customer_id_dtype_is_the_one_the_customers_table_gives(path):
    from rulelang.engine import ledger

    h, _ = path
    base = batch.base(h, PROGRAM.model, None)
    assert "id_dtype" in base.__dict__  # taken from the base's own column, not built again
    want = ledger.id_dtype(base.customers["customer_id"])
    assert base.id_dtype == want and base.id_dtype.categories.dtype == want.categories.dtype


def test_gathered_batch_equals_the_engines_own(path):
    h, rows = path
    base = batch.base(h, PROGRAM.model, None)
    got = batch.for_path(base, rows).frame
    want = engine_prepare(_engine_rows(h, rows), PROGRAM.model, None, h.until).frame
    assert len(got) == len(want)
    # Member codes index the base's customers (everyone), the engine's only this path's: ids must agree.
    assert (base.customers["customer_id"].to_numpy(dtype=object)[got["member"].to_numpy()] == got["customer_id"].astype(object).to_numpy()).all()
    for col in ("row", "amount", "kind", "unit", "refund_of"):
        assert np.array_equal(got[col].to_numpy().astype(np.int64), want[col].to_numpy().astype(np.int64)), col
    assert (got["refund_of"] >= 0).any()
    assert np.array_equal(got["timestamp"].to_numpy(), want["timestamp"].to_numpy())
    for col in ("customer_id", "event", "transaction_id", "reward", "category"):
        assert got[col].astype(object).tolist() == want[col].astype(object).tolist(), col


def test_ledgers_agree_and_blank_ids_change_nothing_when_no_rule_reads_them(path):
    h, rows = path
    base = batch.base(h, PROGRAM.model, None)
    mine = PROGRAM.evaluate(_engine_rows(h, rows), until=h.until)
    from rulelang.engine.compile import compile_model

    cp = compile_model(PROGRAM.model)
    gathered = cp.run(batch.for_path(base, rows))
    pd.testing.assert_frame_equal(gathered.astype(str), mine.astype(str))
    plain = rulelang.loads(PROGRAM_TEXT, "test.loyalty")
    blank = batch.for_path(batch.base(h, plain.model, None), rows, exact_ids=False)
    assert (blank.frame["transaction_id"].astype(str)[rows["_extra"].to_numpy()] == "").all()
    exact = compile_model(plain.model).run(batch.for_path(batch.base(h, plain.model, None), rows, exact_ids=True))
    pd.testing.assert_frame_equal(compile_model(plain.model).run(blank).astype(str), exact.astype(str))


# One rule per way a condition can relate a path row to its history row (rulelang.engine.columns):
# shared columns, timestamps (moved on extra visits), amounts and baskets, enrolment, tiers.
GATHER_RULES = """
earn a: 1 point when category == "pastry"
earn b: 2 points when weekday in [sat, sun] and channel == "app"
earn c: 3 points when month(date) == month(customer.birthday) and customer.segment != "student"
earn d: 4 points when amount >= 5 and category != "pastry"
earn e: 5 points when basket.total >= 10 or tier >= Plus
earn f: 6 points when (tier >= Plus and weekday == mon) and quantity >= 2
earn g: 7 points when customer.days_enrolled >= 3 and store != ""
earn h: 8 points when transaction_id != "" and date >= 2026-03-01
earn i: 9 points on enroll when channel == "app" and date <= 2026-06-30
earn j: 1 point when date >= 2020-01-01 and weekday != mon
earn k: 2 points per unit when category != "pastry" and weekday != sun
earn l: 10 points when basket.total(category != "pastry") >= 8 and tier >= Plus
earn m: 10 points when basket.quantity(amount >= 3) >= 2 and weekday in [sat, sun]
"""
# (`tier >= Plus` is one value over every base row at each level, and so is `date >= 2020-01-01`,
# which moved rows evaluate again: constant masks are made, not gathered.)


def test_conditions_gathered_from_the_base_equal_conditions_on_the_path(path):
    from rulelang.engine.compile import compile_model

    h, rows = path
    prog = rulelang.loads(PROGRAM_TEXT + GATHER_RULES, "test.loyalty")
    cust = io.load_customers(sample(customers=30)[1]).frame
    base = batch.base(h, prog.model, cust)
    cp = compile_model(prog.model)
    gathered = batch.for_path(base, rows)
    assert gathered.origin is not None and gathered.origin.moved.any()
    plain = dataclasses.replace(gathered, origin=None)
    want_blocks, want_index = cp.masks(plain)
    got_blocks, got_index = cp.masks(gathered)
    assert np.array_equal(got_index, want_index)
    for r, rule in enumerate(prog.model.rules):
        for level in range(cp.levels):
            want = want_blocks[want_index[r, level]]
            assert np.array_equal(got_blocks[got_index[r, level]], want), (rule.name, level)
    # The rules are not vacuous: each holds somewhere and fails somewhere on this path.
    held = {rule.name for r, rule in enumerate(prog.model.rules) if any(want_blocks[want_index[r, lv]].any() for lv in range(cp.levels))}
    assert held >= {"a", "b", "c", "d", "e", "g", "h", "i", "j", "k", "l", "m"}
    pd.testing.assert_frame_equal(cp.run(gathered), cp.run(plain))
    # A path carrying only the columns its own rows are read for gives the same masks and ledger.
    lean = batch.for_path(base, rows, columns=copied_columns(prog.model))
    assert set(lean.frame.columns) < set(gathered.frame.columns)
    lean_blocks, lean_index = cp.masks(lean)
    assert np.array_equal(lean_index, want_index)
    assert all(np.array_equal(lean_blocks[i], want_blocks[i]) for i in np.unique(want_index))
    pd.testing.assert_frame_equal(cp.run(lean), cp.run(plain))


def test_threads_sharing_a_base_each_evaluate_their_own_span_of_it(path):
    # A path split between threads by customers: each half's shared conditions are evaluated over
    # the base rows of its span only, into one mask kept on the base, and equal the plain ones.
    from rulelang.engine.compile import compile_model

    h, rows = path
    prog = rulelang.loads(PROGRAM_TEXT + GATHER_RULES, "test.loyalty")
    base = batch.base(h, prog.model, io.load_customers(sample(customers=30)[1]).frame)
    cp = compile_model(prog.model)
    m = rows["_m"].to_numpy()
    cut = int(m[len(m) // 2])
    hist_m = h.rows["_m"].to_numpy()
    at = int(np.searchsorted(hist_m, cut))
    halves = [(rows[m < cut].reset_index(drop=True), (0, at)), (rows[m >= cut].reset_index(drop=True), (at, len(hist_m)))]
    for part, span in halves:
        got = batch.for_path(base, part, span=span)
        assert got.origin.span == span
        plain = dataclasses.replace(got, origin=None)
        want_blocks, want_index = cp.masks(plain)
        got_blocks, got_index = cp.masks(got)
        assert all(np.array_equal(got_blocks[got_index[r, lv]], want_blocks[want_index[r, lv]]) for r in range(len(prog.model.rules)) for lv in range(cp.levels))
        pd.testing.assert_frame_equal(cp.run(got), cp.run(plain))
    # The whole path afterwards (no span) evaluates over every base row, not the halves' masks alone.
    whole = batch.for_path(base, rows)
    pd.testing.assert_frame_equal(cp.run(whole), cp.run(dataclasses.replace(whole, origin=None)))
    with pytest.raises(AssertionError, match="outside its span"):
        batch.for_path(base, rows, span=(0, at))


def test_a_base_is_freed_when_dropped_not_at_the_next_garbage_collection(path):
    # Slices of a large history each build a base: one kept alive by a reference cycle until the
    # collector runs would pile up memory (simulator.chunked).
    import gc
    import weakref

    from rulelang.engine.compile import compile_model

    h, rows = path
    prog = rulelang.loads(PROGRAM_TEXT + GATHER_RULES, "test.loyalty")
    gc.disable()
    try:
        base = batch.base(h, prog.model, io.load_customers(sample(customers=30)[1]).frame)
        compile_model(prog.model).run(batch.for_path(base, rows))
        gone = weakref.ref(base)
        del base
        assert gone() is None
    finally:
        gc.enable()


@pytest.mark.parametrize("rules", ["", EXTRA_RULES])
def test_transaction_ids_as_arrow_text_or_as_categories_simulate_alike(rules):
    # Parquet ids stay Arrow text (rulelang.engine.arrowtext); CSV ids come dictionary-encoded. With and
    # without a rule that reads them (then extra baskets get ids of their own).
    from simulator.api import simulate
    from tests.simulator.simkit import scenario

    tx, cu = sample(customers=30)
    prog = rulelang.loads(PROGRAM_TEXT + rules, "test.loyalty")
    as_text = tx.assign(transaction_id=tx["transaction_id"].astype("str"))
    as_cats = tx.assign(transaction_id=tx["transaction_id"].astype("category"))
    a = simulate(prog, as_text, cu, scenario(runs=2), workers=1)
    b = simulate(prog, as_cats, cu, scenario(runs=2), workers=1)
    assert a.summary_json() == b.summary_json()
    pd.testing.assert_frame_equal(a.ledger, b.ledger)
    pd.testing.assert_frame_equal(a.monthly, b.monthly)


def test_extra_baskets_get_ids_of_their_own_past_a_small_id_dictionary():
    # Fewer than 128 ids keep int8 codes; the extra baskets' new ids take the codes past that.
    tx, _ = sample(customers=5, months=2)
    tx = tx.assign(transaction_id=tx["transaction_id"].astype("category"))
    h = prepare(io.load_transactions(tx).frame, 2)
    rows = enrollment.member_rows(h, enrollment.pick(h, 1.0, "random", seed=5, run=1))
    rows["_extra"] = False
    rows["_spawn"] = np.int64(-1)
    extra = response.extra_visits(rows, 1.0, h.keys, 5, 1, h.until)
    rows = pd.concat([rows, extra], ignore_index=True).sort_values("_ord", kind="stable").reset_index(drop=True)
    base = batch.base(h, PROGRAM.model, None)
    ids = base.frame["transaction_id"]
    assert isinstance(ids.dtype, pd.CategoricalDtype) and len(ids.cat.categories) < 128 <= len(ids.cat.categories) + len(extra)
    got = batch.for_path(base, rows).frame["transaction_id"].astype(str).to_numpy()
    is_extra = rows["_extra"].to_numpy()
    spawn = rows["_spawn"].to_numpy()[is_extra]
    assert (got[is_extra] == np.array([f"~extra{s}" for s in spawn], dtype=object)).all()


def test_the_base_from_the_first_stage_of_the_history_equals_the_base_from_the_whole():
    from simulator.history import annotated, sorted_rows

    tx, customers = sample(customers=30)
    loaded = io.load_transactions(tx).frame
    core = sorted_rows(loaded, 2)
    early = batch.base(core, PROGRAM.model, None).frame
    whole = batch.base(prepare(loaded, 2), PROGRAM.model, None).frame
    pd.testing.assert_frame_equal(early, whole)
    # The first stage leaves the basket starts, the random keys, and (rows already in order) the
    # input positions to the second.
    assert core.keys is None and "_visit" not in core.rows.columns and "_row" not in core.rows.columns
    finished = annotated(core)
    assert finished.keys is not None and list(finished.rows.columns) == list(prepare(loaded, 2).rows.columns)


@pytest.mark.parametrize("seed", range(4))
def test_units_and_refund_units_equal_the_numpy_formulation(seed):
    r = np.random.default_rng(seed)
    base_n = 400
    base_refund_of = np.where(r.random(base_n) < 0.1, r.integers(0, 150, base_n), -1)
    unit_starts = np.sort(r.choice(base_n, 150, replace=False))
    kept = np.sort(r.choice(base_n, 250, replace=False))  # the path's own rows: history order
    n_added = 40
    src = np.concatenate([kept, r.integers(0, base_n, n_added)])
    added = np.r_[np.zeros(len(kept), bool), np.ones(n_added, bool)]
    place = r.permutation(len(src))  # added rows fall anywhere among the own rows, which keep their order
    place[~added[place]] = np.flatnonzero(~added)
    src, added = src[place], added[place]
    enroll = added & (r.random(len(src)) < 0.5)
    extra = added & ~enroll
    purchase, visit = r.random(len(src)) < 0.8, r.random(len(src)) < 0.4
    # Rows grouped by member (a few members); some added rows copy a basket start added before them.
    member = np.sort(r.integers(0, 6, len(src)))
    copies = np.flatnonzero(extra & (r.random(len(src)) < 0.3))
    for i in copies:
        earlier = np.flatnonzero(extra[:i] & (member[:i] == member[i]))
        if len(earlier):
            src[i] = r.choice(np.flatnonzero(base_refund_of >= 0))
            src[earlier[-1]] = unit_starts[base_refund_of[src[i]]]
    unit, refund_of, in_order = batch._units(purchase, visit, src, enroll, extra, base_refund_of, unit_starts, member)
    # The NumPy version it replaced, for the path's own rows.
    want_unit = np.cumsum(~(purchase & ~visit)) - 1
    want = np.full(len(src), -1)
    base_ref = base_refund_of[src]
    own = np.flatnonzero(~enroll & ~extra)
    has = own[base_ref[own] >= 0]
    at = np.minimum(np.searchsorted(src[own], unit_starts[base_ref[has]]), len(own) - 1)
    found = src[own][at] == unit_starts[base_ref[has]]
    want[has] = np.where(found, want_unit[own[at]], -1)
    # A copied refund (an added, not enrol, row): the unit of the nearest earlier added row of its
    # member copying the refunded basket's start (brute force); an enrol row refers to nothing.
    matched = 0
    for i in np.flatnonzero(extra & (base_ref >= 0)):
        for j in range(i - 1, -1, -1):
            if member[j] != member[i]:
                break
            if extra[j] and src[j] == unit_starts[base_ref[i]]:
                want[i] = want_unit[j]
                matched += 1
                break
    assert in_order and len(has) and found.any() and not found.all() and matched
    assert np.array_equal(unit, want_unit) and np.array_equal(refund_of, want)
    assert not batch._units(purchase, visit, src[::-1].copy(), enroll[::-1].copy(), extra[::-1].copy(), base_refund_of, unit_starts, member[::-1].copy())[2]
