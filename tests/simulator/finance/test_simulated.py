"""The finance of simulated runs (simulator.finance.simulated): the URR of each run's own triangle,
the liability and monthly liability it gives, the accounting roll-forward of every run balanced,
and the same figures whether the customers are replayed whole or in slices."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

import simulator
from simulator import metrics
from simulator.finance import accounting, simulated, triangles
from simulator.finance.simulated import FALLBACK_URR, as_fraction
from simulator.sample_data import bundled_paths
from tests.conftest import ROOT
from tests.simulator.simkit import ENGINE

COFFEE = ROOT / "programs" / "coffee.loyalty"
DEFERRED = {"method": "deferred_revenue", "value_per_point": 0.01, "expected_redemption": "estimated"}


def _simulate(**scenario):
    tx, cu = bundled_paths()
    return simulator.simulate(COFFEE, tx, cu, {"runs": 3, "seed": 4, **scenario}, workers=1, engine=ENGINE)


@pytest.fixture(scope="module")
def history_only():
    return _simulate(accounting=DEFERRED)


@pytest.fixture(scope="module")
def with_horizon():
    return _simulate(runs=2, horizon="24 months", accounting={"method": "cost"})


def _whole_liability(outstanding: int, point_cost: Fraction, decimals: int, urr: Fraction) -> int:
    return metrics.round_half_up(outstanding * point_cost * 10**decimals * urr)


def test_the_liability_uses_the_urr_of_the_runs_own_triangle(history_only):
    res = history_only
    ledger = res.ledger
    # The oracle: the triangle `loyalty triangles` builds from run 0's ledger file, with its URR.
    report = triangles.analyse(ledger)
    assert (report.first_month, report.last_month) == (str(res.months[0]), str(res.months[-1]))
    run0 = res.per_run[0]
    assert report.overall.urr == pytest.approx(float(run0["urr"]), rel=1e-12)
    assert 0 < report.overall.urr < 1 and report.overall.urr > run0["points_redeemed"] / run0["points_issued"]
    model = res.program.model
    assert run0["liability"] == _whole_liability(run0["points_outstanding"], model.point_cost, model.decimals, run0["urr"])
    assert run0["program_cost"] == run0["reward_cost"] - run0["partner_funded"] + run0["liability"]
    # The summary's URR spans the runs; none fell back.
    assert res.summary["urr"]["p5"] <= res.summary["urr"]["p50"] <= res.summary["urr"]["p95"]
    assert res.summary["urr_estimate"]["fallback_runs"] == 0 and "warning" not in res.summary["urr_estimate"]
    # triangles.csv and urr.csv are what `loyalty triangles` writes for run 0's ledger, Mack's errors included.
    pd.testing.assert_frame_equal(res.triangles, report.table)
    cohorts = res.urr
    pd.testing.assert_frame_equal(cohorts.iloc[:-1].reset_index(drop=True), report.overall.cohorts)
    overall = cohorts.iloc[-1]
    assert overall["cohort"] == triangles.ALL
    assert overall["urr"] == pytest.approx(report.overall.urr, rel=1e-12)
    assert overall["std_error"] == pytest.approx(report.overall.std_error, rel=1e-12) and overall["std_error"] > 0


def test_the_monthly_liability_uses_the_urr_as_estimated_at_each_months_end(history_only):
    res = history_only
    ledger = res.ledger
    by_month = triangles.urr_by_month(ledger)  # the public oracle: a chain ladder on the postings up to each month's end
    run0 = res.monthly[res.monthly["run"] == 0].reset_index(drop=True)
    assert by_month["month"].tolist() == run0["month"].tolist()
    end = pd.DatetimeIndex(ledger["timestamp"]).to_period("M")
    model = res.program.model
    for m, row in run0.iterrows():
        upto = ledger[end <= pd.Period(row["month"], "M")]
        cohorts_with_points = upto.loc[upto["kind"] == "earn", "earned_on"].dt.to_period("M").nunique()
        projectable = cohorts_with_points >= 2 and (upto["kind"] == "redeem").any()
        urr = by_month["urr"].iloc[m] if projectable else FALLBACK_URR
        expected = _whole_liability(int(row["closing"]), model.point_cost, model.decimals, as_fraction(urr))
        assert int(round(row["liability"] * 10**model.decimals)) == expected, row["month"]
    assert run0["liability"].iloc[-1] * 10**model.decimals == res.per_run[0]["liability"]
    assert res.summary["urr_estimate"]["fallback_month_ends"] == len(res.per_run)  # each run's first month: one cohort


def _balanced_in_every_month_of_every_run(res, method: str) -> None:
    assert len(res.accounting_runs) == len(res.per_run)
    for frame in res.accounting_runs:
        accounting.check_balanced(frame)  # opening + in - out -/+ change of estimate = closing, to the unit
        assert frame["month"].tolist() == list(res.months.strftime("%Y-%m"))
    run0 = res.accounting_runs[0]
    table = res.accounting
    lines = accounting.REVENUE_COLUMNS if method == "deferred_revenue" else accounting.PROVISION_COLUMNS
    assert table["line"].tolist() == list(lines) * len(res.months)
    scale = 10**res.program.model.decimals
    shown = table.pivot(index="month", columns="line", values="run_0")[list(lines)]
    assert (shown.map(lambda d: int(d * scale)).to_numpy() == run0[list(lines)].to_numpy()).all()


def test_deferred_revenue_balances_in_every_month_of_every_run(history_only):
    res = history_only
    _balanced_in_every_month_of_every_run(res, "deferred_revenue")
    books = res.summary["accounting"]
    assert books["method"] == "deferred_revenue"
    scale = 10**res.program.model.decimals
    closing = sorted(int(f["closing"].iloc[-1]) for f in res.accounting_runs)
    assert books["closing_deferred_revenue"]["p50"] == closing[1] / scale
    # Every month's estimate is the run's URR as of then: the last month's is the liability's.
    for frame, figures in zip(res.accounting_runs, res.per_run, strict=True):
        assert frame["points_expected"].iloc[-1] == pytest.approx(float(figures["urr"]) * figures["points_issued"], rel=1e-12)
        recognised = frame[["recognised_on_redemption", "recognised_breakage", "change_of_estimate"]].to_numpy().sum()
        assert recognised == frame["recognised_to_date"].iloc[-1]
        assert frame["deferred"].sum() - recognised == frame["closing"].iloc[-1]


def test_the_provision_balances_over_a_24_month_horizon(with_horizon):
    res = with_horizon
    assert len(res.months) == 36
    _balanced_in_every_month_of_every_run(res, "cost")
    model = res.program.model
    for frame, monthly in zip(res.accounting_runs, [g for _, g in res.monthly.groupby("run")], strict=True):
        # The provision is the monthly liability: points outstanding x point cost x the month-end URR.
        assert (frame["points_outstanding"].to_numpy() == monthly["closing"].to_numpy()).all()
        liability = [int(round(v * 10**model.decimals)) for v in monthly["liability"]]
        assert frame["closing"].tolist() == liability
    assert set(res.summary["accounting"]) >= {"method", "closing_provision", "breakage_released"}


def test_no_accounting_key_no_accounting_outputs():
    res = _simulate(runs=1)
    assert res.accounting is None and res.accounting_runs == [] and "accounting" not in res.summary
    assert "accounting.csv" not in res.output_files() and "triangles.csv" in res.output_files()


def test_a_run_with_nothing_redeemed_falls_back_and_says_so():
    res = _simulate(runs=1, redemption={"probability": 0.0})
    run0 = res.per_run[0]
    assert run0["points_redeemed"] == 0 and run0["urr"] == 1
    note = res.summary["urr_estimate"]
    assert note["fallback_runs"] == 1 and "every point outstanding as redeemed" in note["warning"]
    model = res.program.model
    assert run0["liability"] == _whole_liability(run0["points_outstanding"], model.point_cost, model.decimals, Fraction(1))


def test_slices_give_the_whole_runs_triangles_urr_and_books():
    tx, cu = bundled_paths()
    sc = {"runs": 2, "seed": 9, "accounting": DEFERRED}
    whole = simulator.simulate(COFFEE, tx, cu, sc, workers=1, engine=ENGINE)
    sliced = simulator.simulate(COFFEE, tx, cu, sc, workers=1, engine=ENGINE, slice_rows=40_000)
    assert [r["urr"] for r in sliced.per_run] == [r["urr"] for r in whole.per_run]
    assert [r["liability"] for r in sliced.per_run] == [r["liability"] for r in whole.per_run]
    np.testing.assert_array_equal(sliced.triangle_sums, whole.triangle_sums)
    for a, b in zip(sliced.accounting_runs, whole.accounting_runs, strict=True):
        pd.testing.assert_frame_equal(a, b)
    assert sliced.summary_json().replace("sliced", "") == whole.summary_json().replace("sliced", "")


def test_the_runs_sums_follow_the_triangles_flows_in_their_order():
    assert metrics.TRIANGLE_KINDS == tuple(triangles.FLOWS) == metrics.KINDS[: len(triangles.FLOWS)]


def test_a_simulation_longer_than_a_triangle_follows_is_refused_with_the_fix():
    from rulelang.errors import LoyaltyError
    from simulator.finance.simulated import checked_span

    months = pd.period_range("2026-01", periods=triangles.MAX_MONTHS, freq="M")
    assert checked_span(months) is months
    with pytest.raises(LoyaltyError, match=r"spans 601 months \(2026-01 to 2076-01\), more than the 600 .* shorten the `period` or the `horizon`"):
        checked_span(pd.period_range("2026-01", periods=triangles.MAX_MONTHS + 1, freq="M"))


def test_a_fixed_expected_redemption_has_no_change_of_estimate():
    res = _simulate(runs=1, accounting={"method": "deferred_revenue", "value_per_point": 0.01, "expected_redemption": 0.9})
    books = res.accounting_runs[0]
    accounting.check_balanced(books)
    assert (books["change_of_estimate"] == 0).all()
    assert books["points_expected"].tolist() == pytest.approx((books["points_issued"] * 0.9).tolist(), rel=1e-15)
    # Each month's allocation by relative standalone selling price at 0.9, from the members' sales.
    value = [accounting.allocate(s, p, 0.01, 0.9, 2) for s, p in zip(books["sales"], res.monthly["issued"], strict=True)]
    assert books["deferred"].tolist() == value and sum(value) > 0


# --- Mack's error of every run, and the liability interval that uses it ----------------------------


def test_each_runs_urr_carries_macks_error_as_the_ledger_gives_it():
    res = _simulate(runs=1)
    # The oracle: `loyalty triangles`' reading of run 0's ledger (its triangle, chain ladder and Mack).
    report = triangles.analyse(res.ledger)
    urr = simulated.run_urr(res.triangle_sums, res.months)
    assert np.isfinite(urr.std_error) and urr.std_error > 0
    assert urr.std_error == pytest.approx(report.overall.std_error, rel=1e-12)
    # One run: every percentile of the summary's error is that run's.
    note = res.summary["urr_estimate"]
    assert note["std_error_runs"] == 1
    assert note["std_error"]["p50"] == round(urr.std_error, 6) == note["std_error"]["p5"] == note["std_error"]["p95"]


def test_the_liability_interval_spreads_the_runs_and_their_errors(history_only):
    res = history_only
    note, liability = res.summary["urr_estimate"], res.summary["liability"]
    assert note["std_error_runs"] == len(res.per_run)
    assert 0 < note["std_error"]["p5"] <= note["std_error"]["p50"] <= note["std_error"]["p95"] < 0.5
    interval = note["liability_interval"]
    # Both sources of uncertainty: at least as wide as the runs' spread alone, around the same middle.
    assert interval["p5"] <= liability["p5"] and interval["p95"] >= liability["p95"]
    assert interval["p5"] < liability["p50"] < interval["p95"]


def _urr(final: float, std_error: float) -> simulated.RunURR:
    return simulated.RunURR(final, np.array([final]), True, 0, std_error)


def test_without_macks_error_the_interval_is_the_runs_own_liabilities():
    urrs = [_urr(0.4, float("nan")), _urr(0.5, float("nan")), _urr(0.6, float("nan"))]
    per_run = [{"points_outstanding": 1000, "liability": v} for v in (400, 500, 600)]
    assert simulated.liability_interval(urrs, [1000] * 3, [400, 500, 600], Fraction(1), 0, seed=1) == metrics.spread([400, 500, 600], 0)
    note = simulated.urr_summary(urrs, per_run, Fraction(1), 0, seed=1)
    assert note["std_error_runs"] == 0 and note["std_error"]["p50"] is None


def test_the_draws_follow_the_normal_of_the_urr_and_its_error():
    # One run, URR 0.40 with error 0.01, 10^6 points at 0.01 each: the liability is 4,000.00 with a
    # standard deviation of 100.00. The draws' P50 and P5 / P95 lie where the normal puts them, within
    # what 200 draws can tell (about 10 for the median, 15 for the tails; 4 of those allowed).
    interval = simulated.liability_interval([_urr(0.4, 0.01)], [10**6], [400_000], Fraction(1, 100), 2, seed=7)
    assert interval["p50"] == pytest.approx(4000, abs=40)
    assert interval["p5"] == pytest.approx(4000 - 164.5, abs=60) and interval["p95"] == pytest.approx(4000 + 164.5, abs=60)
    # Counter-based: the same seed gives the same draws, another seed others.
    again = simulated.liability_interval([_urr(0.4, 0.01)], [10**6], [400_000], Fraction(1, 100), 2, seed=7)
    other = simulated.liability_interval([_urr(0.4, 0.01)], [10**6], [400_000], Fraction(1, 100), 2, seed=8)
    assert again == interval and other != interval
    # Bounded to [0, 1]: a URR near 1 with a wide error never takes more than every point.
    wide = simulated.liability_interval([_urr(0.99, 0.2)], [10**6], [990_000], Fraction(1, 100), 2, seed=7)
    assert wide["p95"] <= 10_000 and wide["p5"] >= 0


def test_simulate_and_write_never_load_the_chainladder_package(tmp_path):
    # Mack's errors are NumPy's now: a whole `loyalty simulate` of the bundled sample, outputs
    # written (triangles.csv, urr.csv, the report and workbook), leaves the package unloaded.
    import subprocess
    import sys

    out = tmp_path / "out"
    code = (
        "import sys\n"
        "from simulator.cli import main\n"
        f"sys.argv = ['loyalty', 'simulate', {str(COFFEE)!r}, '--runs', '2', '--workers', '1', '--out', {str(out)!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] == 'chainladder'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "LOADED []" in done.stdout
    assert (out / "urr.csv").exists() and (out / "report.xlsx").exists()


def test_a_tiered_programs_urr_by_tier_is_what_loyalty_triangles_by_tier_writes(history_only, tmp_path):
    from click.testing import CliRunner

    from simulator.cli import main

    out = history_only.write(tmp_path / "sim")
    # The oracle: the command on run 0's written ledger.
    got = CliRunner().invoke(main, ["triangles", str(out / "ledger.parquet"), "--by", "tier", "--out", str(tmp_path / "tri")])
    assert got.exit_code == 0, got.output
    assert (out / "urr_by_tier.csv").read_bytes() == (tmp_path / "tri" / "urr.csv").read_bytes()
    table = pd.read_csv(out / "urr_by_tier.csv")
    assert set(table["tier"]) == {triangles.ALL, "Green", "Gold", "Black"}
    # Each group ends with its overall URR; the tiers' points add up to the whole program's.
    overall = table[table["cohort"] == triangles.ALL].set_index("tier")
    assert sorted(overall.index) == sorted(set(table["tier"]))
    assert overall.loc[triangles.ALL, "urr"] == pytest.approx(float(history_only.per_run[0]["urr"]), rel=1e-12)
    assert overall.drop(index=triangles.ALL)["earned"].sum() == overall.loc[triangles.ALL, "earned"]


def test_a_program_without_tiers_has_no_urr_by_tier(tmp_path):
    tx, cu = bundled_paths()
    program = "program \"flat\"\ncurrency CNY\npoint_cost 0.02 CNY\nearn base: 1 point per 1 CNY\nreward coffee: 300 points cost 8 CNY\n"
    (tmp_path / "flat.loyalty").write_text(program, encoding="utf-8")
    res = simulator.simulate(tmp_path / "flat.loyalty", tx, cu, {"runs": 1, "seed": 1}, workers=1, engine=ENGINE)
    assert res.urr_by_tier is None and "urr_by_tier.csv" not in res.output_files()


def test_a_discount_programs_deferred_revenue_allocates_what_members_paid():
    # The same history and scenario (no response: the rows are the history's) through the coffee
    # program with and without discounts: the sales the books allocate differ, month by month, by
    # exactly the money the discounts took off purchases in run 0's ledger (reversals aside).
    tx, cu = bundled_paths()
    scenario = {"runs": 1, "seed": 4, "accounting": {"method": "deferred_revenue", "value_per_point": 0.01, "expected_redemption": 0.9}}
    plain = simulator.simulate(COFFEE, tx, cu, scenario, workers=1, engine=ENGINE)
    discounted = simulator.simulate(ROOT / "benchmarks" / "programs" / "coffee_discounts.loyalty", tx, cu, scenario, workers=1, engine=ENGINE)
    ledger = discounted.ledger
    given = ledger[(ledger["kind"] == "discount") & (ledger["cost"] > 0)]
    taken_off = given.groupby(given["timestamp"].dt.to_period("M"))["cost"].sum()
    taken_off = taken_off.reindex(discounted.months, fill_value=0).to_numpy()
    assert taken_off.sum() > 0
    gross = plain.accounting_runs[0]["sales"].to_numpy()
    paid = discounted.accounting_runs[0]["sales"].to_numpy()
    assert (gross - paid == taken_off).all()  # minor units, as the ledger's costs
    accounting.check_balanced(discounted.accounting_runs[0])
