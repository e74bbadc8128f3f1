"""Slices of customers (simulator.chunked) give the same bytes as one whole pass."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rulelang.errors import LoyaltyError
from simulator import chunked
from simulator.api import simulate

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import generate  # noqa: E402

PROGRAM = ROOT / "programs" / "coffee.loyalty"
SCENARIO = {
    "period": "2026-01-01 to 2026-12-31",
    "enrollment": {"share": 0.7, "pick": "random"},
    "redemption": {"probability": 0.5, "choice": "random"},
    "response": {"spend_uplift": {"Green": 0.0, "Gold": 0.03, "Black": 0.06}, "visit_uplift": 0.1, "goal_gradient": {"within": 0.3, "uplift": 0.05}},
    "margin": 0.6,
    "runs": 3,
    "seed": 5,
}


@pytest.fixture(scope="module", autouse=True)
def small_batches():
    """Record batches of 450 rows, so slices straddle batches and batches hold several slices."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(chunked, "BATCH_ROWS", 450)
        yield


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A coffee-chain year (baskets, refunds, reviews) with a few bad rows, grouped by customer."""
    d = tmp_path_factory.mktemp("chunked")
    t, c = generate.chunk(0, 0, 120, 3000, 11, 0)
    tx = t.to_pandas()
    tx["customer_id"] = tx["customer_id"].astype(str)
    tx.loc[[5, 700], "customer_id"] = ""  # rejected: empty id
    tx.loc[1500, "amount"] = np.nan  # rejected: empty amount
    tx.loc[2000, "timestamp"] = pd.Timestamp("2025-06-01")  # outside the period
    grouped = d / "tx.parquet"
    pq.write_table(pa.Table.from_pandas(tx, preserve_index=False), grouped, row_group_size=700)
    shuffled = d / "tx_shuffled.parquet"
    pq.write_table(pa.Table.from_pandas(tx.sample(frac=1.0, random_state=3), preserve_index=False), shuffled, row_group_size=500)
    cu = d / "cu.parquet"
    pq.write_table(c, cu)
    return grouped, shuffled, cu


@pytest.fixture(scope="module")
def whole(files):
    tx, _, cu = files
    return simulate(PROGRAM, tx, cu, SCENARIO, workers=1)


def _outputs(result, out: Path) -> dict[str, bytes]:
    result.write(out)
    return {n: (out / n).read_bytes() for n in ("summary.json", "monthly.csv", "rewards.csv")}


@pytest.mark.parametrize("size", [250, 1100])
def test_slices_give_the_same_bytes_as_one_pass(files, whole, size, tmp_path):
    tx, _, cu = files
    sliced = simulate(PROGRAM, tx, cu, SCENARIO, workers=1, slice_rows=size)
    assert _outputs(sliced, tmp_path / "s") == _outputs(whole, tmp_path / "w")
    a, b = sliced.ledger, whole.ledger
    assert len(a) == len(b)
    for col in b.columns:
        assert a[col].astype(str).tolist() == b[col].astype(str).tolist(), col


def test_counts_and_rejects_add_up_over_batches(files, whole):
    tx, _, cu = files
    sliced = simulate(PROGRAM, tx, cu, SCENARIO, workers=1, slice_rows=300)
    load, ref = sliced.loads[0], whole.loads[0]
    assert (load.rows_read, load.rows_used, load.rows_rejected, load.rows_outside_period) == (3000, 2996, 3, 1)
    assert (ref.rows_read, ref.rows_used, ref.rows_rejected, ref.rows_outside_period) == (3000, 2996, 3, 1)
    pd.testing.assert_frame_equal(load.rejects.reset_index(drop=True), ref.rejects.reset_index(drop=True))
    assert load.report() == ref.report()


def test_any_file_order_and_two_workers_give_the_same_summary(files):
    # Shuffled rows are a different history (same-time rows keep file order), but slices of it
    # still give what one pass over it gives.
    _, shuffled, cu = files
    one = simulate(PROGRAM, shuffled, cu, SCENARIO, workers=1)
    sliced = simulate(PROGRAM, shuffled, cu, SCENARIO, workers=2, slice_rows=400)
    assert sliced.summary_json() == one.summary_json()
    pd.testing.assert_frame_equal(sliced.monthly, one.monthly)


def test_plan_cuts_whole_customers_into_slices(files):
    tx, _, _ = files
    p = chunked.plan(tx, None, 2, None, None, 500)
    assert p.bounds[0] == 0 and p.bounds[-1] == len(p.ids) and (np.diff(p.bounds) > 0).all()
    assert list(p.ids) == sorted(p.ids)
    per_slice = np.add.reduceat(p.rows, p.bounds[:-1])
    assert per_slice.sum() == p.load.rows_used
    # A slice starts below 500 rows in; only its last customer can take it past that.
    assert (per_slice - np.maximum.reduceat(p.rows, p.bounds[:-1]) < 500).all()


def test_top_spenders_join_alike_in_slices(files, tmp_path):
    tx, _, cu = files
    sc = {**SCENARIO, "runs": 1, "enrollment": {"share": 0.3, "pick": "top_spenders"}}
    one = simulate(PROGRAM, tx, cu, sc, workers=1)
    sliced = simulate(PROGRAM, tx, cu, sc, workers=1, slice_rows=350)
    assert _outputs(sliced, tmp_path / "s") == _outputs(one, tmp_path / "w")


def test_a_large_history_is_sliced_and_its_ledger_left_on_disk(files, whole, tmp_path, monkeypatch):
    tx, _, cu = files
    monkeypatch.setattr(chunked, "AUTO_ROWS", 1000)
    monkeypatch.setattr(chunked, "SLICE_ROWS", 700)
    big = simulate(PROGRAM, tx, cu, SCENARIO, workers=1)
    assert big.ledger is None and big.ledger_file.exists()
    assert _outputs(big, tmp_path / "b") == _outputs(whole, tmp_path / "w")
    a = pd.read_parquet(tmp_path / "b" / "ledger.parquet")
    b = pd.read_parquet(tmp_path / "w" / "ledger.parquet")
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for col in b.columns:
        assert a[col].astype(str).tolist() == b[col].astype(str).tolist(), col
    assert len(big.read_ledger()) == len(whole.ledger)


def test_ledger_decimals_are_exact():
    from simulator.api import decimal_array, to_decimal

    v = np.random.default_rng(1).integers(-(10**15), 10**15, 1000)
    for d in (0, 2, 3):
        assert decimal_array(v, d).to_pylist() == to_decimal(v, d)


def test_an_empty_file_is_a_clear_error(files, tmp_path):
    from rulelang.errors import LoyaltyError

    tx, _, cu = files
    empty = tmp_path / "empty.parquet"
    pq.write_table(pq.read_table(tx).slice(0, 0), empty)
    with pytest.raises(LoyaltyError, match="no usable transaction rows"):
        simulate(PROGRAM, empty, cu, SCENARIO, workers=1, slice_rows=100)


def test_a_failed_ledger_write_is_a_clear_error(files, monkeypatch):
    from rulelang.errors import LoyaltyError
    from simulator import api

    tx, _, cu = files
    monkeypatch.setattr(chunked, "AUTO_ROWS", 1000)
    monkeypatch.setattr(chunked, "SLICE_ROWS", 700)

    def full(self, table):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(api._LedgerSpill, "_write", full)
    made = []
    real_init = api._LedgerSpill.__init__
    monkeypatch.setattr(api._LedgerSpill, "__init__", lambda self, d: (real_init(self, d), made.append(self.path))[0])
    with pytest.raises(LoyaltyError, match="cannot write run 0's ledger.*No space left on device"):
        simulate(PROGRAM, tx, cu, SCENARIO, workers=1)
    assert made and not made[0].parent.exists()  # the temporary folder went with the failure


def test_batches_are_checked_in_order_with_a_bounded_read_ahead():
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from simulator.chunked import _in_order

    taken = []

    def items():
        for i in range(8):
            taken.append(i)
            yield i

    def slow(i):
        time.sleep(0.01 * (i % 3))  # later items may finish first
        return i * i, threading.get_ident()

    with ThreadPoolExecutor(2) as pool:
        got = []
        for value, _ in _in_order(pool, slow, items(), ahead=2):
            got.append(value)
            assert len(taken) <= len(got) + 2  # never more than `ahead` items beyond what was used
    assert got == [i * i for i in range(8)]

    def fails(i):
        if i == 3:
            raise ValueError("batch 3")
        return i

    with ThreadPoolExecutor(2) as pool, pytest.raises(ValueError, match="batch 3"):
        assert list(_in_order(pool, fails, range(8))) == []


def test_amounts_adding_up_beyond_the_engines_range_over_batches_are_a_clear_error(tmp_path):
    # Each batch of 450 rows of the largest amount (10**15 minor units) is within the limit of
    # 10**18; the third one takes the file's total past it.
    from rulelang.errors import DataError

    n = 1350
    path = tmp_path / "big.parquet"
    pq.write_table(pa.table({"customer_id": [f"C{i}" for i in range(n)], "timestamp": ["2026-01-01"] * n, "amount": [1e13] * n}), path)
    with pytest.raises(DataError, match=rf"^{path}: error: row 1350: the amounts of the used rows up to this row add up to more than 10,000,000,000,000,000.00"):
        chunked.plan(path, {}, 2, None, None, 500)


@pytest.fixture(scope="module")
def churning(tmp_path_factory):
    """A year of simulator.sample_data (customers who churn: the horizon's models can be fitted)."""
    from simulator.sample_data import generate as sample

    d = tmp_path_factory.mktemp("horizon")
    tx, cu = sample(240, 12, 5)
    tx.to_parquet(d / "tx.parquet")
    cu.to_parquet(d / "cu.parquet")
    return d / "tx.parquet", d / "cu.parquet"


@pytest.mark.parametrize("size", [900, 4000])
def test_slices_with_a_horizon_give_the_same_figures_as_one_pass(churning, size, tmp_path):
    import json

    tx, cu = churning
    sc = {**SCENARIO, "period": None, "horizon": "12 months", "acquisition": {"per_month": 0}}
    sc.pop("period")
    one = simulate(PROGRAM, tx, cu, sc, workers=1)
    sliced = simulate(PROGRAM, tx, cu, sc, workers=1, slice_rows=size)
    a, b = _outputs(sliced, tmp_path / "s"), _outputs(one, tmp_path / "w")
    assert a["monthly.csv"] == b["monthly.csv"] and a["rewards.csv"] == b["rewards.csv"]
    sa, sb = json.loads(a["summary.json"]), json.loads(b["summary.json"])
    # Only the record of new customers says how it came (none are drawn either way).
    assert sa["horizon"].pop("acquisition")["per_month"] == sb["horizon"].pop("acquisition")["per_month"] == 0
    assert sa == sb and sa["horizon"]["customers_with_a_future"] == 240
    assert len(pd.read_csv(tmp_path / "s" / "monthly.csv")) == 3 * 24
    la, lb = sliced.ledger, one.ledger
    assert len(la) == len(lb) and (la["timestamp"] >= pd.Timestamp("2027-01-01")).any()
    for col in lb.columns:
        assert la[col].astype(str).tolist() == lb[col].astype(str).tolist(), col


def test_slices_refuse_new_customers_in_a_horizon(churning):
    tx, cu = churning
    sc = {**SCENARIO, "horizon": "12 months"}
    sc.pop("period")
    with pytest.raises(LoyaltyError, match=r"^acquisition: a history replayed in slices .* cannot draw new customers yet; set `acquisition: \{per_month: 0\}`"):
        simulate(PROGRAM, tx, cu, sc, workers=1, slice_rows=900)


# Budgets (a global step, docs/semantics.md "Budgets"): small enough to run out on this history.
BUDGETS = {
    "earn welcome:    200 points on enroll\n": "earn welcome:    200 points on enroll budget 3000 points\n"
    "earn launch:     150 points when amount >= 30 during 2026-03-01 to 2026-05-31 once budget 2000 points\n"
    "discount spring: 20% during 2026-03-01 to 2026-04-30 budget 120 CNY\n",
}


@pytest.fixture(scope="module")
def budget_program(tmp_path_factory):
    text = PROGRAM.read_text(encoding="utf-8")
    for old, new in BUDGETS.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path_factory.mktemp("budget") / "coffee_budget.loyalty"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def budget_whole(files, budget_program):
    tx, _, cu = files
    return simulate(budget_program, tx, cu, SCENARIO, workers=1)


def test_the_budgets_run_out_in_every_run(budget_whole):
    figures = budget_whole.summary["budgets"]
    assert set(figures) == {"welcome", "launch", "spring"}
    for name, budget in (("welcome", 3000), ("launch", 2000)):
        assert figures[name]["runs_ran_out"] == SCENARIO["runs"]
        assert all(budget - 200 < used <= budget for used in figures[name]["used_by_run"]), name
    assert all(120 - 30 < used <= 120 for used in figures["spring"]["used_by_run"])


@pytest.mark.parametrize(("size", "workers"), [(None, 2), (250, 1), (1100, 2)])
def test_a_budget_program_gives_the_same_bytes_in_slices_and_workers(files, budget_program, budget_whole, size, workers, tmp_path):
    tx, _, cu = files
    other = simulate(budget_program, tx, cu, SCENARIO, workers=workers, slice_rows=size)
    assert _outputs(other, tmp_path / "s") == _outputs(budget_whole, tmp_path / "w")
    a, b = other.ledger, budget_whole.ledger
    assert len(a) == len(b)
    for col in b.columns:
        assert a[col].astype(str).tolist() == b[col].astype(str).tolist(), col


def test_a_budget_program_gives_the_same_bytes_with_a_run_cut_among_threads(files, budget_program, tmp_path, monkeypatch):
    """One run in one process on two threads, its customers cut into pieces (montecarlo's parts):
    the run's global step settles the budgets over all its pieces together."""
    from simulator import montecarlo

    tx, _, cu = files
    one = {**SCENARIO, "runs": 1}
    want = _outputs(simulate(budget_program, tx, cu, one, workers=1), tmp_path / "w")
    monkeypatch.setattr(montecarlo, "PART_ROWS", 100)
    monkeypatch.setattr(montecarlo, "PIECE_ROWS", 300)
    cut = simulate(budget_program, tx, cu, one, workers=2)
    assert _outputs(cut, tmp_path / "t") == want
    assert cut.summary["budgets"]["welcome"]["runs_ran_out"] == 1
