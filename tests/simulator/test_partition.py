"""`loyalty partition` and datasets: each customer in one file, nothing lost, and a dataset
simulates to the same figures as the file it was written from."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from rulelang.errors import LoyaltyError
from simulator import chunked, partition
from simulator.api import simulate
from simulator.cli import main

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import generate  # noqa: E402

PROGRAM = ROOT / "programs" / "coffee.loyalty"
SCENARIO = {
    "period": "2026-01-01 to 2026-12-31",
    "enrollment": {"share": 0.7, "pick": "random"},
    "redemption": {"probability": 0.5, "choice": "random"},
    "response": {"spend_uplift": {"Green": 0.0, "Gold": 0.03, "Black": 0.06}, "visit_uplift": 0.1, "goal_gradient": {"within": 0.3, "uplift": 0.05}},
    "runs": 2,
    "seed": 3,
}


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """A coffee-chain year of 3000 rows with a few bad rows, in shuffled order (so partitioning
    has to move rows), and same-time lines of one basket."""
    d = tmp_path_factory.mktemp("partition")
    t, c = generate.chunk(0, 0, 120, 3000, 11, 0)
    tx = t.to_pandas()
    tx["customer_id"] = tx["customer_id"].astype(str)
    tx.loc[[5, 700], "customer_id"] = ""  # rejected: empty id
    tx.loc[1500, "amount"] = np.nan  # rejected: empty amount
    tx = tx.sample(frac=1.0, random_state=4).reset_index(drop=True)
    path = d / "tx.parquet"
    pq.write_table(pa.Table.from_pandas(tx, preserve_index=False), path, row_group_size=700)
    cu = d / "cu.parquet"
    pq.write_table(c, cu)
    return path, cu, tx


def _figures(result) -> tuple:
    """What must not depend on how the history is stored: summary.json but for its record of
    the sources, monthly.csv and rewards.csv."""
    s = json.loads(result.summary_json())
    s.pop("sources")
    return s, result.monthly.to_csv(index=False), result.rewards.to_csv(index=False)


def test_each_customer_is_in_one_file_sorted_and_no_row_is_lost(history, tmp_path, monkeypatch):
    path, _, tx = history
    monkeypatch.setattr(partition, "READ_ROWS", 400)  # many record batches reach each partition
    written = partition.write(path, tmp_path / "ds", 4)
    files = sorted((tmp_path / "ds").iterdir())
    assert [f.name for f in files] == [f"part-{k:05d}.parquet" for k in range(4)] == [n for n, _ in written]
    parts = [pd.read_parquet(f) for f in files]
    assert sum(len(p) for p in parts) == len(tx) == sum(n for _, n in written)
    owners: dict = {}
    for k, p in enumerate(parts):
        for cid in p["customer_id"].unique():
            assert owners.setdefault(cid, k) == k  # never in two files
        # Sorted by customer then time, and each customer's rows in their input order among equal times.
        order = p.assign(_pos=np.arange(len(p))).sort_values(["customer_id", "timestamp"], kind="stable")
        assert (order["_pos"].to_numpy() == np.arange(len(p))).all()
        for cid, rows in p.groupby("customer_id", sort=False):
            mine = tx[tx["customer_id"] == cid].sort_values("timestamp", kind="stable")
            pd.testing.assert_frame_equal(rows.reset_index(drop=True), mine.reset_index(drop=True))
    assert set(owners) == set(tx["customer_id"])
    # The same files whatever the record batches: the partition is the id's, not the batch's.
    monkeypatch.setattr(partition, "READ_ROWS", 1 << 20)
    partition.write(path, tmp_path / "again", 4)
    for f in files:
        assert pd.read_parquet(f).equals(pd.read_parquet(tmp_path / "again" / f.name))


def test_a_dataset_simulates_as_the_file_it_came_from(history, tmp_path):
    path, cu, _ = history
    partition.write(path, tmp_path / "ds", 3)
    one = _figures(simulate(PROGRAM, path, cu, SCENARIO, workers=1))
    for given in (tmp_path / "ds", str(tmp_path / "ds" / "part-*.parquet"), f"file://{tmp_path / 'ds'}"):
        assert _figures(simulate(PROGRAM, given, cu, SCENARIO, workers=1)) == one, given
    # Read in slices too (the planner reads the files in turn; a slice spans files).
    assert _figures(simulate(PROGRAM, tmp_path / "ds", cu, SCENARIO, workers=1, slice_rows=700)) == one
    assert chunked.parquet_rows(tmp_path / "ds") == 3000


def test_a_dataset_is_recorded_with_one_hash_over_its_files(history, tmp_path):
    path, cu, _ = history
    partition.write(path, tmp_path / "ds", 2)
    src = simulate(PROGRAM, tmp_path / "ds", cu, {**SCENARIO, "runs": 1}, workers=1).summary["sources"]["transactions"]
    assert src["given"] == "a dataset of 2 Parquet files" and src["path"] == str((tmp_path / "ds").resolve())
    import hashlib

    oracle = hashlib.sha256()
    for f in sorted((tmp_path / "ds").iterdir()):
        oracle.update(f"{f.name}\0{hashlib.sha256(f.read_bytes()).hexdigest()}\n".encode())
    assert src["sha256"] == oracle.hexdigest()


def test_a_csv_history_partitions_to_the_same_figures(tmp_path):
    program = ROOT / "examples" / "bean_club.loyalty"
    tx, cu = ROOT / "examples" / "transactions.csv", ROOT / "examples" / "customers.csv"
    partition.write(tx, tmp_path / "ds", 3, customer="member_no", time="paid_at")
    files = sorted((tmp_path / "ds").iterdir())
    assert sum(pq.read_metadata(f).num_rows for f in files) == len(pd.read_csv(tx, dtype=str))
    for f in files:  # CSV cells kept as text (ids keep leading zeros), sorted by member then time
        assert all(pa.types.is_string(field.type) for field in pq.read_schema(f))
        p = pd.read_parquet(f)
        assert list(zip(p["member_no"], p["paid_at"], strict=True)) == sorted(zip(p["member_no"], p["paid_at"], strict=True))
    sc = {"runs": 2, "seed": 1, "columns": {"customer_id": "member_no", "timestamp": "paid_at", "amount": "total"}}
    assert _figures(simulate(program, tmp_path / "ds", cu, sc, workers=1)) == _figures(simulate(program, tx, cu, sc, workers=1))


def test_a_dataset_written_and_read_by_url(history, tmp_path):
    path, cu, _ = history
    partition.write(path, tmp_path / "local", 3)
    partition.write(path, f"file://{tmp_path / 'by-url'}", 3)
    for f in sorted((tmp_path / "local").iterdir()):
        assert pq.read_table(tmp_path / "by-url" / f.name).equals(pq.read_table(f))
    partition.write(path, "memory://loyalty-test/ds", 3)
    one = _figures(simulate(PROGRAM, path, cu, SCENARIO, workers=1))
    assert _figures(simulate(PROGRAM, "memory://loyalty-test/ds", cu, SCENARIO, workers=1)) == one


def test_the_command_refuses_to_lose_an_input_or_other_files(history, tmp_path):
    path, _, _ = history
    run = CliRunner().invoke
    r = run(main, ["partition", str(path), "--out", str(tmp_path / "ds"), "--partitions", "3"])
    assert r.exit_code == 0, r.output
    assert "3 files, 3,000 rows" in r.output
    # Again over its own dataset: replaced whole.
    r = run(main, ["partition", str(path), "--out", str(tmp_path / "ds"), "--partitions", "2"])
    assert r.exit_code == 0 and sorted(p.name for p in (tmp_path / "ds").iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    # The dataset as its own output, or an output inside it: refused, the dataset unchanged.
    before = {p.name: p.read_bytes() for p in (tmp_path / "ds").iterdir()}
    for out in (tmp_path / "ds", tmp_path / "ds" / "inner"):
        r = run(main, ["partition", str(tmp_path / "ds"), "--out", str(out), "--partitions", "2"])
        assert r.exit_code == 1 and "would" in r.output, r.output
    assert {p.name: p.read_bytes() for p in (tmp_path / "ds").iterdir()} == before
    # A folder of other files is never replaced.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    r = run(main, ["partition", str(path), "--out", str(tmp_path / "mine"), "--partitions", "2"])
    assert r.exit_code == 1 and "notes.txt" in r.output and (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    r = run(main, ["partition", str(tmp_path / "missing.parquet"), "--out", str(tmp_path / "x"), "--partitions", "2"])
    assert r.exit_code == 2 and "no such file" in r.output
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no work folder left behind


def test_simulate_reads_a_dataset_from_the_command_line(history, tmp_path):
    path, cu, _ = history
    partition.write(path, tmp_path / "ds", 3)
    r = CliRunner().invoke(
        main, ["simulate", str(PROGRAM), "--transactions", str(tmp_path / "ds"), "--customers", str(cu), "--runs", "1", "--quiet", "--out", str(tmp_path / "out")]
    )
    assert r.exit_code == 0, r.output
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert s["rows_read"]["mean"] == 3000 and s["sources"]["transactions"]["given"] == "a dataset of 3 Parquet files"


def test_an_empty_or_missing_dataset_is_a_clear_error(history, tmp_path):
    _, cu, _ = history
    (tmp_path / "empty").mkdir()
    with pytest.raises(LoyaltyError, match=r"no Parquet files \(\.parquet\) in the dataset; write one with `loyalty partition"):
        simulate(PROGRAM, tmp_path / "empty", cu, SCENARIO, workers=1)
    with pytest.raises(LoyaltyError, match="no such transactions file, folder or dataset"):
        simulate(PROGRAM, f"file://{tmp_path / 'nowhere'}", cu, SCENARIO, workers=1)


def test_ids_the_simulator_reads_as_one_customer_share_a_file(tmp_path):
    # ` C1 ` and `C1` are one customer once read (edge spaces are not part of an id).
    n = 40
    ids = [f"C{i % 10}" if i % 3 else f"  C{i % 10} " for i in range(n)]
    frame = pd.DataFrame({"customer_id": ids, "timestamp": pd.date_range("2026-01-01", periods=n, freq="D"), "amount": 10.0})
    frame.to_parquet(tmp_path / "tx.parquet")
    partition.write(tmp_path / "tx.parquet", tmp_path / "ds", 4)
    where = {}
    for f in sorted((tmp_path / "ds").iterdir()):
        for cid in pd.read_parquet(f)["customer_id"].str.strip().unique():
            assert where.setdefault(cid, f.name) == f.name
    assert len(where) == 10


def test_a_url_output_holding_other_files_is_never_replaced(history):
    import fsspec

    path, _, _ = history
    fs = fsspec.filesystem("memory")
    fs.pipe("/keep/notes.txt", b"keep me")
    with pytest.raises(LoyaltyError, match=r"holds files that `loyalty partition` did not write \(notes\.txt\)"):
        partition.write(path, "memory://keep", 2)
    assert fs.cat("/keep/notes.txt") == b"keep me"
    partition.write(path, "memory://fresh/ds", 2)
    with pytest.raises(LoyaltyError, match="is, holds or lies in the history"):
        partition.write("memory://fresh/ds", "memory://fresh/ds", 2)
    assert sorted(Path(p).name for p in fs.ls("/fresh/ds", detail=False)) == ["part-00000.parquet", "part-00001.parquet"]
