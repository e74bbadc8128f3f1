"""Errors and diagnostics: one root class, and a renderer that points at the source.

A `Diagnostic` is one finding (error or warning) at a span. `ProgramError` carries the
diagnostics of a program that could not be used; `DataError` is bad input data; both derive from
`LoyaltyError`, the only exception type the toolkit raises on bad input.
"""

from __future__ import annotations

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
        """`path:line:col: severity[CODE]: message`, the source line, a caret, and the hint."""
        head = f"{self.path}:{self.span.line}:{self.span.col}: {self.severity}[{self.code}]: {self.message}"
        out = [head]
        if self.span.line and self.source_line:
            text = self.source_line
            gutter = f"{self.span.line:>4} | "
            out.append(gutter + text)
            start = max(self.span.col - 1, 0)
            if self.span.end_line == self.span.line and self.span.end_col > self.span.col:
                stop = min(self.span.end_col - 1, len(text))
            else:
                stop = start + 1
            width = max(_display_width(text[start:stop]), 1)
            out.append(" " * (len(gutter) - 2) + "| " + _pad(text[:start]) + "^" * width)
        if self.hint:
            out.append(f"     = help: {self.hint}")
        return "\n".join(out)

    def to_json(self) -> dict:
        """The editor/CI form: path, line, col, end_line, end_col, severity, code, message."""
        return {
            "path": self.path,
            "line": self.span.line,
            "col": self.span.col,
            "end_line": self.span.end_line,
            "end_col": self.span.end_col,
            "severity": self.severity,
            "code": self.code,
            "message": self.message + (f" ({self.hint})" if self.hint else ""),
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
