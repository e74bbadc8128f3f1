"""Fuzzing: no text, however broken, makes parse + check raise; whatever parses formats, and explains if clean."""

from __future__ import annotations

from hypothesis import event, given, settings
from hypothesis import strategies as st

from rulelang import parser
from rulelang.errors import ProgramError
from rulelang.explain import TEXT, explain
from rulelang.fmt import format_program
from rulelang.program import analyse
from tests.conftest import PROGRAMS, TARGET_PROGRAMS
from tests.strategies import canonical_tree

EXAMPLES = [p.read_text(encoding="utf-8") for p in PROGRAMS + TARGET_PROGRAMS]
# Characters the language gives meaning to, plus a few it does not, so random text reaches deep.
ALPHABET = st.sampled_from(list('earnpoitswhcmyudxgb_#:."\'[](){},+-*/<>=!% \t\n\r0123456789金卡积分\u3000\ufeff\x00'))
WORDS = st.sampled_from(["earn ", "when ", "points ", "per ", "1 ", "CNY", "tiers by spend over 365 days {\n", "}", "x ", "2x ",
                         "in [", "]", "(", ")", "and ", "not ", "once per year", "reward ", "assert ", "\n", ":", "2026-01-01 "])


def survive(text: str):
    """Parse and check; the only failure allowed is a `ProgramError` out of the parser."""
    source = parser.Source(text.replace("\r\n", "\n"), "fuzz.loyalty")
    tree, diagnostics = analyse(source)
    assert isinstance(diagnostics, list)
    assert tree is not None or any(d.is_error for d in diagnostics)
    for d in diagnostics:
        assert d.render()
    if tree is not None:  # whatever parses, formats and comes back the same
        once = format_program(tree)
        back = parser.parse(once)
        assert back == canonical_tree(tree)
        assert format_program(back) == once
        if not any(d.is_error for d in diagnostics):  # a program that checks clean can be explained
            for lang in TEXT:
                assert explain(tree, lang)
    return tree


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(ALPHABET, max_size=120), st.lists(WORDS, max_size=25).map("".join)))
def test_random_text(text):
    survive(text)


@st.composite
def mutated(draw):
    text = draw(st.sampled_from(EXAMPLES))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.one_of(ALPHABET, WORDS))
        if op == "insert":
            text = text[:at] + piece + text[at:]
        elif op == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 8)):]
        else:
            text = text[:at] + piece + text[at + len(piece):]
    return text


@settings(max_examples=200, deadline=None)
@given(mutated())
def test_mutated_example_programs(text):
    tree = survive(text)
    event("parses" if tree is not None else "syntax error")


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_are_decoded_or_refused_with_a_diagnostic(data):
    try:
        source = parser.decode(data, "bytes.loyalty")
    except ProgramError as exc:
        assert exc.diagnostics[0].code == "E001"
        return
    survive(source.text)
