"""A loaded program: its source, syntax tree, diagnostics and model, and `evaluate`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rulelang import ast, check, lint, parser
from rulelang.errors import Diagnostic, ProgramError, Source
from rulelang.model import Model, lower


@dataclass(frozen=True)
class Program:
    """A checked program ready to evaluate. `warnings` holds the checker's warnings."""

    source: Source
    tree: ast.Program
    model: Model
    warnings: tuple[Diagnostic, ...] = ()

    @property
    def path(self) -> str:
        return self.source.path

    @property
    def asserts(self) -> tuple:
        """The program's `assert` statements, in source order (what `loyalty test` checks)."""
        return tuple(self.tree.of(ast.Assert))

    def evaluate(self, transactions, customers=None, until=None, engine: str = "compiled", redemption=None):
        """The ledger of postings for these transactions (see docs/semantics.md)."""
        from rulelang.engine.evaluate import evaluate

        return evaluate(self, transactions, customers=customers, until=until, engine=engine, redemption=redemption)


def analyse(source: Source) -> tuple[ast.Program | None, list[Diagnostic]]:
    """Parse and check: the tree (None if it does not parse) and every diagnostic."""
    try:
        tree = parser.parse(source)
    except ProgramError as exc:
        return None, exc.diagnostics
    found = check.check(tree, source)
    if not any(d.is_error for d in found):
        # Lints reason about what the program means, so they run only on a program that checks.
        found = sorted(found + lint.lint(tree, lower(tree), source), key=lambda d: (d.span.line, d.span.col))
    return tree, found


# A program is immutable, so the same text from the same place is analysed once per process (a
# notebook or a sweep simulating one program again and again); errors are raised each time.
@lru_cache(maxsize=16)
def from_source(source: Source) -> Program:
    """Parse, check and lower; any error raises `ProgramError` with all diagnostics."""
    tree, diagnostics = analyse(source)
    if tree is None or any(d.is_error for d in diagnostics):
        raise ProgramError(diagnostics)
    return Program(source, tree, lower(tree), tuple(diagnostics))


def load(path: str | Path) -> Program:
    """Read, parse, check and lower a program file."""
    return from_source(parser.read(path))


def loads(text: str, path: str = "<program>") -> Program:
    """Like `load`, from program text."""
    return from_source(Source(text.replace("\r\n", "\n"), path))
