"""A ledger simulated from the bundled coffee program on the bundled sample (one run), shared by the
finance tests: the simulation takes a while, so it runs once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="session")
def coffee_ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    """(the ledger DataFrame, the path of it written as `loyalty simulate` writes ledger.parquet, the
    run's monthly table as monthly.csv holds it)."""
    import pyarrow.parquet as pq

    import simulator
    from simulator.api import ledger_parquet_options, ledger_table
    from simulator.sample_data import bundled_paths

    tx, cu = bundled_paths()
    result = simulator.simulate(ROOT / "programs" / "coffee.loyalty", tx, cu, scenario={"runs": 1}, workers=1)
    path = Path(tmp_path_factory.mktemp("coffee")) / "ledger.parquet"
    table = ledger_table(result.ledger, result.program.model.decimals)
    pq.write_table(table, path, **ledger_parquet_options(table.schema))
    return result.ledger, path, result.monthly
