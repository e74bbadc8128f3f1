"""The catalogue of common syntax mistakes and their curated messages.

Each entry is matched with Lark's `match_examples`: a syntax error that stops the parser in the
same state, on the same kind of token, as one of the examples gets the entry's message. Every
entry is also a golden test (tests/rulelang/golden/mistakes).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mistake:
    """A known mistake: its code, the message and hint a planner sees, and examples that make it."""

    code: str
    message: str
    hint: str
    examples: tuple


MISTAKES: list[Mistake] = [
    Mistake(
        "E110",
        "missing `:` after the rule name",
        "write the name, a colon, then what it earns: `earn base: 1 point per 1 CNY`",
        ("earn base 1 point per 1 CNY\n", "earn base 2x other\n", "earn base 100 points\n"),
    ),
]
