"""`loyalty simulate` and `loyalty compare`: outputs, tables, and every bad-input class (exit 1, or
2 for usage), never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from simulator import outputs
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
    for name in ("summary.json", "monthly.csv", "ledger.parquet", "rewards.csv", "report.html", "report.xlsx"):
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


# --- nothing lost: outputs never over inputs, whole sets, rejects of both files, sources --------------


def _sim(files, tmp_path, *extra, tx=None):
    return _run(
        "simulate",
        str(files / "club.loyalty"),
        "--transactions",
        str(tx or files / "tx.csv"),
        "--customers",
        str(files / "cu.csv"),
        "--runs",
        "1",
        *extra,
    )


def test_an_output_that_is_an_input_is_refused_before_any_work(files, tmp_path):
    import pandas as pd

    history = tmp_path / "history.parquet"
    pd.read_csv(files / "tx.csv").to_parquet(history)
    before = history.read_bytes()
    (tmp_path / "link.parquet").symlink_to(history)
    os.link(history, tmp_path / "hard.parquet")
    for rejects in (history, tmp_path / "link.parquet", tmp_path / "hard.parquet", files / "club.loyalty"):
        res = _sim(files, tmp_path, "--rejects", str(rejects), "--out", str(tmp_path / "o"), tx=history)
        _bad(res, 1, "--rejects is the", "Choose another --rejects path")
        assert not (tmp_path / "o").exists()
    assert history.read_bytes() == before
    # --out: the folder holding an input (it would be replaced as a whole), or a link to it.
    (tmp_path / "outlink").symlink_to(tmp_path)
    for out in (tmp_path, tmp_path / "outlink"):
        _bad(_sim(files, tmp_path, "--out", str(out), tx=history), 1, "--out holds the transactions file")
    assert history.read_bytes() == before
    _bad(_sim(files, tmp_path, "--out", str(files)), 1, "--out holds the")
    # A rejects file inside --out would be swept away with the old set.
    _bad(_sim(files, tmp_path, "--out", str(tmp_path / "o"), "--rejects", str(tmp_path / "o" / "r.csv")), 1, "inside --out")
    # ... and so would a rejects file at --out's own path (written first, it then blocked the folder).
    _bad(_sim(files, tmp_path, "--out", str(tmp_path / "same"), "--rejects", str(tmp_path / "same")), 1, "inside --out")
    assert not (tmp_path / "same").exists()


def test_compare_refuses_an_output_folder_holding_a_program(files, tmp_path):
    res = _run("compare", str(files / "club.loyalty"), str(files / "rich.loyalty"), "--transactions", str(files / "tx.csv"), "--out", str(files))
    _bad(res, 1, "--out holds the")


def test_an_output_folder_of_the_users_own_files_is_refused(files, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    _bad(_sim(files, tmp_path, "--out", str(out)), 1, "notes.txt", "choose a new or empty folder")
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_a_second_run_replaces_the_whole_set(files, tmp_path):
    out = tmp_path / "o"
    _ok(_sim(files, tmp_path, "--out", str(out), "--seed", "1"))
    _ok(_sim(files, tmp_path, "--out", str(out), "--seed", "2"))
    assert sorted(p.name for p in out.iterdir()) == sorted(outputs.SIMULATION_FILES + ("urr_by_tier.csv",))  # a tiered program
    assert json.loads((out / "summary.json").read_text())["assumptions"]["seed"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [".o.lock", "o"]  # no leftover temporary folder


def test_a_run_without_accounting_replaces_one_with_it(files, tmp_path):
    scenario = tmp_path / "books.yaml"
    scenario.write_text(f"program: {files / 'club.loyalty'}\naccounting: {{method: deferred_revenue, value_per_point: 0.01}}\n", encoding="utf-8")
    out = tmp_path / "o"
    given = ("--transactions", str(files / "tx.csv"), "--customers", str(files / "cu.csv"), "--runs", "1", "--workers", "1", "--out", str(out))
    _ok(_run("simulate", str(scenario), *given))
    assert (out / "accounting.csv").read_text().startswith("month,line,run_0,mean,p5,p50,p95\n")
    _ok(_sim(files, tmp_path, "--out", str(out)))  # the earlier run's accounting.csv is this command's: replaced, not refused
    assert sorted(p.name for p in out.iterdir()) == sorted(outputs.SIMULATION_FILES + ("urr_by_tier.csv",))  # a tiered program


def test_rejected_customer_rows_are_written_too_and_cells_are_formula_safe(files, tmp_path):
    import pandas as pd

    tx = pd.read_csv(files / "tx.csv", dtype=str, keep_default_na=False)
    tx.loc[2, "amount"] = "=HYPERLINK(\"http://x\")"
    tx.to_csv(tmp_path / "tx.csv", index=False)
    cu = pd.read_csv(files / "cu.csv", dtype=str, keep_default_na=False)
    cu.loc[1, "birthday"] = "@SUM(A1)"
    cu.to_csv(tmp_path / "cu.csv", index=False)
    rejects = tmp_path / "rejects.csv"
    res = _run(
        "simulate", str(files / "club.loyalty"), "--transactions", str(tmp_path / "tx.csv"), "--customers", str(tmp_path / "cu.csv"),
        "--runs", "1", "--out", str(tmp_path / "o"), "--rejects", str(rejects),
    )  # fmt: skip
    _ok(res)
    out = pd.read_csv(rejects, dtype=str, keep_default_na=False)
    assert list(out.columns[:5]) == ["row", "column", "value", "reason", "file"]
    assert out[["file", "row", "column"]].values.tolist() == [["transactions", "3", "amount"], ["customers", "2", "birthday"]]
    # A spreadsheet shows these as text, never runs them.
    assert out["value"].tolist() == ["'=HYPERLINK(\"http://x\")", "'@SUM(A1)"]
    assert not any(cell[:1] in "=+-@" for cell in out.to_numpy().ravel() if cell and not cell.lstrip("+-").replace(".", "").isdigit())


def test_every_output_records_its_sources_with_a_hash(files, tmp_path):
    import hashlib

    out = tmp_path / "o"
    _ok(_sim(files, tmp_path, "--out", str(out)))
    sources = json.loads((out / "summary.json").read_text())["sources"]
    for what, path in (("transactions", files / "tx.csv"), ("customers", files / "cu.csv"), ("program", files / "club.loyalty")):
        assert sources[what] == {"path": str(path.resolve()), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "given": "a file"}
    assert sources["scenario"]["path"] is None and sources["scenario"]["sha256"] is None
    html = (out / "report.html").read_text()
    assert str((files / "tx.csv").resolve()) in html and sources["transactions"]["sha256"] in html and "(default)" not in html
    cmp = tmp_path / "cmp"
    _ok(_run("compare", str(files / "club.loyalty"), str(files / "rich.loyalty"), "--transactions", str(files / "tx.csv"), "--runs", "1", "--out", str(cmp)))
    rows = {line.split(",")[0]: line.split(",") for line in (cmp / "compare.csv").read_text().splitlines()}
    assert rows["source transactions sha256"][1] == rows["source transactions sha256"][5] == sources["transactions"]["sha256"]
    assert rows["source program path"][1] == str((files / "club.loyalty").resolve())
    assert sources["transactions"]["sha256"] in (cmp / "compare.html").read_text()


def test_the_bundled_sample_is_named_as_such(files, tmp_path):
    out = tmp_path / "o"
    _ok(_run("simulate", str(files / "club.loyalty"), "--runs", "1", "--out", str(out)))
    sources = json.loads((out / "summary.json").read_text())["sources"]
    assert sources["transactions"]["given"] == sources["customers"]["given"] == "the bundled sample"
    assert "(the bundled sample)" in (out / "report.html").read_text()


def test_compare_refuses_programs_in_different_currencies(files, tmp_path):
    gbp = tmp_path / "gbp.loyalty"
    gbp.write_text(PROGRAM_TEXT.replace("CNY", "GBP"), encoding="utf-8")
    res = _run("compare", str(files / "club.loyalty"), str(gbp), "--transactions", str(files / "tx.csv"), "--out", str(tmp_path / "c"))
    _bad(res, 1, "different currencies", "club in CNY", "gbp in GBP")
    assert not (tmp_path / "c").exists()


def test_compare_names_its_folder_and_colours_by_what_is_better(files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = _run("compare", str(files / "club.loyalty"), str(files / "rich.loyalty"), "--transactions", str(files / "tx.csv"), "--runs", "1")
    _ok(res)
    assert f"wrote {(tmp_path / 'comparison').resolve()}/" in res.output.replace("\n", "")
    html = (tmp_path / "comparison" / "compare.html").read_text()
    # The richer program costs more: worse (red), never "better" for a higher cost.
    cost = html[html.index("<td>Program cost</td>") :].split("</tr>")[0]
    assert 'class="worse"' in cost and 'class="better"' not in cost
    assert "comparison" in _run("compare", "--help").output


def test_program_names_and_file_names_are_shown_not_interpreted(files, tmp_path):
    for name in ("[/]", "[link=https://example.com]x[/link]", "bell\x07and\x1b[31mred"):
        p = tmp_path / "odd.loyalty"
        p.write_text(PROGRAM_TEXT.replace('"Test Club"', '"' + name + '"'), encoding="utf-8")
        res = _run("simulate", str(p), "--transactions", str(files / "tx.csv"), "--runs", "1", "--out", str(tmp_path / "o"))
        _ok(res)
        shown = name.replace("\x07", "\\x07").replace("\x1b", "\\x1b")  # control characters shown as escapes
        assert shown in res.output and "\x1b" not in res.output and "\x07" not in res.output
    odd = tmp_path / "[bold]x[i].loyalty"  # (a path with control characters is refused: test_scenario)
    odd.write_text(PROGRAM_TEXT, encoding="utf-8")
    res = _run("compare", str(files / "club.loyalty"), str(odd), "--transactions", str(files / "tx.csv"), "--runs", "1", "--out", str(tmp_path / "c"))
    _ok(res)
    assert "[bold]x" in res.output and "\x1b" not in res.output


def test_compare_csv_headers_from_file_names_are_formula_safe(files, tmp_path):
    evil = tmp_path / "=cmd.loyalty"
    evil.write_text(PROGRAM_TEXT, encoding="utf-8")
    res = _run("compare", str(files / "club.loyalty"), str(evil), "--transactions", str(files / "tx.csv"), "--runs", "1", "--out", str(tmp_path / "c"))
    _ok(res)
    header = (tmp_path / "c" / "compare.csv").read_text().splitlines()[0].split(",")
    assert "'=cmd p50" in header and not any(h.startswith("=") for h in header)


def _cli(args, tmp_path, fault=None, timeout=180):
    env = {k: v for k, v in os.environ.items() if k != "LOYALTY_TEST_FAULT"}
    if fault:
        env["LOYALTY_TEST_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "simulator.cli", *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=timeout)


def test_ctrl_c_leaves_the_folder_unchanged_and_exits_130(files, tmp_path):
    common = [str(files / "club.loyalty"), "--transactions", str(files / "tx.csv"), "--runs", "4", "--engine", ENGINE, "--quiet"]
    # While the runs go on, with worker processes: nothing written, no traceback from any process.
    res = _cli(["simulate", *common, "--workers", "2", "--out", "o"], tmp_path, fault="simulating:SIGINT")
    assert res.returncode == 130, res.stderr
    assert "interrupted; o/ unchanged" in res.stderr and "Traceback" not in res.stderr + res.stdout
    assert not (tmp_path / "o").exists()
    # While the set is written over an earlier one: the earlier set stays, whole.
    _ok(_run("simulate", *common[:-5], "--runs", "1", "--seed", "5", "--out", str(tmp_path / "o")))
    before = {p.name: p.read_bytes() for p in (tmp_path / "o").iterdir()}
    res = _cli(["simulate", *common, "--workers", "1", "--out", "o"], tmp_path, fault="ledger.parquet:SIGINT")
    assert res.returncode == 130 and "interrupted; o/ unchanged" in res.stderr and "Traceback" not in res.stderr
    assert {p.name: p.read_bytes() for p in (tmp_path / "o").iterdir()} == before


def test_the_first_run_says_the_engine_is_being_prepared(monkeypatch):
    import io

    from rich.console import Console

    from simulator import commands

    def shown(compiled: bool) -> list[str]:
        monkeypatch.setattr(commands, "compiled_on_disk", lambda: compiled)
        screen = io.StringIO()
        with commands._progress(2, False, "[b]club.loyalty", "compiled", Console(file=screen, force_terminal=True, width=300)) as advance:
            first = screen.getvalue()
            advance(1)
            advance(1)
        return [first, screen.getvalue()]

    before, after = shown(False)
    assert "preparing the engine" in before and "[b]club.loyalty" in after
    before, after = shown(True)
    assert "preparing the engine" not in after and "[b]club.loyalty" in after


def test_the_engine_cache_is_looked_up_where_numba_keeps_it(tmp_path):
    code = "from rulelang.engine import compiled_on_disk; print(compiled_on_disk())"
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.stdout.strip() == "False", res.stderr


def test_every_numba_function_is_cached_on_disk():
    """So only the first run after install compiles (numba's NullCache means no cache)."""
    import importlib
    import pkgutil

    from numba.core.caching import NullCache
    from numba.core.registry import CPUDispatcher

    import rulelang
    import simulator

    found = []
    for package in (rulelang, simulator):
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            found += [(info.name, n) for n, f in vars(module).items() if isinstance(f, CPUDispatcher) and f.__module__ == info.name and isinstance(f._cache, NullCache)]
    assert found == []


def test_a_data_file_that_is_not_a_regular_file_is_refused(files, tmp_path):
    # A pipe or /dev/zero as --transactions hung the run (read and hashed for ever).
    (tmp_path / "dev.csv").symlink_to("/dev/null")
    _bad(_sim(files, tmp_path, "--out", str(tmp_path / "o"), tx=tmp_path / "dev.csv"), 1, "not a regular file")


def test_a_program_reading_customers_without_customers_says_which_option(files, tmp_path):
    # It spoke the Python API's words (`pass customers=DataFrame ...`) to a command-line user.
    text = PROGRAM_TEXT + '\nearn students: 5 points when customer.segment == "student"\n'
    (tmp_path / "a.loyalty").write_text(text, encoding="utf-8")
    (tmp_path / "b.loyalty").write_text(text.replace("5 points", "6 points"), encoding="utf-8")
    for command in (["simulate", str(tmp_path / "a.loyalty")], ["compare", str(tmp_path / "a.loyalty"), str(tmp_path / "b.loyalty")]):
        res = _run(*command, "--transactions", str(files / "tx.csv"), "--runs", "1", "--out", str(tmp_path / command[0]))
        _bad(res, 1, "no customers file was given", "--customers FILE", "customers: FILE")
        assert "DataFrame" not in res.output


@pytest.mark.parametrize(
    ("flags", "env", "tuned"),
    [([], {}, True), (["--no-tune-memory"], {}, False), ([], {"LOYALTY_TUNE_MEMORY": "0"}, False), (["--tune-memory"], {"LOYALTY_TUNE_MEMORY": "0"}, True)],
)
def test_the_command_tunes_memory_unless_told_not_to(files, tmp_path, monkeypatch, flags, env, tuned):
    from simulator import memory

    asked = []
    opt_in = memory.tuned
    monkeypatch.setattr(memory, "tuned", lambda enabled: asked.append(enabled) or opt_in(enabled))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)
    _ok(_run("simulate", str(files / "club.loyalty"), "--transactions", str(files / "tx.csv"), "--runs", "1", "--out", "o", *flags))
    assert asked == [tuned]


def test_workers_below_one_are_a_usage_error(files, tmp_path):
    res = CliRunner().invoke(main, ["simulate", str(files / "club.loyalty"), "--out", str(tmp_path / "o"), "--workers", "0"])
    _bad(res, 2, "--workers")
