"""The checker: every error and warning of a parsed program, in one pass.

(First cut: the checker issue fills this in; the signature is the contract.)
"""

from __future__ import annotations

from rulelang import ast
from rulelang.errors import Diagnostic, Source


def check(program: ast.Program, source: Source) -> list[Diagnostic]:
    """All diagnostics for `program`, errors and warnings, in source order."""
    return []
