"""Errors and diagnostics: one root class, and a renderer that points at the source.

A `Diagnostic` is one finding (error or warning) at a span. `ProgramError` carries the
diagnostics of a program that could not be used; `DataError` is bad input data; both derive from
`LoyaltyError`, the only exception type the toolkit raises on bad input.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from rulelang.ast import NO_SPAN, Span


class LoyaltyError(Exception):
    """The root of every error this toolkit reports about its input."""


@dataclass(frozen=True)
class Source:
    """A program's text and where it came from, for rendering diagnostics."""

    text: str
    path: str = "<program>"

    def line(self, number: int) -> str:
        """The text of a 1-based line, without its line end."""
        lines = self.text.split("\n")
        if 1 <= number <= len(lines):
            return lines[number - 1].rstrip("\r")
        return ""


# Characters that would act on a terminal rather than show (ESC starts colour, cursor and title
# sequences; C1 controls; bidirectional overrides reorder what is shown). Tab and line end stay.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """`text` with every terminal control character written as an escape (`\\x1b`, `\\u202e`)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


def _display_width(text: str) -> int:
    # Wide (CJK) characters take two terminal columns; the caret must line up under them.
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(prefix: str) -> str:
    # Keep tabs as tabs so the caret lines up whatever the tab width.
    return "".join("\t" if ch == "\t" else " " * _display_width(ch) for ch in prefix)


@dataclass(frozen=True)
class Diagnostic:
    """One finding: severity `error` or `warning`, a code such as `E201`, a message and a span."""

    severity: str
    code: str
    message: str
    span: Span = NO_SPAN
    path: str = "<program>"
    hint: str | None = None
    source_line: str = field(default="", compare=False)

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def render(self) -> str:
        """`path:line:col: severity[CODE]: message`, the source line, a caret, and the hint; a
        file-level finding (no line) is `path: severity[CODE]: message`. Control characters in
        any of it are shown as escapes, and the caret lines up under the escaped text."""
        where = f"{self.path}:{self.span.line}:{self.span.col}" if self.span.line else self.path
        out = [visible(f"{where}: {self.severity}[{self.code}]: {self.message}")]
        if self.span.line and self.source_line:
            text = self.source_line
            gutter = f"{self.span.line:>4} | "
            out.append(gutter + visible(text))
            start = max(self.span.col - 1, 0)
            if self.span.end_line == self.span.line and self.span.end_col > self.span.col:
                stop = min(self.span.end_col - 1, len(text))
            else:
                stop = start + 1
            width = max(_display_width(visible(text[start:stop])), 1)
            out.append(" " * (len(gutter) - 2) + "| " + _pad(visible(text[:start])) + "^" * width)
        if self.hint:
            out.append(visible(f"     = help: {self.hint}"))
        return "\n".join(out)

    def to_json(self) -> dict:
        """The editor/CI form: path, line, col, end_line, end_col, severity, code, message; the
        positions are null for a file-level finding (a file that cannot be read)."""
        at = self.span.line > 0
        return {
            "path": self.path,
            "line": self.span.line if at else None,
            "col": self.span.col if at else None,
            "end_line": self.span.end_line if at else None,
            "end_col": self.span.end_col if at else None,
            "severity": self.severity,
            "code": self.code,
            "message": visible(self.message + (f" ({self.hint})" if self.hint else "")),
        }

    def __str__(self) -> str:
        return self.render()


def diagnostic(source: Source, severity: str, code: str, message: str, span: Span, hint: str | None = None) -> Diagnostic:
    """A diagnostic with its source line filled in from `source`."""
    return Diagnostic(severity, code, message, span, source.path, hint, source.line(span.line))


class ProgramError(LoyaltyError):
    """A program that cannot be used; `diagnostics` holds every finding, errors and warnings."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__(str(self))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.is_error]

    def __str__(self) -> str:
        return "\n\n".join(d.render() for d in self.diagnostics)


class DataError(LoyaltyError):
    """Input data that breaks the data contract; the message names the rows and columns."""
