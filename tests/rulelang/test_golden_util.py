"""The golden-file helper: a missing golden fails, it is written only when asked, and none is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.rulelang import golden_util
from tests.rulelang.golden_util import GOLDEN, compare


def test_a_missing_golden_file_fails_and_is_not_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("UPDATE_GOLDENS", raising=False)
    monkeypatch.setattr(golden_util, "UPDATE", False)
    program = tmp_path / "new_case.loyalty"
    with pytest.raises(pytest.fail.Exception, match=r"new_case\.expected: golden file missing; write it with `pytest --update-goldens`"):
        compare(program, "x.loyalty:1:1: error: something\n")
    assert not program.with_suffix(".expected").exists()


@pytest.mark.parametrize("how", ["option", "environment"])
def test_updating_writes_the_golden_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str):
    monkeypatch.delenv("UPDATE_GOLDENS", raising=False)
    monkeypatch.setattr(golden_util, "UPDATE", how == "option")
    if how == "environment":
        monkeypatch.setenv("UPDATE_GOLDENS", "1")
    program = tmp_path / "new_case.loyalty"
    compare(program, "rendered\n")
    assert program.with_suffix(".expected").read_text(encoding="utf-8") == "rendered\n"


def test_a_differing_output_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("UPDATE_GOLDENS", raising=False)
    monkeypatch.setattr(golden_util, "UPDATE", False)
    (tmp_path / "case.expected").write_text("old\n", encoding="utf-8")
    with pytest.raises(AssertionError, match=r"case\.loyalty: output differs from case\.expected"):
        compare(tmp_path / "case.loyalty", "new\n")


def test_every_golden_program_has_its_expected_file_and_no_expected_file_is_orphaned():
    programs = {p.with_suffix("") for p in GOLDEN.rglob("*.loyalty")}
    expected = {p.with_suffix("") for p in GOLDEN.rglob("*.expected")}
    assert programs, "no golden programs found"
    assert sorted(map(str, programs - expected)) == [], "golden programs without an .expected file"
    assert sorted(map(str, expected - programs)) == [], ".expected files without their program"
