"""`loyalty sensitivity`: the tornado and the break-even against independent oracles.

The oracles: `simulate` itself, run separately with the moved scenario (common random numbers make
each run of a moved scenario equal, figure for figure, to the tornado's run); the margin's effect
worked out by hand from each run's summary figures with Decimal; the liability's linearity in the
URR; percentiles taken by counting (inverted CDF) rather than through the code under test.
"""

from __future__ import annotations

import json
import math
from decimal import ROUND_HALF_UP, Decimal

import pytest
from click.testing import CliRunner

from simulator import sensitivity as sens
from simulator.api import simulate
from simulator.cli import main
from tests.simulator.simkit import ENGINE, PROGRAM_TEXT, program, sample

SCENARIO = {
    "runs": 5,
    "seed": 11,
    "enrollment": {"share": 0.7},
    "redemption": {"probability": 0.4},
    "response": {"spend_uplift": 0.03, "visit_uplift": 0.05},
    "margin": 0.5,
}


@pytest.fixture(scope="module")
def data():
    return sample(60, 8, seed=5)


@pytest.fixture(scope="module")
def result(data):
    tx, cu = data
    return sens.sensitivity(program(), tx, cu, SCENARIO, workers=1, engine=ENGINE)


@pytest.fixture(scope="module")
def base_sim(data):
    tx, cu = data
    return simulate(program(), tx, cu, SCENARIO, workers=1, engine=ENGINE)


def _p(values: list, q: int) -> float:
    """The q-th percentile by counting: the smallest value with at least q% of values at or below it."""
    v = sorted(values)
    return v[max(0, math.ceil(q / 100 * len(v)) - 1)]


def _row(result, key: str) -> dict:
    return next(r for r in result.rows if r["assumption"] == key)


def _money(minor: int) -> float:
    return minor / 100  # CNY: two decimals


def test_base_case_is_simulate_run_for_run(result, base_sim):
    assert result.base == base_sim.per_run
    d = result.to_dict()
    assert d["base"]["net_benefit"]["p50"] == base_sim.summary["net_benefit"]["p50"]
    assert d["base"]["liability"]["p50"] == base_sim.summary["liability"]["p50"]


def test_worker_processes_give_the_same_figures(data, result):
    tx, cu = data
    again = sens.sensitivity(program(), tx, cu, SCENARIO, workers=2, engine=ENGINE)
    assert again.json_text() == result.json_text()


@pytest.mark.parametrize("key", ["redemption.probability", "enrollment.share", "response.spend_uplift", "response.visit_uplift"])
def test_a_moved_assumption_is_simulate_with_it_moved(data, result, key):
    # Common random numbers: each side of the bar is a separate simulation of the moved scenario
    # with the same seed and runs; its P50s are the bar's.
    tx, cu = data
    section, name = key.split(".")
    row = _row(result, key)
    for side, sign in (("low", -1), ("high", 1)):
        moved = json.loads(json.dumps(SCENARIO))
        moved[section][name] = round(SCENARIO[section][name] + sign * sens.RANGES[key], 12)
        sim = simulate(program(), tx, cu, moved, workers=1, engine=ENGINE)
        nets = [_money(f["net_benefit"]) for f in sim.per_run]
        assert row[side]["net_benefit"]["p50"] == pytest.approx(_p(nets, 50), abs=1e-9)
        assert row[side]["liability"]["p50"] == pytest.approx(_p([_money(f["liability"]) for f in sim.per_run], 50), abs=1e-9)
        assert row[side]["value"] == pytest.approx(moved[section][name])


def test_margin_moves_net_benefit_exactly_linearly(result, base_sim):
    row = _row(result, "margin")
    for side, sign in (("low", -1), ("high", 1)):
        m = Decimal(str(SCENARIO["margin"])) + sign * Decimal(str(sens.RANGES["margin"]))
        # By hand from each run's figures: the margin on its lift, less its program cost.
        nets = [
            int((Decimal(f["revenue_lift"]) * m).to_integral_value(rounding=ROUND_HALF_UP)) - f["program_cost"] for f in base_sim.per_run
        ]
        assert row[side]["net_benefit"]["p50"] == pytest.approx(_money(_p(nets, 50)), abs=1e-9)
        assert row[side]["liability"] == result.to_dict()["base"]["liability"]  # the margin is no part of it
    lifts = {f["revenue_lift"] for f in base_sim.per_run}
    assert lifts != {0}  # (a lift to move: the scenario has uplifts)


def test_urr_moves_the_liability_linearly_and_net_benefit_by_as_much(result):
    # The bundled test program expires points after 3 months over 8 months of data: its URR is
    # below 1, so a small move either way is not clamped.
    d = 0.05
    for f in result.base:
        urr = sens.run_urr(f, program().model.point_cost, 2)
        assert urr is not None and d < urr < 1 - d
        low = sens.with_urr_moved(f, -d, program().model.point_cost, 2)
        high = sens.with_urr_moved(f, d, program().model.point_cost, 2)
        # Linear in the URR: the two sides are equally far from the base (rounding: a cent each).
        assert abs(low["liability"] + high["liability"] - 2 * f["liability"]) <= 1
        # Scaled by (URR + d) / URR.
        assert high["liability"] == pytest.approx(f["liability"] * (float(urr) + d) / float(urr), abs=1)
        for moved in (low, high):
            assert moved["net_benefit"] + moved["liability"] == f["net_benefit"] + f["liability"]
            assert moved["program_cost"] - moved["liability"] == f["program_cost"] - f["liability"]


def test_moves_of_nothing_change_nothing(result, data):
    f = result.base[0]
    assert sens.with_margin(f, SCENARIO["margin"]) == f
    assert sens.with_urr_moved(f, 0.0, program().model.point_cost, 2) == f
    sc = result.scenario
    for key in sens.MOVES:
        if key != "spend_uplift_at":
            assert sens.moved(sc, ((key, 0.0),)).to_dict() == sc.to_dict()
    tx, cu = data
    still = sens.sensitivity(program(), tx, cu, SCENARIO, ranges=dict.fromkeys(sens.RANGES, 0.0), workers=1, engine=ENGINE)
    base = still.to_dict()["base"]
    for row in still.rows:
        assert row["swing"] == 0
        for side in ("low", "high"):
            assert row[side]["net_benefit"] == base["net_benefit"]
            assert row[side]["liability"] == base["liability"]


def test_rows_are_sorted_by_swing_and_name_every_assumption(result):
    keys = [r["assumption"] for r in result.rows]
    assert sorted(keys) == sorted(sens.RANGES)
    swings = [r["swing"] for r in result.rows]
    assert swings == sorted(swings, reverse=True)
    for r in result.rows:
        assert r["swing"] == pytest.approx(abs(r["high"]["net_benefit"]["p50"] - r["low"]["net_benefit"]["p50"]), abs=0.006)


def test_a_share_at_its_limit_is_clamped_and_equals_the_base(data):
    tx, cu = data
    full = {**SCENARIO, "enrollment": {"share": 1.0}}
    res = sens.sensitivity(program(), tx, cu, full, workers=1, engine=ENGINE)
    row = _row(res, "enrollment.share")
    assert row["high"]["value"] == 1.0 and row["low"]["value"] == pytest.approx(0.9)
    assert row["high"]["net_benefit"] == res.to_dict()["base"]["net_benefit"]


def test_each_runs_break_even_is_where_its_net_benefit_changes_sign(data, result):
    tx, cu = data
    roots = result.breakeven["per_run"]
    assert result.breakeven["runs_with_root"] == len(roots) == SCENARIO["runs"]
    # Run by run, simulated afresh just below and just above the run's own root.
    for r in (0, 3):
        u = roots[r]
        below = simulate(program(), tx, cu, {**SCENARIO, "response": {**SCENARIO["response"], "spend_uplift": u - 0.002}}, workers=1, engine=ENGINE)
        above = simulate(program(), tx, cu, {**SCENARIO, "response": {**SCENARIO["response"], "spend_uplift": u + 0.002}}, workers=1, engine=ENGINE)
        assert below.per_run[r]["net_benefit"] < 0 < above.per_run[r]["net_benefit"]
    s = result.breakeven["spend_uplift"]
    assert s["p5"] == pytest.approx(_p(roots, 5), abs=1e-6)
    assert s["p50"] == pytest.approx(_p(roots, 50), abs=1e-6)
    assert s["p95"] == pytest.approx(_p(roots, 95), abs=1e-6)


def test_the_break_even_put_back_gives_net_benefit_about_zero(data, result):
    # The must-show: simulate at the P50 break-even uplift; 0 lies within the P5-P95 of
    # net benefit, and its P50 is near 0 against its spread.
    tx, cu = data
    u = result.breakeven["spend_uplift"]["p50"]
    sim = simulate(program(), tx, cu, {**SCENARIO, "response": {**SCENARIO["response"], "spend_uplift": u}}, workers=1, engine=ENGINE)
    net = sim.summary["net_benefit"]
    assert net["p5"] <= 0 <= net["p95"]
    assert abs(net["p50"]) <= 0.5 * (net["p95"] - net["p5"])
    # And the base scenario's spread is far wider than that (the break-even moved it to zero).
    assert abs(result.to_dict()["base"]["net_benefit"]["p50"]) > net["p95"] - net["p5"]


def test_a_tier_mapping_moves_every_tier_and_break_even_is_one_uplift(data):
    tx, cu = data
    tiered = {**SCENARIO, "runs": 2, "response": {"spend_uplift": {"Basic": 0.01, "Plus": 0.04}}}
    res = sens.sensitivity(program(), tx, cu, tiered, workers=1, engine=ENGINE)
    row = _row(res, "response.spend_uplift")
    assert row["low"]["value"] == pytest.approx({"Basic": -0.01, "Plus": 0.02})
    assert row["high"]["value"] == pytest.approx({"Basic": 0.03, "Plus": 0.06})
    assert "Basic" in row["low"]["shown"]
    # The break-even is one uplift for both tiers: put back as a number, run 0 crosses zero there.
    u = res.breakeven["per_run"][0]
    at = {**tiered, "response": {"spend_uplift": u + 0.002}}
    assert simulate(program(), tx, cu, at, workers=1, engine=ENGINE).per_run[0]["net_benefit"] > 0


def test_a_distribution_moves_its_mean_and_every_runs_draw_with_it(data):
    # Each run draws its uplift as mean + sd * z(run): the moved mean is simulate's with that mean.
    tx, cu = data
    drawn = {**SCENARIO, "runs": 3, "response": {"spend_uplift": {"normal": {"mean": 0.03, "sd": 0.02}}}}
    res = sens.sensitivity(program(), tx, cu, drawn, workers=1, engine=ENGINE)
    row = _row(res, "response.spend_uplift")
    assert row["high"]["value"] == {"normal": {"mean": pytest.approx(0.05), "sd": 0.02}}
    up = {**drawn, "response": {"spend_uplift": {"normal": {"mean": 0.05, "sd": 0.02}}}}
    sim = simulate(program(), tx, cu, up, workers=1, engine=ENGINE)
    assert row["high"]["net_benefit"]["p50"] == pytest.approx(_p([_money(f["net_benefit"]) for f in sim.per_run], 50), abs=1e-9)
    # The break-even starts from each run's own draw; its root is one uplift for that run, put
    # back as a plain number: the run's net benefit changes sign across it.
    u = res.breakeven["per_run"][1]
    for shift, sign in ((-0.002, -1), (0.002, 1)):
        flat = {**drawn, "response": {"spend_uplift": u + shift}}
        assert sign * simulate(program(), tx, cu, flat, workers=1, engine=ENGINE).per_run[1]["net_benefit"] > 0


def test_with_a_horizon_the_runs_future_is_shared_by_its_variants_and_changes_nothing():
    # Variants of one run share its future rows (drawn once): each still equals simulate's run.
    tx, cu = sample(80, 12, seed=5)
    ahead = {**SCENARIO, "runs": 2, "horizon": "3 months"}
    res = sens.sensitivity(program(), tx, cu, ahead, workers=1, engine=ENGINE)
    assert res.base == simulate(program(), tx, cu, ahead, workers=1, engine=ENGINE).per_run
    up = {**ahead, "redemption": {"probability": 0.5}}
    sim = simulate(program(), tx, cu, up, workers=1, engine=ENGINE)
    row = _row(res, "redemption.probability")
    for key in ("liability", "net_benefit"):
        values = [_money(f[key]) for f in sim.per_run]  # both runs: their P5 and P95 are the two
        assert (row["high"][key]["p5"], row["high"][key]["p95"]) == pytest.approx((min(values), max(values)), abs=1e-9)


@pytest.mark.parametrize(
    ("given", "needle"),
    [
        (["margn=0.1"], "did you mean `margin`"),
        (["margin"], "expected KEY=DELTA"),
        (["margin=abc"], "between 0 and 1"),
        (["urr=1.5"], "between 0 and 1"),
        (["urr=nan"], "between 0 and 1"),
    ],
)
def test_bad_ranges_are_refused_by_name(given, needle):
    with pytest.raises(sens.LoyaltyError, match="--range") as exc:
        sens.parse_ranges(given)
    assert needle in str(exc.value)


def test_the_urr_can_move_by_its_standard_error_from_run_0s_triangles(data):
    from simulator.finance import triangles

    tx, cu = data
    res = sens.sensitivity(program(), tx, cu, {**SCENARIO, "runs": 2}, ranges={"urr": "se"}, workers=2, engine=ENGINE)
    # The oracle: `loyalty triangles`' estimate on run 0's ledger of a separate simulation.
    ledger = simulate(program(), tx, cu, {**SCENARIO, "runs": 1}, workers=1, engine=ENGINE).read_ledger()
    se = triangles.analyse(ledger).overall.std_error
    assert 0 < se < 1
    assert _row(res, "urr")["delta"] == round(se, 6)
    assert res.to_dict()["ranges"]["urr"] == {"delta": round(se, 6), "why": sens.URR_SE_WHY}
    assert sens.parse_ranges(["urr=se"])["urr"] == "se"
    with pytest.raises(sens.LoyaltyError, match="between 0 and 1") as exc:
        sens.parse_ranges(["margin=se"])  # only the URR has a standard error to move by
    assert "standard error" not in str(exc.value)
    with pytest.raises(sens.LoyaltyError, match="or `se` for the URR's standard error"):
        sens.parse_ranges(["urr=one"])


def test_ranges_override_the_defaults():
    assert sens.parse_ranges(["margin=0.1", "urr=0.05"]) == {**sens.RANGES, "margin": 0.1, "urr": 0.05}


# --- the command -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory, data):
    d = tmp_path_factory.mktemp("sens")
    tx, cu = data
    tx.to_csv(d / "tx.csv", index=False)
    cu.to_csv(d / "cu.csv", index=False)
    (d / "club.loyalty").write_text(PROGRAM_TEXT.replace('"Test Club"', '"<b>Club</b> =1+1"'), encoding="utf-8")
    return d


def _cli(files, *args):
    return CliRunner().invoke(main, ["sensitivity", str(files / "club.loyalty"), "--transactions", str(files / "tx.csv"),
                                     "--customers", str(files / "cu.csv"), "--runs", "2", "--workers", "1", "--engine", ENGINE, *args])  # fmt: skip


def test_command_prints_the_table_and_the_break_even(files):
    res = _cli(files)
    assert res.exit_code == 0, res.output
    for needle in ("enrollment.share", "redemption.probability", "response.spend_uplift", "urr", "margin", "break-even spend uplift: P50", "ranges"):
        assert needle in res.output


def test_command_json_and_files(files, tmp_path):
    out = tmp_path / "sens"
    res = _cli(files, "--format", "json", "--out", str(out), "--range", "margin=0.1")
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["runs"] == 2 and d["ranges"]["margin"]["delta"] == 0.1
    assert sorted(p.name for p in out.iterdir()) == sorted(sens.FILES)
    assert json.loads((out / "sensitivity.json").read_text(encoding="utf-8")) == d
    page = (out / "sensitivity.html").read_text(encoding="utf-8")
    assert "<b>Club</b>" not in page and "&lt;b&gt;Club&lt;/b&gt;" in page  # user text escaped
    assert "<svg" in page and "Tornado" in page
    csv = (out / "sensitivity.csv").read_text(encoding="utf-8").splitlines()
    assert csv[0] == ",".join(sens.TABLE_COLUMNS) and len(csv) == 1 + len(sens.RANGES)
    again = _cli(files, "--format", "json", "--out", str(out), "--range", "margin=0.1")
    assert again.exit_code == 0 and again.stdout == res.stdout  # same inputs, same bytes
    # The base case is `loyalty simulate`'s with the same files, runs and seed.
    sim_out = tmp_path / "sim"
    sim = CliRunner().invoke(main, ["simulate", str(files / "club.loyalty"), "--transactions", str(files / "tx.csv"), "--customers", str(files / "cu.csv"),
                                    "--runs", "2", "--workers", "1", "--engine", ENGINE, "--quiet", "--out", str(sim_out)])  # fmt: skip
    assert sim.exit_code == 0, sim.output
    summary = json.loads((sim_out / "summary.json").read_text(encoding="utf-8"))
    assert d["base"]["net_benefit"] == summary["net_benefit"] and d["base"]["liability"] == summary["liability"]


def test_command_refuses_bad_ranges_and_foreign_folders(files, tmp_path):
    res = _cli(files, "--range", "margn=0.1")
    assert res.exit_code == 2 and "did you mean `margin`" in res.output and "Traceback" not in res.output
    (tmp_path / "mine.txt").write_text("keep", encoding="utf-8")
    res = _cli(files, "--out", str(tmp_path))
    assert res.exit_code == 1 and "not this command's outputs" in res.output
    assert (tmp_path / "mine.txt").read_text(encoding="utf-8") == "keep"
    res = _cli(files, "--out", str(files / "tx.csv"))
    assert res.exit_code in (1, 2) and "Traceback" not in res.output
    (tmp_path / "none.yaml").write_text("runs: 2\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["sensitivity", str(tmp_path / "none.yaml")])
    assert res.exit_code == 1 and "names no program" in res.output and "Traceback" not in res.output
