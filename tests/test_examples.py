"""examples/: the copy of the shared examples folder that the tests read, and the data its scenario names."""

from __future__ import annotations

from pathlib import Path

import rulelang
from simulator.scenario import load_scenario
from tests.conftest import EXAMPLES, TARGET_PROGRAMS


def test_the_examples_are_all_here():
    names = sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in {".loyalty", ".yaml"})
    assert names == ["bean_club.loyalty", "freshmart.loyalty", "scenario.yaml", "yishang_vip.loyalty"]
    assert [p.name for p in TARGET_PROGRAMS] == ["bean_club.loyalty", "freshmart.loyalty", "yishang_vip.loyalty"]


def test_the_scenario_names_only_files_inside_the_repository():
    scenario = load_scenario(EXAMPLES / "scenario.yaml")
    for path in (scenario.program, scenario.transactions, scenario.customers):
        assert path is not None and path.is_file() and path.resolve().is_relative_to(EXAMPLES.resolve()), path
    assert rulelang.load(scenario.program).model.name == "Bean Club"


def test_the_scenario_data_is_what_make_data_writes(tmp_path: Path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_data", EXAMPLES / "make_data.py")
    make_data = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_data)
    for written in make_data.write(tmp_path):
        assert written.read_bytes() == (EXAMPLES / written.name).read_bytes(), f"{written.name}: run `python examples/make_data.py`"
