"""simulator.provenance: the span, where each assumption came from, and the warnings a first screen
must show (in summary.json, the report and the terminal)."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from click.testing import CliRunner

import rulelang
from simulator import provenance
from simulator.api import simulate
from simulator.calibrate import response_block, run
from simulator.cli import main
from simulator.pilot import load_pilot
from simulator.scenario import Calibrated, GoalGradient, Normal, Response, load_scenario, loads_scenario
from tests.conftest import ROOT
from tests.simulator.simkit import ENGINE, PROGRAM_TEXT, program, sample, scenario

NO_LIFT = {"spend_uplift": 0.0, "visit_uplift": 0.0}


def _expiry(line: str):
    return rulelang.loads(PROGRAM_TEXT.replace("expire after 3 months", line), "t.loyalty").model.expiry


# --- the span -------------------------------------------------------------------------------------


def test_the_span_names_the_history_and_says_history_only_without_a_horizon():
    s = provenance.span(pd.Timestamp("2026-01-01 08:00"), pd.Timestamp("2026-12-31 21:00"), None)
    assert s["history"] == {"first_day": "2026-01-01", "last_day": "2026-12-31", "months": 12}
    assert s["forecast"] is None and s["months"] == 12
    assert s["text"] == "history 2026-01-01 to 2026-12-31 (12 months), history only"


def test_the_span_adds_the_forecast_months():
    horizon = {"months": 24, "first_day": "2027-01-01", "last_day": "2028-12-31"}
    s = provenance.span(pd.Timestamp("2026-03-15"), pd.Timestamp("2026-12-31"), horizon)
    assert s["history"]["months"] == 10 and s["forecast"] == {"first_day": "2027-01-01", "last_day": "2028-12-31", "months": 24}
    assert s["months"] == 34  # March 2026 to December 2028
    assert s["text"] == "history 2026-03-15 to 2026-12-31 (10 months) + forecast 24 months to 2028-12-31"


# --- where each assumption came from --------------------------------------------------------------

CALIBRATED = """\
runs: 5
redemption:
  source: {ledger: run/ledger.parquet}
  probability: 0.25
  choice: dearest
response:
  source: {pilot: coffee_pilot.yaml}
  spend_uplift: {normal: {mean: 0.02, sd: 0.01}}
  visit_uplift: {normal: {mean: 0.05, sd: 0.02}}
  goal_gradient: {within: 0.2, uplift: 0.03}
"""


def test_each_assumption_says_whether_it_was_typed_defaulted_given_or_calibrated():
    sc = loads_scenario(CALIBRATED, "sc.yaml").with_overrides(margin=0.5)
    got = {key: (a["source"], a["detail"]) for key, a in provenance.assumption_sources(sc).items()}
    assert got == {
        "enrollment.share": ("default", None),
        "enrollment.pick": ("default", None),
        "redemption.probability": ("ledger", "run/ledger.parquet"),
        "redemption.choice": ("ledger", "run/ledger.parquet"),
        "response.spend_uplift": ("pilot", "coffee_pilot.yaml"),
        "response.visit_uplift": ("pilot", "coffee_pilot.yaml"),
        "response.goal_gradient": ("scenario", "sc.yaml"),  # calibrate writes no goal gradient
        "margin": ("command line", None),
        "runs": ("scenario", "sc.yaml"),
        "seed": ("default", None),
    }


def test_a_command_line_value_outranks_a_calibrated_one():
    sc = loads_scenario(CALIBRATED, "sc.yaml").with_overrides(redemption_probability=0.4)
    got = provenance.assumption_sources(sc)
    assert got["redemption.probability"]["source"] == "command line" and got["redemption.probability"]["value"] == 0.4
    assert got["redemption.choice"]["source"] == "ledger"


def test_a_distribution_is_shown_with_its_95_percent_range_and_a_plain_uplift_as_a_percentage():
    got = provenance.assumption_sources(loads_scenario(CALIBRATED, "sc.yaml"))
    # 0.02 -/+ 1.96 x 0.01 = 0.0004 and 0.0396
    assert got["response.spend_uplift"]["shown"] == "+2.0% (95% +0.0% to +4.0%, drawn per run)"
    assert got["response.spend_uplift"]["value"] == {"normal": {"mean": 0.02, "sd": 0.01}}
    tiers = provenance.assumption_sources(loads_scenario("response: {spend_uplift: {Gold: 0.03, Black: 0.06}, visit_uplift: 0.02}"))
    assert tiers["response.spend_uplift"]["shown"] == "Gold +3.0%, Black +6.0%"
    assert tiers["response.visit_uplift"]["shown"] == "+2.0%"


def test_a_horizon_adds_the_fitted_models():
    horizon = {
        "bgnbd": {"customers": 10, "parameters": {"r": 0.5, "alpha": 1.0, "a": 0.2, "b": 3.0}},
        "gamma_gamma": {"customers": 8, "parameters": {"p": 6.0, "q": 3.0, "gamma": 15.0}},
        "seasonality": {"estimated": False, "index": {}},
    }
    got = provenance.assumption_sources(loads_scenario("horizon: 24 months", "sc.yaml"), horizon)
    assert got["horizon"]["source"] == "scenario"
    assert got["forecast.purchases"]["source"] == got["forecast.spend"]["source"] == "fitted"
    assert got["forecast.purchases"]["value"] == {"model": "BG/NBD", "r": 0.5, "alpha": 1.0, "a": 0.2, "b": 3.0}
    assert got["forecast.seasonality"]["source"] == "default"  # too short a history: flat


# --- the warnings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "zero"),
    [
        (Response(), True),
        (Response(spend_uplift=Normal(0.0, 0.0), visit_uplift=Normal(0.0, 0.0)), True),
        (Response(spend_uplift={"Gold": 0.0}), True),
        (Response(goal_gradient=GoalGradient(0.2, 0.0)), True),
        (Response(spend_uplift=0.01), False),
        (Response(spend_uplift={"Gold": 0.0, "Black": 0.02}), False),
        (Response(visit_uplift=0.02), False),
        (Response(spend_uplift=Normal(0.0, 0.01)), False),  # a range around 0 is an estimate, not an assumption of 0
        (Response(goal_gradient=GoalGradient(0.2, 0.05)), False),
    ],
)
def test_lift_is_assumed_zero_only_when_no_uplift_of_any_kind_is_given(response, zero):
    assert provenance.lift_assumed_zero(response) is zero


@pytest.mark.parametrize(
    ("line", "first", "earliest"),
    [
        ("expire after 12 months", "2026-01-01", "2027-01-01"),
        ("expire after 12 months", "2026-01-31", "2027-01-31"),
        ("expire after 90 days", "2026-01-01", "2026-04-01"),
        ("expire after 2 years", "2024-02-29", "2026-02-28"),
        ("expire after 6 months without purchase", "2026-03-31", "2026-09-30"),
        ("expire at end of year", "2026-05-01", "2026-12-31"),
        ("expire at end of next year", "2026-05-01", "2027-12-31"),
        ("expire never", "2026-05-01", None),
    ],
)
def test_the_earliest_expiry_by_kind_of_expiry(line, first, earliest):
    got = provenance.earliest_expiry(_expiry(line), dt.date.fromisoformat(first))
    assert got == (dt.date.fromisoformat(earliest) if earliest else None)


def test_no_expiry_warning_says_the_months_and_is_left_out_once_any_point_expired():
    expiry = _expiry("expire after 12 months")
    first, last = dt.date(2026, 1, 1), dt.date(2026, 12, 31)
    (w,) = provenance.warnings(Response(spend_uplift=0.01), expiry, first, last, 12, expired_any=False)
    assert w["message"] == "no points can expire within 12 months: breakage 0 is not an estimate"
    assert w["figures"] == ["points_expired", "breakage_rate"]
    assert provenance.warnings(Response(spend_uplift=0.01), expiry, first, dt.date(2027, 1, 1), 13, expired_any=False) == []
    assert provenance.warnings(Response(spend_uplift=0.01), _expiry("expire never"), first, dt.date(2030, 1, 1), 49, expired_any=False)[0]["code"] == provenance.NO_EXPIRY
    (lift,) = provenance.warnings(Response(), expiry, first, last, 12, expired_any=True)
    assert lift["message"] == "lift assumed 0: ROI shows cost only" and "roi" in lift["figures"]


@pytest.mark.parametrize(("months", "warned"), [(2, True), (6, False)])
def test_the_engine_agrees_with_the_expiry_warning(months, warned):
    # `expire after 3 months`: over 2 months of history nothing can expire, and the engine expired
    # nothing; over 6 months points do expire, and there is no warning.
    tx, cu = sample(customers=25, months=months)
    res = simulate(program(), tx, cu, scenario(runs=2), workers=1, engine=ENGINE)
    codes = [w["code"] for w in res.summary["warnings"]]
    assert (provenance.NO_EXPIRY in codes) is warned
    assert (res.summary["points_expired"]["p95"] == 0) is warned
    assert provenance.LIFT_ZERO not in codes  # simkit's scenario gives uplifts
    assert res.summary["span"]["history"]["months"] == months


def test_no_uplift_warns_in_the_summary_the_report_and_not_otherwise(tmp_path):
    tx, cu = sample(customers=25, months=6)
    res = simulate(program(), tx, cu, scenario(runs=2, response=NO_LIFT), workers=1, engine=ENGINE)
    assert [w["code"] for w in res.summary["warnings"]] == [provenance.LIFT_ZERO]
    assert res.summary["revenue_lift"]["p95"] == 0
    html = res.to_html(tmp_path / "report.html").read_text(encoding="utf-8")
    assert html.count("lift assumed 0: ROI shows cost only") >= 3  # above the cards, on them and beside the figures
    assert "no points can expire" not in html
    assert "history " + res.summary["span"]["history"]["first_day"] in html
    json.loads(res.summary_json())  # the warnings are data


# --- through the command: escaped, in the terminal and the report --------------------------------


def test_user_text_is_shown_as_text_in_the_terminal_and_escaped_in_the_report(tmp_path):
    tx, cu = sample(customers=20, months=2)
    tx.to_csv(tmp_path / "tx.csv", index=False)
    cu.to_csv(tmp_path / "cu.csv", index=False)
    (tmp_path / "p.loyalty").write_text(program().source.text.replace('"Test Club"', '"Club [bold]<b>x</b>[/bold]"'), encoding="utf-8")
    (tmp_path / "sc.yaml").write_text(
        "program: p.loyalty\ntransactions: tx.csv\ncustomers: cu.csv\nruns: 1\n"
        "response:\n  source: {pilot: \"[red]<i>pilot</i>[/red].yaml\"}\n  spend_uplift: {normal: {mean: 0.02, sd: 0.01}}\n",
        encoding="utf-8",
    )
    r = CliRunner().invoke(main, ["simulate", str(tmp_path / "sc.yaml"), "--out", str(tmp_path / "out"), "--workers", "1", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "[red]<i>pilot</i>[/red].yaml" in r.output and "Club [bold]<b>x</b>[/bold]" in r.output
    flat = " ".join(r.output.replace("│", " ").split())  # the table's note column wraps
    assert "0 no points can expire within 2 months: breakage 0 is not an estimate" in flat
    assert "lift assumed 0" not in flat
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "<i>pilot</i>" not in html and "&lt;i&gt;pilot&lt;/i&gt;" in html and "<b>x</b>" not in html
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["assumption_sources"]["response.spend_uplift"]["detail"] == "[red]<i>pilot</i>[/red].yaml"
    assert summary["assumptions"]["response"]["source"] == {"pilot": "[red]<i>pilot</i>[/red].yaml"}


# --- the README's first command -------------------------------------------------------------------


def test_the_quick_start_scenario_holds_what_calibrate_writes_from_the_bundled_pilot(monkeypatch):
    monkeypatch.chdir(ROOT)  # as the README runs it: the block records the pilot's path as given
    pilot = load_pilot("programs/coffee_pilot.yaml")
    written = loads_scenario(response_block(run(pilot)[0], pilot)).response
    committed = load_scenario(ROOT / "programs" / "coffee.yaml").response
    assert committed == written
    assert committed.source == Calibrated("pilot", "programs/coffee_pilot.yaml")


def test_the_quick_start_scenario_tells_a_credible_story():
    # The README's first command, with fewer runs: 24 months forecast, points expire within them,
    # the lift comes from the pilot (nonzero in every run), nothing is left to a warning.
    res = simulate(ROOT / "programs" / "coffee.loyalty", *_bundled(), load_scenario(ROOT / "programs" / "coffee.yaml").with_overrides(runs=3), workers=1, engine=ENGINE)
    s = res.summary
    assert s["span"]["forecast"]["months"] == 24 and s["span"]["months"] == 36
    assert s["warnings"] == []
    assert all(r["points_expired"] > 0 for r in res.per_run)
    assert all(r["revenue_lift"] != 0 for r in res.per_run)
    assert s["roi"]["p50"] != -1
    sources = s["assumption_sources"]
    assert sources["response.spend_uplift"]["source"] == sources["response.visit_uplift"]["source"] == "pilot"
    assert sources["horizon"]["source"] == "scenario" and sources["forecast.purchases"]["source"] == "fitted"
    # New customers join at the history's own rate, measured from it.
    joining = s["horizon"]["acquisition"]
    assert joining["source"] == "the history" and sources["acquisition.per_month"]["source"] == "fitted"
    assert sources["acquisition.per_month"]["value"] == joining["per_month"] > 0


def test_a_typed_acquisition_rate_is_the_scenarios():
    sc = loads_scenario("horizon: 12 months\nacquisition: {per_month: 5}", "sc.yaml")
    got = provenance.assumption_sources(sc, {"acquisition": {"per_month": 5.0, "source": "the scenario (acquisition.per_month)", "measured": "x"}})
    assert got["acquisition.per_month"]["source"] == "scenario" and got["acquisition.per_month"]["value"] == 5.0


def _bundled():
    from simulator.sample_data import bundled_paths

    return bundled_paths()
