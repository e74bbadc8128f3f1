"""simulator.api: what it records of its inputs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

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


def _held_bytes(values) -> int:
    """The bytes of the memory a column's values are a view of (the whole of it, not the view)."""
    import numpy as np
    import pandas as pd

    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.cat.codes
    if isinstance(values.array, pd.arrays.ArrowExtensionArray):  # Arrow text: its buffers, whole
        return values.array.__arrow_array__().get_total_buffer_size()
    arr = np.asarray(values.to_numpy())
    while isinstance(arr.base, np.ndarray):
        arr = arr.base
    return arr.nbytes


def test_the_results_load_report_keeps_the_columns_but_none_of_the_loaded_rows(tmp_path):
    # The report of a loaded history is its counts and its columns' types; an empty slice of the
    # loaded frame would be views holding every loaded array for as long as the result lives.
    import pandas as pd

    from simulator import io
    from simulator.api import simulate
    from tests.simulator.simkit import PROGRAM_TEXT, sample

    tx, cu = sample(customers=300, months=6)
    tx.to_parquet(tmp_path / "t.parquet")
    cu.to_parquet(tmp_path / "c.parquet")
    (tmp_path / "p.loyalty").write_text(PROGRAM_TEXT, encoding="utf-8")
    res = simulate(tmp_path / "p.loyalty", tmp_path / "t.parquet", tmp_path / "c.parquet", scenario={"runs": 1}, workers=1)
    loaded = io.load_transactions(tmp_path / "t.parquet").frame
    report = res.loads[0].frame
    assert len(loaded) > 1000 and len(report) == 0
    # (The columns the program reads, as the loader gives them.)
    assert {"customer_id", "timestamp", "amount", "transaction_id"} <= set(report.columns) <= set(loaded.columns)
    assert report.dtypes.to_dict() == loaded[report.columns].dtypes.to_dict()
    held = {c: _held_bytes(report[c]) for c in report.columns}
    assert max(held.values()) < 64, held
    assert isinstance(report.index, pd.RangeIndex)


def test_monthly_and_rewards_csv_text_cells_are_formula_safe(tmp_path):
    import pandas as pd

    from simulator.api import simulate
    from tests.simulator.simkit import ENGINE, program, sample, scenario

    tx, cu = sample(12, 2)
    result = simulate(program(), tx, cu, scenario(runs=1), workers=1, engine=ENGINE)
    # Reward and tier names are identifiers in the language, so no program makes these cells risky;
    # frames changed through the API can, and are written formula-safe all the same.
    result.rewards.loc[0, "reward"] = '=HYPERLINK("http://x")'
    result.monthly["month"] = "@" + result.monthly["month"].astype(str)
    result.write(tmp_path / "out")
    rewards = pd.read_csv(tmp_path / "out" / "rewards.csv", dtype=str, keep_default_na=False)
    assert rewards["reward"].iloc[0] == "'=HYPERLINK(\"http://x\")"
    monthly = pd.read_csv(tmp_path / "out" / "monthly.csv", dtype=str, keep_default_na=False)
    assert monthly["month"].str.startswith("'@").all() and monthly["opening"].iloc[0] == "0"


def test_the_clubcard_program_simulates_on_the_bundled_sample():
    """programs/clubcard.loyalty (GBP) on the bundled sample (its amounts read as GBP), half a
    year: the quarterly vouchers are issued at the end of March and June only, from points earned
    at least 14 days before; what is pending at the end is a part of the outstanding points."""
    from simulator.api import simulate
    from simulator.sample_data import bundled_paths
    from simulator.scenario import Scenario

    root = Path(__file__).resolve().parents[2]
    sc = Scenario.from_dict({"runs": 1, "period": "2026-01-01 to 2026-06-30", "vouchers": {"use_rate": 0.9}})
    res = simulate(root / "programs" / "clubcard.loyalty", *bundled_paths(), sc, workers=1)
    led = res.ledger
    vouchers = led[(led["kind"] == "redeem") & (led["reward"] == "clubcard_voucher")]
    assert len(vouchers) and set(vouchers["timestamp"].dt.strftime("%m-%d %H:%M:%S")) == {"03-31 23:59:59", "06-30 23:59:59"}
    assert (vouchers["earned_on"] + pd.Timedelta(days=14) <= vouchers["timestamp"].dt.normalize()).all()
    run = res.per_run[0]
    assert 0 < run["points_pending"] <= run["points_outstanding"]
    assert run["voucher_cost"] > 0 and run["reward_cost"] == 0 and run["discount_cost"] == run["discount_partner_funded"] > 0


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[2] / "programs").glob("*.loyalty")), ids=lambda p: p.stem)
def test_every_bundled_program_simulates_on_the_bundled_sample(path):
    """Each program in programs/ replays the bundled sample; its monthly roll-forward balances, and
    each of its earn rules posts somewhere (a win-back, a launch budget, a birthday...)."""
    from simulator.api import simulate
    from simulator.sample_data import bundled_paths
    from simulator.scenario import Scenario

    res = simulate(path, *bundled_paths(), Scenario.from_dict({"runs": 1, "seed": 4}), workers=1)
    m = res.monthly
    assert (m["opening"] + m["issued"] - m["clawed_back"] - m["redeemed"] - m["expired"] == m["closing"]).all()
    earned = set(res.ledger.loc[res.ledger["kind"].isin(["earn", "capped"]), "rule"])
    assert {r.name for r in res.program.model.rules} - earned == QUIET_ON_THE_SAMPLE.get(path.stem, set())


# Rules the bundled sample (2026, purchases, refunds, enrolments and referrals) cannot reach.
QUIET_ON_THE_SAMPLE = {
    "coffee": {"review"},  # the sample has no `review` events
    "fashion_vip": {"春节双倍"},  # the Spring Festival of 2027 is after the sample's year
    "supermarket": {"multibuy"},  # no basket of the sample holds 20 items
}
