"""Loyalty-specific warnings about what a checked program means (W6xx codes).

(First cut: the invariants issue fills this in; the signature is the contract.)
"""

from __future__ import annotations

from rulelang import ast
from rulelang.errors import Diagnostic, Source
from rulelang.model import Model


def lint(program: ast.Program, model: Model, source: Source) -> list[Diagnostic]:
    """Warnings about the program's economics and reachability, in source order."""
    return []
