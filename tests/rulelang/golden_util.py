"""Golden files: render each program's diagnostics and compare with its .expected file.

Set LOYALTY_REGEN_GOLDEN=1 to (re)write the .expected files from the current output; a missing
.expected file fails the test.
"""

from __future__ import annotations

import os
from pathlib import Path

from rulelang import check, parser
from rulelang.errors import ProgramError

GOLDEN = Path(__file__).resolve().parent / "golden"
REGEN = os.environ.get("LOYALTY_REGEN_GOLDEN") == "1"


def diagnostics(path: Path) -> list:
    """Parse and check one golden program: every diagnostic, with the file's name as its path."""
    source = parser.decode(path.read_bytes(), path.name)
    try:
        tree = parser.parse(source)
    except ProgramError as exc:
        return exc.diagnostics
    return check.check(tree, source)


def compare(path: Path, rendered: str) -> None:
    """Assert `rendered` equals the golden file next to `path` (or rewrite it when regenerating)."""
    expected = path.with_suffix(".expected")
    if REGEN:
        expected.write_text(rendered, encoding="utf-8")
    # A golden that is written on first run would pass whatever the output: a missing one fails.
    assert expected.exists(), f"{path.name}: no {expected.name}; write it with LOYALTY_REGEN_GOLDEN=1, review it and commit it"
    assert rendered == expected.read_text(encoding="utf-8"), f"{path.name}: output differs from {expected.name}"
