"""Condition columns (rulelang.columns): what is converted once and shared."""

from __future__ import annotations

import gc

import numpy as np
import pandas as pd

import rulelang
from rulelang import builtins as B
from rulelang import columns
from rulelang.data import Batch, prepare

HEAD = 'program "t"\ncurrency CNY\npoint_cost 0.01 CNY\n'


def test_a_customer_attribute_is_converted_once_per_customers_table(monkeypatch):
    model = rulelang.loads(HEAD + "earn b: 100 points when month(date) == month(customer.birthday)\n").model
    rows = pd.DataFrame({"customer_id": ["a", "a", "b"], "timestamp": ["2028-03-05 10:00", "2028-03-06 10:00", "2028-04-01 10:00"], "amount": [5.0, 6.0, 7.0]})
    customers = pd.DataFrame({"customer_id": ["a", "b"], "birthday": ["1990-03-01", "1985-07-09"]})
    batch = prepare(rows, model, customers)
    calls = []
    real = columns._TYPED[B.DATE]
    monkeypatch.setitem(columns._TYPED, B.DATE, lambda values, dec: calls.append(len(values)) or real(values, dec))
    whole = columns.Env(model, batch).customer("birthday")
    # A batch of some of the rows over the same customers (as the base's spans are): no second conversion.
    part = Batch(batch.frame.iloc[1:].reset_index(drop=True), batch.customers, batch.decimals, batch.until, batch.members)
    some = columns.Env(model, part).customer("birthday")
    assert calls == [2]  # once, over the two customers
    assert np.array_equal(some.values, whole.values[1:]) and np.array_equal(some.ok, whole.ok[1:])
    assert np.array_equal(whole.values, pd.to_datetime(["1990-03-01", "1990-03-01", "1985-07-09"]).to_numpy().astype("datetime64[D]").astype(np.int64))
    # Another table is converted for itself, and a table's entry goes with it.
    other = prepare(rows, model, customers.assign(birthday=["1991-03-01", "1986-07-09"]))
    columns.Env(model, other).customer("birthday")
    assert calls == [2, 2]
    key = id(other.customers)
    assert key in columns._TABLES
    del other
    gc.collect()
    assert key not in columns._TABLES
