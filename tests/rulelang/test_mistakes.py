"""The mistakes catalogue: every entry fires on its own examples and has a golden program."""

from __future__ import annotations

from collections import Counter

import pytest

from rulelang import mistakes, parser
from rulelang.errors import ProgramError
from tests.rulelang.golden_util import GOLDEN, compare, diagnostics

MISTAKE_FILES = sorted((GOLDEN / "mistakes").glob("*.loyalty"))


@pytest.mark.parametrize("path", MISTAKE_FILES, ids=lambda p: p.stem)
def test_mistake_golden(path):
    found = diagnostics(path)
    assert len(found) == 1 and found[0].code.startswith("E1"), [d.code for d in found]
    assert found[0].span.line >= 1
    compare(path, found[0].render() + "\n")


def test_catalogue_is_large_and_codes_unique():
    codes = [m.code for m in mistakes.MISTAKES]
    assert len(codes) >= 15
    assert len(set(codes)) == len(codes)
    assert all(c[:3] in ("E11", "E12", "E13", "E14", "E15", "E18") for c in codes)


@pytest.mark.parametrize("mistake", mistakes.MISTAKES, ids=lambda m: m.code)
def test_each_example_gets_its_own_entry(mistake):
    for example in mistake.examples:
        with pytest.raises(ProgramError) as info:
            parser.parse(example)
        assert info.value.diagnostics[0].code == mistake.code, example


def test_every_entry_has_a_golden_program():
    covered = Counter(diagnostics(p)[0].code for p in MISTAKE_FILES)
    missing = [m.code for m in mistakes.MISTAKES if m.code not in covered]
    assert not missing


def test_keyword_typo_suggests_the_keyword():
    with pytest.raises(ProgramError) as info:
        parser.parse("currency CNY\nrewrd coffee: 300 points cost 8 CNY\n")
    (d,) = info.value.diagnostics
    assert (d.code, d.span.line, d.span.col) == ("E130", 2, 1)
    assert "did you mean `reward`?" in d.message


def test_unrelated_error_in_a_mistake_state_is_not_misnamed():
    # Same parser state as `2 x base`, but another token: the `points` entry, not the multiplier one.
    with pytest.raises(ProgramError) as info:
        parser.parse("earn x: 2 bonus\n")
    assert info.value.diagnostics[0].code == "E115"


def test_currency_signs_share_one_entry():
    for sign in "¥$€£":
        with pytest.raises(ProgramError) as info:
            parser.parse(f"reward x: 300 points cost {sign}5\n")
        assert info.value.diagnostics[0].code == "E127", sign
