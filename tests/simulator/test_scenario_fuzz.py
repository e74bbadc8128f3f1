"""Fuzzing scenario YAML: whatever the text, `loads_scenario` gives a valid Scenario or a ScenarioError.

The error is the project's own (a `LoyaltyError`), each of its lines reads `source[:line:col]: error: ...`
with a line inside the text, it is bounded in length and holds no raw control character.
"""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rulelang.errors import LoyaltyError
from simulator.scenario import FIRST_DAY, LAST_DAY, MAX_PROBLEMS, Scenario, loads_scenario
from tests.strategies import scenario_yaml_texts

HERE = Path(__file__).parent  # paths a scenario names are looked up here; none of the fuzzed ones exist
LINE = re.compile(r"fuzz\.yaml(?::(\d+):(\d+))?: error: \S")


def survive(text: str) -> None:
    try:
        scenario = loads_scenario(text, "fuzz.yaml", HERE)
    except LoyaltyError as exc:
        message = str(exc)
        lines = message.split("\n")
        event(f"error: {lines[0].partition(': error: ')[2][:30]}")
        assert len(lines) <= MAX_PROBLEMS + 1
        for line in lines:
            m = LINE.match(line)
            assert m, line
            assert len(line) <= 600, line
            assert all(ch.isprintable() for ch in line), line  # unprintables are shown escaped
            if m[1]:
                assert 1 <= int(m[1]) <= len(text.splitlines()) + 1 and int(m[2]) >= 1, line
        return
    event("loaded")
    assert isinstance(scenario, Scenario)
    assert 0 <= scenario.margin <= 1 and 1 <= scenario.runs <= 1_000_000 and 0 <= scenario.seed < 2**63
    assert 0 <= scenario.redemption.probability <= 1 and 0 <= scenario.enrollment.share <= 1
    if scenario.period is not None:
        assert FIRST_DAY <= scenario.period.start <= scenario.period.end <= LAST_DAY


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario_yaml_texts())
def test_random_scenario_yaml_raises_only_located_bounded_project_errors(text):
    survive(text)


@settings(max_examples=100, deadline=None)
@given(st.text(st.sampled_from(list("ab:-?&*!|>'\"[]{},#%@`\\ \t\n\r0\x00\x1b\x85\u2028\ufeff积")), max_size=60))
def test_random_characters_raise_only_located_bounded_project_errors(text):
    survive(text)
