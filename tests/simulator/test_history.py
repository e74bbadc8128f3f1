"""simulator.history: helpers that replace pandas calls give what those calls give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rulelang.errors import DataError
from simulator.history import _drop_unused
from tests.strategies import contract_frame


@pytest.mark.parametrize(
    ("categories", "codes"),
    [
        (list("abcde"), [0, 2, 2, -1, 4]),  # few categories, one missing value
        ([f"c{i}" for i in range(40)], [39, 0, -1, 5, 5]),  # many categories: counted
        (list("ab"), [-1, -1]),  # nothing used
        (list("ab"), [0, 1]),  # everything used
    ],
)
def test_drop_unused_is_remove_unused_categories(categories, codes):
    values = pd.Categorical.from_codes(codes, categories=categories)
    got, want = _drop_unused(values), values.remove_unused_categories()
    assert list(got.categories) == list(want.categories)
    assert got.codes.tolist() == want.codes.tolist() and got.codes.dtype == want.codes.dtype


def test_grouped_in_time_is_the_sort_check():
    from simulator.history import grouped_in_time

    rng = np.random.default_rng(2)
    for n in (0, 1, 2, 50):
        for _ in range(200):
            keys = np.sort(rng.integers(0, 4, n)) if rng.random() < 0.7 else rng.integers(0, 4, n)
            ts = rng.integers(0, 3, n).astype("datetime64[ns]")
            want = n < 2 or bool(np.all((keys[1:] > keys[:-1]) | ((keys[1:] == keys[:-1]) & (ts[1:] >= ts[:-1]))))
            assert grouped_in_time(keys, ts) == want


@pytest.mark.parametrize("new", [{"c": [1.0, 2.0, 3.0]}, {"a": [7, 8, 9]}, {"b": ["z", "z", "y"], "d": [0, 1, 2]}])
@pytest.mark.parametrize("index", [None, [4, 1, 9]])
@pytest.mark.parametrize("drop", [(), ("t",), ("b", "t")])
def test_with_columns_is_setting_them_without_copies(new, index, drop):
    from simulator.history import with_columns

    frame = pd.DataFrame({"a": np.arange(3), "b": pd.Categorical(list("xyx")), "t": pd.date_range("2026-01-01", periods=3)}, index=index)
    new = {k: pd.Categorical(v) if isinstance(v[0], str) else np.array(v) for k, v in new.items()}
    want = frame.drop(columns=list(drop))
    for k, v in new.items():
        want[k] = v
    got = with_columns(frame, new, drop=drop)
    pd.testing.assert_frame_equal(got, want)
    assert list(frame.columns) == ["a", "b", "t"]  # the frame itself unchanged
    for k, v in new.items():
        if isinstance(v, np.ndarray):
            assert np.shares_memory(got[k].to_numpy(), v)
    if "a" not in new:
        assert np.shares_memory(got["a"].to_numpy(), frame["a"].to_numpy())


def test_amounts_that_are_not_numbers_are_refused_by_the_history():
    from simulator.history import sorted_rows

    rows = pd.DataFrame({"customer_id": ["a", "a"], "timestamp": pd.to_datetime(["2026-01-01", "2026-01-02"]), "amount": [1.0, None]})
    for amount in (rows["amount"], rows["amount"].astype("Float64"), rows["amount"].astype(object)):
        with pytest.raises(DataError, match="column amount: values that are not numbers"):
            sorted_rows(rows.assign(amount=amount), 2)


@pytest.mark.parametrize("categories", [["a", "b", "c", "d"], ["d", "b", "a", "c"], ["a", "c", "b", "zz", "e"]])
def test_customer_codes_rank_the_ids_in_use(categories):
    from simulator.history import _factorize_sorted

    values = ["c", "a", "c", "b", "a"]  # not every category is in use in the last two cases
    for dtype in (pd.CategoricalDtype(categories), pd.CategoricalDtype(pd.Index(categories, dtype=pd.StringDtype("pyarrow")))):
        codes, ids = _factorize_sorted(pd.Series(values, dtype=dtype))
        want_codes, want_ids = pd.factorize(pd.Series(values), sort=True)
        assert codes.tolist() == want_codes.tolist() and list(np.asarray(ids, dtype=object)) == list(want_ids)


CONTRACT_PROGRAM = """currency CNY
earn base: 1 point per 1 CNY
reward coffee: 300 points cost 8 CNY
"""


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(contract_frame(), st.sampled_from(["object", "category", "arrow"]))
def test_the_history_reads_events_refunds_and_baskets_as_the_engines_batch_does(drawn, ids_as):
    import rulelang
    from rulelang.engine import prepare as engine_prepare
    from rulelang.engine.data import PURCHASE, REFUND
    from simulator.history import prepare

    frame, oracle = drawn
    ids = frame["transaction_id"]
    frame = frame.assign(transaction_id=ids.astype(pd.StringDtype("pyarrow") if ids_as == "arrow" else ids_as))
    batch = engine_prepare(frame, rulelang.loads(CONTRACT_PROGRAM).model).frame
    rows = prepare(frame, 2).rows
    # Both in one order (by customer, then time, then input row): each row is its oracle row.
    assert rows["_row"].tolist() == batch["row"].tolist()
    want = oracle.iloc[batch["row"].to_numpy()].reset_index(drop=True)
    kind, unit = batch["kind"].to_numpy(), batch["unit"].to_numpy()
    engine_starts = (kind == PURCHASE) & np.r_[True, unit[1:] != unit[:-1]]
    for name, engine, history in (
        ("event", batch["event"].astype(str).tolist(), rows["_event"].astype(str).tolist()),
        ("refund", (kind == REFUND).tolist(), rows["_refund"].tolist()),
        ("cents", batch["amount"].tolist(), rows["_minor"].tolist()),
        ("start", engine_starts.tolist(), rows["_visit"].tolist()),
    ):
        assert engine == history == want[name].tolist(), name
