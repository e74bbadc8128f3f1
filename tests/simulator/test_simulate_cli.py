"""`loyalty simulate` and `loyalty compare`: outputs, tables, and every bad-input class (exit 1, or
2 for usage), never a traceback."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from simulator.cli import main
from tests.simulator.simkit import ENGINE, PROGRAM_TEXT, sample


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    tx, cu = sample(15, 4)
    tx.to_csv(d / "tx.csv", index=False)
    cu.to_csv(d / "cu.csv", index=False)
    (d / "club.loyalty").write_text(PROGRAM_TEXT, encoding="utf-8")
    (d / "rich.loyalty").write_text(PROGRAM_TEXT.replace("1 point per 1 CNY", "2 points per 1 CNY"), encoding="utf-8")
    return d


def _run(*args):
    return CliRunner().invoke(main, [*args, "--engine", ENGINE, "--quiet", "--workers", "1"])


def _ok(res):
    assert res.exit_code == 0, res.output + str(res.exception)


def _bad(res, code, *needles):
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output
    for n in needles:
        assert n in res.output, res.output


def test_simulate_writes_every_output_and_a_table(files, tmp_path):
    out = tmp_path / "out"
    res = _run(
        "simulate",
        str(files / "club.loyalty"),
        "--transactions",
        str(files / "tx.csv"),
        "--customers",
        str(files / "cu.csv"),
        "--runs",
        "2",
        "--seed",
        "4",
        "--out",
        str(out),
    )
    _ok(res)
    for name in ("summary.json", "monthly.csv", "ledger.parquet", "rewards.csv", "report.html"):
        assert (out / name).exists(), name
    for needle in ("rows_read", "rows_used", "rows_rejected", "points_issued", "P5", "P50", "P95", "mean"):
        assert needle in res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["assumptions"]["runs"] == 2 and summary["assumptions"]["seed"] == 4
    assert list(summary) == sorted(summary)


def test_scenario_file_with_flags_overriding(files, tmp_path):
    sc = files / "scenario.yaml"
    sc.write_text(
        "program: club.loyalty\ntransactions: tx.csv\ncustomers: cu.csv\nruns: 5\nseed: 1\nenrollment: {share: 0.5}\n", encoding="utf-8"
    )
    res = _run("simulate", str(sc), "--runs", "1", "--out", str(tmp_path / "o"))
    _ok(res)
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["assumptions"]["runs"] == 1
    assert summary["members"]["mean"] == round(0.5 * 15)


def test_rejected_rows_are_counted_and_written(files, tmp_path):
    text = (files / "tx.csv").read_text().splitlines()
    cols = text[0].split(",")
    amount = cols.index("amount")
    row = text[3].split(",")
    row[amount] = "abc"
    text[3] = ",".join(row)
    (tmp_path / "tx.csv").write_text("\n".join(text) + "\n")
    rejects = tmp_path / "rejects.csv"
    res = _run(
        "simulate",
        str(files / "club.loyalty"),
        "--transactions",
        str(tmp_path / "tx.csv"),
        "--customers",
        str(files / "cu.csv"),
        "--runs",
        "1",
        "--out",
        str(tmp_path / "o"),
        "--rejects",
        str(rejects),
    )
    _ok(res)
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["rows_rejected"]["mean"] == 1
    assert summary["rows_read"]["mean"] == summary["rows_used"]["mean"] + 1
    assert "abc" in rejects.read_text()


def test_missing_column_lists_the_available_ones(files, tmp_path):
    (tmp_path / "tx.csv").write_text("member,paid_at,total\nA,2026-01-01 10:00:00,5\n")
    res = _run("simulate", str(files / "club.loyalty"), "--transactions", str(tmp_path / "tx.csv"), "--out", str(tmp_path / "o"))
    _bad(res, 1, "customer_id", "member")


def test_scenario_errors_name_the_key(files, tmp_path):
    bad = tmp_path / "s.yaml"
    bad.write_text(f"program: {files / 'club.loyalty'}\nredemtion: {{probability: 0.2}}\n")
    _bad(_run("simulate", str(bad), "--out", str(tmp_path / "o")), 1, "redemtion", "did you mean `redemption`")
    bad.write_text(f"program: {files / 'club.loyalty'}\ntransactions: {files / 'tx.csv'}\nredemption: {{probability: 1.3}}\n")
    _bad(_run("simulate", str(bad), "--out", str(tmp_path / "o")), 1, "redemption.probability", "1.3")
    _bad(
        _run("simulate", str(files / "club.loyalty"), "--transactions", str(files / "tx.csv"), "--enrollment-share", "1.5"),
        1,
        "enrollment.share",
    )


def test_unknown_tier_in_uplift_is_an_error(files, tmp_path):
    sc = tmp_path / "s.yaml"
    sc.write_text(
        f"program: {files / 'club.loyalty'}\ntransactions: {files / 'tx.csv'}\ncustomers: {files / 'cu.csv'}\nresponse: {{spend_uplift: {{Gold: 0.1}}}}\n"
    )
    _bad(_run("simulate", str(sc), "--runs", "1", "--out", str(tmp_path / "o")), 1, "response.spend_uplift", "Gold", "Basic")


def test_bad_program_points_at_the_line(files, tmp_path):
    p = tmp_path / "bad.loyalty"
    p.write_text(PROGRAM_TEXT.replace("1 point per 1 CNY", "1 pointz per 1 CNY"))
    _bad(_run("simulate", str(p), "--transactions", str(files / "tx.csv"), "--out", str(tmp_path / "o")), 1, "bad.loyalty:")


def test_usage_errors_exit_2(files, tmp_path):
    _bad(_run("simulate", str(tmp_path / "nope.loyalty")), 2)
    _bad(_run("simulate", str(files / "club.loyalty"), "--transactions", str(tmp_path / "nope.csv")), 2)
    (tmp_path / "notes.txt").write_text("hi")
    _bad(_run("simulate", str(tmp_path / "notes.txt")), 2, ".loyalty")
    _bad(_run("simulate", str(files / "club.loyalty"), "--runs", "0"), 2)


def test_compare_shows_both_with_differences(files, tmp_path):
    out = tmp_path / "cmp"
    res = _run(
        "compare",
        str(files / "club.loyalty"),
        str(files / "rich.loyalty"),
        "--transactions",
        str(files / "tx.csv"),
        "--customers",
        str(files / "cu.csv"),
        "--runs",
        "1",
        "--out",
        str(out),
    )
    _ok(res)
    assert "club" in res.output and "rich" in res.output and "Δ" in res.output
    assert " pp" in res.output  # rate differences in percentage points, not per cent
    html = (out / "compare.html").read_text()
    assert " pp</td>" in html
    assert "club" in html and "rich" in html
    rows = {line.split(",")[0]: line.split(",") for line in (out / "compare.csv").read_text().splitlines()}
    assert float(rows["points_issued"][-1]) > 0  # the richer program issues more points
    _bad(_run("compare", str(files / "club.loyalty")), 2)


def test_the_example_scenario_runs_on_data_in_its_own_column_names(tmp_path):
    """examples/scenario.yaml as written (member_no, paid_at, total; tiered uplift), on its own files."""
    from tests.conftest import EXAMPLES

    res = _run("simulate", str(EXAMPLES / "scenario.yaml"), "--runs", "3", "--out", str(tmp_path / "out"))
    _ok(res)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["program"] == "Bean Club" and summary["currency"] == "CNY"
    assert summary["rows_read"]["mean"] == summary["rows_used"]["mean"] + summary["rows_rejected"]["mean"] + summary["rows_outside_period"]["mean"]
    assert summary["assumptions"]["response"]["spend_uplift"] == {"Green": 0.0, "Gold": 0.03, "Black": 0.06}
    assert summary["points_issued"]["p50"] > 0 and summary["revenue_lift"]["mean"] > 0
