"""Scenario YAML: defaults, paths relative to the file, located errors, overrides, to_dict."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.scenario import GoalGradient, Scenario, ScenarioError, load_scenario, loads_scenario
from tests.conftest import EXAMPLES


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """The example scenario (examples/, the copy of the shared examples folder) next to the files it names."""
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
    assert msg == (
        "s.yaml:1:7: error: the tag `!!python/object/apply:os.system` is not allowed in a scenario; "
        "write plain text, numbers, true/false, lists and mappings"
    )


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


# --- hostile YAML: bounded, located, never a traceback ------------------------------------------

BILLION_LAUGHS = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
    "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
    "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
    "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
    "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
    "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n"
    "runs: *i\n"
)


@pytest.mark.parametrize(
    "text, expected",
    [
        (BILLION_LAUGHS, "s.yaml:1:4: error: `&a`: anchors and aliases are not allowed in a scenario; write the value out in full"),
        ("runs: *x\n", "s.yaml:1:7: error: `*x`: anchors and aliases are not allowed in a scenario; write the value out in full"),
        ("<<: {runs: 3}\n", "s.yaml:1:1: error: `<<` merge keys are not allowed in a scenario; write the keys out in full"),
        ("seed: !foo 3\n", "s.yaml:1:7: error: the tag `!foo` is not allowed in a scenario; write plain text, numbers, true/false, lists and mappings"),
        ("[" * 5000 + "]" * 5000, "s.yaml:1:33: error: nested more than 32 levels deep; a scenario nests three at most"),
        ("".join("  " * i + f"k{i}:\n" for i in range(40)), "s.yaml:33:65: error: nested more than 32 levels deep; a scenario nests three at most"),
        ("runs: [" + "1," * 20_000 + "1]\n", "s.yaml:1:20002: error: more than 10,000 values; a scenario has a few dozen"),
        ("runs: 1\nseed: 2\nruns: 3\n", "s.yaml:3:1: error: runs: the key is given twice (first on line 1); keep one"),
        ("runs: 2026-13-45\n", "s.yaml:1:7: error: cannot read '2026-13-45' as a date; quote it if it is text"),
        ("seed: !!int abc\n", "s.yaml:1:7: error: cannot read 'abc' as a whole number; quote it if it is text"),
        ("seed: !!bool maybe\n", "s.yaml:1:7: error: cannot read 'maybe' as true or false; quote it if it is text"),
        ("? [a]\n: 1\n", "s.yaml:1:3: error: a key must be a name or a number, not a list or a mapping"),
        ("seed: " + "9" * 5000 + "\n", "s.yaml:1:7: error: a number of 5,000 characters is longer than any scenario value (at most 64)"),
        ("a: 1\r\n\r\nb: \u2028c\x1b", "s.yaml:4:2: error: not valid YAML: the character \\x1b (U+001B) is not allowed in YAML; remove it"),
        ("---\nrun: 1\n---\nruns: 2\n", "s.yaml:3:1: error: not valid YAML: expected a single document in the stream, but found another document"),
    ],
)
def test_hostile_yaml_is_refused_at_its_place(text, expected):
    assert _error(text) == expected


def test_a_key_given_twice_is_reported_with_the_other_problems():
    text = "runs: 0\nresponse: {spend_uplift: {Gold: 0.1, Gold: 2}}\nruns: 5\n"
    assert _error(text).splitlines() == [
        "s.yaml:2:38: error: response.spend_uplift.Gold: the key is given twice (first on line 2); keep one",
        "s.yaml:2:44: error: response.spend_uplift.Gold: 2 is out of range; expected a share between -1 and 1 (0.03 means +3%)",
        "s.yaml:3:1: error: runs: the key is given twice (first on line 1); keep one",
    ]


def test_a_scenario_over_one_mebibyte_is_refused_before_it_is_parsed(tmp_path: Path):
    text = "# " + "x" * (1024 * 1024) + "\nruns: 1\n"
    assert _error(text) == "s.yaml: error: the scenario is larger than 1,048,576 bytes (1 MiB); a scenario needs a few hundred"
    big = tmp_path / "big.yaml"
    big.write_text(text)
    with pytest.raises(ScenarioError, match=r"big.yaml: error: the scenario is larger than 1,048,576 bytes"):
        load_scenario(big)
    assert loads_scenario("# " + "x" * 1000 + "\nruns: 2\n").runs == 2  # a long comment under the limit is fine


def test_a_scenario_path_that_is_not_a_regular_file_is_refused(tmp_path: Path):
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)  # reading it would block for ever
    with pytest.raises(ScenarioError) as info:
        load_scenario(fifo)
    assert str(info.value) == f"{fifo}: error: not a regular file; name a scenario YAML file"
    with pytest.raises(ScenarioError, match=r"error: no such scenario file$"):
        load_scenario(tmp_path / "absent.yaml")


def test_a_value_in_a_message_is_cut_and_its_control_characters_escaped():
    value = "\\x1b[31mred\\u202e" + "x" * 5000
    msg = _error(f'runs: "{value}"\n')
    shown = "'\\x1b[31mred\\u202e" + "x" * 61 + "…"
    assert msg == f"s.yaml:1:7: error: runs: expected a whole number of runs, at least 1, got {shown}"
    assert len(shown) == 80 and "\x1b" not in msg and "\u202e" not in msg


def test_an_unknown_key_is_cut_and_escaped_too():
    msg = _error('"k\\x07' + "y" * 300 + '": 1\n')
    key = "k\\x07" + "y" * 74 + "…"  # 80 characters, the escape counted as shown
    assert msg.startswith(f"s.yaml:1:1: error: {key}: unknown key `{key}`; known keys: program")


def test_many_problems_are_listed_up_to_fifty():
    lines = _error("".join(f"k{i}: 1\n" for i in range(120))).splitlines()
    assert len(lines) == 51
    assert lines[49].startswith("s.yaml:50:1: error: k49: unknown key `k49`")
    assert lines[50] == "s.yaml: error: 70 more problems not shown"


def test_every_backwards_column_mapping_is_reported_at_once_in_file_order():
    text = "columns:\n  member_no: customer_id\n  paid_at: timestamp\n  total: amount\n  kind: event\n  store: shop\n"
    assert _error(text).splitlines() == [
        "s.yaml:2:3: error: columns.member_no: the mapping is canonical name -> your column; write `customer_id: member_no`",
        "s.yaml:3:3: error: columns.paid_at: the mapping is canonical name -> your column; write `timestamp: paid_at`",
        "s.yaml:4:3: error: columns.total: the mapping is canonical name -> your column; write `amount: total`",
        "s.yaml:5:3: error: columns.kind: the mapping is canonical name -> your column; write `event: kind`",
    ]


def test_each_column_mapped_twice_is_named_with_the_first_canonical_name():
    pairs = [f"  c{i}: src{i}\n" for i in range(3000)] + ["  customer_id: src7\n", "  amount: src2999\n", "  sku: src7\n"]
    assert _error("columns:\n" + "".join(pairs)).splitlines() == [
        "s.yaml:3002:16: error: columns.customer_id: your column `src7` is already mapped to `c7`; map it to one canonical name",
        "s.yaml:3003:11: error: columns.amount: your column `src2999` is already mapped to `c2999`; map it to one canonical name",
        "s.yaml:3004:8: error: columns.sku: your column `src7` is already mapped to `c7`; map it to one canonical name",
    ]
    assert len(loads_scenario("columns:\n" + "".join(pairs[:3000])).columns) == 3000


@pytest.mark.parametrize(
    "period, day",
    [("1600-01-01 to 2026-12-31", "1600-01-01"), ("0001-01-01 to 9999-12-31", "0001-01-01"),
     ("2026-01-01 to 9999-12-31", "9999-12-31"), ("1677-09-21 to 2026-01-01", "1677-09-21"), ("2026-01-01 to 2262-04-11", "2262-04-11")],
)  # fmt: skip
def test_a_period_the_engine_cannot_hold_is_an_error_at_the_key(period, day):
    assert _error(f"runs: 1\nperiod: {period}\n") == (
        f"s.yaml:2:9: error: period: {day} is outside the days the simulator can hold, 1677-09-22 to 2262-04-10"
    )


def test_the_period_limits_are_the_first_and_last_whole_days_of_datetime64_ns():
    period = loads_scenario("period: 1677-09-22 to 2262-04-10\n").period
    day = dt.timedelta(days=1)
    # the first day's midnight and the midnight after the last day (the period's open end) both fit
    pd.Timestamp(period.start).as_unit("ns")
    pd.Timestamp(period.end + day).as_unit("ns")
    with pytest.raises(pd.errors.OutOfBoundsDatetime):
        pd.Timestamp(period.start - day).as_unit("ns")
    with pytest.raises(pd.errors.OutOfBoundsDatetime):
        pd.Timestamp(period.end + 2 * day).as_unit("ns")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("seed: 9223372036854775808\n", "s.yaml:1:7: error: seed: 9223372036854775808 is out of range; expected a whole number, 0 or more"),
        ("seed: 9223372036854775807\nmargin: 1.0e+400\n", "s.yaml:2:9: error: margin: inf is out of range; expected a share between 0 and 1 (0.6 means a 60% gross margin)"),
        ("margin: .nan\n", "s.yaml:1:9: error: margin: nan is out of range; expected a share between 0 and 1 (0.6 means a 60% gross margin)"),
        ("redemption: {probability: -.inf}\n", "s.yaml:1:27: error: redemption.probability: -inf is out of range; expected a probability between 0 and 1"),
        ("margin: 1e400\n", "s.yaml:1:9: error: margin: expected a share between 0 and 1 (0.6 means a 60% gross margin), got '1e400'"),
        ("runs: 1.0e+300\n", "s.yaml:1:7: error: runs: expected a whole number of runs, at least 1, got 1e+300"),
        ('program: "a\\0b"\n', "s.yaml:1:10: error: program: a file path cannot hold control characters, got 'a\\x00b'"),
    ],
)
def test_values_the_engine_cannot_hold_are_errors(text, expected):
    assert _error(text) == expected


def test_a_path_too_long_for_the_file_system_is_no_such_file():
    msg = _error("program: " + "a" * 5000 + "\n")
    assert msg.startswith("s.yaml:1:10: error: program: no such file: aaaa") and "…" in msg and len(msg) < 400


# --- uplifts given as distributions (what `loyalty calibrate` writes) ---------------------------------

_CALIBRATED = "response:\n  spend_uplift: {normal: {mean: 0.04, sd: 0.02}}\n  visit_uplift: {normal: {mean: 0.03, sd: 0.05}}\n"


def test_uplift_distributions_are_read_and_round_trip():
    from simulator.scenario import Normal

    s = loads_scenario(_CALIBRATED)
    assert s.response.spend_uplift == Normal(0.04, 0.02)
    assert s.response.visit_uplift == Normal(0.03, 0.05)
    assert s.to_dict()["response"]["spend_uplift"] == {"normal": {"mean": 0.04, "sd": 0.02}}
    assert s.with_overrides(runs=5).response == s.response


@pytest.mark.parametrize(
    "text, message",
    [
        ("response:\n  spend_uplift: {normal: {mean: 0.04, sd: -0.1}}\n", "<scenario>:2:43: error: response.spend_uplift.normal.sd: -0.1 is out of range"),
        ("response:\n  spend_uplift: {normal: {mean: 0.04}}\n", "<scenario>:2:26: error: response.spend_uplift.normal: `sd` is missing"),
        ("response:\n  visit_uplift: {normal: {mean: 0.04, sigma: 0.1}}\n", "response.visit_uplift.normal.sigma: unknown key `sigma`"),
        ("response:\n  visit_uplift: {normal: 0.1}\n", "<scenario>:2:26: error: response.visit_uplift.normal: expected the mean and standard deviation"),
        ("response:\n  visit_uplift: {normal: {mean: 2, sd: 0.1}}\n", "<scenario>:2:33: error: response.visit_uplift.normal.mean: 2 is out of range"),
        ("response:\n  visit_uplift: {mean: 0.1}\n", "response.visit_uplift: expected a share between 0 and 1 (0.02 means +2% visits) or a distribution"),
    ],
)
def test_uplift_distribution_mistakes_name_the_key_and_place(text, message):
    with pytest.raises(ScenarioError) as e:
        loads_scenario(text)
    assert message in str(e.value)


def test_each_run_draws_its_uplifts_from_its_own_stream():
    from statistics import NormalDist

    from simulator import rng
    from simulator.scenario import STREAM_UPLIFT

    r = loads_scenario(_CALIBRATED).response
    assert r.for_run(7, 3) == r.for_run(7, 3)
    draws = [r.for_run(7, run) for run in range(4000)]
    spend = np.array([d.spend_uplift for d in draws])
    visits = np.array([d.visit_uplift for d in draws])
    # The draw is the normal quantile of the run's uniform (stream STREAM_UPLIFT, counter 0), an independent recomputation.
    u = rng.uniform(7, 5, np.zeros(1, dtype=np.uint64), np.zeros(1, dtype=np.uint64), STREAM_UPLIFT)[0] + 2.0**-54
    assert spend[5] == pytest.approx(0.04 + 0.02 * NormalDist().inv_cdf(u))
    assert abs(spend.mean() - 0.04) < 4 * 0.02 / np.sqrt(4000)
    assert spend.std() == pytest.approx(0.02, rel=0.05)
    # Visits: a normal(0.03, 0.05) clipped into [0, 1]: P(draw < 0) = Phi(-0.6), about 27%.
    assert (visits >= 0).all() and np.mean(visits == 0) == pytest.approx(NormalDist().cdf(-0.6), abs=0.03)
    # Spend below -1 is clipped to -1.
    low = loads_scenario("response: {spend_uplift: {normal: {mean: -0.9, sd: 0.5}}}").response
    lows = np.array([low.for_run(1, run).spend_uplift for run in range(1000)])
    assert lows.min() == -1.0 and np.mean(lows == -1.0) == pytest.approx(NormalDist().cdf(-0.2), abs=0.05)
    # Plain numbers: the very same response, so a fixed uplift behaves as before.
    fixed = loads_scenario("response: {spend_uplift: 0.03, visit_uplift: 0.02}").response
    assert fixed.for_run(7, 3) is fixed


# --- a calibrated block's source, and which keys were typed -----------------------------------------


def test_a_calibrated_block_keeps_its_source_through_overrides_and_into_the_assumptions():
    from simulator.scenario import Calibrated

    s = loads_scenario(
        "response:\n  source: {pilot: pilots/spring.yaml}\n  spend_uplift: {normal: {mean: 0.02, sd: 0.01}}\n"
        "redemption: {source: {ledger: ledger.parquet}, probability: 0.2}\n"
    )
    assert s.response.source == Calibrated("pilot", "pilots/spring.yaml")
    assert s.redemption.source == Calibrated("ledger", "ledger.parquet")
    again = s.with_overrides(runs=3)
    assert again.response.source == s.response.source and again.redemption.source == s.redemption.source
    assert again.to_dict()["response"]["source"] == {"pilot": "pilots/spring.yaml"}
    assert "source" not in loads_scenario("response: {visit_uplift: 0.02}").to_dict()["response"]  # reports as they were


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("response:\n  source: {pilt: a.yaml}\n", "s.yaml:2:12: error: response.source.pilt: unknown source `pilt`; expected `{pilot: FILE}` or `{ledger: FILE}`"),
        ("response:\n  source: a.yaml\n", "s.yaml:2:11: error: response.source: expected `{pilot: FILE}` or `{ledger: FILE}`"),
        ("redemption:\n  source: {ledger: 3}\n", "s.yaml:2:20: error: redemption.source.ledger: expected a file path, got 3"),
        ("redemption:\n  source: {ledger: a, pilot: b}\n", "s.yaml:2:11: error: redemption.source: expected `{pilot: FILE}` or `{ledger: FILE}`"),
    ],
)
def test_a_source_that_is_not_a_calibration_record_is_an_error_at_its_place(text, message):
    assert message in _error(text)


def test_typed_records_the_keys_given_and_where():
    s = loads_scenario("runs: 4\nenrollment: {share: 0.5}\nresponse: {source: {pilot: p.yaml}, visit_uplift: 0.02}\n")
    assert dict(s.typed) == {"runs": "scenario", "enrollment.share": "scenario", "response.visit_uplift": "scenario"}
    t = s.with_overrides(seed=9, redemption_probability=0.2)
    assert dict(t.typed) == {**s.typed, "seed": "command line", "redemption.probability": "command line"}
    assert dict(Scenario().typed) == {}
# --- accounting ----------------------------------------------------------------------------------


def test_the_accounting_key_reads_both_methods_and_round_trips():
    from simulator.scenario import Accounting

    s = loads_scenario("accounting: {method: deferred_revenue, value_per_point: 0.01, expected_redemption: 0.9}\n")
    assert s.accounting == Accounting("deferred_revenue", 0.01, 0.9)
    assert loads_scenario("accounting:\n  method: cost\n").accounting == Accounting("cost", None, "estimated")
    assert Scenario().accounting is None and "accounting" not in Scenario().to_dict()
    again = Scenario.from_dict(s.to_dict())
    assert again.accounting == s.accounting and again.with_overrides(runs=3).accounting == s.accounting


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("runs: 2\naccounting: {method: cash}\n", "s.yaml:2:22: error: accounting.method: expected `method: deferred_revenue`"),
        ("accounting:\n  method: deferred_revenue\n", "s.yaml:2:3: error: accounting: `value_per_point` is missing"),
        ("accounting:\n  method: cost\n  value_per_point: 0.01\n", "s.yaml:3:3: error: accounting.value_per_point: the cost method values points at the program's point cost"),
        (
            "accounting: {method: deferred_revenue, value_per_point: 0.01, expected_redemption: 1.2}\n",
            "s.yaml:1:84: error: accounting.expected_redemption: expected `estimated` (each run's URR at each month's end) or a redemption rate above 0",
        ),
        ("accounting: {method: deferred_revenue, value_per_point: -1}\n", "s.yaml:1:57: error: accounting.value_per_point: -1 is out of range"),
        ("accounting: {method: cost, expected_redemtion: 0.9}\n", "s.yaml:1:28: error: accounting.expected_redemtion: unknown key `expected_redemtion`; did you mean `expected_redemption`?"),
        ("accounting: yes\n", "s.yaml:1:13: error: accounting: expected a section like"),
    ],
)
def test_a_bad_accounting_key_is_named_with_its_place(text, expected):
    assert _error(text).startswith(expected)


def test_voucher_use_rate_is_checked_like_the_other_keys():
    msg = _error("vouchers:\n  use_rate: 1.2\n")
    assert msg.startswith("s.yaml:2:13: error: vouchers.use_rate: 1.2 is out of range") and "between 0 and 1" in msg
    assert "did you mean `use_rate`?" in _error("vouchers:\n  use_rat: 0.5\n")
    assert loads_scenario("vouchers: {use_rate: 0.85}\n").voucher_use_rate == 0.85
    plain = loads_scenario("runs: 3\n")
    assert plain.voucher_use_rate is None and "vouchers" not in plain.to_dict()  # absent: a scenario reads as before
    assert loads_scenario("vouchers: {use_rate: 0.85}\n").to_dict()["vouchers"] == {"use_rate": 0.85}
def test_the_chance_to_pay_with_points_is_checked_like_the_other_redemption_keys():
    assert loads_scenario("redemption:\n  pay_with_points: 0.25\n").redemption.pay_with_points == 0.25
    assert loads_scenario("runs: 3\n").redemption.pay_with_points == 0.0
    msg = _error("redemption:\n  pay_with_points: 1.5\n")
    assert msg.startswith("s.yaml:2:20: error: redemption.pay_with_points: 1.5 is out of range") and "between 0 and 1" in msg
    assert "did you mean `pay_with_points`?" in _error("redemption:\n  pay_with_point: 0.2\n")
    # Given, it is reported with the assumptions; not given, the report is as it was.
    assert loads_scenario("redemption:\n  pay_with_points: 0.25\n").to_dict()["redemption"]["pay_with_points"] == 0.25
    assert "pay_with_points" not in loads_scenario("runs: 3\n").to_dict()["redemption"]
