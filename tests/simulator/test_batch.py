"""A path's Batch gathered from the base equals what the engine's data contract makes of the path's rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import rulelang
from rulelang.data import prepare as engine_prepare
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


def test_gathered_batch_equals_the_engines_own(path):
    h, rows = path
    base = batch.base(h, PROGRAM.model, None)
    got = batch.for_path(base, rows).frame
    want = engine_prepare(engine_frame(rows, h.customer_ids, h.decimals), PROGRAM.model, None, h.until).frame
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
    mine = PROGRAM.evaluate(engine_frame(rows, h.customer_ids, h.decimals), until=h.until)
    from rulelang.compile import compile_model

    cp = compile_model(PROGRAM.model)
    gathered = cp.run(batch.for_path(base, rows))
    pd.testing.assert_frame_equal(gathered.astype(str), mine.astype(str))
    plain = rulelang.loads(PROGRAM_TEXT, "test.loyalty")
    blank = batch.for_path(batch.base(h, plain.model, None), rows, exact_ids=False)
    assert (blank.frame["transaction_id"].astype(str)[rows["_extra"].to_numpy()] == "").all()
    exact = compile_model(plain.model).run(batch.for_path(batch.base(h, plain.model, None), rows, exact_ids=True))
    pd.testing.assert_frame_equal(compile_model(plain.model).run(blank).astype(str), exact.astype(str))
