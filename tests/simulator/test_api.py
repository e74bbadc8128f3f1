"""simulator.api: what it records of its inputs."""

from __future__ import annotations

from pathlib import Path

from simulator.api import describe_sources


def test_an_input_that_is_not_a_regular_file_is_not_hashed(tmp_path):
    # A pipe would block the hash, /dev/zero never end it (and the run waits for the hash): such an
    # input is recorded as what it is, unread (here a link to /dev/null, which ends at once).
    (tmp_path / "dev.csv").symlink_to("/dev/null")
    got = describe_sources({"transactions": Path(tmp_path / "dev.csv"), "customers": None})
    assert got["transactions"] == {"path": "/dev/null", "sha256": None, "given": "not a regular file"}
    assert got["customers"]["given"] == "none"
