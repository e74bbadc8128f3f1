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


def test_a_history_with_no_usable_row_says_why_its_rows_were_rejected(tmp_path):
    import pytest

    from rulelang.errors import LoyaltyError
    from simulator.api import simulate
    from tests.simulator.simkit import PROGRAM_TEXT

    (tmp_path / "p.loyalty").write_text(PROGRAM_TEXT, encoding="utf-8")
    (tmp_path / "t.csv").write_text("customer_id,timestamp,amount,currency\nA,2026-01-01,5,USD\nB,2026-01-02,x,CNY\n", encoding="utf-8")
    with pytest.raises(LoyaltyError) as info:
        simulate(tmp_path / "p.loyalty", tmp_path / "t.csv", scenario={"runs": 1}, workers=1)
    message = str(info.value)
    assert "no usable transaction rows (2 read, 2 rejected" in message
    assert "(column currency): row 1" in message and "(column amount): row 2" in message
