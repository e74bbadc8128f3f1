"""The formatter: golden layouts, comments kept, idempotent, and the tree survives a round trip."""

from __future__ import annotations

import dataclasses
import shutil
from decimal import Decimal

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from rulelang import ast, parser
from rulelang.cli import fmt_cmd
from rulelang.fmt import format_expr, format_program
from tests.conftest import PROGRAMS, TARGET_PROGRAMS
from tests.strategies import canonical_tree, programs


def fmt(text: str) -> str:
    return format_program(parser.parse(text))


MESSY = """\
# Header comment.
# Second line.


program   'Corner "Best" Cafe'
currency CNY
earn gold :  1.5x base   once per year when tier >= Gold   # bonus
earn base:1 points per 1 CNY
tiers by spend over 365 days {
  # the entry level
  Green from 0
      Gold from 1000    # reached quickly
    # nothing above Gold yet
}
reward mug: 2000 points cost 40.50 CNY funded 25% by maker
round down
limit 3000 point per month
assert (base + gold) <= 4 * amount and not (amount < 0 or amount > 100000)
# trailing words
"""

GOLDEN = """\
# Header comment.
# Second line.

program 'Corner "Best" Cafe'
currency CNY

earn gold: 1.5x base when tier >= Gold once per year  # bonus
earn base: 1 point per 1 CNY

tiers by spend over 365 days {
  # the entry level
  Green from 0
  Gold  from 1000  # reached quickly
  # nothing above Gold yet
}

reward mug: 2000 points cost 40.50 CNY funded 25% by maker

round down
limit 3000 points per month

assert (base + gold) <= 4 * amount and not (amount < 0 or amount > 100000)
# trailing words
"""


def test_golden_layout():
    assert fmt(MESSY) == GOLDEN


def test_golden_is_a_fixed_point():
    assert fmt(GOLDEN) == GOLDEN


def test_crlf_tabs_and_bom_give_the_same_layout():
    raw = ("\ufeff" + MESSY.replace("  ", "\t")).replace("\n", "\r\n").encode("utf-8")
    assert format_program(parser.parse(parser.decode(raw))) == GOLDEN


def test_runs_of_earn_and_reward_lines_align_their_awards():
    out = fmt("earn a: 1 point per 1 CNY\nearn longer_name: 2 points\nreward x: 1 point cost 1 CNY\nreward 现金券: 2 points cost 1 CNY\n")
    assert out == (
        "earn a:           1 point per 1 CNY\n"
        "earn longer_name: 2 points\n"
        "\n"
        "reward x:      1 point cost 1 CNY\n"
        "reward 现金券: 2 points cost 1 CNY\n"  # 现金券 is six columns wide on a terminal
    )


def test_comment_paragraphs_and_blank_lines_next_to_comments_are_kept():
    src = "earn a: 1 point\n\n# Campaigns\n\n# Winter\nearn b: 2 points\nearn c: 3 points\n\n\n# the end\n"
    assert fmt(src) == "earn a: 1 point\n\n# Campaigns\n\n# Winter\nearn b: 2 points\nearn c: 3 points\n\n# the end\n"


def test_comments_inside_a_multi_line_statement_move_above_it_in_order():
    src = 'earn a: 1 point when category in [  # first\n  "x",  # second\n  "y"\n]\n'
    assert fmt(src) == '# first\n# second\nearn a: 1 point when category in ["x", "y"]\n'


def test_only_comments_and_empty():
    assert fmt("") == ""
    assert fmt("# just a note\n\n\n# another\n") == "# just a note\n\n# another\n"


def test_clauses_print_in_canonical_order():
    out = fmt("earn a: 5 points funded 10% by p once per week during 2026-01-01 to 2026-01-31 on review when x > 1\n")
    assert out == "earn a: 5 points when x > 1 on review during 2026-01-01 to 2026-01-31 once per week funded 10% by p\n"


def test_best_of_stays_with_the_earn_rules_and_lists_its_rules_with_commas():
    text = "currency CNY\nearn a: 2x base\nearn base: 1 point per 1 CNY\nbest of  a ,base\nreward r: 1 point cost 1 CNY\n"
    assert fmt(text) == ("currency CNY\n\nearn a:    2x base\nearn base: 1 point per 1 CNY\nbest of a, base\n\n"
                         "reward r: 1 point cost 1 CNY\n")


def test_numbers_print_as_written_never_as_floats():
    out = fmt("point_cost 0.0000001 CNY\nearn a: 1.50 points per 3.0 CNY\nassert 100000000000000000000.25 > 0.1\n")
    assert "0.0000001 CNY" in out and "1.50 points per 3.0 CNY" in out and "100000000000000000000.25 > 0.1" in out


def test_expressions_get_the_parentheses_their_tree_needs():
    a, b, c = (ast.Name(n) for n in "abc")
    plus = ast.Arith(a, (("+", b),))
    assert format_expr(ast.Arith(plus, (("*", c),))) == "(a + b) * c"
    assert format_expr(ast.Arith(a, (("-", ast.Arith(b, (("-", c),))),))) == "a - (b - c)"
    assert format_expr(ast.Not(ast.BoolOp("and", (a, b)))) == "not (a and b)"
    assert format_expr(ast.BoolOp("or", (ast.BoolOp("and", (a, b)), c))) == "a and b or c"
    assert format_expr(ast.Neg(ast.Neg(ast.Number(Decimal("5"))))) == "--5"
    assert format_expr(ast.In(a, ast.ListLit((ast.String("it's"), ast.DateLit("2026-1-5"))), True)) == "a not in [\"it's\", 2026-1-5]"


def test_written_parentheses_are_kept():
    assert fmt("assert ((a)) + (b * c) > 0\n") == "assert ((a)) + (b * c) > 0\n"


@pytest.mark.parametrize("path", PROGRAMS + TARGET_PROGRAMS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_example_programs_round_trip(path):
    tree = parser.parse(parser.read(path))
    once = format_program(tree)
    back = parser.parse(once)
    assert back == canonical_tree(tree)
    assert format_program(back) == once


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.name)
def test_project_programs_are_in_canonical_layout(path):
    assert format_program(parser.parse(parser.read(path))) == path.read_text(encoding="utf-8")


@settings(max_examples=250, deadline=None)
@given(programs)
def test_any_tree_survives_format_then_parse(tree):
    text = format_program(tree)
    back = parser.parse(text)
    assert back == tree
    assert format_program(back) == text


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(PROGRAMS), st.data())
def test_comments_anywhere_between_lines_are_kept_in_order(path, data):
    lines = path.read_text(encoding="utf-8").split("\n")
    inserts = data.draw(st.lists(st.tuples(st.integers(0, len(lines) - 1), st.booleans()), max_size=6))
    for i, (at, trailing) in enumerate(sorted(inserts, reverse=True)):
        note = f"# note {i}"
        if trailing and lines[at].strip() and "#" not in lines[at] and lines[at].strip() not in "{}":
            lines[at] += "  " + note
        else:
            lines.insert(at, note)
    text = "\n".join(lines)
    tree = parser.parse(text)
    once = format_program(tree)
    back = parser.parse(once)
    assert back == canonical_tree(tree)
    assert format_program(back) == once


# --- the command ----------------------------------------------------------------------------------


def test_cli_prints_checks_and_writes(tmp_path):
    messy = tmp_path / "messy.loyalty"
    messy.write_text(MESSY, encoding="utf-8")
    clean = tmp_path / "clean.loyalty"
    clean.write_text(GOLDEN, encoding="utf-8")
    runner = CliRunner()

    shown = runner.invoke(fmt_cmd, [str(messy)])
    assert shown.exit_code == 0 and shown.output == GOLDEN

    checked = runner.invoke(fmt_cmd, ["--check", str(tmp_path)])
    assert checked.exit_code == 1 and "messy.loyalty" in checked.output and "clean.loyalty" not in checked.output

    written = runner.invoke(fmt_cmd, ["--write", str(messy)])
    assert written.exit_code == 0 and messy.read_text(encoding="utf-8") == GOLDEN
    assert runner.invoke(fmt_cmd, ["--check", str(tmp_path)]).exit_code == 0


def test_cli_check_flags_crlf_files(tmp_path):
    crlf = tmp_path / "crlf.loyalty"
    crlf.write_bytes(GOLDEN.replace("\n", "\r\n").encode())
    assert CliRunner().invoke(fmt_cmd, ["--check", str(crlf)]).exit_code == 1


def test_cli_syntax_error_and_missing_file(tmp_path):
    bad = tmp_path / "bad.loyalty"
    bad.write_text("earn base 1 point per 1 CNY\n", encoding="utf-8")
    result = CliRunner().invoke(fmt_cmd, ["--write", str(bad)])
    assert result.exit_code == 1 and "bad.loyalty:1:" in result.output
    assert isinstance(result.exception, SystemExit)
    assert bad.read_text(encoding="utf-8") == "earn base 1 point per 1 CNY\n"

    missing = CliRunner().invoke(fmt_cmd, [str(tmp_path / "nope.loyalty")])
    assert missing.exit_code == 2 and "nope.loyalty" in missing.output and isinstance(missing.exception, SystemExit)


def test_cli_write_through_a_link_rewrites_the_program_and_keeps_the_link(tmp_path):
    # It renamed the formatted text over the link: the link became a copy, the program unformatted.
    (tmp_path / "real.loyalty").write_text(MESSY, encoding="utf-8")
    (tmp_path / "link.loyalty").symlink_to("real.loyalty")
    assert CliRunner().invoke(fmt_cmd, ["--write", str(tmp_path / "link.loyalty")]).exit_code == 0
    assert (tmp_path / "link.loyalty").is_symlink()
    assert (tmp_path / "real.loyalty").read_text(encoding="utf-8") == GOLDEN


def test_cli_check_and_write_together_is_a_usage_error(tmp_path):
    shutil.copy(PROGRAMS[0], tmp_path / "p.loyalty")
    assert CliRunner().invoke(fmt_cmd, ["--check", "--write", str(tmp_path / "p.loyalty")]).exit_code == 2


def test_canonical_tree_only_reorders_clauses():
    tree = parser.parse("earn a: 1 point once when x > 1  # note   \n")
    canon = canonical_tree(tree)
    assert [type(c) for c in canon.statements[0].clauses] == [ast.When, ast.Frequency]
    assert canon.comments[0].text == "# note"
    assert dataclasses.replace(canon, statements=tree.statements, comments=tree.comments) == tree


def test_tier_alternatives_and_lifetime_keep_their_words():
    src = "currency CNY\ntiers by spend over lifetime {\n Silver from 0\n Gold from 5000 CNY   or 24 visits # either\n}\n"
    out = fmt(src)
    assert "tiers by spend over lifetime {" in out
    assert "  Gold   from 5000 CNY or 24 visits  # either" in out
    assert fmt(out) == out


def test_status_rules_sit_with_the_tiers_block():
    src = "currency CNY\nearn base: 1 point per 1 CNY\ntiers by spend over 30 days {\n Silver from 0\n Gold from 5 keep 2 months\n}\n" \
          "review tiers every month\ndowngrade one level at a time\n"
    out = fmt(src)
    assert "  Gold   from 5 keep 2 months\n}\nreview tiers every month\ndowngrade one level at a time\n" in out
def test_pending_points_and_an_automatic_voucher_in_the_canonical_layout():
    out = fmt("currency GBP\nexpire after 24 months\npoints   available  after 14 day\n"
              "reward v:  150 points cost 1.50 GBP   issued   every quarter\nreward mug: 300 points cost 5 GBP\n")
    assert out == ("currency GBP\n\nexpire after 24 months\npoints available after 14 day\n\n"
                   "reward v:   150 points cost 1.50 GBP issued every quarter\nreward mug: 300 points cost 5 GBP\n")
    assert fmt(out) == out


def test_a_budget_is_printed_last_among_the_clauses_in_its_unit():
    text = "currency CNY\nearn b: 500 points budget 1000 points on enroll\ndiscount d: 20% budget 50000 CNY during 2026-03-01 to 2026-03-07\n"
    out = format_program(parser.parse(text))
    assert "earn b: 500 points on enroll budget 1000 points\n" in out
    assert "discount d: 20% during 2026-03-01 to 2026-03-07 budget 50000 CNY\n" in out
    assert format_program(parser.parse(out)) == out
