"""Output sets written whole (simulator.outputs): a write killed at any step leaves the folder with
one complete set, old or new; a folder of the user's own files is refused; leftovers are mended."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rulelang.errors import LoyaltyError
from simulator import outputs

ROOT = Path(__file__).resolve().parents[2]

# A subprocess simulates two small runs once (seeds 1 and 2), writes each as a reference set, then
# forks one child per kill point: the child writes seed 2's set into a folder (absent, or holding
# seed 1's set) with the test hook signalling it at that step. After each, the folder as it was
# left, and again after `outputs.recover`, is printed as JSON: {entry: {file: sha256}}. The checks
# are the test's: byte for byte the reference set of one seed or of the other.
DRIVER = r"""
import hashlib, json, os, sys
from pathlib import Path

from simulator import outputs
from simulator.api import simulate
from tests.simulator.simkit import ENGINE, PROGRAM_TEXT, sample

root = Path(sys.argv[1])
tx, cu = sample(12, 3)
(root / "club.loyalty").write_text(PROGRAM_TEXT, encoding="utf-8")
tx.to_csv(root / "tx.csv", index=False)
cu.to_csv(root / "cu.csv", index=False)
runs = {
    seed: simulate(str(root / "club.loyalty"), str(root / "tx.csv"), str(root / "cu.csv"), {"runs": 2, "seed": seed}, workers=1, engine=ENGINE)
    for seed in (1, 2)
}

def listing(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder" for p in sorted(folder.iterdir())}

def state(parent):
    return {p.name: listing(p) if p.is_dir() else "file" for p in sorted(parent.iterdir())}

# Each report is drawn once (charts take a second); every write still writes it, as the real one.
import simulator.report as report
draw, drawn = report.render_report, {}

def drawn_once(result):
    if id(result) not in drawn:
        drawn[id(result)] = draw(result)
    return drawn[id(result)]

report.render_report = drawn_once
for seed in (1, 2):
    runs[seed].write(root / f"ref{seed}")
cases = json.loads(sys.argv[2])
for i, (step, sig, phase, fallback) in enumerate(cases):
    parent = root / f"case{i}"
    parent.mkdir()
    out = parent / "out"
    if phase == "over":
        runs[1].write(out)
    pid = os.fork()
    if pid == 0:
        os.environ[outputs.FAULT_ENV] = f"{step}:{sig}"
        if fallback:
            outputs.exchange = lambda a, b: False
        try:
            runs[2].write(out)
        except KeyboardInterrupt:
            os._exit(3)
        except BaseException:
            os._exit(4)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    killed = state(parent)
    outputs.recover(out)
    print(json.dumps({"case": i, "status": status, "killed": killed, "recovered": state(parent)}), flush=True)
"""

# The program has tiers, so the set holds urr_by_tier.csv too.
WRITTEN = (*outputs.SIMULATION_FILES, "urr_by_tier.csv")
WRITE_STEPS = ("locked", "temporary", *WRITTEN, "synced", "swapped", "done")
# The steps after which the new set is in place.
NEW_AFTER = {"swapped", "done"}


def _cases() -> list[tuple[str, str, str, bool]]:
    cases = [(step, sig, phase, False) for step in WRITE_STEPS for sig in ("SIGKILL", "SIGINT") for phase in ("fresh", "over")]
    # The portable fallback: killed between its two renames, and once before and after them.
    cases += [(step, sig, "over", True) for step in ("synced", "aside", "swapped") for sig in ("SIGKILL", "SIGINT")]
    return cases


def _canonical(state: dict) -> dict:
    """Temporary folders' random suffixes replaced by `*`."""
    out: dict = {}
    for name, content in state.items():
        for kind in ("new", "old"):
            if name.startswith(f".out.{kind}-"):
                name = f".out.{kind}-*"
        out.setdefault(name, []).append(content)
    return out


@pytest.mark.slow
def test_a_write_killed_at_any_step_leaves_one_complete_set(tmp_path):
    cases = _cases()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(outputs.FAULT_ENV, None)
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(tmp_path), json.dumps(cases)], capture_output=True, text=True, env=env, timeout=240, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(reports) == len(cases)

    def listing(folder: Path) -> dict:
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}

    old, new = listing(tmp_path / "ref1"), listing(tmp_path / "ref2")
    assert set(new) == set(WRITTEN) and old != new
    # The two references differ in every file but rewards.csv's and report.html's assumptions alike.
    assert old["summary.json"] != new["summary.json"] and old["ledger.parquet"] != new["ledger.parquet"]
    for (step, sig, phase, fallback), rep in zip(cases, reports, strict=True):
        where = f"{sig} at {step} ({phase}{', fallback' if fallback else ''})"
        killed, recovered = _canonical(rep["killed"]), _canonical(rep["recovered"])
        before = None if phase == "fresh" else old
        if sig == "SIGKILL":
            assert os.WIFSIGNALED(rep["status"]), where
        # Ctrl-C is held back while the sets are swapped, so from `aside` on that write completes.
        expected = new if step in NEW_AFTER or (sig == "SIGINT" and step == "aside") else before
        if fallback and step == "aside" and sig == "SIGKILL":
            # Killed between the two renames: the folder is briefly absent, its set aside; mended next.
            assert "out" not in killed and killed[".out.old-*"] == [old], where
        elif expected is None:
            assert "out" not in killed, where
        else:
            assert killed["out"] == [expected], where
        # Leftovers (a half-written set, an old set aside) are all the next run finds; it mends them.
        assert set(killed) <= {"out", ".out.lock", ".out.new-*", ".out.old-*"}, where
        assert set(recovered) <= {"out", ".out.lock"}, where
        mended = old if (fallback and step == "aside" and sig == "SIGKILL") else expected
        assert recovered.get("out") == ([mended] if mended is not None else None), where


def _writer(text: str):
    return lambda p: p.write_text(text, encoding="utf-8")


def test_a_folder_of_other_files_is_refused_and_left_alone(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.docx").write_text("years of work")
    (out / "summary.json").write_text("{}")
    with pytest.raises(LoyaltyError, match="thesis.docx") as info:
        outputs.write_set(out, {"summary.json": _writer("new")})
    assert "choose a new or empty folder" in str(info.value)
    assert (out / "thesis.docx").read_text() == "years of work" and (out / "summary.json").read_text() == "{}"
    # A compare folder is not a simulation folder either.
    cmp = tmp_path / "cmp"
    outputs.write_set(cmp, {"compare.csv": _writer("a")})
    with pytest.raises(LoyaltyError, match="compare.csv"):
        outputs.check_target(cmp, outputs.SIMULATION_FILES)
    (tmp_path / "f").write_text("x")
    with pytest.raises(LoyaltyError, match="is a file"):
        outputs.write_set(tmp_path / "f", {"a": _writer("x")})


def test_a_second_write_replaces_the_whole_set_and_keeps_the_folder_mode(tmp_path):
    out = tmp_path / "o"
    outputs.write_set(out, {"a.csv": _writer("1")})
    os.chmod(out, 0o750)
    outputs.write_set(out, {"a.csv": _writer("3"), "b.csv": _writer("4")})
    assert sorted(p.name for p in out.iterdir()) == ["a.csv", "b.csv"] and (out / "a.csv").read_text() == "3"
    assert out.stat().st_mode & 0o777 == 0o750
    assert sorted(p.name for p in tmp_path.iterdir()) == [".o.lock", "o"]


def test_a_failing_writer_leaves_the_old_set(tmp_path):
    out = tmp_path / "o"
    outputs.write_set(out, {"a.csv": _writer("old")})

    def fail(path):
        path.write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(LoyaltyError, match="No space left on device.*unchanged"):
        outputs.write_set(out, {"a.csv": _writer("new"), "b.csv": fail})
    assert (out / "a.csv").read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == [".o.lock", "o"]


def test_the_fallback_swap_and_its_mending(tmp_path, monkeypatch):
    monkeypatch.setattr(outputs, "exchange", lambda a, b: False)
    out = tmp_path / "o"
    outputs.write_set(out, {"a.csv": _writer("1")})
    outputs.write_set(out, {"a.csv": _writer("2")})
    assert (out / "a.csv").read_text() == "2" and sorted(p.name for p in tmp_path.iterdir()) == [".o.lock", "o"]
    # What a kill between the two renames leaves: the set aside, no folder, a half-written new set.
    os.rename(out, tmp_path / ".o.old-abc")
    (tmp_path / ".o.new-def").mkdir()
    outputs.write_set(out, {"a.csv": _writer("3")})
    assert (out / "a.csv").read_text() == "3" and sorted(p.name for p in tmp_path.iterdir()) == [".o.lock", "o"]
    os.rename(out, tmp_path / ".o.old-abc")
    outputs.recover(out)
    assert (out / "a.csv").read_text() == "3"


def test_the_exchange_is_atomic_on_linux(tmp_path):
    if not sys.platform.startswith("linux"):
        pytest.skip("renameat2 is Linux's")
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a")
    (b / "x").write_text("b")
    if not outputs.exchange(a, b):
        pytest.skip("this filesystem cannot exchange folders")
    assert (a / "x").read_text() == "b" and (b / "x").read_text() == "a"
