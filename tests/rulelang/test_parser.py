"""The parser: every example program parses; spans point at the source; syntax errors are single and located."""

from __future__ import annotations

import pytest

from rulelang import ast, parser
from rulelang.errors import ProgramError
from tests.conftest import PROGRAMS, TARGET_PROGRAMS


@pytest.mark.parametrize("path", PROGRAMS + TARGET_PROGRAMS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_example_programs_parse(path):
    tree = parser.parse(parser.read(path))
    assert tree.of(ast.Earn), "every example has earn rules"


def test_spans_point_at_names():
    tree = parser.parse("earn base: 1 point per 1 CNY\nearn gold: 2x base when tier >= Gold\n")
    gold = tree.of(ast.Earn)[1]
    assert (gold.name.span.line, gold.name.span.col) == (2, 6)
    cond = gold.clause(ast.When).expr
    assert isinstance(cond, ast.Compare) and (cond.left.span.line, cond.left.span.col) == (2, 25)


def test_comments_are_kept():
    tree = parser.parse("# head\nearn base: 1 point per 1 CNY  # trailing\n")
    assert [c.text for c in tree.comments] == ["# head", "# trailing"]


def test_long_chains_stay_shallow():
    expr = " + ".join(["amount"] * 5000)
    tree = parser.parse(f"assert {expr} >= 0\n")
    arith = tree.of(ast.Assert)[0].expr.left
    assert isinstance(arith, ast.Arith) and len(arith.rest) == 4999


def test_deep_nesting_is_a_diagnostic():
    with pytest.raises(ProgramError) as info:
        parser.parse("assert " + "(" * 500 + "1" + ")" * 500 + " > 0\n", "deep.loyalty")
    (d,) = info.value.diagnostics
    assert d.code == "E103" and d.path == "deep.loyalty"


def test_bom_crlf_and_bad_bytes():
    src = parser.decode("\ufeffearn base: 1 point per 1 CNY\r\n".encode(), "x.loyalty")
    assert parser.parse(src).of(ast.Earn)
    with pytest.raises(ProgramError) as info:
        parser.decode(b"earn base: 1 point\nearn \xff: 2 points\n", "bad.loyalty")
    (d,) = info.value.diagnostics
    assert (d.code, d.span.line, d.span.col) == ("E001", 2, 6)


def test_empty_file_parses_to_nothing():
    assert parser.parse("").statements == ()


@pytest.mark.parametrize("layout", ["{reward from 0\n  Gold from 100\n}", "{\n  reward from 0\n  Gold from 100\n}"])
def test_a_tier_named_like_a_keyword_parses_wherever_it_stands(layout):
    # Found by the fuzzer: `reward` right after `{` was a name, at the start of a line the keyword,
    # so `fmt`'s layout (every tier on its own line) did not parse back.
    from rulelang.fmt import format_program

    tree = parser.parse(f'program "x"\ncurrency CNY\ntiers by spend over 365 days {layout}\n')
    (tiers,) = [s for s in tree.statements if isinstance(s, ast.Tiers)]
    assert [t.name.name for t in tiers.levels] == ["reward", "Gold"]
    assert parser.parse(format_program(tree)) == parser.parse(format_program(parser.parse(format_program(tree))))
