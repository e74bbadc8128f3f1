"""`loyalty trace`: row-by-row reasons, comparisons with their values, clear errors."""

from __future__ import annotations

import pandas as pd
from click.testing import CliRunner

from rulelang.cli import trace_cmd

PROGRAM = """program "Cafe"
currency CNY
tiers by spend over 365 days {
  Green from 0
  Gold  from 30
}
earn base:   1 point per 1 CNY
earn pastry: 2 points per 1 CNY when category == "pastry"
earn gold:   1.5x base when tier >= Gold
limit 60 points per day
expire after 1 month
reward coffee: 40 points cost 8 CNY
"""


def _files(tmp_path, fmt="csv"):
    prog = tmp_path / "cafe.loyalty"
    prog.write_text(PROGRAM, encoding="utf-8")
    tx = pd.DataFrame({
        "customer_id": ["m2", "m1", "m1", "m1", "m1"],
        "timestamp": ["2026-03-01 09:00", "2026-03-02 10:00", "2026-03-01 10:00", "2026-03-03 10:00", "2026-05-01 10:00"],
        "amount": [5, 12.5, 30, None, 1],
        "category": ["tea", "pastry", "coffee", None, "tea"],
        "event": ["purchase", "purchase", "purchase", "redeem", "purchase"],
        "reward": [None, None, None, "coffee", None],
    })
    path = tmp_path / f"tx.{fmt}"
    tx.to_csv(path, index=False) if fmt == "csv" else tx.to_parquet(path, index=False)
    return str(prog), str(path)


def _trace(*args):
    return CliRunner().invoke(trace_cmd, list(args))


def test_trace_shows_rules_values_rounding_caps_and_balance(tmp_path):
    prog, tx = _files(tmp_path)
    result = _trace(prog, "--transactions", tx, "--customer", "m1")
    out = result.output
    assert result.exit_code == 0, out
    # Unsorted input is sorted: the 1 March purchase comes first, and is the file's row 3.
    assert out.index("2026-03-01 10:00") < out.index("2026-03-02 10:00")
    assert "(row 3)" in out
    assert 'category == "pastry"  ->  "coffee" == "pastry"  false' in out
    assert "tier >= Gold  ->  Gold >= Gold  true" in out
    assert "tier Green -> Gold" in out
    # Gold on 2 March: 12.5 + 25 + 6.25 = 43.75, rounded down to 43, within the day's cap of 60.
    assert "exact 43.75" in out and "round down -> 43" in out
    assert "redeem coffee: -30 (lot 2026-03-01), cost 8 CNY" in out
    assert "expire: -33 (lot 2026-03-02)" in out
    assert out.rstrip().endswith("balance 1")


def test_trace_reads_parquet(tmp_path):
    prog, tx = _files(tmp_path, "parquet")
    result = _trace(prog, "--transactions", tx, "--customer", "m2")
    assert result.exit_code == 0, result.output
    assert "earn base: +5" in result.output


def test_unknown_customer_suggests_close_ids(tmp_path):
    prog, tx = _files(tmp_path)
    result = _trace(prog, "--transactions", tx, "--customer", "m3")
    assert result.exit_code == 1
    assert "customer `m3`" in result.output and "did you mean" in result.output
    assert "Traceback" not in result.output


def test_bad_data_is_an_error_not_a_traceback(tmp_path):
    prog, _ = _files(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,timestamp,amount,category\nm1,2026-01-01,abc,tea\n", encoding="utf-8")
    result = _trace(prog, "--transactions", str(bad), "--customer", "m1")
    assert result.exit_code == 1 and "column amount" in result.output and "Traceback" not in result.output
    missing = _trace(prog, "--transactions", str(tmp_path / "nope.csv"), "--customer", "m1")
    assert missing.exit_code == 1 and "cannot read" in missing.output
