"""Golden files: render each program's diagnostics and compare with its .expected file.

A missing .expected file fails its test. To write the files from the current output, run
`pytest --update-goldens` (or set UPDATE_GOLDENS=1), then review the diff before committing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rulelang import check, parser
from rulelang.errors import ProgramError

GOLDEN = Path(__file__).resolve().parent / "golden"
# Set by tests/conftest.py for `pytest --update-goldens`.
UPDATE = False


def updating() -> bool:
    """Whether golden files are to be written rather than compared (the option or UPDATE_GOLDENS=1)."""
    return UPDATE or os.environ.get("UPDATE_GOLDENS") == "1"


def diagnostics(path: Path) -> list:
    """Parse and check one golden program: every diagnostic, with the file's name as its path."""
    source = parser.decode(path.read_bytes(), path.name)
    try:
        tree = parser.parse(source)
    except ProgramError as exc:
        return exc.diagnostics
    return check.check(tree, source)


def compare(path: Path, rendered: str) -> None:
    """Assert `rendered` equals the golden file next to `path` (or write it when updating)."""
    expected = path.with_suffix(".expected")
    if updating():
        expected.write_text(rendered, encoding="utf-8")
    elif not expected.exists():
        pytest.fail(f"{expected}: golden file missing; write it with `pytest --update-goldens` (or UPDATE_GOLDENS=1) and review it")
    assert rendered == expected.read_text(encoding="utf-8"), f"{path.name}: output differs from {expected.name}"
