"""Shared fixtures: paths to the bundled programs and to ../shared/examples when it exists."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = sorted((ROOT / "programs").glob("*.loyalty"))
SHARED = ROOT.parent / "shared" / "examples"
SHARED_PROGRAMS = sorted(SHARED.glob("*.loyalty")) if SHARED.is_dir() else []


@pytest.fixture
def root() -> Path:
    return ROOT
