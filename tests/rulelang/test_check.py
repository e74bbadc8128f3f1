"""The checker: clean examples stay clean; each mistake is found once, at its place, with a fix."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from rulelang import check, parser
from rulelang.cli import check_cmd
from rulelang.errors import ProgramError, Source
from tests.conftest import PROGRAMS, ROOT, TARGET_PROGRAMS
from tests.rulelang.golden_util import GOLDEN, compare, diagnostics

CHECK_FILES = sorted((GOLDEN / "check").glob("*.loyalty"))
HEAD = 'program "T"\ncurrency CNY\ntiers by spend over 365 days {\n  Green from 0\n  Gold from 1000\n}\nearn base: 1 point per 1 CNY\n'
TAIL = "reward coffee: 300 points cost 8 CNY\n"


def run(text: str, path: str = "t.loyalty") -> list:
    src = Source(text, path)
    return check.check(parser.parse(src), src)


def codes(text: str) -> list[str]:
    return [d.code for d in run(text)]


def errors(text: str) -> list:
    return [d for d in run(text) if d.is_error]


def cli(*args):
    return CliRunner().invoke(check_cmd, list(args))


# --- the example programs are clean -------------------------------------------------------------


@pytest.mark.parametrize("path", PROGRAMS + TARGET_PROGRAMS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_example_programs_have_no_errors(path):
    src = parser.read(path)
    assert not [d.render() for d in check.check(parser.parse(src), src) if d.is_error]


@pytest.mark.parametrize("path", TARGET_PROGRAMS, ids=lambda p: p.name)
def test_cli_check_passes_shared_examples(path):
    result = cli(str(path))
    assert result.exit_code == 0, result.output


def test_cli_check_passes_bundled_programs():
    result = cli(str(ROOT / "programs"))
    assert result.exit_code == 0, result.output


# --- golden diagnostics -------------------------------------------------------------------------


@pytest.mark.parametrize("path", CHECK_FILES, ids=lambda p: p.stem)
def test_check_golden(path):
    found = diagnostics(path)
    assert found, "every checker golden shows at least one finding"
    assert [(d.span.line, d.span.col) for d in found] == sorted((d.span.line, d.span.col) for d in found)
    compare(path, "\n\n".join(d.render() for d in found) + "\n")


# --- required acceptance ------------------------------------------------------------------------


def test_misspelt_name_is_at_its_place_with_did_you_mean():
    (d,) = errors(HEAD + "earn gold: 2x base when teir >= Gold\n" + TAIL)
    assert (d.code, d.span.line, d.span.col, d.span.end_col) == ("E201", 8, 25, 29)
    assert "did you mean `tier`?" in d.message


def test_unknown_tier_lists_the_tiers():
    (d,) = errors(HEAD + "earn gold: 2x base when tier >= Golden\n" + TAIL)
    assert (d.code, d.span.line, d.span.col) == ("E207", 8, 33)
    assert "`Green`" in d.hint and "`Gold`" in d.hint
    assert "did you mean `Gold`?" in d.message


def test_json_format_lists_findings(tmp_path):
    bad = tmp_path / "bad.loyalty"
    bad.write_text(HEAD + "earn gold: 2x base when teir >= Gold\n", encoding="utf-8")
    result = cli("--format", "json", str(bad))
    assert result.exit_code == 1
    found = json.loads(result.stdout)
    keys = {"path", "line", "col", "end_line", "end_col", "severity", "code", "message"}
    assert all(set(f) == keys for f in found)
    err = next(f for f in found if f["severity"] == "error")
    assert (err["line"], err["col"], err["code"], err["path"]) == (8, 25, "E201", str(bad))


def test_exit_codes(tmp_path):
    good = tmp_path / "good.loyalty"
    good.write_text(HEAD + TAIL, encoding="utf-8")
    warn = tmp_path / "warn.loyalty"
    warn.write_text(HEAD, encoding="utf-8")  # no rewards: a warning only
    bad = tmp_path / "bad.loyalty"
    bad.write_text(HEAD + "round sideways\n" + TAIL, encoding="utf-8")
    assert cli(str(good)).exit_code == 0
    assert cli(str(warn)).exit_code == 0
    assert cli(str(bad)).exit_code == 1
    assert cli(str(tmp_path / "missing.loyalty")).exit_code == 2


# --- one test per kind of finding ---------------------------------------------------------------

CASES = {
    # names
    "unknown name": ("earn x: 5 points when catgory == \"x\"\n", "E201", "did you mean `category`?"),
    "customer attribute": ("earn x: 5 points when customer.bday == date\n", "E202", "customer.birthday"),
    "basket attribute": ("earn x: 5 points when basket.totl > 5\n", "E203", "basket.total"),
    "unknown object": ("earn x: 5 points when shop.size > 5\n", "E204", "shop"),
    "unknown function": ("earn x: 5 points when mnth(date) == 5\n", "E205", "did you mean `month`?"),
    "assert-only variable in when": ("earn x: 5 points when balance > 5\n", "E206", "assert"),
    "rule name in when": ("earn x: 5 points when base > 5\n", "E206", "assert"),
    "multiplier target": ("earn x: 2x bsae\n", "E209", "did you mean `base`?"),
    "multiplier cycle": ("earn x: 2x y\nearn y: 2x x\n", "E210", "x → y → x"),
    "self multiplier": ("earn x: 2x x\n", "E210", "x → x"),
    "duplicate rule": ("earn base: 5 points\n", "E211", "line 7"),
    "duplicate reward": (TAIL, "E212", "coffee"),
    "duplicate statement": ("currency CNY\n", "E214", "currency"),
    "clause twice": ("earn x: 5 points once once per year\n", "E215", "twice"),
    "duplicate column": ("column size: text\ncolumn size: number\n", "E216", "size"),
    "unknown period": ("limit 5 points per fortnite\n", "E217", "fortnite"),
    "unknown rounding": ("round dwn\n", "E218", "did you mean `down`?"),
    "unknown column type": ("column size: txt\n", "E219", "did you mean `text`?"),
    "builtin as column": ("column amount: number\n", "E222", "builtin"),
    "unknown expiry unit": ("expire after 12 mnths\n", "E221", "did you mean `months`?"),
    # types
    "tier with text": ('earn x: 5 points when tier > "Gold"\n', "E301", "text"),
    "money with date": ("earn x: 5 points when amount > 2026-01-01\n", "E301", "date"),
    "weekday with number": ("earn x: 5 points when weekday == 3\n", "E301", "weekday"),
    "mixed list": ('earn x: 5 points when weekday in [sat, "sun"]\n', "E302", "weekday"),
    "arithmetic on text": ('earn x: 5 points when category + 1 > 2\n', "E303", "text"),
    "when not a bool": ("earn x: 5 points when amount\n", "E304", "true or false"),
    "assert not a bool": ("assert balance\n", "E304", "true or false"),
    "argument count": ("earn x: 5 points when month(date, date) == 1\n", "E305", "1 argument"),
    "argument type": ("earn x: 5 points when month(amount) == 1\n", "E306", "date"),
    "and of a number": ("earn x: 5 points when amount > 1 and 5\n", "E307", "and"),
    "ordered bools": ("earn x: 5 points when (amount > 1) > (amount > 2)\n", "E308", "true and false"),
    "bare list": ("earn x: 5 points when [sat] == weekday\n", "E309", "list"),
    # values and structure
    "impossible date": ("earn x: 5 points during 2027-02-30 to 2027-03-01\n", "E401", "2027-02-30"),
    "impossible date in expression": ("earn x: 5 points when date == 2026-13-01\n", "E401", "2026-13-01"),
    "window backwards": ("earn x: 5 points during 2027-03-01 to 2027-02-01\n", "E402", "before"),
    "other currency": ("earn x: 1 point per 1 USD\n", "E403", "CNY"),
    "other currency in a cost": ("reward y: 5 points cost 8 USD\n", "E403", "USD"),
    "bad currency code": ("earn x: 5 points when amount > 5 yuan\n", "E404", "yuan"),
    "percent above 100": ("earn x: 5 points funded 120% by acme\n", "E406", "120%"),
    "zero cost": ("reward y: 5 points cost 0 CNY\n", "E407", "cost"),
    "zero points": ("earn x: 0 points\n", "E407", "points"),
    "zero per amount": ("earn x: 1 point per 0 CNY\n", "E407", "per"),
    "zero limit": ("limit 0 points per day\n", "E407", "limit"),
    "zero times": ("earn x: 5 points at most 0 times per week\n", "E407", "times"),
    "zero expiry": ("expire after 0 months\n", "E407", "expiry"),
    "fractional limit": ("limit 1.5 points per day\n", "E408", "whole"),
    "fractional reward": ("reward y: 2.5 points cost 1 CNY\n", "E408", "whole"),
    "multiplier of 1": ("earn x: 1x base\n", "E409", "1x"),
    "per-spend on an event": ("earn x: 1 point per 1 CNY on enroll\n", "E412", "no amount"),
    # warnings
    "on purchase": ("earn x: 5 points on purchase\n", "W503", "not needed"),
    "on refund": ("earn x: 5 points on refund\n", "W504", "never"),
    "empty in": ("earn x: 5 points when weekday in []\n", "W505", "empty"),
}


@pytest.mark.parametrize("name", CASES)
def test_finding(name):
    text, code, words = CASES[name]
    found = [d for d in run(HEAD + TAIL + text) if d.code == code]
    assert len(found) == 1, [d.render() for d in run(HEAD + TAIL + text)]
    (d,) = found
    assert words in d.message + (d.hint or ""), d.render()
    assert d.span.line >= 8 and d.span.col >= 1 and d.hint


def test_tiers_structure():
    text = 'currency CNY\ntiers by spnd over 1.5 days {\n  A from 5\n  B from 3\n  B from 9\n}\nearn x: 5 points\n' + TAIL
    assert codes(text) == ["E220", "E408", "E410", "E411", "E213"]


def test_tier_without_tiers_block():
    found = run('currency CNY\nearn x: 5 points when tier >= Gold\n' + TAIL)
    assert [d.code for d in found] == ["E208"] and (found[0].span.line, found[0].span.col) == (2, 23)


def test_money_without_currency_line():
    found = run("earn x: 1 point per 1 CNY\n" + TAIL)
    assert [d.code for d in found] == ["E405"]


def test_empty_program_warns():
    assert codes("") == ["W501", "W502"]
    assert codes('program "x"\ncurrency CNY\n' + TAIL) == ["W501"]


def test_points_compare_with_money():
    assert not errors(HEAD + TAIL + "assert base <= 4 * amount\nassert balance >= 0\n")


def test_errors_are_all_reported_in_source_order():
    found = run(HEAD + TAIL + "round dwn\nearn x: 5 points when teir > 1\nlimit 0 points per day\n")
    assert [d.code for d in found] == ["E218", "E201", "E407"]


# --- bad input: never a traceback ---------------------------------------------------------------


def _cli_file(tmp_path, data: bytes):
    path = tmp_path / "p.loyalty"
    path.write_bytes(data)
    result = cli(str(path))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def test_non_utf8_is_a_diagnostic(tmp_path):
    result = _cli_file(tmp_path, b"currency CNY\nearn \xff: 5 points\n")
    assert result.exit_code == 1 and "E001" in result.output


def test_bom_crlf_and_tabs_check_clean(tmp_path):
    text = "\ufeffprogram \"T\"\r\ncurrency CNY\r\n\tearn base:\t1 point per 1 CNY\r\nreward coffee: 300 points cost 8 CNY\r\n"
    assert _cli_file(tmp_path, text.encode("utf-8")).exit_code == 0


def test_tab_before_error_keeps_the_column(tmp_path):
    result = _cli_file(tmp_path, b"currency CNY\nearn x:\t5 points when teir > 1\n")
    assert result.exit_code == 1 and "p.loyalty:2:23" in result.output


def test_empty_file(tmp_path):
    result = _cli_file(tmp_path, b"")
    assert result.exit_code == 0 and "W501" in result.output


def test_deep_parentheses(tmp_path):
    result = _cli_file(tmp_path, b"assert " + b"(" * 500 + b"1" + b")" * 500 + b" > 0\n")
    assert result.exit_code == 1 and "E103" in result.output


def test_deep_not_chain_is_a_diagnostic():
    # `not not ... x` nests without brackets, past Python's recursion limit.
    found = run("currency CNY\nassert " + "not " * 5000 + "balance >= 0\n" + TAIL)
    assert [d.code for d in found if d.is_error] == ["E430"]


def test_ten_thousand_rules_and_a_megabyte(tmp_path):
    rules = "".join(
        f'earn r{i}: {i % 5 + 1} points when amount >= {i % 100} and weekday in [sat, sun] and category == "c{i % 97}" once per week\n'
        for i in range(10_000)
    )
    text = HEAD + rules + TAIL
    assert len(text) >= 1_000_000
    tree = parser.parse(Source(text, "big"))
    start = time.perf_counter()
    found = check.check(tree, Source(text, "big"))
    assert time.perf_counter() - start < 5
    assert not found


def test_ten_thousand_distinct_typos_stay_fast():
    rules = "".join(f"earn r{i}: 2x rr{i} when teir{i} >= Gold\n" for i in range(10_000))
    text = HEAD + rules + TAIL
    tree = parser.parse(Source(text, "big"))
    start = time.perf_counter()
    found = check.check(tree, Source(text, "big"))
    assert time.perf_counter() - start < 5
    assert len(found) == 20_000


def test_syntax_error_in_cli_is_one_diagnostic(tmp_path):
    result = _cli_file(tmp_path, b"currency CNY\nern x: 5 points\n")
    assert result.exit_code == 1 and "E130" in result.output and "did you mean `earn`?" in result.output


def test_program_error_carries_every_checker_error():
    from rulelang.program import loads

    with pytest.raises(ProgramError) as info:
        loads(HEAD + TAIL + "round dwn\nlimit 0 points per day\n")
    assert [d.code for d in info.value.errors] == ["E218", "E407"]


# --- the reference documents every code ---------------------------------------------------------


def test_every_code_is_documented():
    import re

    emitted = set()
    for path in (ROOT / "rulelang").glob("*.py"):
        emitted |= set(re.findall(r"[\"']([EW]\d{3})[\"']", path.read_text(encoding="utf-8")))
    doc = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| ([EW]\d{3}) \|", doc, flags=re.M))
    assert len(emitted) > 60
    assert not sorted(emitted - documented), "codes missing from docs/language.md"


def test_tier_unit_empty_tiers_and_empty_name():
    assert "E223" in codes("currency CNY\ntiers by visits over 365 days {\n A from 0\n B from 10 CNY\n}\n")
    assert "E414" in codes("currency CNY\ntiers by spend over 365 days {\n}\n")
    assert "E420" in codes('program ""\n')


# --- files that cannot be read: counted apart, no position, never a hang ------------------------


def test_missing_file_is_not_counted_as_checked(tmp_path):
    good = tmp_path / "good.loyalty"
    good.write_text(HEAD + TAIL, encoding="utf-8")
    result = cli(str(tmp_path / "missing.loyalty"), str(good))
    assert result.exit_code == 2
    assert f"{tmp_path / 'missing.loyalty'}: error[E002]: no such file" in result.output
    assert ":0:0:" not in result.output
    assert "1 file(s) checked, 1 could not be read: 1 error(s), 1 warning(s), 1 note(s)" in result.output


def test_missing_file_in_json_has_no_position(tmp_path):
    result = cli("--format", "json", str(tmp_path / "missing.loyalty"))
    assert result.exit_code == 2
    (found,) = json.loads(result.stdout)
    assert (found["code"], found["line"], found["col"], found["end_line"], found["end_col"]) == ("E002", None, None, None, None)


def test_notes_are_counted_apart_from_warnings(tmp_path):
    path = tmp_path / "p.loyalty"
    path.write_text(HEAD + TAIL + "expire after 24 months\n", encoding="utf-8")
    result = cli(str(path))
    shown = result.output
    severities = Counter(line.split(": ")[1].split("[")[0] for line in shown.splitlines() if line.startswith(str(path)))
    assert severities["note"] >= 1, shown  # the effective earn rate (W606) is a note
    assert f"{severities['warning']} warning(s), {severities['note']} note(s)" in shown


def _within(seconds: float, fn, *args):
    """Run fn in a thread and fail (rather than hang the suite) if it does not return in time."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result(timeout=seconds)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "p.loyalty"
    os.mkfifo(fifo)
    try:
        with pytest.raises(ProgramError) as info:
            _within(10, parser.read, fifo)
    finally:
        # Should the read block after all, a writer lets its thread end.
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    (d,) = info.value.diagnostics
    assert (d.code, d.span.line) == ("E002", 0) and "pipe" in d.message


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_a_device_is_refused_without_reading_it():
    with pytest.raises(ProgramError) as info:
        _within(10, parser.read, "/dev/zero")
    assert "device" in info.value.diagnostics[0].message


def test_a_folder_and_a_file_over_the_size_limit_are_refused(tmp_path):
    with pytest.raises(ProgramError, match="folder"):
        parser.read(tmp_path)
    big = tmp_path / "big.loyalty"
    big.write_bytes(b"#" * (parser.MAX_PROGRAM_BYTES + 1))
    with pytest.raises(ProgramError, match="larger than 1,000,000 bytes"):
        parser.read(big)
    big.write_bytes(b"#" * parser.MAX_PROGRAM_BYTES)
    assert len(parser.read(big).text) == parser.MAX_PROGRAM_BYTES


def test_cli_reports_a_fifo_and_exits_2(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    fifo = tmp_path / "fifo.loyalty"
    os.mkfifo(fifo)
    result = _within(10, cli, str(fifo))
    assert result.exit_code == 2 and "0 file(s) checked, 1 could not be read" in result.output


# --- terminal safety: control characters are shown, not obeyed ----------------------------------


def test_control_characters_in_the_source_line_are_escaped_and_the_caret_lines_up():
    (d,) = errors(HEAD + 'earn x: 5 points when category == "\x1b[2J\u202e" and teir > 1\n' + TAIL)
    shown = d.render()
    assert "\x1b" not in shown and "\u202e" not in shown
    source, caret = shown.splitlines()[1:3]
    assert "\\x1b[2J\\u202e" in source
    assert source[caret.index("^"):].startswith("teir") and caret.count("^") == len("teir")


def test_control_characters_in_names_and_paths_are_escaped():
    src = Source('program "\x1b]0;pwned\x07"\ncurrency cny\n', "evil\x1b[31m.loyalty")
    shown = "\n".join(d.render() for d in check.check(parser.parse(src), src))
    assert "\x1b" not in shown and "\x07" not in shown
    assert "evil\\x1b[31m.loyalty:2:10" in shown


# --- names close to a builtin: the builtin first --------------------------------------------------


@pytest.mark.parametrize(("written", "suggested", "hint"), [
    ("Tuesday", "`tue`", "weekdays are written in small letters"),
    ("FRI", "`fri`", "`fri` (or `friday`)"),
    ("March", "the month number `3`", "month(date) == 3"),
    ("Weekday", "`weekday`", "names are case-sensitive"),
])
def test_a_builtin_in_another_form_is_suggested_before_a_column(written, suggested, hint):
    (d,) = errors(HEAD + f"earn x: 5 points when weekday == {written}\n" + TAIL)
    assert d.code == "E201" and f"did you mean {suggested}?" in d.message
    assert hint in d.hint and "column" not in d.hint


# --- depth: chains of multipliers and nested conditions are bounded, never a RecursionError -----


def _chain(depth: int, factor: str = "2x") -> str:
    rules = "".join(f"earn r{i}: {factor} r{i - 1}\n" for i in range(1, depth + 1))
    return 'program "T"\ncurrency CNY\nearn r0: 1 point per 1 CNY\n' + rules + TAIL


def test_a_chain_of_500_multipliers_is_one_clear_error():
    found = [d for d in run(_chain(500, "1.5x")) if d.is_error]
    assert [(d.code, d.span.line) for d in found] == [("E431", 3 + check.MAX_CHAIN + 1)]
    assert f"at most {check.MAX_CHAIN} deep" in found[0].message


def test_a_chain_declared_backwards_is_found_too():
    lines = _chain(300).splitlines()
    text = "\n".join(lines[:3] + lines[3:-1][::-1] + lines[-1:]) + "\n"
    assert [d.code for d in run(text) if d.is_error] == ["E431"]


def test_a_chain_at_the_limit_checks_and_simulates_in_both_engines():
    import pandas as pd

    from rulelang.program import loads

    program = loads(_chain(check.MAX_CHAIN))
    rows = pd.DataFrame({"customer_id": ["m"], "timestamp": ["2028-01-01 10:00"], "amount": [10.0]})
    for engine in ("compiled", "reference"):
        ledger = program.evaluate(rows, engine=engine)
        # Each `2x` adds once what its target earned: every rule of the chain earns the base's 10.
        assert ledger["points"].tolist() == [10] * (check.MAX_CHAIN + 1), engine


def test_parentheses_5000_deep_are_one_syntax_error():
    with pytest.raises(ProgramError) as info:
        parser.parse(HEAD + "assert " + "(" * 5000 + "1" + ")" * 5000 + " > 0\n" + TAIL)
    assert [d.code for d in info.value.diagnostics] == ["E103"]


@pytest.mark.parametrize("prefix", ["not ", "- ", "abs("])
def test_conditions_nested_past_the_limit_are_refused_before_typing(prefix):
    deep = prefix * 5000 + "amount" + (")" * 5000 if prefix == "abs(" else "")
    condition = deep if prefix == "not " else f"{deep} > 1 CNY"
    text = HEAD + f"earn x: 5 points when {condition}\n" + TAIL
    try:
        found = run(text)
    except ProgramError as exc:  # brackets: the parser's own bound
        assert [d.code for d in exc.diagnostics] == ["E103"]
        return
    assert [d.code for d in found if d.is_error] == ["E430"]


def test_a_condition_at_the_depth_limit_is_checked():
    from rulelang.check_expr import MAX_EXPR_DEPTH

    # `not` * k over a comparison of two names nests k + 2 deep.
    condition = "not " * (MAX_EXPR_DEPTH - 2) + "amount > point_cost"
    assert not errors(HEAD + f"earn x: 5 points when {condition}\n" + TAIL)
    assert [d.code for d in errors(HEAD + f"earn x: 5 points when not {condition}\n" + TAIL)] == ["E430"]


def test_a_megabyte_line_and_a_long_and_chain_check_without_error():
    from rulelang.program import analyse

    items = ", ".join(['"abcdefgh"'] * 90_000)
    long_and = " and ".join(["amount > 1 CNY"] * 3_000)
    text = HEAD + f"earn x: 1 point when category in [{items}]\nearn y: 1 point when {long_and}\n" + TAIL
    assert len(text) > 1_000_000
    _, found = analyse(Source(text, "big.loyalty"))
    assert not [d for d in found if d.is_error]


# --- limits: a number at its limit compiles and simulates; one past it is a checker error -------

LIMIT_HEAD = 'program "L"\ncurrency CNY\npoint_cost 0.01 CNY\nearn base: 1 point per 1 CNY\n'


def _tiers(window: str, metric: str, threshold: str) -> str:
    return f"tiers by {metric} over {window} {{\n  Green from 0\n  Gold from {threshold}\n}}\n"


# (at the limit, just past it, the code past it)
LIMIT_CASES = {
    "fixed points": ("earn a: 1000000000 points\n", "earn a: 1000000001 points\n", "E432"),
    "points decimals": ("earn a: 1.0001 points\n", "earn a: 1.00001 points\n", "E433"),
    "per amount": ("earn a: 1000000000 points per 1000000000000 CNY\n", "earn a: 1000000000 points per 1000000000001 CNY\n", "E432"),
    "per decimals": ("earn a: 1 point per 0.000001 CNY\n", "earn a: 1 point per 0.0000001 CNY\n", "E433"),
    "multiplier": ("earn m: 1000x base\n", "earn m: 1001x base\n", "E432"),
    "multiplier decimals": ("earn m: 1.0001x base\n", "earn m: 1.00000000000000000001x base\n", "E433"),
    "limit": ("limit 1000000000 points per day\n", "limit 99999999999999999999 points per day\n", "E432"),
    "times": ("earn o: 5 points at most 1000000000 times per day\n", "earn o: 5 points at most 1000000001 times per day\n", "E432"),
    "expiry days": ("expire after 36500 days\n", "expire after 36501 days\n", "E432"),
    "expiry months": ("expire after 1200 months\n", "expire after 99999999999999999999 months\n", "E432"),
    "expiry years": ("expire after 100 years\n", "expire after 101 years\n", "E432"),
    "window": (_tiers("36500 days", "spend", "1000"), _tiers("36501 days", "spend", "1000"), "E432"),
    "spend threshold": (_tiers("365 days", "spend", "1000000000000"), _tiers("365 days", "spend", "1000000000001"), "E432"),
    "points threshold": (_tiers("1200 months", "points", "1000000000"), _tiers("1200 months", "points", "1000000001"), "E432"),
    "visits threshold": (_tiers("365 days", "visits", "1000000000"), _tiers("365 days", "visits", "1000000001"), "E432"),
    "reward": ("reward big: 1000000000 points cost 1000000000000 CNY\n", "reward big: 1000000000 points cost 1000000000001 CNY\n", "E432"),
    "reward points": ("reward big: 1000000000 points cost 1 CNY\n", "reward big: 1000000001 points cost 1 CNY\n", "E432"),
    "amount in a condition": ("earn w: 1 point when amount < 1000000000000 CNY\n", "earn w: 1 point when amount < 1000000000001 CNY\n", "E432"),
    "number in a condition": ("earn w: 1 point when month(date) < 1000000000000\n", "earn w: 1 point when month(date) < 99999999999999999999\n", "E432"),
    "decimals in a condition": ("earn w: 1 point when amount > 0.000001 CNY\n", "earn w: 1 point when amount > 0.0000001 CNY\n", "E433"),
    "funded share": ("earn f: 1 point funded 33.3333% by acme\n", "earn f: 1 point funded 33.33333% by acme\n", "E433"),
    "awards together": ("earn g: 1000000000 points per 1 CNY\nearn h: 2x g\n", "earn g: 1000000000 points per 1 CNY\nearn h: 3x g\n", "E435"),
    # base is exact to 1/100 of a point (per fen); each 1.5x halves it: 100 * 2**23 <= 10**9 < 100 * 2**24
    "exactness together": ("earn m1: 1.5x base\n" + "".join(f"earn m{i}: 1.5x m{i - 1}\n" for i in range(2, 24)),
                           "earn m1: 1.5x base\n" + "".join(f"earn m{i}: 1.5x m{i - 1}\n" for i in range(2, 25)), "E434"),
}


def _simulate_tiny(text: str):
    import pandas as pd

    from rulelang.program import loads

    program = loads(text)
    rows = pd.DataFrame({"customer_id": ["m", "m"], "timestamp": ["2028-01-01 10:00", "2028-03-01 10:00"], "amount": [10.0, 2.5]})
    return {engine: program.evaluate(rows, engine=engine) for engine in ("compiled", "reference")}


@pytest.mark.parametrize("case", list(LIMIT_CASES))
def test_a_number_at_its_limit_compiles_and_simulates(case):
    at, _, _ = LIMIT_CASES[case]
    text = LIMIT_HEAD + at + TAIL
    assert not errors(text)
    ledgers = _simulate_tiny(text)
    assert ledgers["compiled"]["points"].tolist() == ledgers["reference"]["points"].tolist()


@pytest.mark.parametrize("case", list(LIMIT_CASES))
def test_a_number_past_its_limit_is_a_checker_error(case):
    _, past, code = LIMIT_CASES[case]
    (d,) = errors(LIMIT_HEAD + past + TAIL)
    assert d.code == code and d.span.line > 4 and d.hint
    rendered = d.render()
    assert rendered.startswith(f"t.loyalty:{d.span.line}:{d.span.col}: error[{code}]") and "^" in rendered


def test_point_cost_limits():
    assert not errors(LIMIT_HEAD.replace("0.01 CNY", "1000000000000 CNY") + TAIL)
    assert [d.code for d in errors(LIMIT_HEAD.replace("0.01 CNY", "1000000000001 CNY") + TAIL)] == ["E432"]
    assert [d.code for d in errors(LIMIT_HEAD.replace("0.01 CNY", "0.0000001 CNY") + TAIL)] == ["E433"]


def test_the_limits_in_the_docs_are_the_limits_in_the_table():
    from rulelang import limits

    doc = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    section = doc[doc.index("## Limits"):doc.index("## Messages")]
    for limit in limits.LIMITS.values():
        assert f"{limit.most:,}" in section
    for number in (limits.MAX_POINTS, limits.MAX_DENOMINATOR, check.MAX_CHAIN, parser.MAX_PROGRAM_BYTES):
        assert f"{number:,}" in section


def test_unreadable_files_golden(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("folder.loyalty").mkdir()
    Path("big.loyalty").write_bytes(b"#" * (parser.MAX_PROGRAM_BYTES + 1))
    paths = ["missing.loyalty", "folder.loyalty", "big.loyalty", "/dev/zero"]
    if hasattr(os, "mkfifo"):
        os.mkfifo("pipe.loyalty")
        paths.append("pipe.loyalty")
    shown = []
    for path in paths:
        with pytest.raises(ProgramError) as info:
            _within(10, parser.read, path)
        shown += [d.render() for d in info.value.diagnostics]
    compare(GOLDEN / "files" / "unreadable.loyalty", "\n\n".join(shown) + "\n")


@pytest.mark.parametrize(
    "text, code",
    [
        ('earn a: 5 points when basket.lines(sku == "x") >= 1\n', "E224"),
        ('earn a: 5 points when customer.quantity(sku == "x") >= 1\n', "E224"),
        ("earn a: 5 points when basket.total(weekday == sat) >= 1\n", "E225"),
        ('earn a: 5 points when basket.total(customer.segment == "vip") >= 1\n', "E225"),
        ("earn a: 5 points when basket.total(category) >= 1\n", "E304"),
        ("earn a: 5 points per unit on referral\n", "E412"),
    ],
)
def test_basket_sum_and_per_unit_mistakes(text, code):
    assert code in codes("currency CNY\n" + text)


def test_basket_sums_read_line_fields_declared_columns_and_constants():
    text = ('currency CNY\ncolumn aisle: text\ncolumn shipped: date\ntiers by spend over 365 days {\n  A from 0\n  B from 10\n}\n'
            'earn a: 5 points when basket.total(aisle == "x" and weekday(shipped) == sat and amount > 1) >= 1 and tier >= B\n'
            'earn b: 5 points per unit when basket.quantity(quantity >= 2 or brand != "y") >= 3\n')
    assert [d.code for d in errors(text)] == []


@pytest.mark.parametrize("name", ["a\x1b[31m", "a\u202eb", "a\x7fb", "new\x00s"])
def test_a_text_event_with_control_characters_is_refused_and_shown_escaped(name):
    (d,) = errors(HEAD + f'earn e: 5 points on "{name}"\n' + TAIL)
    assert d.code == "E445" and ("\\x" in d.message or "\\u" in d.message)
    assert not any(ch in d.message for ch in name if not ch.isprintable())


def test_text_events_of_the_longest_length_and_any_script_are_accepted():
    ok = HEAD + 'earn a: 5 points on "' + "x" * 200 + '"\nearn b: 5 points on "订阅.完成"\n' + "earn c: 5 points on 'say \"hi\"'\n" + TAIL
    assert not errors(ok)
    assert [d.code for d in errors(HEAD + 'earn a: 5 points on "' + "x" * 201 + '"\n' + TAIL)] == ["E446"]


def test_recency_codes_each_name_the_place():
    found = {d.code: (d.span.line, d.span.col) for d in errors(HEAD + "earn a: 5 points when visits_in(0 days) >= 1 and spend_in(3 weeks) > 1\n" + TAIL)}
    assert found == {"E444": (8, 33), "E233": (8, 61)}
