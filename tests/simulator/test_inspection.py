"""`loyalty trace` and `loyalty test` read data as `simulate` does: the scenario's mapping, the
bundled sample by default, text as text, bad rows rejected with reasons, the file's row numbers."""

from __future__ import annotations

import re

import pandas as pd
from click.testing import CliRunner

import simulator
from simulator.cli import main
from tests.rulelang.test_trace import PROGRAM as CAFE
from tests.rulelang.test_trace import ROWS

# Unsorted, and m1's rows come after a row of m2's: the loader sorts them, rows keep their numbers.
CAFE_ROWS = ROWS.iloc[[0, 2, 1, 3, 4]].reset_index(drop=True)


def _files(tmp_path, fmt="csv", rows=CAFE_ROWS, program=CAFE):
    prog = tmp_path / "cafe.loyalty"
    prog.write_text(program, encoding="utf-8")
    path = tmp_path / f"tx.{fmt}"
    rows.to_csv(path, index=False) if fmt == "csv" else rows.to_parquet(path, index=False)
    return str(prog), str(path)


def _cli(*args):
    return CliRunner().invoke(main, list(args))


def _ok(res):
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "Traceback" not in res.output
    return res


def _summary(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("summary: "))


# --- trace --------------------------------------------------------------------------------------


def test_trace_sorts_the_rows_and_cites_the_files_row_numbers(tmp_path):
    prog, tx = _files(tmp_path)
    out = _ok(_cli("trace", prog, "--transactions", tx, "--customer", "m1")).stdout
    # The 1 March purchase comes first, and is the file's data row 3.
    assert out.index("2026-03-01 10:00") < out.index("2026-03-02 10:00")
    assert "2026-03-01 10:00  purchase  30 CNY  (row 3)" in out
    assert "2026-03-03 10:00  redeem  coffee  (row 4)" in out
    assert "redeem coffee: -30 (lot 2026-03-01), cost 8 CNY" in out
    assert _summary(out) == (
        "summary: 4 row(s) traced; points earned 74, clawed back 0, redeemed 40, expired 33; balance at the end 1; tier at the end Gold"
    )


def test_trace_says_the_redemption_policy_is_not_applied_at_the_top_and_the_end(tmp_path):
    prog, tx = _files(tmp_path)
    lines = _ok(_cli("trace", prog, "--transactions", tx, "--customer", "m1")).stdout.splitlines()
    note = "the scenario's redemption policy (simulated redemptions) is not applied in a trace"
    assert note in lines[1] and note in lines[-1]
    assert lines[-2].startswith("summary: ")


def test_trace_reads_parquet(tmp_path):
    prog, tx = _files(tmp_path, "parquet")
    out = _ok(_cli("trace", prog, "--transactions", tx, "--customer", "m2")).stdout
    assert "earn base: +5" in out


def test_unknown_customer_suggests_close_ids(tmp_path):
    prog, tx = _files(tmp_path)
    res = _cli("trace", prog, "--transactions", tx, "--customer", "m3")
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "customer `m3` has no rows in the transactions" in res.stderr and "did you mean" in res.stderr


def test_other_customers_bad_rows_are_rejected_with_reasons_and_the_member_is_traced(tmp_path):
    prog, _ = _files(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "customer_id,timestamp,amount,category\n"
        "m2,2026-01-01,abc,tea\n"  # row 1: not a number
        "m1,2026-01-02 10:00,30,coffee\n"  # row 2
        "m3,someday,5,tea\n"  # row 3: not a date-time
        "m1,2026-01-01 10:00,10,pastry\n",  # row 4 (earlier: traced first)
        encoding="utf-8",
    )
    res = _ok(_cli("trace", prog, "--transactions", str(bad), "--customer", "m1"))
    assert "4 rows read: 2 used, 2 rejected" in res.stderr
    assert "`loyalty simulate ... --rejects FILE` writes them all" in res.stderr
    assert re.search(r"rejected, not a number .*\(column amount\): row 1\n", res.stderr)
    assert re.search(r"rejected, not a date-time .*\(column timestamp\): row 3\n", res.stderr)
    assert "(row 4)" in res.stdout and "(row 2)" in res.stdout
    assert res.stdout.index("(row 4)") < res.stdout.index("(row 2)")
    # The rows cited are the rows `simulate --rejects` writes.
    rejects = tmp_path / "rejects.csv"
    sim = _cli(
        "simulate", prog, "--transactions", str(bad), "--runs", "1", "--quiet", "--out", str(tmp_path / "out"), "--rejects", str(rejects)
    )
    assert sim.exit_code == 0, sim.output
    assert pd.read_csv(rejects)["row"].tolist() == [1, 3]


def test_bad_or_missing_data_is_an_error_not_a_traceback(tmp_path):
    prog, _ = _files(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("member,timestamp,amount\nm1,2026-01-01,1\n", encoding="utf-8")
    res = _cli("trace", prog, "--transactions", str(bad), "--customer", "m1")
    assert res.exit_code == 1 and "no column `customer_id`" in res.stderr and "Traceback" not in res.output
    missing = _cli("trace", prog, "--transactions", str(tmp_path / "nope.csv"), "--customer", "m1")
    assert missing.exit_code == 2 and "does not exist" in missing.output


MAPPED = "member_no,paid_at,total,category\nm1,2026-03-01 10:00,30,coffee\nm1,2026-03-02 10:00,12.5,pastry\n"
COLUMNS = "columns:\n  customer_id: member_no\n  timestamp: paid_at\n  amount: total\n"


def test_trace_uses_a_scenarios_column_mapping_given_with_scenario(tmp_path):
    prog, _ = _files(tmp_path)
    (tmp_path / "mine.csv").write_text(MAPPED, encoding="utf-8")
    sc = tmp_path / "scenario.yaml"
    sc.write_text(COLUMNS + "transactions: mine.csv\n", encoding="utf-8")
    out = _ok(_cli("trace", prog, "--scenario", str(sc), "--customer", "m1")).stdout
    assert _summary(out).startswith("summary: 2 row(s) traced; points earned 73,")


def test_trace_takes_a_scenario_as_its_program_argument(tmp_path):
    _files(tmp_path)
    (tmp_path / "mine.csv").write_text(MAPPED + "m1,2025-12-31 10:00,1000,coffee\n", encoding="utf-8")
    sc = tmp_path / "scenario.yaml"
    sc.write_text(COLUMNS + "program: cafe.loyalty\ntransactions: mine.csv\nperiod: 2026-01-01 to 2026-12-31\n", encoding="utf-8")
    res = _ok(_cli("trace", str(sc), "--customer", "m1"))
    # The row before the period is left out, as `simulate` leaves it out.
    assert "1 outside the period 2026-01-01 to 2026-12-31" in res.stderr
    assert _summary(res.stdout).startswith("summary: 2 row(s) traced; points earned 73,")
    both = _cli("trace", str(sc), "--scenario", str(sc), "--customer", "m1")
    assert both.exit_code == 2 and "give the scenario once" in both.output


def test_trace_defaults_to_the_bundled_sample(tmp_path):
    prog, _ = _files(tmp_path)
    res = _ok(_cli("trace", prog, "--customer", "C000001"))
    assert "transactions.parquet: " in res.stderr and "customers.parquet: " in res.stderr
    assert _summary(res.stdout).startswith("summary: ")


BIRTHDAY = CAFE + "earn birthday: 300 points when month(date) == month(customer.birthday) once per year\n"


def test_a_program_reading_customers_without_a_customers_file_says_which_attribute_and_the_flag(tmp_path):
    prog, tx = _files(tmp_path, program=BIRTHDAY)
    res = _cli("trace", prog, "--transactions", tx, "--customer", "m1")
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "the program reads customer.birthday (rule birthday), but no customers file was given" in res.stderr
    assert "pass --customers FILE" in res.stderr and "DataFrame" not in res.output
    customers = tmp_path / "customers.csv"
    customers.write_text("customer_id,birthday\nm1,1990-03-02\nm2,1991-07-01\n", encoding="utf-8")
    out = _ok(_cli("trace", prog, "--transactions", tx, "--customers", str(customers), "--customer", "m1")).stdout
    assert "birthday: fired: 300 points" in out


SKU = """program "Shelf"
currency CNY
earn base: 1 point per 1 CNY
earn zeros: 100 points when sku == "000"
earn leading: 7 points when sku == "0001"
"""


def test_text_stays_text_so_trace_and_simulate_agree_on_points(tmp_path):
    prog, _ = _files(tmp_path, program=SKU)
    tx = tmp_path / "sku.csv"
    tx.write_text(
        "customer_id,timestamp,amount,sku\nA,2026-01-01 10:00,10,000\nA,2026-01-02 10:00,10,0001\nA,2026-01-03 10:00,10,0\n"
        "B,2026-01-01 10:00,5,1\n",
        encoding="utf-8",
    )
    out = _ok(_cli("trace", prog, "--transactions", str(tx), "--customer", "A")).stdout
    assert 'sku == "000"  ->  "000" == "000"  true' in out
    assert 'sku == "0001"  ->  "0001" == "0001"  true' in out
    # The oracle: the compiled engine's ledger in a simulation with nothing simulated.
    res = simulator.simulate(prog, str(tx), None, {"runs": 1, "redemption": {"probability": 0}})
    ledger = res.read_ledger()
    earned = int(ledger.loc[(ledger["customer_id"] == "A") & (ledger["kind"] == "earn"), "points"].sum())
    assert earned == 30 + 100 + 7
    assert f"points earned {earned}," in _summary(out)


def test_trace_escapes_control_characters_in_ids_and_cells(tmp_path):
    prog, _ = _files(tmp_path)
    tx = tmp_path / "odd.csv"
    tx.write_text('customer_id,timestamp,amount,category\n"m\x1b[31m1",2026-03-01 10:00,30,"cof\x07fee"\n', encoding="utf-8")
    res = _ok(_cli("trace", prog, "--transactions", str(tx), "--customer", "m\x1b[31m1"))
    assert "\x1b" not in res.output and "\x07" not in res.output
    assert "customer m\\x1b[31m1" in res.stdout and '"cof\\x07fee" == "pastry"' in res.stdout
    unknown = _cli("trace", prog, "--transactions", str(tx), "--customer", "x\x1b]0;title\x07")
    assert unknown.exit_code == 1 and "\x1b" not in unknown.output and "customer `x\\x1b]0;title\\x07`" in unknown.stderr


def test_trace_of_a_program_named_like_markup_prints_the_name_as_written(tmp_path):
    prog, tx = _files(tmp_path, program=CAFE.replace('program "Cafe"', 'program "[/] [link=http://x]Cafe[/link]"'))
    out = _ok(_cli("trace", prog, "--transactions", tx, "--customer", "m2")).stdout
    assert out.splitlines()[0] == "[/] [link=http://x]Cafe[/link]: customer m2"


# --- test ---------------------------------------------------------------------------------------

BONUS = """program "Bonus"
currency CNY
earn base:  1 point per 1 CNY
earn bonus: 1000 points
assert points <= 5 * amount
"""


def test_test_checks_a_scenarios_history_with_its_mapping_and_cites_the_files_rows(tmp_path):
    (tmp_path / "bonus.loyalty").write_text(BONUS, encoding="utf-8")
    # Unsorted: the failing row is the file's row 1, processed second.
    (tmp_path / "mine.csv").write_text(
        "member_no,paid_at,total\nA,2026-01-02 10:00,3\nA,2026-01-01 10:00,5000\nB,2026-01-01 10:00,oops\n", encoding="utf-8"
    )
    sc = tmp_path / "scenario.yaml"
    sc.write_text(COLUMNS + "program: bonus.loyalty\ntransactions: mine.csv\n", encoding="utf-8")
    res = _cli("test", str(sc), "--examples", "5")
    assert res.exit_code == 1, res.output
    assert "3 rows read: 2 used, 1 rejected" in res.stderr
    assert "at row 1: amount = 3, points = 1003" in res.stdout
    assert "2 row(s) checked, 1 violation(s)" in res.stdout
    flagged = _cli("test", str(tmp_path / "bonus.loyalty"), "--scenario", str(sc), "--examples", "5")
    assert flagged.exit_code == 1 and "at row 1: amount = 3, points = 1003" in flagged.stdout


def test_test_without_customers_for_a_program_that_reads_them_says_so(tmp_path):
    prog, tx = _files(tmp_path, program=BIRTHDAY)
    res = _cli("test", prog, "--transactions", tx, "--examples", "1")
    assert res.exit_code == 2 and "pass --customers FILE" in res.stderr and "DataFrame" not in res.output


def test_test_is_quiet_when_stderr_is_not_a_terminal(tmp_path):
    prog, _ = _files(tmp_path)
    res = _ok(_cli("test", prog, "--examples", "5"))
    assert res.stderr == ""
    assert res.stdout.strip().endswith("ok, 5 histories tried (seed 0), no invariant broken")


def test_test_shows_progress_on_a_terminal_and_finds_the_same(tmp_path, monkeypatch):
    from simulator import commands, inspection

    prog = str(tmp_path / "bonus.loyalty")
    (tmp_path / "bonus.loyalty").write_text(BONUS, encoding="utf-8")
    args = ["--examples", "3", "--seed", "2"]
    quiet = _cli("test", prog, *args)
    seen = []

    class Bar:
        def __init__(self, total, quiet, label):
            seen.append((total, quiet, label))

        def __enter__(self):
            return lambda n: seen.append(n)

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(inspection, "_terminal", lambda: True)
    monkeypatch.setattr(commands, "_progress", Bar)
    shown = _cli("test", prog, *args)
    assert seen[0] == (3, False, "trying histories") and set(seen[1:]) == {1}
    assert shown.stdout == quiet.stdout and shown.exit_code == quiet.exit_code == 1
