"""Fuzzing the loader: no data file or frame, however hostile, gets anything but a `LoyaltyError`
out of `load_transactions`/`load_customers` (nor out of a one-run simulation of what loads); every
row read is used, rejected or outside the period exactly once; valid rows come back as written."""

from __future__ import annotations

import csv
import datetime as dt
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rulelang.errors import LoyaltyError
from simulator.io import load_customers, load_transactions
from tests.strategies import CUSTOMER_COLUMNS, DATA_TYPED, data_table, data_valid_rows

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OPTIONS = st.fixed_dictionaries(
    {
        "columns": st.sampled_from([None, {"customer_id": "member_no", "timestamp": "paid_at", "amount": "total"}, {"birthday": "segment"}]),
        "period": st.sampled_from([None, "2026-01-01 to 2026-12-31"]),
        "timestamp_format": st.sampled_from([None, "%d/%m/%Y"]),
        "currency": st.sampled_from([None, "CNY"]),
    }
)


def _write_csv(path: Path, names: list[str], rows: list[list]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(names)
        w.writerows([["" if c is None else c for c in row] for row in rows])
    return path


def _write_parquet(path: Path, names: list[str], rows: list[list], typed: dict[int, tuple]) -> Path:
    arrays = []
    for i in range(len(names)):
        if i in typed:
            arrow_type, values = typed[i]
            arrays.append(pa.array(values, arrow_type))
        else:
            arrays.append(pa.array([row[i] for row in rows], pa.string()))
    pq.write_table(pa.Table.from_arrays(arrays, names=names), path)
    return path


@st.composite
def _source(draw, base):
    """A table written as CSV or Parquet (some columns typed), or given as a DataFrame: a function
    of a folder giving what to load."""
    names, rows = draw(data_table(base))
    kind = draw(st.sampled_from(["csv", "parquet", "frame"]))
    if kind == "csv":
        return lambda folder: _write_csv(folder / "t.csv", names, rows)
    typed = {}
    for i in range(len(names)):
        if draw(st.integers(0, 2)) == 0:
            name = draw(st.sampled_from(sorted(DATA_TYPED)))
            arrow_type, pool = DATA_TYPED[name]
            typed[i] = (arrow_type, draw(st.lists(st.sampled_from(pool), min_size=len(rows), max_size=len(rows))))
    if kind == "parquet":
        return lambda folder: _write_parquet(folder / "t.parquet", names, rows, typed)
    return lambda folder: _frame(names, rows, typed)


def _frame(names: list[str], rows: list[list], typed: dict[int, tuple]) -> pd.DataFrame:
    """The table as a DataFrame, its typed columns as pandas gives Arrow's (names may repeat)."""
    cols = {i: pa.array(typed[i][1], typed[i][0]).to_pandas() if i in typed else pd.Series([r[i] for r in rows], dtype=object) for i in range(len(names))}
    frame = pd.DataFrame(cols, index=pd.RangeIndex(len(rows)))
    frame.columns = names
    return frame


def _accounted(r) -> None:
    """Every row read is in exactly one place, and the rejects name rows that exist, once each."""
    assert r.rows_read == r.rows_used + r.rows_rejected + r.rows_outside_period
    assert len(r.frame) == r.rows_used and len(r.rejects) == r.rows_rejected
    rows = r.rejects["row"].tolist()
    assert len(set(rows)) == len(rows) and all(1 <= x <= r.rows_read for x in rows)
    assert r.report()


@FUZZ
@given(_source(("customer_id", "timestamp", "amount")), OPTIONS)
def test_no_transactions_file_raises_anything_but_a_loyalty_error(source, options):
    with tempfile.TemporaryDirectory() as folder:
        try:
            r = load_transactions(source(Path(folder)), **options)
        except LoyaltyError:
            return
        _accounted(r)
        assert r.frame["timestamp"].dtype == "datetime64[ns]" and r.frame["amount"].abs().le(10**13).all()


@FUZZ
@given(_source(CUSTOMER_COLUMNS), st.sampled_from([None, "%d/%m/%Y"]))
def test_no_customers_file_raises_anything_but_a_loyalty_error(source, timestamp_format):
    with tempfile.TemporaryDirectory() as folder:
        try:
            r = load_customers(source(Path(folder)), timestamp_format=timestamp_format)
        except LoyaltyError:
            return
        _accounted(r)
        assert r.frame["customer_id"].is_unique


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data_table(("customer_id", "timestamp", "amount")), data_table(CUSTOMER_COLUMNS, max_rows=3))
def test_a_simulation_of_whatever_loads_raises_nothing_but_loyalty_errors(tx, cust):
    from simulator.api import simulate
    from simulator.scenario import loads_scenario
    from tests.simulator.simkit import program

    with tempfile.TemporaryDirectory() as folder:
        tx_path = _write_csv(Path(folder) / "t.csv", *tx)
        cust_path = _write_csv(Path(folder) / "c.csv", *cust)
        try:
            res = simulate(program(), tx_path, cust_path, loads_scenario("runs: 1"), workers=1)
        except LoyaltyError:
            return
        event("simulated")
        load = res.loads[0]
        assert load.rows_read == load.rows_used + load.rows_rejected + load.rows_outside_period and load.rows_used > 0


@pytest.mark.parametrize("kind", ["csv", "parquet", "frame"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=data_valid_rows())
def test_valid_rows_come_back_as_written_in_customer_and_time_order(kind, rows):
    table = {
        "customer_id": [r[0] for r in rows],
        "timestamp": [r[1].isoformat(sep=" ") for r in rows],
        "amount": [f"{r[2] / 100:.2f}" for r in rows],
    }
    with tempfile.TemporaryDirectory() as folder:
        if kind == "csv":
            source = _write_csv(Path(folder) / "t.csv", list(table), [list(r) for r in zip(*table.values(), strict=True)])
        elif kind == "parquet":
            source = Path(folder) / "t.parquet"
            pq.write_table(pa.table(table), source)
        else:
            source = pd.DataFrame(table)
        r = load_transactions(source)
    assert (r.rows_used, r.rows_rejected) == (len(rows), 0)
    # The oracle: a stable sort of the rows by (id as text, time) in Python.
    want = sorted(rows, key=lambda x: (x[0], x[1]))
    assert r.frame["customer_id"].astype(str).tolist() == [w[0] for w in want]
    assert r.frame["timestamp"].tolist() == [pd.Timestamp(w[1]) for w in want]
    assert [round(a * 100) for a in r.frame["amount"].tolist()] == [w[2] for w in want]
    assert all(isinstance(w[1], dt.datetime) for w in want)
