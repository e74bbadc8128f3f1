"""`loyalty calibrate`: the estimates printed and the response block written, from a pilot file.

Oracles: the same synthetic pilot estimated in memory (simulator.calibration on the generator's
frame), and the scenario loader reading back the block the command writes.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from simulator import calibration, io, pilot_synthetic
from simulator.cli import main
from simulator.scenario import Calibrated, Normal, loads_scenario
from tests.conftest import EXAMPLES, ROOT

PILOT = str(EXAMPLES / "pilot" / "pilot.yaml")


def _cli(*args):
    return CliRunner().invoke(main, list(args))


def _write_pilot(folder, p, extra=""):
    """A pilot file with list files for both groups, the transactions in the user's column names."""
    tx = p.transactions.rename(columns={"customer_id": "card", "amount": "total"})
    tx.to_csv(folder / "tx.csv", index=False, date_format="%d/%m/%Y %H:%M:%S")
    (folder / "treated.txt").write_text("\n".join(p.treated) + "\n", encoding="utf-8")
    (folder / "control.txt").write_text("# the control group\n" + "\n".join(p.control) + "\n", encoding="utf-8")
    text = (
        "transactions: tx.csv\ncolumns: {customer_id: card, amount: total}\ntimestamp_format: '%d/%m/%Y %H:%M:%S'\n"
        f"treated: treated.txt\ncontrol: control.txt\nstart: {p.start}\nend: {p.end}\npre_start: {p.pre_start}\n{extra}"
    )
    (folder / "pilot.yaml").write_text(text, encoding="utf-8")
    return str(folder / "pilot.yaml")


def test_the_example_prints_the_estimates_and_writes_a_response_a_scenario_reads(tmp_path):
    out = tmp_path / "response.yaml"
    r = _cli("calibrate", PILOT, "--out", str(out))
    assert r.exit_code == 0, r.output
    for words in ("141 treated (pilot_group = treated), 159 control", "spend per visit", "placebo test", "naive comparison", "3,802 read"):
        assert words in r.output
    sc = loads_scenario(out.read_text(encoding="utf-8"))
    j = json.loads(_cli("calibrate", PILOT, "--format", "json").output)
    assert sc.response.spend_uplift == Normal(j["response"]["spend_uplift"]["normal"]["mean"], j["response"]["spend_uplift"]["normal"]["sd"])
    assert sc.response.visit_uplift.mean == pytest.approx(j["visits"]["uplift"], abs=1e-6)
    assert sc.response.spend_uplift.mean == pytest.approx(j["spend_per_visit"]["uplift"], abs=1e-6)
    assert sc.response.source == Calibrated("pilot", PILOT)  # the report says where the uplifts came from
    # Same inputs, same bytes.
    again = tmp_path / "again.yaml"
    _cli("calibrate", PILOT, "--out", str(again))
    assert again.read_bytes() == out.read_bytes()


def test_the_command_gives_the_in_memory_estimate_of_the_same_pilot(tmp_path):
    p = pilot_synthetic.generate(31, 0, customers=200, weeks=10, pilot_weeks=4)
    panel, _ = calibration.build_panel(p.transactions, p.treated, p.control, p.pre_start, p.start, p.end)
    expected = calibration.estimate(panel)
    r = _cli("calibrate", _write_pilot(tmp_path, p), "--format", "json")
    assert r.exit_code == 0, r.output
    j = json.loads(r.output)
    assert j["customers"] == {"treated": len(p.treated), "control": len(p.control)}
    assert j["weeks"] == {"pre": 6, "pilot": 4}
    for name, e in (("spend", expected.spend), ("visits", expected.visits), ("spend_per_visit", expected.spend_per_visit)):
        assert j[name]["uplift"] == pytest.approx(e.uplift, rel=1e-9)
        assert j[name]["uplift_se"] == pytest.approx(e.uplift_se, rel=1e-9)
    assert j["naive"]["spend"] == pytest.approx(expected.naive_spend)
    assert j["placebo"]["p_value"] == pytest.approx(expected.placebo.p_value)


def test_diverging_pre_trends_print_a_warning(tmp_path):
    p = pilot_synthetic.generate(5, 0, customers=2000, weeks=10, pilot_weeks=4, pre_trend=0.6)
    path = _write_pilot(tmp_path, p)
    r = _cli("calibrate", path, "--out", str(tmp_path / "r.yaml"))
    assert r.exit_code == 0
    assert "WARNING: parallel trends rejected at 5%" in r.output
    assert "# WARNING: the placebo test rejected parallel trends" in (tmp_path / "r.yaml").read_text(encoding="utf-8")
    j = CliRunner().invoke(main, ["calibrate", path, "--format", "json"])
    assert json.loads(j.stdout)["placebo"]["rejects"] is True


def test_rejected_rows_are_counted_and_reported(tmp_path):
    p = pilot_synthetic.generate(32, 0, customers=60, weeks=6, pilot_weeks=3)
    path = _write_pilot(tmp_path, p)
    with open(tmp_path / "tx.csv", "a", encoding="utf-8") as f:
        f.write(f"{p.treated[0]},03/03/2026 10:00:00,12.5x,purchase,B9999\n")
    r = CliRunner().invoke(main, ["calibrate", path, "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["rows"]["rejected"] == 1
    assert "not a number" in r.stderr


def test_mistakes_exit_1_with_the_place(tmp_path):
    p = pilot_synthetic.generate(33, 0, customers=40, weeks=6, pilot_weeks=3)
    path = _write_pilot(tmp_path, p, extra="margin: 0.5\n")
    r = _cli("calibrate", path)
    assert r.exit_code == 1
    assert f"{path}:9:1: error: margin: unknown key `margin`" in r.output
    # A customer in both groups.
    path = _write_pilot(tmp_path, p)
    (tmp_path / "control.txt").write_text("\n".join(list(p.control) + [p.treated[0]]), encoding="utf-8")
    r = _cli("calibrate", path)
    assert r.exit_code == 1
    assert f"{path}:5:10: error: control: 1 customer is also treated (e.g. {p.treated[0]})" in r.output


def test_an_output_over_an_input_is_refused_and_nothing_is_written(tmp_path):
    p = pilot_synthetic.generate(34, 0, customers=40, weeks=6, pilot_weeks=3)
    path = _write_pilot(tmp_path, p)
    before = (tmp_path / "treated.txt").read_bytes()
    r = _cli("calibrate", path, "--out", str(tmp_path / "treated.txt"))
    assert r.exit_code == 2 and "writing there would destroy an input" in r.output
    assert (tmp_path / "treated.txt").read_bytes() == before


def test_an_unwritable_output_exits_2(tmp_path):
    # A folder that is a file: no user, root included, can write under it.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    r = _cli("calibrate", PILOT, "--out", str(blocker / "r.yaml"))
    assert r.exit_code == 2 and "cannot write" in r.output
    assert blocker.read_text() == "x"


def test_the_example_pilot_files_are_what_the_script_writes(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_pilot", EXAMPLES / "pilot" / "make_pilot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for written in module.write(tmp_path):
        assert written.read_bytes() == (EXAMPLES / "pilot" / written.name).read_bytes()


# --- --ledger: redemption behaviour from a running program's ledger ------------------------------


def _ledger_files(folder, ledger=None, tx=None, mapped=False):
    """The hand-counted ledger (simkit.redemption_case) and its transactions as CSV files; `mapped`:
    the transactions in the user's column names, mapped by a scenario."""
    from tests.simulator import simkit

    case_ledger, case_tx = simkit.redemption_case()
    ledger = case_ledger if ledger is None else ledger
    tx = case_tx if tx is None else tx
    ledger.to_csv(folder / "ledger.csv", index=False)
    if mapped:
        tx = tx.rename(columns={"customer_id": "card", "timestamp": "paid_at"})
        (folder / "scenario.yaml").write_text("columns: {customer_id: card, timestamp: paid_at}\n", encoding="utf-8")
    tx.to_csv(folder / "tx.csv", index=False)
    return str(folder / "ledger.csv"), str(folder / "tx.csv")


def test_ledger_mode_prints_the_estimate_and_writes_a_redemption_block_a_scenario_reads(tmp_path):
    from simulator import redemption_calibration
    from tests.simulator import simkit

    ledger, tx = _ledger_files(tmp_path, mapped=True)
    out = tmp_path / "redemption.yaml"
    r = _cli("calibrate", "--ledger", ledger, "--transactions", tx, "--scenario", str(tmp_path / "scenario.yaml"), "--out", str(out))
    assert r.exit_code == 0, r.output
    for words in ("2 members, 3 redemptions (1 at no visit's time", "coffee 300, mug 2,000", "7 of them affordable", "tier Gold", "28.6%", "best fit: random"):
        assert words in r.output, words
    case_ledger, case_tx = simkit.redemption_case()
    expected = redemption_calibration.estimate(case_ledger, io.load_transactions(case_tx).frame)
    sc = loads_scenario(out.read_text(encoding="utf-8"))
    assert sc.redemption.probability == round(expected.overall.estimate, 6) and sc.redemption.choice == "random"
    assert sc.redemption.source == Calibrated("ledger", ledger)  # the report says where the block came from
    j = json.loads(_cli("calibrate", "--ledger", ledger, "--transactions", tx, "--scenario", str(tmp_path / "scenario.yaml"), "--format", "json").output)
    assert j["overall"]["probability"] == pytest.approx(2 / 7) and j["overall"]["visits"] == 7
    assert j["by_tier"]["Green"]["redemptions"] == 1 and j["by_tier"]["Gold"]["visits"] == 4
    assert j["choice"]["counts"] == {"cheapest": 0, "dearest": 1, "other": 0}
    assert j["redemption"] == {"probability": round(2 / 7, 6), "choice": "random"}
    # Same inputs, same bytes.
    again = tmp_path / "again.yaml"
    _cli("calibrate", "--ledger", ledger, "--transactions", tx, "--scenario", str(tmp_path / "scenario.yaml"), "--out", str(again))
    assert again.read_bytes() == out.read_bytes()


def test_ledger_mode_on_a_simulated_ledger_gives_the_policy_back(tmp_path):
    # `loyalty simulate` writes ledger.parquet; calibrating from it with the program's prices gives
    # the scenario's 0.3 (within the interval) and `cheapest` back.
    from simulator.sample_data import bundled_paths

    (tmp_path / "sc.yaml").write_text(
        f"program: {ROOT / 'programs' / 'coffee.loyalty'}\nruns: 1\nseed: 5\nenrollment: {{share: 0.7}}\nredemption: {{probability: 0.3, choice: cheapest}}\n",
        encoding="utf-8",
    )
    r = _cli("simulate", str(tmp_path / "sc.yaml"), "--out", str(tmp_path / "run"), "--workers", "1")
    assert r.exit_code == 0, r.output
    tx, _ = bundled_paths()
    r = _cli("calibrate", "--ledger", str(tmp_path / "run" / "ledger.parquet"), "--transactions", str(tx), "--scenario", str(tmp_path / "sc.yaml"), "--format", "json")
    assert r.exit_code == 0, r.output
    j = json.loads(r.output)
    lo, hi = j["overall"]["probability_95"]
    assert lo <= 0.3 <= hi and j["choice"]["best"] == "cheapest" and j["prices"]["from"] == "program"


def test_ledger_mode_mistakes_exit_1_with_what_is_wrong(tmp_path):
    from tests.simulator import simkit

    case_ledger, case_tx = simkit.redemption_case()
    ledger, tx = _ledger_files(tmp_path, ledger=case_ledger.drop(columns=["points"]))
    r = _cli("calibrate", "--ledger", ledger, "--transactions", tx)
    assert r.exit_code == 1 and f"{ledger}: error: the ledger has no column `points`" in r.output
    ledger, tx = _ledger_files(tmp_path, ledger=case_ledger[case_ledger["kind"] != "redeem"])
    r = _cli("calibrate", "--ledger", ledger, "--transactions", tx)
    assert r.exit_code == 1 and "no redeem postings; nothing to estimate" in r.output
    ledger, tx = _ledger_files(tmp_path, tx=case_tx[case_tx["customer_id"] != "A"])
    r = _cli("calibrate", "--ledger", ledger, "--transactions", tx)
    assert r.exit_code == 1 and "1 of the ledger's 2 members have no rows in" in r.output and "(e.g. A)" in r.output
    # A scenario's mistake is reported at its place.
    (tmp_path / "bad.yaml").write_text("columns: {customer_id: card}\nredemption: {probabilty: 0.2}\n", encoding="utf-8")
    r = _cli("calibrate", "--ledger", ledger, "--transactions", tx, "--scenario", str(tmp_path / "bad.yaml"))
    assert r.exit_code == 1 and "bad.yaml:2:14: error: redemption.probabilty: unknown key" in r.output


def test_ledger_mode_usage_mistakes_exit_2(tmp_path):
    ledger, tx = _ledger_files(tmp_path)
    for args, words in (
        (["calibrate"], "give a pilot file (PILOT.yaml) or --ledger"),
        (["calibrate", PILOT, "--ledger", ledger, "--transactions", tx], "one of the two"),
        (["calibrate", "--ledger", ledger], "--ledger needs --transactions TX"),
        (["calibrate", PILOT, "--transactions", tx], "--transactions goes with --ledger"),
    ):
        r = _cli(*args)
        assert r.exit_code == 2 and words in r.output, (args, r.output)
    before = (tmp_path / "ledger.csv").read_bytes()
    r = _cli("calibrate", "--ledger", ledger, "--transactions", tx, "--out", ledger)
    assert r.exit_code == 2 and "writing there would destroy an input" in r.output
    assert (tmp_path / "ledger.csv").read_bytes() == before
