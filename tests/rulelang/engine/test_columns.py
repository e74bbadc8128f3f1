"""Condition columns (rulelang.engine.columns): what is converted once and shared."""

from __future__ import annotations

import datetime as dt
import gc

import numpy as np
import pandas as pd

import rulelang
from rulelang import builtins as B
from rulelang import values as V
from rulelang.engine import columns
from rulelang.engine.data import PURCHASE, REFUND, Batch, prepare

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


def test_months_back_is_the_reference_calendar_clamped_to_the_months_end():
    days = np.arange(-800, 22_000, 7, dtype=np.int64)
    start = dt.date(1970, 1, 1)
    for n in (1, 2, 12, 13, 1200):
        want = [(V.add_months(start + dt.timedelta(days=int(d)), -n) - start).days for d in days]
        assert columns.months_back(days, n).tolist() == want


def test_recency_columns_match_a_brute_force_count_over_each_members_earlier_rows():
    """visits_in, spend_in and days_since_last_purchase per row against a plain loop over the
    member's earlier units (baskets by transaction id, refunds, events that count nothing)."""
    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame({
        "customer_id": rng.choice(["a", "b", "c", "d"], n),
        "timestamp": pd.Timestamp("2027-12-20") + pd.to_timedelta(rng.integers(0, 200, n), unit="D") + pd.to_timedelta(rng.choice([0, 9, 23], n), unit="h"),
        "amount": rng.integers(1, 5000, n) / 100,
        "event": rng.choice(["purchase"] * 6 + ["refund", "referral"], n),
    })
    frame = frame.sort_values(["customer_id", "timestamp"], kind="stable").reset_index(drop=True)
    # Some purchases share a basket with the row before (same member and moment).
    frame["transaction_id"] = [f"t{i}" for i in range(n)]
    for i in range(1, n):
        same = frame.loc[i, ["customer_id", "timestamp", "event"]].equals(frame.loc[i - 1, ["customer_id", "timestamp", "event"]])
        if same and frame.loc[i, "event"] == "purchase" and rng.random() < 0.7:
            frame.loc[i, "transaction_id"] = frame.loc[i - 1, "transaction_id"]
    model = rulelang.loads(HEAD + "earn b: 1 points when visits_in(30 days) >= 0\n").model
    batch = prepare(frame, model)
    env = columns.Env(model, batch)
    f = batch.frame
    day = (f["timestamp"].to_numpy(dtype="datetime64[D]")).astype(np.int64)
    dates = [d.date() for d in f["timestamp"]]
    member, unit_of, kind, amount = (f[c].tolist() for c in ("member", "unit", "kind", "amount"))
    first = {}  # row -> the first row of its unit
    for i in range(len(f)):
        first[i] = i if i == 0 or unit_of[i] != unit_of[i - 1] else first[i - 1]
    for n_, unit in ((1, "days"), (30, "days"), (1, "months"), (3, "months")):
        visits, spend = env.window("visits_in", n_, unit), env.window("spend_in", n_, unit)
        for i in range(len(f)):
            start = dates[i] - dt.timedelta(days=n_) if unit == "days" else V.add_months(dates[i], -n_)
            before = [j for j in range(first[i]) if member[j] == member[i] and dates[j] > start and kind[j] in (PURCHASE, REFUND)]
            want_visits = len({unit_of[j] for j in before if kind[j] == PURCHASE})
            want_spend = sum(amount[j] for j in before)
            assert (visits.num[i], spend.num[i]) == (want_visits, want_spend), (i, n_, unit)
            assert visits.den[i] == 1 and spend.den[i] == 100
    since = env.days_since_last_purchase()
    for i in range(len(f)):
        earlier = [j for j in range(first[i]) if member[j] == member[i] and kind[j] == PURCHASE]
        assert bool(since.ok[i]) == bool(earlier)
        if earlier:
            assert since.num[i] == day[i] - day[earlier[-1]]
