"""Every bundled and shared example program parses, checks clean, formats stably and explains."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from rulelang import ast, parser
from rulelang.cli import fmt_cmd
from rulelang.explain import explain
from rulelang.fmt import format_program
from rulelang.program import from_source
from tests.conftest import PROGRAMS, ROOT, TARGET_PROGRAMS
from tests.strategies import canonical_tree

ALL = PROGRAMS + TARGET_PROGRAMS
ids = [f"{p.parent.name}/{p.name}" for p in ALL]


@pytest.mark.parametrize("path", ALL, ids=ids)
def test_parses_checks_and_round_trips(path):
    loaded = from_source(parser.read(path))  # raises on any error
    once = format_program(loaded.tree)
    back = parser.parse(once)
    assert back == canonical_tree(loaded.tree)
    assert format_program(back) == once
    assert from_source(parser.Source(once, str(path))).model == loaded.model


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("path", ALL, ids=ids)
def test_explains(path, lang):
    loaded = from_source(parser.read(path))
    out = explain(loaded, lang)
    assert out.startswith(loaded.model.name)
    assert not re.search(r"\{\w*\}", out), "a template slot was left unfilled"
    shown = lambda name: loaded.model.labels.get(name, {}).get(lang, name.replace("_", " "))  # noqa: E731 - its label, else its name in words
    for reward in loaded.model.rewards:
        assert shown(reward.name) in out
    for level in loaded.model.tiers.names if loaded.model.tiers else ():
        assert loaded.model.labels.get(level, {}).get(lang, level) in out
    for rule in loaded.model.rules:  # a rule is named only by its label
        assert (f"'{rule.name}'" not in out and f"“{rule.name}”" not in out) or rule.name in loaded.model.labels
    earns = loaded.tree.of(ast.Earn)
    assert sum(line.startswith("- ") for line in out.splitlines()) >= len(earns)


def test_programs_folder_is_in_canonical_layout():
    result = CliRunner().invoke(fmt_cmd, ["--check", str(ROOT / "programs")])
    assert result.exit_code == 0, result.output


def test_project_programs_use_the_richer_constructs():
    trees = {p.stem: parser.parse(parser.read(p)) for p in PROGRAMS}
    assert {"coffee", "fashion_vip", "supermarket"} <= trees.keys()
    coffee = format_program(trees["coffee"])
    assert "customer.segment" in coffee and "on review" in coffee
    market = trees["supermarket"]
    assert market.of(ast.Column) and any(e.clause(ast.Funded) for e in market.of(ast.Earn))
    assert any((f := e.clause(ast.Frequency)) and f.period and f.period.name == "week" for e in market.of(ast.Earn))
    assert "basket." in format_program(market)
    fashion = trees["fashion_vip"].first(ast.Tiers)
    assert fashion.window.n is None and all(not n.name.name.isascii() for n in fashion.levels)
