"""rulelang.files: atomic replacement (and `fmt --write` on it), inputs refused as outputs,
formula-safe CSV cells, streamed hashes."""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys
from decimal import Decimal

import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from rulelang import files
from rulelang.cli import fmt_cmd
from rulelang.errors import LoyaltyError

# Not in canonical layout: `fmt --write` rewrites it.
UNFORMATTED = 'program   "Club"\ncurrency CNY\npoint_cost 0.01 CNY\nearn base:   1 point per 1 CNY\n' + "# padding\n" * 400


def test_atomic_write_replaces_and_keeps_the_mode(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("old")
    os.chmod(p, 0o640)
    files.atomic_write_bytes(p, b"new")
    assert p.read_bytes() == b"new" and p.stat().st_mode & 0o777 == 0o640
    assert [x.name for x in tmp_path.iterdir()] == ["a.txt"]


def test_a_failed_atomic_write_leaves_the_file_and_no_temporary(tmp_path, monkeypatch):
    p = tmp_path / "a.txt"
    p.write_text("old")

    def full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space"):
        files.atomic_write_bytes(p, b"new" * 1000)
    assert p.read_text() == "old" and [x.name for x in tmp_path.iterdir()] == ["a.txt"]


def test_fmt_write_failing_midway_leaves_the_program_intact(tmp_path, monkeypatch):
    p = tmp_path / "club.loyalty"
    p.write_text(UNFORMATTED)
    real_replace = os.replace

    def crash(src, dst):
        raise OSError(27, "File too large")

    monkeypatch.setattr(os, "replace", crash)
    res = CliRunner().invoke(fmt_cmd, [str(p), "--write"])
    assert res.exit_code == 2 and "cannot write the file" in res.output and "unchanged" in res.output
    assert p.read_text() == UNFORMATTED and [x.name for x in tmp_path.iterdir()] == ["club.loyalty"]
    monkeypatch.setattr(os, "replace", real_replace)
    res = CliRunner().invoke(fmt_cmd, [str(p), "--write"])
    assert res.exit_code == 0 and p.read_text() != UNFORMATTED


def test_fmt_write_under_a_file_size_limit_leaves_the_program_intact(tmp_path):
    """A real short write: the file size limit is below the program's size."""
    p = tmp_path / "club.loyalty"
    p.write_text(UNFORMATTED)
    limit = len(UNFORMATTED) // 2

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    res = subprocess.run(
        [sys.executable, "-m", "simulator.cli", "fmt", "--write", str(p)],
        capture_output=True,
        text=True,
        preexec_fn=small_files,
        timeout=120,
    )
    assert res.returncode == 2, res.stderr
    assert "cannot write the file" in res.stderr and "Traceback" not in res.stderr
    assert p.read_text() == UNFORMATTED and [x.name for x in tmp_path.iterdir()] == ["club.loyalty"]


def test_an_input_as_output_is_refused(tmp_path):
    src = tmp_path / "tx.csv"
    src.write_text("a\n")
    (tmp_path / "ln.csv").symlink_to(src)
    os.link(src, tmp_path / "hard.csv")
    for out in (src, tmp_path / "ln.csv", tmp_path / "hard.csv", tmp_path / "sub" / ".." / "tx.csv"):
        with pytest.raises(LoyaltyError, match="--rejects is the transactions file"):
            files.refuse_input_as_output({"--rejects": out}, {"transactions": src})
    with pytest.raises(LoyaltyError, match="--out holds the transactions file"):
        files.refuse_input_as_output({"--out": tmp_path}, {"transactions": src})
    # A folder holding a hard link of the input would not destroy it, but is refused all the same.
    other = tmp_path / "o"
    other.mkdir()
    os.link(src, other / "summary.json")
    with pytest.raises(LoyaltyError, match="--out holds"):
        files.refuse_input_as_output({"--out": other}, {"transactions": src})
    files.refuse_input_as_output({"--rejects": tmp_path / "r.csv", "--out": tmp_path / "new"}, {"transactions": src, "customers": None})


def test_sha256_is_the_files(tmp_path):
    p = tmp_path / "x.bin"
    data = os.urandom(files.HASH_CHUNK * 2 + 17)
    p.write_bytes(data)
    assert files.sha256_file(p) == hashlib.sha256(data).hexdigest()


def test_formula_cells_are_neutralised_and_numbers_left_alone():
    frame = pd.DataFrame(
        {
            "name": ["=1+1", "+cmd", "-x", "@SUM(A1)", "\tq", "\rq", "plain", "-5", "+1.5e3", None],
            "n": [-1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            "money": [Decimal("-1.50")] * 10,
            "kind": pd.Categorical(["=a", "b"] * 5),
        }
    ).rename(columns={"n": "=n"})
    safe = files.formula_safe(frame)
    assert safe["name"].tolist()[:9] == ["'=1+1", "'+cmd", "'-x", "'@SUM(A1)", "'\tq", "'\rq", "plain", "-5", "+1.5e3"]
    assert pd.isna(safe["name"].iloc[9])
    assert list(safe.columns) == ["name", "'=n", "money", "kind"]
    assert safe["'=n"].tolist() == frame["=n"].tolist() and safe["money"].tolist() == frame["money"].tolist()
    assert safe["kind"].tolist() == ["'=a", "b"] * 5
    assert frame["name"].iloc[0] == "=1+1"  # the caller's frame is not changed
    same = pd.DataFrame({"a": ["x", "y"], "b": [1.5, -2.0]})
    assert files.formula_safe(same) is same


@given(st.lists(st.text(max_size=6), min_size=1, max_size=8))
def test_no_text_cell_starts_a_formula_after_neutralising(cells):
    safe = files.formula_safe(pd.DataFrame({"c": cells}))["c"].tolist()
    for before, after in zip(cells, safe, strict=True):
        assert after in (before, "'" + before)
        if after == before and after[:1] in ("=", "+", "-", "@", "\t", "\r"):
            float(after)  # only a plain number may keep such a start


def test_csv_rows_are_made_safe_cell_by_cell():
    assert files.csv_rows_safe([["=a b", 1, -2.5, None, "-3"]]) == [["'=a b", 1, -2.5, None, "-3"]]
