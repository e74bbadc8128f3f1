"""Loading transactions and customers: mapping, row-level rejects with reasons, counts, speed."""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rulelang.errors import DataError, LoyaltyError
from simulator.io import OUT_OF_RANGE, load_customers, load_transactions, write_rejects
from simulator.scenario import ScenarioError, loads_scenario

MAPPING = {"customer_id": "member_no", "timestamp": "paid_at", "amount": "total"}

CSV = """member_no,paid_at,total,event,reward,category
C2,2026-01-03 10:00:00,12.50,,,coffee
C1,2026-01-02 09:00:00,abc,,,tea
,2026-01-02 09:00:00,3,,,tea
C1,yesterday,3,,,tea
C1,2026-01-01 08:00:00,4.005,,,pastry
C3,2025-12-01 08:00:00,,,,pastry
C3,2026-02-01 08:00:00,,,,pastry
C3,2026-02-02 08:00:00,0,Redeem,,
007,2026-02-02 08:00:00,7,redeem,coffee,
"""


def _write(tmp_path: Path, text: str, name: str = "tx.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _identity(r) -> bool:
    return r.rows_read == r.rows_used + r.rows_rejected + r.rows_outside_period == len(r.frame) + len(r.rejects) + r.rows_outside_period


def test_each_bad_row_is_rejected_with_its_reason(tmp_path):
    r = load_transactions(_write(tmp_path, CSV), MAPPING, period="2026-01-01 to 2026-12-31")
    got = {row: (col, reason) for row, col, reason in r.rejects[["row", "column", "reason"]].itertuples(index=False)}
    assert got[2][0] == "amount" and got[2][1].startswith("not a number")
    assert got[3] == ("customer_id", "empty customer id")
    assert got[4][0] == "timestamp" and got[4][1].startswith("not a date-time")
    assert got[7] == ("amount", "empty amount")
    assert got[8] == ("reward", "redeem row without a reward")
    assert set(got) == {2, 3, 4, 7, 8}
    assert r.rejects.set_index("row").loc[2, "value"] == "abc"
    # Row 6 is before the period: set aside, not rejected.
    assert (r.rows_read, r.rows_used, r.rows_rejected, r.rows_outside_period) == (9, 3, 5, 1)
    assert _identity(r)


def test_frame_is_canonical_and_sorted(tmp_path):
    r = load_transactions(_write(tmp_path, CSV), MAPPING)
    f = r.frame
    assert list(f.columns[:6]) == ["customer_id", "timestamp", "amount", "event", "transaction_id", "reward"]
    assert "category" in f.columns and "member_no" not in f.columns
    assert f["customer_id"].tolist() == ["007", "C1", "C2"]  # ids stay text: 007 keeps its zeros
    assert str(f["timestamp"].dtype) == "datetime64[ns]" and f["amount"].dtype == np.float64
    assert f["event"].tolist() == ["redeem", "purchase", "purchase"]
    assert f["source_row"].tolist() == [9, 5, 1]
    assert f.loc[f["customer_id"] == "C1", "amount"].item() == pytest.approx(4.0)  # 4.005 rounds half-even at 2 decimals


def test_stable_sort_keeps_basket_lines_in_file_order(tmp_path):
    text = "customer_id,timestamp,amount,transaction_id,sku\n" + "".join(
        f"{c},2026-01-0{d} 10:00:00,{i},{c}{d},L{i}\n" for i, (c, d) in enumerate([("B", 2), ("A", 1), ("B", 1), ("B", 1), ("A", 1), ("B", 1)])
    )
    f = load_transactions(_write(tmp_path, text)).frame
    assert f["sku"].tolist() == ["L1", "L4", "L2", "L3", "L5", "L0"]


def test_report_names_first_ten_rows_and_the_count(tmp_path):
    rows = "".join(f"C{i},2026-01-01,{'x' if i % 2 else 1}\n" for i in range(30))
    r = load_transactions(_write(tmp_path, "customer_id,timestamp,amount\n" + rows))
    assert r.rows_rejected == 15 and _identity(r)
    report = r.report()
    assert "rows 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, ... (15 rows in all)" in report
    assert "header is not counted" in report and "30 rows read: 15 used, 15 rejected" in report


def test_rejects_file_holds_every_rejected_row(tmp_path):
    r = load_transactions(_write(tmp_path, CSV), MAPPING)
    out = pd.read_csv(write_rejects(r, tmp_path / "rejects.csv"), dtype=str, keep_default_na=False)
    assert list(out.columns[:4]) == ["row", "column", "value", "reason"]
    assert "member_no" in out.columns and "paid_at" in out.columns
    assert out["row"].astype(int).tolist() == r.rejects["row"].tolist() and len(out) == r.rows_rejected
    assert out.set_index("row").loc["4", "paid_at"] == "yesterday"


def test_rejects_file_neutralises_a_hostile_customer_id_and_category(tmp_path):
    text = "member_no,paid_at,total,event,reward,category\n=cmd|' /C calc'!A0,2026-01-03 10:00:00,abc,,,+SUM(1)\n"
    r = load_transactions(_write(tmp_path, text), MAPPING)
    out = pd.read_csv(write_rejects(r, tmp_path / "rejects.csv"), dtype=str, keep_default_na=False)
    assert out["member_no"].tolist() == ["'=cmd|' /C calc'!A0"] and out["category"].tolist() == ["'+SUM(1)"]


def test_missing_column_lists_available_and_suggests_mapping(tmp_path):
    with pytest.raises(DataError) as info:
        load_transactions(_write(tmp_path, CSV))
    msg = str(info.value)
    assert "no column `customer_id`, `timestamp`, `amount`" in msg
    assert "available: member_no, paid_at, total, event, reward, category" in msg
    assert "columns: {customer_id: member_no, timestamp: paid_at, amount: total}" in msg
    assert isinstance(info.value, LoyaltyError)


def test_mapping_to_a_column_that_is_not_there(tmp_path):
    with pytest.raises(DataError, match=r"columns.amount maps your column `totl`.*did you mean `total`"):
        load_transactions(_write(tmp_path, CSV), {**MAPPING, "amount": "totl"})


def test_mapped_column_keeps_the_files_own_column_aside(tmp_path):
    text = "customer_id,timestamp,local_time,amount\nA,2026-01-01 00:00:00,2026-01-01 08:00:00,1\n"
    r = load_transactions(_write(tmp_path, text), {"timestamp": "local_time"})
    assert r.frame["timestamp"].iloc[0] == pd.Timestamp("2026-01-01 08:00:00")
    assert r.frame["timestamp_unmapped"].iloc[0] == "2026-01-01 00:00:00"
    assert "timestamp_unmapped" in r.report()


def test_parquet_and_dataframe_inputs(tmp_path):
    df = pd.DataFrame(
        {"customer_id": [12, 3], "timestamp": pd.to_datetime(["2026-01-02", "2026-01-01"]), "amount": [1.5, np.nan], "quantity": [1, 2]}
    )
    df.to_parquet(tmp_path / "t.parquet")
    for source in (tmp_path / "t.parquet", df):
        r = load_transactions(source)
        assert r.frame["customer_id"].tolist() == ["12"] and r.rejects["row"].tolist() == [2] and _identity(r)


@pytest.mark.parametrize("quantity", [[1, -2, 0], [1, 2**53 + 1, 3], [1.0, np.nan, -0.0], [0.5, 1.0, 2.0]])
def test_stored_quantities_load_as_their_text_does(tmp_path, quantity):
    df = pd.DataFrame({"customer_id": ["a", "b", "c"], "timestamp": pd.to_datetime(["2026-01-01"] * 3), "amount": [1.0, 2.0, 3.0], "quantity": quantity})
    text = "customer_id,timestamp,amount,quantity\n" + "".join(
        f"{c},2026-01-01 00:00:00,{a},{'' if isinstance(q, float) and np.isnan(q) else q}\n" for c, a, q in zip(df["customer_id"], df["amount"], quantity, strict=True)
    )
    from_text = load_transactions(_write(tmp_path, text)).frame["quantity"]
    # (Text with no blank cell reads as integers; the values are what must agree.)
    pd.testing.assert_series_equal(load_transactions(df).frame["quantity"], from_text, check_dtype=False)


def test_parquet_row_groups_load_as_one_group_does(tmp_path):
    rng = np.random.default_rng(3)
    n = 500
    df = pd.DataFrame(
        {
            "customer_id": rng.integers(0, 40, n).astype(str),
            "timestamp": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 10**7, n), unit="s"),
            "transaction_id": [f"t{i}" for i in range(n)],
            "amount": rng.integers(-500, 5000, n) / 100,
            "category": rng.choice(["coffee", "pastry"], n),
        }
    )
    df.to_parquet(tmp_path / "one.parquet", row_group_size=n)
    df.to_parquet(tmp_path / "groups.parquet", row_group_size=70)  # each row group its own Arrow chunk
    pd.testing.assert_frame_equal(load_transactions(tmp_path / "groups.parquet").frame, load_transactions(tmp_path / "one.parquet").frame)


def test_unreadable_inputs_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="no such transactions file"):
        load_transactions(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="unknown file type"):
        load_transactions(_write(tmp_path, "x", "t.xlsx"))
    with pytest.raises(DataError, match="repeats the column name"):
        load_transactions(_write(tmp_path, "customer_id,customer_id,timestamp,amount\n1,1,2026-01-01,1\n"))
    # Only regular files are read: a pipe would block, /dev/zero never end (here a link to /dev/null).
    (tmp_path / "dev.csv").symlink_to("/dev/null")
    with pytest.raises(DataError, match="not a regular file"):
        load_transactions(tmp_path / "dev.csv")
    with pytest.raises(DataError, match="not a regular file"):
        load_customers(tmp_path / "dev.csv")


def test_customers_parse_birthdays_and_reject_bad_rows(tmp_path):
    text = "member_no,birthday,segment\nA,1990-05-17,office\nB,,student\n,1980-01-01,x\nC,17/17/1990,y\nA,1991-01-01,dup\n"
    r = load_customers(_write(tmp_path, text, "c.csv"), MAPPING)
    assert r.frame["customer_id"].tolist() == ["A", "B"]
    assert r.frame["birthday"].iloc[0] == pd.Timestamp("1990-05-17") and pd.isna(r.frame["birthday"].iloc[1])
    assert dict(zip(r.rejects["row"], r.rejects["column"], strict=True)) == {3: "customer_id", 4: "birthday", 5: "customer_id"}
    assert r.rows_read == r.rows_used + r.rows_rejected == 5


@pytest.mark.slow
def test_a_million_rows_load_in_seconds(tmp_path):
    n = 1_000_000
    ids = pd.Series(np.arange(n) % 50_000).astype(str).str.zfill(6)
    ts = pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(n) % 31_000_000, unit="s")
    df = pd.DataFrame({"customer_id": ids, "timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"), "amount": (np.arange(n) % 9000) / 100, "category": "coffee"})
    path = tmp_path / "big.csv"
    df.to_csv(path, index=False)
    t = time.perf_counter()
    r = load_transactions(path)
    elapsed = time.perf_counter() - t
    assert r.rows_used == n and r.frame["customer_id"].is_monotonic_increasing
    assert elapsed < 15, f"loading 1M rows took {elapsed:.1f}s"


def test_period_includes_both_days_and_sets_rows_aside(tmp_path):
    from simulator.scenario import loads_scenario

    text = "customer_id,timestamp,amount\n" + "".join(
        f"A,{t},1\n" for t in ["2025-12-31 23:59:59", "2026-01-01 00:00:00", "2026-01-31 23:59:59", "2026-02-01 00:00:00", "bad"]
    )
    period = loads_scenario("period: 2026-01-01 to 2026-01-31").period
    r = load_transactions(_write(tmp_path, text), period=period)
    assert r.frame["source_row"].tolist() == [2, 3]
    assert (r.rows_outside_period, r.rows_rejected) == (2, 1) and _identity(r)
    assert "2 outside the period 2026-01-01 to 2026-01-31" in r.report()


def test_parquet_customers_load_as_their_csv_does(tmp_path):
    # Parquet ids are read as Arrow text (no dictionary) and text attributes stay dictionary-
    # encoded; the loaded customers, rejects and counts are those of the same rows as CSV.
    df = pd.DataFrame(
        {
            "customer_id": ["B", " A", "C ", "", None, "D", "B"],
            "segment": ["x", None, "y", "z", "", "w", "v"],
            "age": pd.array([30, None, 41, 50, 60, 70, 80], dtype="Int64"),
            "birthday": ["1990-05-17", "", "1980-01-01", "1970-01-01", "1960-01-01", "nope", "1999-01-01"],
        }
    )
    df.to_parquet(tmp_path / "c.parquet")
    df.to_csv(tmp_path / "c.csv", index=False)
    got = load_customers(tmp_path / "c.parquet")
    want = load_customers(tmp_path / "c.csv")
    assert got.frame["customer_id"].tolist() == ["A", "B", "C"]
    assert isinstance(got.frame["segment"].dtype, pd.CategoricalDtype)
    for c in ("customer_id", "segment", "age", "birthday"):
        assert got.frame[c].astype(object).tolist() == want.frame[c].astype(object).tolist(), c
    assert got.rejects.equals(want.rejects) and got.rejects["row"].tolist() == [4, 5, 6, 7]
    assert (got.rows_read, got.rows_used, got.rows_rejected) == (7, 3, 4)


def test_a_period_keeps_its_first_and_last_day_and_a_missing_date_time_is_not_outside(tmp_path):
    text = "customer_id,timestamp,amount\n" + "".join(
        f"c{i},{ts},1\n" for i, ts in enumerate(["2025-12-31 23:59:59", "2026-01-01 00:00:00", "2026-06-30 23:59:59", "2026-07-01 00:00:00", "", "soon"])
    )
    r = load_transactions(_write(tmp_path, text), period="2026-01-01 to 2026-06-30")
    assert r.frame["customer_id"].tolist() == ["c1", "c2"]
    assert r.rows_outside_period == 2 and r.rejects["row"].tolist() == [5, 6] and _identity(r)


@pytest.mark.parametrize("decimals", [0, 2, 3])
def test_amounts_are_rounded_and_checked_in_one_pass_exactly_as_numpy_does(decimals):
    from simulator.io import _amounts

    rng = np.random.default_rng(decimals)
    edge = [0.005, 0.015, 0.025, -0.005, 2.675, 1.005, -0.0, 0.0, 1e300, -1e300, np.inf, -np.inf, np.nan, 5e-324]
    a = np.concatenate([rng.normal(0, 1000, 5000), rng.integers(-10**8, 10**8, 5000) / 1000, edge])
    rounded, missing, bad, big = _amounts(a, float(10**decimals), 1e9)
    assert np.array_equal(rounded.view(np.int64), pd.Series(a).round(decimals).to_numpy().view(np.int64))  # bit for bit, -0.0 and NaN too
    assert np.array_equal(missing, np.isnan(a)) and np.array_equal(bad, ~np.isfinite(a))
    with np.errstate(invalid="ignore"):
        assert np.array_equal(big, np.array([abs(x) * 10**decimals > 1e9 for x in a.tolist()]))


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64])
def test_whole_numbers_stored_as_integers_read_as_floats_when_exact(dtype):
    from simulator.io import _whole_numbers

    big = min(np.iinfo(dtype).max, 2**53 - 1)  # the largest exact as a float
    values = pd.Series(np.array([0, -3, 7, big, -big], dtype=dtype))
    got = _whole_numbers(values)
    assert got.dtype == np.float64 and np.array_equal(got, values.to_numpy().astype(np.float64))
    if dtype == np.int64:  # beyond 2**53 a float is no longer the integer: read through the text instead
        assert _whole_numbers(pd.Series([1, 2**53 - 1], dtype=dtype)) is not None
        assert _whole_numbers(pd.Series([1, 2**53], dtype=dtype)) is None
        assert _whole_numbers(pd.Series([-(2**53), 1], dtype=dtype)) is None


# --- dates: ISO 8601 unless the scenario names a layout; the supported range; time zones -------


def _reasons(r) -> dict[int, tuple[str, str]]:
    return {row: (col, reason) for row, col, reason in r.rejects[["row", "column", "reason"]].itertuples(index=False)}


def test_only_iso_8601_date_times_are_read_by_default(tmp_path):
    cells = ["2026-03-01", "2026-03-01 14:30", "2026-03-01T14:30:05", "2026-03-01 14:30:05.25", "now", "today", "03/04/2026", "13/04/2026", "2026", "1 Mar 2026"]
    text = "customer_id,timestamp,amount\n" + "".join(f"C{i:02d},{c},1\n" for i, c in enumerate(cells))
    r = load_transactions(_write(tmp_path, text))
    want = [dt.datetime(2026, 3, 1), dt.datetime(2026, 3, 1, 14, 30), dt.datetime(2026, 3, 1, 14, 30, 5), dt.datetime(2026, 3, 1, 14, 30, 5, 250000)]
    assert r.frame["timestamp"].tolist() == [pd.Timestamp(w) for w in want]
    got = _reasons(r)
    assert set(got) == set(range(5, 11))  # `now` and `today` are not the time of the run; 03/04 is not guessed
    for col, reason in got.values():
        assert col == "timestamp" and reason.startswith("not a date-time") and "2026-03-01 14:30:00" in reason and "timestamp_format" in reason
    assert _identity(r)


def test_a_timestamp_format_reads_every_row_with_it_and_rejects_the_rest(tmp_path):
    text = "customer_id,timestamp,amount\nA,03/04/2026,1\nB,13/04/2026,1\nC,2026-04-03,1\nD,03/04/2026 10:00,1\n"
    r = load_transactions(_write(tmp_path, text), timestamp_format="%d/%m/%Y")
    assert r.frame["timestamp"].tolist() == [pd.Timestamp(2026, 4, 3), pd.Timestamp(2026, 4, 13)]
    assert _reasons(r) == {3: ("timestamp", "not a date-time in the scenario's timestamp_format '%d/%m/%Y'"), 4: ("timestamp", "not a date-time in the scenario's timestamp_format '%d/%m/%Y'")}
    c = load_customers(_write(tmp_path, "customer_id,birthday\nA,17/05/1990\nB,1990-05-17\n", "c.csv"), timestamp_format="%d/%m/%Y")
    assert c.frame["birthday"].tolist() == [pd.Timestamp(1990, 5, 17)]
    assert _reasons(c) == {2: ("birthday", "not a date in the scenario's timestamp_format '%d/%m/%Y'")}


def test_a_timestamp_format_does_not_read_now_or_today_as_the_time_of_the_run(tmp_path):
    # pandas reads `now` and `today` as the wall clock whatever the format: two runs would differ.
    text = "customer_id,timestamp,amount\nA,03/04/2026,1\nB,now,1\nC,today,1\n"
    r = load_transactions(_write(tmp_path, text), timestamp_format="%d/%m/%Y")
    assert r.frame["timestamp"].tolist() == [pd.Timestamp(2026, 4, 3)]
    assert _reasons(r) == {n: ("timestamp", "not a date-time in the scenario's timestamp_format '%d/%m/%Y'") for n in (2, 3)}
    c = load_customers(_write(tmp_path, "customer_id,birthday\nA,now\nB,today\n", "c.csv"), timestamp_format="%d/%m/%Y")
    assert set(_reasons(c)) == {1, 2}


def test_dates_outside_the_supported_range_are_rejected_rows(tmp_path):
    text = "customer_id,timestamp,amount\nA,0001-01-01,1\nA,2026-01-01,1\nA,9999-12-31 23:59,1\n"
    r = load_transactions(_write(tmp_path, text))
    assert _reasons(r) == {1: ("timestamp", OUT_OF_RANGE), 3: ("timestamp", OUT_OF_RANGE)} and r.rows_used == 1
    assert "1677-09-22 to 2262-04-10" in OUT_OF_RANGE
    c = load_customers(_write(tmp_path, "customer_id,birthday,enrolled\nA,0001-01-01,\nB,1990-01-01,9999-12-31\nC,,\n", "c.csv"))
    assert _reasons(c) == {1: ("birthday", OUT_OF_RANGE), 2: ("enrolled", OUT_OF_RANGE)} and c.rows_used == 1
    # Typed dates (Parquet timestamps and dates) beyond the range are rejected the same way.
    for typ, far in ((pa.timestamp("us"), dt.datetime(9999, 1, 1)), (pa.date32(), dt.date(9999, 1, 1))):
        near = dt.datetime(2026, 1, 1) if typ != pa.date32() else dt.date(2026, 1, 1)
        pq.write_table(pa.table({"customer_id": ["a", "a"], "timestamp": pa.array([near, far], typ), "amount": [1.0, 2.0]}), tmp_path / "t.parquet")
        r = load_transactions(tmp_path / "t.parquet")
        assert _reasons(r) == {2: ("timestamp", OUT_OF_RANGE)} and _identity(r)


def test_a_period_outside_the_supported_range_is_a_clear_error(tmp_path):
    path = _write(tmp_path, "customer_id,timestamp,amount\nA,2026-01-01,1\n")
    with pytest.raises(DataError, match=r"period 1600-01-01 to 1600-12-31: error: outside the supported range 1677-09-22 to 2262-04-10"):
        load_transactions(path, period="1600-01-01 to 1600-12-31")
    assert load_transactions(path, period="1677-09-22 to 2262-04-10").rows_used == 1  # the range's own ends


def test_time_zone_offsets_are_dropped_and_a_mix_of_them_is_noted(tmp_path):
    mixed = "customer_id,timestamp,amount\nA,2026-01-01 10:00,1\nA,2026-01-02 10:00+08:00,1\nA,2026-01-03T10:00:00Z,1\n"
    r = load_transactions(_write(tmp_path, mixed))
    assert r.frame["timestamp"].tolist() == [pd.Timestamp(2026, 1, d, 10) for d in (1, 2, 3)]  # each row's own wall time
    assert r.rows_rejected == 0 and "different time zone offsets (+08:00, Z, none)" in r.report()
    same = "customer_id,timestamp,amount\nA,2026-01-01 10:00+08:00,1\nA,2026-01-02 10:00+08:00,1\n"
    r = load_transactions(_write(tmp_path, same))
    assert r.frame["timestamp"].tolist() == [pd.Timestamp(2026, 1, d, 10) for d in (1, 2)] and not r.notes


def test_the_scenario_validates_its_timestamp_format():
    assert loads_scenario('timestamp_format: "%d/%m/%Y %H:%M"').timestamp_format == "%d/%m/%Y %H:%M"
    assert "timestamp_format" not in loads_scenario("runs: 1").to_dict()  # reports of ISO data unchanged
    for text, says in (
        ("timestamp_format: 5", "expected a strftime layout"),
        ('timestamp_format: "%Y-%m"', "has no day"),
        ('timestamp_format: "%d/%m/%Y %z"', "time zones (%z, %Z) are not read"),
        ('timestamp_format: "%d/%m/%Y %Q"', "does not read back the dates it writes"),
    ):
        with pytest.raises(ScenarioError, match=re.escape(says)):
            loads_scenario(text)


def test_simulate_reads_the_data_with_the_scenarios_timestamp_format(tmp_path):
    from simulator.api import simulate
    from tests.simulator.simkit import program

    path = _write(tmp_path, "customer_id,timestamp,amount\nA,03/04/2026,100\nA,13/04/2026,50\n")
    res = simulate(program(), path, scenario=loads_scenario('timestamp_format: "%d/%m/%Y"\nruns: 1'), workers=1)
    assert (res.loads[0].rows_used, res.loads[0].rows_rejected) == (2, 0)


# --- amounts the engine can hold -------------------------------------------------------------


def test_amounts_beyond_the_engines_limit_are_rejected_rows(tmp_path):
    # The limit: 10**15 minor units a row (10,000,000,000,000.00 at 2 decimals), either sign.
    cells = ["10000000000000.00", "-10000000000000", "10000000000000.01", "1e17", "-9.3e16", "99999999999999999999", "12.50"]
    text = "customer_id,timestamp,amount\n" + "".join(f"C,2026-01-0{i + 1},{c}\n" for i, c in enumerate(cells))
    r = load_transactions(_write(tmp_path, text))
    assert r.frame["amount"].tolist() == [10**13, -(10**13), 12.5]
    reason = "too large: beyond ±10,000,000,000,000.00 (1e15 minor units at 2 decimals), the most the engine holds"
    assert _reasons(r) == {row: ("amount", reason) for row in (3, 4, 5, 6)}
    # At 0 decimals the same number of minor units is 100 times the amount.
    assert load_transactions(_write(tmp_path, "customer_id,timestamp,amount\nC,2026-01-01,1000000000000000\n"), currency_decimals=0).rows_used == 1
    # Stored numbers alike: a Parquet int64 near 2**62, a float beyond 9.2e16.
    pq.write_table(pa.table({"customer_id": ["a"] * 3, "timestamp": ["2026-01-01"] * 3, "amount": pa.array([2**62, 5, -(2**62)], pa.int64())}), tmp_path / "t.parquet")
    r = load_transactions(tmp_path / "t.parquet")
    assert set(_reasons(r)) == {1, 3} and r.frame["amount"].tolist() == [5.0]
    r = load_transactions(pd.DataFrame({"customer_id": ["a", "a"], "timestamp": ["2026-01-01"] * 2, "amount": [9.3e16, 1.0]}))
    assert set(_reasons(r)) == {1} and r.rows_used == 1


def test_amounts_that_add_up_beyond_the_engines_range_are_a_clear_error(tmp_path):
    # 1,000 rows of the largest amount add up to the limit of 10**18 minor units; one more passes it.
    rows = "".join(f"C{i},2026-01-01,10000000000000\n" for i in range(1001))
    path = _write(tmp_path, "customer_id,timestamp,amount\n" + rows)
    with pytest.raises(DataError) as info:
        load_transactions(path)
    assert str(info.value) == (
        f"{path}: error: row 1001: the amounts of the used rows up to this row add up to more than "
        "10,000,000,000,000,000.00 (1e18 minor units at 2 decimals), beyond what the engine can total exactly; "
        "check the amounts' unit, or simulate a shorter period"
    )
    # Rows not used (outside the period) do not count.
    shifted = _write(tmp_path, "customer_id,timestamp,amount\nX,2025-01-01,10000000000000\n" + rows[rows.index("\n") + 1 :], "b.csv")
    assert load_transactions(shifted, period="2026-01-01 to 2026-12-31").rows_used == 1000


# --- columns that cannot be read: repeated names, lists and records ----------------------------


def test_a_parquet_file_that_repeats_a_column_name_is_a_clear_error(tmp_path):
    t = pa.table([pa.array(["a"]), pa.array(["2026-01-01"]), pa.array([1.0]), pa.array([2.0])], names=["customer_id", "timestamp", "amount", "amount"])
    pq.write_table(t, tmp_path / "dup.parquet")
    with pytest.raises(DataError, match=r"dup\.parquet: error: the header repeats the column name\(s\) amount; give each column its own name$"):
        load_transactions(tmp_path / "dup.parquet")
    with pytest.raises(DataError, match=r"the header repeats the column name\(s\) amount"):
        load_transactions(t.to_pandas())
    with pytest.raises(DataError, match=r"the header repeats the column name\(s\) segment"):
        load_customers(pd.DataFrame([["a", "x", "y"]], columns=["customer_id", "segment", "segment"]))


@pytest.mark.parametrize(
    "column, values, shown",
    [
        ("customer_id", pa.array([{"x": 1}, {"x": 2}]), "{'x': 1}"),
        ("amount", pa.array([[1.0], [2.0]]), "array([1.])"),
        ("transaction_id", pa.array([None, [1, 2]]), "array([1, 2])"),
        ("timestamp", pa.array([{"d": "2026-01-01"}, None]), "{'d': '2026-01-01'}"),
    ],
)
def test_list_or_record_cells_in_a_column_the_loader_reads_are_a_clear_error(tmp_path, column, values, shown):
    base = {"customer_id": ["a", "b"], "timestamp": ["2026-01-01", "2026-01-02"], "amount": [1.0, 2.0], "transaction_id": ["t1", "t2"]}
    base[column] = values
    pq.write_table(pa.table(base), tmp_path / "t.parquet")
    mapped = {"transaction_id": "basket"} if column == "transaction_id" else {}
    if mapped:
        pq.write_table(pa.table(base).rename_columns(["customer_id", "timestamp", "amount", "basket"]), tmp_path / "t.parquet")
    row = 2 if column == "transaction_id" else 1
    with pytest.raises(DataError) as info:
        load_transactions(tmp_path / "t.parquet", mapped)
    name = mapped.get(column, column)
    assert str(info.value) == f"{tmp_path / 't.parquet'}: error: column `{name}` of the transactions holds lists or records (row {row}: {shown}); expected one text or number in each cell"
    # The same cells in a DataFrame; a customers table alike.
    with pytest.raises(DataError, match="holds lists or records"):
        load_transactions(pa.table(base).to_pandas())
    with pytest.raises(DataError, match=r"column `segment` of the customers holds lists or records \(row 2: \['x'\]\)"):
        load_customers(pd.DataFrame({"customer_id": ["a", "b"], "segment": ["gold", ["x"]]}))


def test_record_ids_in_a_parquet_file_written_by_pandas_are_a_clear_error(tmp_path):
    # The file's pandas metadata still calls customer_id text: pandas' own conversion failed first.
    pd.DataFrame({"customer_id": ["a", "b"], "timestamp": ["2026-01-01", "2026-01-02"], "amount": [1.0, 2.0]}).to_parquet(tmp_path / "p.parquet")
    table = pq.read_table(tmp_path / "p.parquet")
    records = pa.StructArray.from_arrays([table.column("customer_id").combine_chunks(), pa.array([1, 2])], names=["a", "b"])
    pq.write_table(table.set_column(0, "customer_id", records), tmp_path / "t.parquet")
    with pytest.raises(DataError, match="column `customer_id` of the transactions holds lists or records"):
        load_transactions(tmp_path / "t.parquet")


# --- the column mapping against the file that holds each column; the program's currency --------


def test_a_mapping_of_a_customers_column_is_checked_against_the_customers_file(tmp_path):
    tx = _write(tmp_path, "member,paid_at,total\nA,2026-01-01,5\n")
    cust = _write(tmp_path, "member,dob\nA,1990-05-17\n", "c.csv")
    mapping = {"customer_id": "member", "timestamp": "paid_at", "amount": "total", "birthday": "dob"}
    r = load_transactions(tx, mapping, customers=cust)
    assert r.rows_used == 1 and "birthday" not in r.frame.columns
    assert load_customers(cust, mapping).frame["birthday"].tolist() == [pd.Timestamp(1990, 5, 17)]
    # Without the customers file the mapping is the transactions' alone.
    with pytest.raises(DataError, match=r"columns\.birthday maps your column `dob`, but the transactions have no such column"):
        load_transactions(tx, mapping)


def test_every_mapping_problem_is_reported_at_once_naming_both_files(tmp_path):
    tx = _write(tmp_path, "member,paid_at,total\nA,2026-01-01,5\n")
    cust = _write(tmp_path, "member,dob\nA,1990-05-17\n", "c.csv")
    mapping = {"customer_id": "membr", "timestamp": "paid_at", "amount": "totl", "birthday": "dobb", "segment": "seg"}
    with pytest.raises(DataError) as info:
        load_transactions(tx, mapping, customers=cust)
    both = "transactions: member, paid_at, total; customers: member, dob"
    assert str(info.value).splitlines() == [
        f"{tx}: error: columns.customer_id maps your column `membr`, but neither the transactions nor the customers ({cust}) have such a column; {both}; did you mean `member`?",
        f"{tx}: error: columns.amount maps your column `totl`, but neither the transactions nor the customers ({cust}) have such a column; {both}; did you mean `total`?",
        f"{tx}: error: columns.birthday maps your column `dobb`, but neither the transactions nor the customers ({cust}) have such a column; {both}; did you mean `dob`?",
        f"{tx}: error: columns.segment maps your column `seg`, but neither the transactions nor the customers ({cust}) have such a column; {both}",
    ]


def test_simulate_maps_a_column_only_the_customers_file_has(tmp_path):
    from simulator.api import simulate
    from tests.simulator.simkit import program

    tx = _write(tmp_path, "member,paid_at,total\nA,2026-01-01,100\nB,2026-01-02,50\n")
    cust = _write(tmp_path, "member,dob\nA,1990-05-17\nB,1991-01-02\n", "c.csv")
    sc = loads_scenario("columns: {customer_id: member, timestamp: paid_at, amount: total, birthday: dob}\nruns: 1")
    res = simulate(program(), tx, cust, sc, workers=1)
    assert (res.loads[0].rows_used, res.loads[1].rows_used) == (2, 2)


def test_rows_in_another_currency_than_the_programs_are_rejected(tmp_path):
    text = "customer_id,timestamp,amount,currency\nA,2026-01-01,5,GBP\nA,2026-01-02,6, cny \nA,2026-01-03,7,\nA,2026-01-04,8,CNY\n"
    r = load_transactions(_write(tmp_path, text), currency="CNY")
    reason = "not in the program's currency CNY (convert the amounts, or leave the rows out)"
    assert _reasons(r) == {1: ("currency", reason)} and r.frame["amount"].tolist() == [6.0, 7.0, 8.0]
    assert load_transactions(_write(tmp_path, text)).rows_rejected == 0  # no program currency given: nothing to compare
    # A Parquet file's currency column is read for the check even when only the rules' columns are kept.
    pq.write_table(pa.table({"customer_id": ["a", "a"], "timestamp": ["2026-01-01", "2026-01-02"], "amount": [1.0, 2.0], "currency": ["EUR", "CNY"]}), tmp_path / "t.parquet")
    r = load_transactions(tmp_path / "t.parquet", keep=set(), currency="CNY")
    assert _reasons(r) == {1: ("currency", reason)}


def test_simulate_rejects_rows_in_another_currency_than_the_programs(tmp_path):
    from simulator.api import simulate
    from tests.simulator.simkit import program

    path = _write(tmp_path, "customer_id,timestamp,amount,currency\nA,2026-01-01,100,CNY\nA,2026-01-02,50,GBP\n")
    res = simulate(program(), path, scenario=loads_scenario("runs: 1"), workers=1)  # the program is in CNY
    assert (res.loads[0].rows_used, res.loads[0].rows_rejected) == (1, 1)


def test_a_repeated_currency_column_is_refused_when_currencies_are_checked():
    # Found by the fuzz test: two `currency` columns in a frame reached the currency check.
    frame = pd.DataFrame([["a", "2026-01-01", 1.0, "CNY", "CNY"]], columns=["customer_id", "timestamp", "amount", "currency", "currency"])
    with pytest.raises(DataError, match="repeats the column name.s. currency"):
        load_transactions(frame, currency="CNY")
    assert len(load_transactions(frame).frame) == 1  # not read without a program's currency: no question which is meant


def test_points_paid_is_read_as_whole_points_and_bad_cells_are_rejected_with_the_reason(tmp_path):
    text = ("customer_id,timestamp,amount,points_paid\n"
            "a,2026-01-01,10,\na,2026-01-02,10,500\na,2026-01-03,10,2.5\na,2026-01-04,10,-1\na,2026-01-05,10,lots\na,2026-01-06,10, 300 \n")
    got = load_transactions(_write(tmp_path, text))
    assert got.rows_used == 3 and got.rows_rejected == 3
    paid = got.frame["points_paid"].tolist()
    assert np.isnan(paid[0]) and paid[1:] == [500.0, 300.0]
    assert set(got.rejects["column"]) == {"points_paid"}
    assert got.rejects["reason"].str.contains("whole number of points").all()
