"""`loyalty triangles`: on a simulated ledger.parquet and on CSVs written by hand, its files, its exit codes."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from simulator.cli import main
from simulator.finance.triangles import analyse
from tests.simulator.finance.ledgers import HAND_LEDGER


def run(*args: str):
    return CliRunner().invoke(main, ["triangles", *map(str, args)])


def test_a_simulated_ledger_prints_each_tiers_urr_and_writes_the_triangles(coffee_ledger, tmp_path):
    ledger, path, _ = coffee_ledger
    result = run(path, "--by", "tier", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    report = analyse(ledger, by_tier=True)
    for estimate in [report.overall, *report.by_tier.values()]:
        line = next(line for line in result.output.splitlines() if line.strip().startswith(estimate.group + " "))
        assert f"{100 * estimate.urr:.1f}%" in line and f"{100 * estimate.std_error:.1f}%" in line
    written = pd.read_csv(tmp_path / "out" / "triangles.csv", keep_default_na=False, na_values=[""])
    expected = report.table
    assert written[["tier", "cohort"]].astype(str).values.tolist() == expected[["tier", "cohort"]].astype(str).values.tolist()
    for col in ("development", "earned", "clawed_back", "redeemed", "expired"):
        assert written[col].tolist() == expected[col].tolist(), col
    pd.testing.assert_series_equal(written["redeemed_share"], expected["redeemed_share"], check_exact=False, rtol=1e-15)
    urr = pd.read_csv(tmp_path / "out" / "urr.csv")
    assert set(urr["tier"]) == {"(all)", "Green", "Gold", "Black"}


def test_json_on_a_csv_written_by_hand_gives_the_urr_worked_on_paper(tmp_path):
    (tmp_path / "ledger.csv").write_text(HAND_LEDGER, encoding="utf-8")
    result = run(tmp_path / "ledger.csv", "--format", "json", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    (overall,) = doc["urr"]
    assert overall["urr"] == pytest.approx(1500 / 2250) and overall["exposure"] == 2250
    assert (doc["first_month"], doc["last_month"]) == ("2026-01", "2026-03")
    by_tier = json.loads(run(tmp_path / "ledger.csv", "--format", "json", "--by", "tier", "--out", tmp_path / "out").output)
    gold = next(e for e in by_tier["urr"] if e["group"] == "Gold")
    assert gold["std_error"] is None  # not estimable: null, never NaN in JSON


def test_same_ledger_same_bytes(tmp_path):
    (tmp_path / "ledger.csv").write_text(HAND_LEDGER, encoding="utf-8")
    for out in ("a", "b"):
        assert run(tmp_path / "ledger.csv", "--by", "tier", "--out", tmp_path / out).exit_code == 0
    for name in ("triangles.csv", "urr.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_text_cells_that_could_be_formulas_are_neutralised(tmp_path):
    (tmp_path / "ledger.csv").write_text(HAND_LEDGER.replace(",Green\n", ",=HYPERLINK(1)\n"), encoding="utf-8")
    assert run(tmp_path / "ledger.csv", "--by", "tier", "--out", tmp_path / "out").exit_code == 0
    tiers = pd.read_csv(tmp_path / "out" / "triangles.csv")["tier"]
    assert "'=HYPERLINK(1)" in set(tiers) and not tiers.str.startswith("=").any()


def test_urr_csv_text_cells_that_could_be_formulas_are_neutralised(tmp_path):
    (tmp_path / "ledger.csv").write_text(HAND_LEDGER.replace(",Green\n", ",@SUM(1+1)\n"), encoding="utf-8")
    assert run(tmp_path / "ledger.csv", "--by", "tier", "--out", tmp_path / "out").exit_code == 0
    tiers = pd.read_csv(tmp_path / "out" / "urr.csv", keep_default_na=False)["tier"]
    assert "'@SUM(1+1)" in set(tiers) and not tiers.str.startswith("@").any()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("customer_id,timestamp,kind,points\na,2026-01-05,earn,1\n", "the ledger has no column `earned_on`"),
        ("customer_id,timestamp,kind,points,earned_on\na,2026-01-05,capped,10,\n", "the ledger has no earned points"),
        ("customer_id,timestamp,kind,points,earned_on\na,2026-01-05,earn,ten,2026-01-05\n", "row 1, column `points`: 'ten'"),
    ],
)
def test_bad_ledgers_exit_2_with_the_place_and_the_fix(tmp_path, text, message):
    (tmp_path / "ledger.csv").write_text(text, encoding="utf-8")
    result = run(tmp_path / "ledger.csv", "--out", tmp_path / "out")
    assert result.exit_code == 2 and message in result.output
    assert str(tmp_path / "ledger.csv") in result.output
    assert not (tmp_path / "out").exists()


def test_an_output_folder_holding_the_ledger_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "ledger.csv").write_text(HAND_LEDGER, encoding="utf-8")
    result = run(tmp_path / "run" / "ledger.csv", "--out", tmp_path / "run")
    assert result.exit_code == 2 and "would destroy an input" in result.output
    assert (tmp_path / "run" / "ledger.csv").read_text(encoding="utf-8") == HAND_LEDGER


def test_a_missing_ledger_file_exits_2(tmp_path):
    result = run(tmp_path / "nothing.parquet", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "no such ledger file" in result.output
