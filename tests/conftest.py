"""Shared fixtures and options: paths to the bundled programs and to the in-repo examples; --update-goldens."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = sorted((ROOT / "programs").glob("*.loyalty"))
# examples/ is the repository's copy of the shared examples folder (the language's target surface): tests
# never read outside the repository, so a clone without the shared folder runs every test.
EXAMPLES = ROOT / "examples"
TARGET_PROGRAMS = sorted(EXAMPLES.glob("*.loyalty"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="write golden files (tests/rulelang/golden/*.expected) from the current output instead of comparing; "
        "also UPDATE_GOLDENS=1. Without it a missing golden file fails its test.",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--update-goldens"):
        from tests.rulelang import golden_util

        golden_util.UPDATE = True


@pytest.fixture
def root() -> Path:
    return ROOT
