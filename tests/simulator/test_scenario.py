"""Scenario YAML: defaults, paths relative to the file, located errors, overrides, to_dict."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from simulator.scenario import GoalGradient, Scenario, ScenarioError, load_scenario, loads_scenario
from tests.conftest import EXAMPLES


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """The example scenario (examples/, the copy of ../shared/examples) next to the files it names."""
    shutil.copy(EXAMPLES / "scenario.yaml", tmp_path / "scenario.yaml")
    shutil.copy(EXAMPLES / "bean_club.loyalty", tmp_path / "bean_club.loyalty")
    (tmp_path / "transactions.csv").write_text("member_no,paid_at,total\n")
    (tmp_path / "customers.csv").write_text("member_no\n")
    return tmp_path / "scenario.yaml"


def _error(text: str, tmp_path: Path | None = None) -> str:
    with pytest.raises(ScenarioError) as info:
        loads_scenario(text, "s.yaml", tmp_path or ".")
    return str(info.value)


def test_example_scenario_loads_with_paths_relative_to_the_file(example: Path):
    s = load_scenario(example)
    assert s.program == example.parent / "bean_club.loyalty"
    assert s.transactions == example.parent / "transactions.csv"
    assert dict(s.columns) == {"customer_id": "member_no", "timestamp": "paid_at", "amount": "total"}
    assert str(s.period) == "2026-01-01 to 2026-12-31"
    assert (s.enrollment.share, s.enrollment.pick) == (0.4, "random")
    assert (s.redemption.probability, s.redemption.choice) == (0.35, "cheapest")
    assert s.response.spend_uplift_for("Gold") == 0.03 and s.response.spend_uplift_for("Nope") == 0.0
    assert (s.response.visit_uplift, s.margin, s.runs, s.seed) == (0.02, 0.62, 200, 42)


def test_empty_scenario_gives_documented_defaults():
    s = loads_scenario("")
    assert s == Scenario.from_dict({}) == Scenario.from_dict(None)
    assert (s.program, s.transactions, s.customers, s.period) == (None, None, None, None)
    assert (s.enrollment.share, s.enrollment.pick, s.redemption.probability, s.redemption.choice) == (1.0, "random", 0.3, "cheapest")
    assert (s.response.spend_uplift, s.response.visit_uplift, s.response.goal_gradient) == (0.0, 0.0, None)
    assert (s.margin, s.runs, s.seed) == (0.6, 100, 0)


def test_no_transactions_means_the_bundled_sample():
    from simulator.sample_data import bundled_paths

    assert loads_scenario("runs: 3").data_paths() == bundled_paths()


def test_probability_out_of_range_names_key_and_place():
    msg = _error("runs: 10\nredemption:\n  choice: cheapest\n  probability: 1.3\n")
    assert msg.startswith("s.yaml:4:16: error: redemption.probability: 1.3 is out of range")
    assert "between 0 and 1" in msg


@pytest.mark.parametrize(
    "text, where, expected",
    [
        ("enrollment:\n  shares: 0.4\n", "s.yaml:2:3:", "enrollment.shares: unknown key `shares`; did you mean `share`?"),
        ("rnus: 5\n", "s.yaml:1:1:", "unknown key `rnus`; did you mean `runs`?"),
        ("redemption: {choice: cheapst}\n", "s.yaml:1:22:", "did you mean `cheapest`?"),
        ("columns:\n  custmer_id: member_no\n", "s.yaml:2:3:", "did you mean `customer_id`?"),
        ("columns:\n  member_no: customer_id\n", "s.yaml:2:3:", "write `customer_id: member_no`"),
    ],
)
def test_unknown_names_get_did_you_mean(text, where, expected):
    msg = _error(text)
    assert msg.startswith(where) and expected in msg


@pytest.mark.parametrize(
    "text, expected",
    [
        ('runs: "100"\n', "runs: expected a whole number of runs, at least 1, got '100'"),
        ("runs: 2.0\n", "(write 2)"),
        ("runs: 0\n", "runs: 0 is out of range"),
        ("seed: true\n", "seed: expected a whole number, 0 or more, got true"),
        ("margin: high\n", "margin: expected a share between 0 and 1"),
        ("enrollment: 0.4\n", "enrollment: expected a section with keys share, pick"),
        ("period: 2026-01-01\n", "period: expected a period like `2026-01-01 to 2026-12-31`"),
        ("period: 2026-12-31 to 2026-01-01\n", "ends (2026-01-01) before it starts"),
        ("period: 2026-02-30 to 2026-03-01\n", "`2026-02-30` is not a date"),
        ("response: {spend_uplift: 3}\n", "response.spend_uplift: 3 is out of range; expected a share between -1 and 1"),
        ("response: {spend_uplift: {Gold: lots}}\n", "response.spend_uplift.Gold: expected a share"),
        ("response: {visit_uplift: -0.1}\n", "response.visit_uplift: -0.1 is out of range"),
        ("response: {goal_gradient: {within: 0.1}}\n", "`uplift` is missing"),
        ("columns: [a, b]\n", "columns: expected a mapping"),
        ("- runs\n", "(top level): expected a mapping"),
        ("runs: [\n", "not valid YAML"),
        ("program: 3\n", "program: expected a file path"),
        ("program: missing.loyalty\n", "program: no such file"),
    ],
)
def test_bad_values_are_errors_naming_the_key(text, expected):
    msg = _error(text)
    assert msg.startswith("s.yaml") and expected in msg


def test_goal_gradient_and_tier_uplifts():
    s = loads_scenario("response:\n  spend_uplift: {Gold: 0.05}\n  goal_gradient: {within: 0.2, uplift: 0.1}\n")
    assert s.response.goal_gradient == GoalGradient(0.2, 0.1)
    assert s.response.spend_uplift_for("Gold") == 0.05


def test_yaml_cannot_run_code():
    msg = _error("runs: !!python/object/apply:os.system ['true']\n")
    assert "not valid YAML" in msg


def test_overrides_replace_keys_and_are_validated(example: Path):
    s = load_scenario(example)
    o = s.with_overrides(runs=7, seed=None, redemption_probability=0.5, **{"enrollment.pick": "top_spenders"}, margin=0.5)
    assert (o.runs, o.seed, o.redemption.probability, o.enrollment.pick, o.margin) == (7, 42, 0.5, "top_spenders", 0.5)
    assert o.program == s.program and o.columns == s.columns and o.source == s.source
    with pytest.raises(ScenarioError, match=r"command line: error: redemption.probability: 1.3 is out of range"):
        s.with_overrides(redemption_probability=1.3)
    with pytest.raises(ScenarioError, match="unknown scenario setting `speed`"):
        s.with_overrides(speed=1)
    with pytest.raises(ScenarioError, match="program: no such file"):
        s.with_overrides(program="nowhere.loyalty")


def test_to_dict_round_trips_and_is_deterministic(example: Path):
    s = load_scenario(example)
    d = s.to_dict()
    assert list(d) == ["program", "transactions", "customers", "columns", "period", "enrollment", "redemption", "response", "margin", "runs", "seed"]
    assert load_scenario(example).to_dict() == d
    assert Scenario.from_dict(d, ".", s.source) == s


def test_every_problem_of_a_scenario_is_reported_at_once_in_file_order():
    text = "runs: -3\nseed: x\nenrollment:\n  share: 2\n  pik: random\nredemption:\n  choice: cheap\nmargn: 0.5\n"
    with pytest.raises(ScenarioError) as err:
        loads_scenario(text, "sc.yaml")
    lines = str(err.value).splitlines()
    assert [line.split(": error: ")[0] for line in lines] == ["sc.yaml:1:7", "sc.yaml:2:7", "sc.yaml:4:10", "sc.yaml:5:3", "sc.yaml:7:11", "sc.yaml:8:1"]
    assert "did you mean `pick`?" in lines[3] and "did you mean `cheapest`?" in lines[4] and "did you mean `margin`?" in lines[5]
