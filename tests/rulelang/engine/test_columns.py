"""Condition columns (rulelang.engine.columns): what is converted once and shared."""

from __future__ import annotations

import gc

import numpy as np
import pandas as pd

import rulelang
from rulelang import builtins as B
from rulelang.engine import columns
from rulelang.engine.data import Batch, prepare

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


def test_date_parts_are_numpys_calendar_for_any_range_of_days():
    def numpy_part(days, part):
        d = days.astype("datetime64[D]")
        m = d.astype("datetime64[M]")
        if part == "day":
            return (d - m).astype(np.int64) + 1
        months = m.astype(np.int64)
        return months % 12 + 1 if part == "month" else months // 12 + 1970

    r = np.random.default_rng(3)
    # Wide (looked up per row), narrow (through a table of the range's days), edges, empty; before year 1 too.
    for days in (r.integers(-800_000, 800_000, 4000), r.integers(19_000, 19_400, 50_000), np.array([0, -1, 59, 60, -719_468, -719_469, 2_932_896]), np.zeros(0, np.int64)):
        for part in ("year", "month", "day"):
            assert np.array_equal(columns.date_part(days, part), numpy_part(days, part)), part


def test_civil_dates_and_day_numbers_round_trip_before_year_zero_too():
    from rulelang.engine.calendar import civil_from_days, days_from_civil

    for day in np.random.default_rng(4).integers(-900_000, 900_000, 2000).tolist() + [-719_469, -719_468, 0]:
        y, m, d = civil_from_days(day)
        assert days_from_civil(y, m, d) == day
        assert np.datetime64(day, "D") == np.datetime64(f"{y:+07d}-{m:02d}-{d:02d}" if y < 1 or y > 9999 else f"{y:04d}-{m:02d}-{d:02d}")
