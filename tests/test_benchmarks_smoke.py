"""The benchmark harness at a tiny size: the generator's shape, the baseline's answers, run.py's JSON.

Correctness only, never timing: CI machines are too noisy for the targets.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import baseline  # noqa: E402
import generate  # noqa: E402
import run  # noqa: E402

import rulelang  # noqa: E402
from rulelang.engine.compile import compile_model  # noqa: E402
from rulelang.engine.data import REFUND, prepare  # noqa: E402


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    tx, cu = generate.generate(20_000, out, seed=7)
    return pd.read_parquet(tx), pd.read_parquet(cu), out


def test_generator_writes_exactly_n_rows_for_n_over_10_customers(history):
    tx, cu, _ = history
    assert len(tx) == 20_000
    assert len(cu) == 2_000
    assert set(tx["customer_id"]) == set(cu["customer_id"])
    assert tx["timestamp"].between("2026-01-01", "2027-01-01").all()
    share = (tx["event"] == "refund").mean()
    assert 0.01 < share < 0.03
    assert (tx["category"] == "pastry").any() and (tx["channel"] == "app").any()
    per_customer = tx.groupby("customer_id").size()
    assert per_customer.max() > 10 * per_customer.median()  # heavy-tailed


def test_generator_output_is_valid_with_baskets_and_matched_refunds(history):
    tx, cu, _ = history
    batch = prepare(tx, rulelang.load(run.PROGRAM).model, cu)
    f = batch.frame
    assert f["unit"].max() + 1 < len(f)  # some baskets have several lines
    refunds = f["kind"].to_numpy() == REFUND
    assert refunds.any() and (f["refund_of"].to_numpy()[refunds] >= 0).all()


def test_generator_is_deterministic_and_chunked(tmp_path, monkeypatch):
    monkeypatch.setattr(generate, "CHUNK_CUSTOMERS", 300)
    a = generate.generate(5_000, tmp_path / "a", seed=3)
    b = generate.generate(5_000, tmp_path / "b", seed=3)
    assert pq.ParquetFile(a[0]).num_row_groups == 2
    for x, y in zip(a, b, strict=True):
        assert pq.read_table(x).equals(pq.read_table(y))
    tx = pq.read_table(a[0]).to_pandas()
    assert len(tx) == 5_000 and tx["customer_id"].nunique() == 500
    baskets = tx[tx["event"] == "purchase"].groupby("transaction_id")["customer_id"].nunique()
    assert (baskets == 1).all()  # transaction ids do not repeat across chunks


def _with_enrolments(tx: pd.DataFrame) -> pd.DataFrame:
    # The generator writes no `enroll` rows; add some so the welcome rule is exercised too.
    first = tx.drop_duplicates("customer_id").iloc[::7]
    enroll = first.assign(event="enroll", amount=0.0, transaction_id="", category="", sku="", quantity=0)
    return pd.concat([enroll, tx], ignore_index=True).sort_values(["customer_id", "timestamp"], kind="stable")


def test_baseline_equals_the_engines_stateless_earn_at_every_tier(history):
    tx, cu, _ = history
    program = rulelang.load(run.PROGRAM)
    assert [r.name for r in program.model.rules] == list(baseline.RULES)
    cp = compile_model(program.model)
    assert cp.den == baseline.DEN
    batch = prepare(_with_enrolments(tx), program.model, cu)
    for tier in range(cp.levels):
        engine = cp.earn_columns(batch, tier)
        ours = baseline.earn(batch.frame, batch.customers, tier)
        np.testing.assert_array_equal(ours.sum(axis=1), engine.sum(axis=1))
        np.testing.assert_array_equal(ours, engine)
    # Every rule fired somewhere at the top tier, so the agreement is not vacuous.
    assert (ours.sum(axis=1) > 0).all()


def test_run_prints_the_issue_json_keys_with_sane_values(tmp_path):
    cmd = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--transactions", "2000", "--json"]
    cmd += ["--data", str(tmp_path), "--mc-runs", "2", "--repeat", "1", "--reference-rows", "500", "--simulate-processes", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    f = json.loads(proc.stdout)
    assert tuple(f) == run.KEYS
    assert f["transactions"] == 2000
    for key in run.KEYS[1:]:
        assert f[key] > 0, key
    assert f["peak_rss_mb"] < 4096
    assert f["speedup_vs_reference"] == pytest.approx(f["simulate_txn_per_s"] / f["reference_txn_per_s"], rel=0.01, abs=0.01)
    assert f["ratio_to_baseline"] == pytest.approx(f["baseline_txn_per_s"] / f["earn_txn_per_s"], rel=0.01, abs=0.002)
    assert (tmp_path / "transactions_2000.parquet").exists()  # generated on the way, cached for next time


def test_the_single_path_figure_is_the_median_of_the_processes():
    sims = [
        {"simulate_s": 1.3, "simulate_again_s": 0.9, "peak_rss_mb": 900.0, "warm_up_s": 2.0},
        {"simulate_s": 0.9, "simulate_again_s": None, "peak_rss_mb": 1000.0, "warm_up_s": 2.1},
        {"simulate_s": 1.0, "simulate_again_s": 0.8, "peak_rss_mb": 950.0, "warm_up_s": 2.2},
    ]
    got = run.median_simulation(sims)
    assert got["simulate_s"] == 1.0 and got["simulate_each_s"] == [1.3, 0.9, 1.0]
    assert got["simulate_again_s"] == pytest.approx(0.85) and got["peak_rss_mb"] == 1000.0
    assert run.median_simulation(sims[:1])["simulate_each_s"] == [1.3]


def test_the_redemption_coverage_study_recovers_the_policy_it_simulates(capsys):
    import redemption_coverage

    out = redemption_coverage.main(["--ledgers", "2", "--choice", "dearest", "--probability", "0.2", "--json"])
    assert out["choice_recovered"] == 1.0
    assert abs(out["mean_estimate"] - 0.2) < 0.01  # two ledgers of about 30,000 affordable visits each: se about 0.0025
    assert out["tier_intervals"] == 6 and 0 <= out["covered_95"] <= 1
    assert json.loads(capsys.readouterr().out) == out
