"""Synthetic histories: realistic shape, valid for the loader, deterministic, bundled sample current."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from simulator import sample_data
from simulator.cli import main
from simulator.io import load_customers, load_transactions


@pytest.fixture(scope="module")
def small():
    return sample_data.generate(400, 6, seed=11)


def test_top_fifth_of_customers_bring_most_revenue():
    for seed in (0, 5):
        tx, _ = sample_data.generate(1500, 12, seed)
        revenue = tx.loc[tx["event"] == "purchase"].groupby("customer_id")["amount"].sum().sort_values(ascending=False)
        share = revenue.iloc[: len(revenue) // 5].sum() / revenue.sum()
        assert 0.70 <= share <= 0.90, share


def test_shape_of_the_history(small):
    tx, cu = small
    assert list(tx.columns) == ["customer_id", "timestamp", "transaction_id", "event", "amount", "category", "sku", "aisle", "quantity", "channel", "store"]
    assert tx["customer_id"].is_monotonic_increasing
    assert (tx.groupby("customer_id")["timestamp"].diff().dropna() >= pd.Timedelta(0)).all()
    assert tx["timestamp"].min() >= pd.Timestamp("2026-01-01") and tx["timestamp"].max() < pd.Timestamp("2026-07-01")
    assert np.array_equal(np.round(tx["amount"], 2), tx["amount"])
    assert set(tx["event"]) == {"purchase", "refund", "referral"}
    purchases = tx[tx["event"] == "purchase"]
    assert {"coffee", "tea", "pastry", "fuel", "grocery"} <= set(purchases["category"])
    assert set(purchases["channel"]) == {"store", "app", "online"}
    assert "CEREAL-500G" in set(purchases["sku"]) and "organic" in set(purchases["aisle"])
    assert purchases["store"].str.fullmatch(r"S\d\d").all() and (purchases["amount"] > 0).all()
    refunds = len(tx[tx["event"] == "refund"]) / purchases["transaction_id"].nunique()
    assert 0.01 <= refunds <= 0.03
    assert set(cu.columns) == {"customer_id", "birthday", "segment", "city", "gender"}
    assert len(cu) == 400 and cu["birthday"].notna().mean() > 0.85


def test_baskets_are_consecutive_lines_with_one_timestamp(small):
    tx, _ = small
    purchases = tx[tx["event"] == "purchase"]
    per_tx = purchases.groupby("transaction_id").agg(first=("timestamp", "min"), last=("timestamp", "max"), n=("customer_id", "nunique"))
    assert (per_tx["first"] == per_tx["last"]).all() and (per_tx["n"] == 1).all()
    positions = purchases.reset_index().groupby("transaction_id")["index"].agg(["min", "max", "count"])
    assert (positions["max"] - positions["min"] + 1 == positions["count"]).all()
    assert (purchases.groupby("transaction_id").size() > 1).mean() > 0.3


def test_refunds_point_at_an_earlier_basket_of_the_same_customer(small):
    tx, _ = small
    baskets = tx[tx["event"] == "purchase"].groupby("transaction_id").agg(customer=("customer_id", "first"), at=("timestamp", "first"), total=("amount", "sum"))
    refunds = tx[tx["event"] == "refund"].join(baskets, on="transaction_id")
    assert len(refunds) and refunds["customer"].notna().all()
    assert (refunds["customer"] == refunds["customer_id"]).all() and (refunds["at"] < refunds["timestamp"]).all()
    assert (refunds["amount"] < 0).all() and (-refunds["amount"] <= refunds["total"] + 1e-9).all()
    assert (np.isclose(-refunds["amount"], refunds["total"])).any() and (~np.isclose(-refunds["amount"], refunds["total"])).any()


def test_output_loads_cleanly(small, tmp_path):
    tx, cu = small
    t, c = sample_data.write(tx, cu, tmp_path, "csv")
    r = load_transactions(t)
    assert r.rows_rejected == 0 and r.rows_used == len(tx)
    assert load_customers(c).rows_rejected == 0


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    a = sample_data.write(*sample_data.generate(120, 3, 9), tmp_path / "a")
    b = sample_data.write(*sample_data.generate(120, 3, 9), tmp_path / "b")
    for pa_, pb in zip(a, b, strict=True):
        assert pa_.read_bytes() == pb.read_bytes()
    c = sample_data.generate(120, 3, 10)[0]
    assert not c.equals(sample_data.generate(120, 3, 9)[0])


def test_bundled_sample_equals_generate_with_documented_parameters():
    tx_path, cu_path = sample_data.bundled_paths()
    assert tx_path.exists() and cu_path.exists()
    assert tx_path.stat().st_size + cu_path.stat().st_size < 5_000_000
    tx, cu = sample_data.generate(**sample_data.BUNDLED)
    pd.testing.assert_frame_equal(pd.read_parquet(tx_path), tx)
    pd.testing.assert_frame_equal(pd.read_parquet(cu_path), cu)


def test_cli_writes_csv_and_parquet(tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["sample-data", "--customers", "30", "--months", "2", "--seed", "3", "--out", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "c" / "transactions.csv").read_text().startswith("customer_id,timestamp,transaction_id,event,amount")
    res = runner.invoke(main, ["sample-data", "--customers", "30", "--months", "2", "--seed", "3", "--out", str(tmp_path / "p"), "--format", "parquet"])
    assert res.exit_code == 0, res.output
    tx, _ = sample_data.generate(30, 2, 3)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "p" / "transactions.parquet"), tx)
    res = runner.invoke(main, ["sample-data", "--out", str(tmp_path / "x"), "--customers", "0"])
    assert res.exit_code == 2 and "--customers" in res.output


class _FailsWhenWritten:
    """A cell whose text cannot be made: the CSV writer fails after writing the rows before it."""

    def __str__(self):
        raise RuntimeError("disk full")


def test_a_failed_write_leaves_the_earlier_files_whole(tmp_path):
    tx, cu = sample_data.generate(50, 2, 1, "2026-01-01")
    first = sample_data.write(tx, cu, tmp_path)
    before = [p.read_bytes() for p in first]
    broken = tx.astype({"customer_id": object})
    broken.loc[len(broken) - 1, "customer_id"] = _FailsWhenWritten()
    with pytest.raises(RuntimeError, match="disk full"):
        sample_data.write(broken, cu, tmp_path)
    assert [p.read_bytes() for p in first] == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["customers.csv", "transactions.csv"]  # no temporary left


# --- the pilot in the history ---------------------------------------------------------------------

PILOT = {"start": "2026-05-01", "end": "2026-06-30", "share": 1.0, "spend_lift": 0.1, "visit_lift": 0.5}


def test_a_pilot_of_no_one_leaves_the_history_as_it_was():
    # The pilot's draws are streams of their own: with nobody in it, not a row moves.
    plain, _ = sample_data.generate(150, 6, 9)
    none, people = sample_data.generate(150, 6, 9, pilot={**PILOT, "share": 0.0})
    pd.testing.assert_frame_equal(none, plain)
    assert people["pilot_group"].isna().all()


def test_the_pilot_lifts_the_treated_customers_in_its_days_and_no_one_else():
    plain, _ = sample_data.generate(300, 6, 9)
    tx, people = sample_data.generate(300, 6, 9, pilot=PILOT)
    groups = people.set_index("customer_id")["pilot_group"]
    assert set(groups.dropna()) == {"treated", "control"}
    treated = set(groups[groups == "treated"].index)
    first, last = pd.Timestamp(PILOT["start"]), pd.Timestamp(PILOT["end"]) + pd.Timedelta(days=1)

    def lifted(frame):
        return frame["customer_id"].isin(treated) & (frame["timestamp"] >= first) & (frame["timestamp"] < last)

    # Everyone else's rows, and the treated customers' outside the pilot, are as they were
    # (transaction ids aside: they number the baskets in order, and the pilot adds baskets).
    keep = ["customer_id", "timestamp", "event", "amount", "sku", "quantity"]
    same = lambda frame: frame.loc[~lifted(frame), keep].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(same(tx), same(plain))
    # In the pilot, each of the treated customers' purchase lines as it was is there at 1.1 times
    # its amount, and the extra visits come on top: about half as many again.
    line = ["customer_id", "timestamp", "sku", "quantity"]
    before = plain[lifted(plain) & (plain["event"] == "purchase")]
    after = tx[lifted(tx) & (tx["event"] == "purchase")]
    before, after = (f.assign(nth=f.groupby(line).cumcount()) for f in (before, after))  # a basket may hold one SKU twice
    matched = before.merge(after, on=[*line, "nth"], suffixes=("_before", "_after"))
    assert len(matched) == len(before)
    # Both amounts are rounded to the cent: |after - 1.1 x before| <= 0.005 + 1.1 x 0.005.
    assert (matched["amount_after"] - matched["amount_before"] * 1.1).abs().max() <= 0.0105 + 1e-9
    visits_before = before.drop_duplicates(["customer_id", "timestamp"]).shape[0]
    visits_after = after.drop_duplicates(["customer_id", "timestamp"]).shape[0]
    assert 1.35 < visits_after / visits_before < 1.65, (visits_before, visits_after)


def test_the_bundled_pilot_calibrates_to_intervals_that_cover_its_injected_lift():
    from simulator.calibrate import run
    from simulator.pilot import load_pilot
    from tests.conftest import ROOT

    c, _, _ = run(load_pilot(ROOT / "programs" / "coffee_pilot.yaml"))
    truth = sample_data.BUNDLED_PILOT
    pilot = load_pilot(ROOT / "programs" / "coffee_pilot.yaml")
    assert (str(pilot.start), str(pilot.end)) == (truth["start"], truth["end"])
    lo, hi = c.visits.uplift_interval()
    assert lo <= truth["visit_lift"] <= hi
    lo, hi = c.spend_per_visit.uplift_interval()
    assert lo <= truth["spend_lift"] <= hi
    assert c.placebo is not None and not c.placebo.rejects
    assert c.treated_customers > 800 and c.control_customers > 800


RISKY = ("=", "+", "-", "@", "\t", "\r")


def test_csv_text_cells_are_formula_safe_and_the_generated_ones_need_nothing(tmp_path):
    tx, cu = sample_data.generate(40, 2, 4)
    t, c = sample_data.write(tx, cu, tmp_path / "plain")
    back = pd.read_csv(c, dtype=str, keep_default_na=False)
    assert back["customer_id"].tolist() == cu["customer_id"].tolist() and back["city"].tolist() == cu["city"].tolist()
    text = pd.read_csv(t, dtype=str, keep_default_na=False).drop(columns=["amount", "quantity"])  # (refunds: negative numbers)
    assert not text.apply(lambda col: col.str.startswith(RISKY)).any().any()
    # A frame of one's own: its risky text is written with a leading apostrophe, numbers as they are.
    cu = cu.astype({"city": object})
    cu.loc[0, "city"] = "=HYPERLINK(\"http://x\")"
    tx = tx.astype({"customer_id": object})
    tx.loc[0, "customer_id"] = "-2+3"
    t, c = sample_data.write(tx, cu, tmp_path / "hostile")
    assert pd.read_csv(c, dtype=str, keep_default_na=False)["city"].iloc[0] == "'=HYPERLINK(\"http://x\")"
    written = pd.read_csv(t, dtype=str, keep_default_na=False)
    assert written["customer_id"].iloc[0] == "'-2+3" and (written["amount"].str.startswith("-")).any()
