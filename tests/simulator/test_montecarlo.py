"""Monte Carlo: the roll-forward balances in every month of every run; same seed, same bytes,
whatever the worker count; with everyone enrolled and no redemption, issued = the evaluator's earn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import rulelang
from rulelang.errors import LoyaltyError
from simulator.api import simulate
from tests.simulator.simkit import ENGINE, PROGRAM_TEXT, program, sample, scenario


@pytest.fixture(scope="module")
def data():
    return sample()


@pytest.fixture(scope="module")
def result(data):
    tx, cu = data
    return simulate(program(), tx, cu, scenario(runs=4), workers=1, engine=ENGINE)


def test_roll_forward_balances_every_month_of_every_run(result):
    m = result.monthly
    assert sorted(m["run"].unique()) == [0, 1, 2, 3]
    assert (m["opening"] + m["issued"] - m["clawed_back"] - m["redeemed"] - m["expired"] == m["closing"]).all()
    for _, run in m.groupby("run"):
        assert run["opening"].iloc[0] == 0
        assert (run["opening"].to_numpy()[1:] == run["closing"].to_numpy()[:-1]).all()
    assert (m["closing"] >= 0).all()


def test_every_varying_figure_has_the_four_statistics(result):
    for value in result.summary.values():
        if isinstance(value, dict) and "mean" in value:
            assert set(value) == {"mean", "p5", "p50", "p95"}
            if value["p5"] is not None:
                assert value["p5"] <= value["p50"] <= value["p95"]
    assert result.summary["members"]["mean"] == 15  # round(0.6 x 25), exact in every run


def test_runs_differ_but_are_reproducible(data, result):
    tx, cu = data
    again = simulate(program(), tx, cu, scenario(runs=4), workers=1, engine=ENGINE)
    assert again.summary_json() == result.summary_json()
    issued = [r["points_issued"] for r in result.per_run]
    assert len(set(issued)) > 1, "random enrolment and responses should make runs differ"


def test_same_seed_same_summary_bytes_with_two_workers(data, result, tmp_path):
    tx, cu = data
    two = simulate(program(), tx, cu, scenario(runs=4), workers=2, engine=ENGINE)
    assert two.summary_json() == result.summary_json()
    pd.testing.assert_frame_equal(two.monthly, result.monthly)
    a, b = tmp_path / "a", tmp_path / "b"
    result.write(a)
    two.write(b)
    for name in ("summary.json", "monthly.csv", "rewards.csv", "report.html", "report.xlsx"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.parametrize("runs", [1, 4])
def test_one_and_three_workers_give_the_same_bytes(data, runs, tmp_path):
    # Four runs: three worker processes against one; a single run: three threads against one.
    tx, cu = data
    one, three = (simulate(program(), tx, cu, scenario(runs=runs), workers=w, engine=ENGINE) for w in (1, 3))
    a, b = one.write(tmp_path / "one"), three.write(tmp_path / "three")
    for name in ("summary.json", "monthly.csv", "rewards.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    pd.testing.assert_frame_equal(one.read_ledger(), three.read_ledger())


def test_a_run_does_not_depend_on_which_runs_are_computed(data, result):
    tx, cu = data
    one = simulate(program(), tx, cu, scenario(runs=1), workers=1, engine=ENGINE)
    assert one.per_run[0] == result.per_run[0]


def test_everyone_enrolled_no_redemption_issues_what_the_evaluator_earns(data):
    tx, cu = data
    sc = scenario(runs=1, enrollment={"share": 1.0}, redemption={"probability": 0.0}, response={})
    res = simulate(program(), tx, cu, sc, workers=1, engine=ENGINE)
    # The same members' rows, each preceded by an enroll row at their first purchase.
    rows = tx.sort_values(["customer_id", "timestamp"], kind="stable")
    first = rows.groupby("customer_id").head(1)
    joins = first.assign(event="enroll", amount=0.0, transaction_id="")
    both = pd.concat([joins.assign(_o=0), rows.assign(_o=1)]).sort_values(["customer_id", "timestamp", "_o"], kind="stable")
    ledger = program().evaluate(both.drop(columns="_o"), customers=cu, engine=ENGINE)
    earned = int(ledger.loc[ledger["kind"] == "earn", "points"].sum())
    assert res.summary["points_issued"]["mean"] == earned
    assert res.summary["points_redeemed"]["mean"] == 0
    assert res.summary["revenue_lift"]["mean"] == 0


def test_share_zero_means_no_members_and_no_cost(data):
    tx, cu = data
    res = simulate(program(), tx, cu, scenario(runs=1, enrollment={"share": 0.0}), workers=1, engine=ENGINE)
    assert res.summary["members"]["mean"] == 0
    assert res.summary["points_issued"]["mean"] == 0
    assert res.summary["revenue_with_program"]["mean"] == res.summary["revenue_baseline"]["mean"]
    assert np.all(res.monthly["closing"] == 0)


@pytest.mark.parametrize("pieces", [1, 3])
def test_a_path_shared_between_two_threads_equals_one_pass(data, monkeypatch, pieces):
    from simulator import montecarlo

    tx, cu = data
    sc = scenario(runs=1)  # one run on two workers: one process, two threads
    monkeypatch.setattr(montecarlo, "PART_ROWS", 10**12)
    whole = simulate(program(), tx, cu, sc, workers=1, engine=ENGINE)
    monkeypatch.setattr(montecarlo, "PART_ROWS", 0)
    # Each thread's share in `pieces` pieces, run one after another.
    monkeypatch.setattr(montecarlo, "PIECE_ROWS", len(tx) / (2 * pieces))
    parts = montecarlo._parts(montecarlo._SETUP.history, 2)
    assert len(parts) == 2 if pieces == 1 else len(parts) > 3  # (pieces end on customers' boundaries)
    halves = simulate(program(), tx, cu, sc, workers=2, engine=ENGINE)
    assert halves.summary_json() == whole.summary_json()
    pd.testing.assert_frame_equal(halves.monthly, whole.monthly)
    pd.testing.assert_frame_equal(halves.rewards, whole.rewards)
    pd.testing.assert_frame_equal(halves.ledger, whole.ledger)
    assert (halves.ledger["row"] > halves.ledger["row"].max() // 2).any()  # the second half's rows were renumbered


def _history(tx: pd.DataFrame, tmp_path, sliced: bool):
    """The transactions as given, or as a Parquet file replayed in slices of about 300 rows."""
    if not sliced:
        return tx, {}
    path = tmp_path / "tx.parquet"
    tx.to_parquet(path)
    return path, {"slice_rows": 300}


@pytest.mark.parametrize(("workers", "sliced"), [(1, False), (2, False), (1, True)])
def test_the_base_is_built_beside_the_first_path_and_its_errors_still_come_first(data, monkeypatch, tmp_path, workers, sliced):
    from rulelang.errors import DataError
    from simulator import montecarlo

    source, kw = _history(data[0], tmp_path, sliced)
    reads_segment = rulelang.loads(PROGRAM_TEXT + 'earn student: 5 points when customer.segment == "student"\n', "test.loyalty")
    # The base (the engine's data contract) refuses a program that reads customers when none are given.
    with pytest.raises(DataError, match="no customers table was given"):
        simulate(reads_segment, source, None, scenario(runs=2), workers=workers, engine=ENGINE, **kw)
    # Even when a path fails on its own before it needs the base, the data's error is the one raised.
    def broken(*args, **kwargs):
        raise RuntimeError("a path failed")

    monkeypatch.setattr(montecarlo.enrollment, "member_rows", broken)
    with pytest.raises(DataError, match="no customers table was given"):
        simulate(reads_segment, source, None, scenario(runs=1), workers=1, engine=ENGINE, **kw)
    with pytest.raises(RuntimeError, match="a path failed"):
        simulate(program(), source, None, scenario(runs=1), workers=1, engine=ENGINE, **kw)


@pytest.mark.parametrize("sliced", [False, True])
def test_a_single_process_waits_for_the_base_only_to_evaluate(data, monkeypatch, tmp_path, sliced):
    from concurrent.futures import Future

    from simulator import montecarlo

    source, kw = _history(data[0], tmp_path, sliced)
    seen = []
    real = montecarlo._evaluate

    def spy(rows, setup, *args, **kwargs):
        seen.append(isinstance(setup.base, Future))
        return real(rows, setup, *args, **kwargs)

    monkeypatch.setattr(montecarlo, "_evaluate", spy)
    simulate(program(), source, data[1], scenario(runs=1), workers=1, engine=ENGINE, **kw)
    assert seen and all(seen)  # each base (each slice's) still being built when its path began
    if sliced:
        assert len(seen) > 1  # one path per slice


def test_a_thread_prepares_its_next_piece_while_the_base_is_still_being_built(monkeypatch):
    from concurrent.futures import Future
    from types import SimpleNamespace

    from simulator import montecarlo

    base: Future = Future()
    steps = []

    def prepared(setup, program, run, chosen, part, threads, future=None):
        steps.append(f"prepare {part}")
        if len(steps) == 2:
            base.set_result("the base")  # built while the second piece was being prepared
        return (f"rows {part}", chosen, None)

    def evaluated(setup, program, run, rows, chosen, span, keep_ledger, threads):
        steps.append(f"evaluate {rows} with {setup.base.result()}")
        return rows

    monkeypatch.setattr(montecarlo, "_prepared", prepared)
    monkeypatch.setattr(montecarlo, "_evaluated", evaluated)
    out = montecarlo._run_share(SimpleNamespace(base=base), None, 0, None, ["a", "b", "c"], False)
    assert out == ["rows a", "rows b", "rows c"]
    assert steps == ["prepare a", "prepare b", "evaluate rows a with the base", "evaluate rows b with the base", "prepare c", "evaluate rows c with the base"]


def test_fewer_than_one_worker_is_refused(data):
    tx, cu = data
    with pytest.raises(LoyaltyError, match="workers: 0 is fewer than 1"):
        simulate(program(), tx, cu, scenario(runs=1), workers=0, engine=ENGINE)


def test_a_distributed_uplift_is_drawn_per_run_and_each_run_is_the_fixed_uplift_it_drew(data):
    from simulator.scenario import Scenario

    tx, cu = data
    dist = {"spend_uplift": {"normal": {"mean": 0.05, "sd": 0.04}}, "visit_uplift": {"normal": {"mean": 0.1, "sd": 0.05}}}
    drawn = simulate(program(), tx, cu, scenario(runs=3, response=dist), workers=1, engine=ENGINE)
    again = simulate(program(), tx, cu, scenario(runs=3, response=dist), workers=1, engine=ENGINE)
    assert drawn.summary_json() == again.summary_json()
    response = Scenario.from_dict(scenario(response=dist)).response
    for run in range(3):
        r = response.for_run(7, run)  # scenario()'s seed
        fixed = simulate(program(), tx, cu, scenario(runs=3, response={"spend_uplift": r.spend_uplift, "visit_uplift": r.visit_uplift}), workers=1, engine=ENGINE)
        assert fixed.per_run[run] == drawn.per_run[run]
    assert len({r["revenue_with_program"] for r in drawn.per_run}) == 3


def test_a_program_with_benefits_reports_their_cost_inside_the_program_cost():
    import rulelang
    from simulator.api import simulate
    from tests.simulator.simkit import ENGINE, PROGRAM_TEXT, sample, scenario

    text = PROGRAM_TEXT + ('benefit treat: cost 3.5 CNY when category == "pastry" at most 2 times per month funded 20% by bakery\n'
                           "benefit birthday: cost 20 CNY when month(date) == month(customer.birthday) once per year\n")
    tx, cu = sample()
    res = simulate(rulelang.loads(text, "b.loyalty"), tx, cu, scenario(runs=2), workers=1, engine=ENGINE)
    s, m, led = res.summary, res.monthly, res.ledger
    given = led[led["kind"] == "benefit"]
    run0 = res.per_run[0]
    # Run 0's figures are its ledger's benefit postings, month by month and in total.
    assert run0["benefit_cost"] == int(given["cost"].sum()) > 0
    assert run0["benefit_partner_funded"] == int(given["partner_share"].sum()) > 0
    first = m[m["run"] == 0]
    assert sum(first["benefit_cost"]) * 100 == run0["benefit_cost"]
    assert sum(first["benefit_partner_funded"]) * 100 == run0["benefit_partner_funded"]
    for f in res.per_run:
        assert f["program_cost"] == (f["reward_cost"] - f["partner_funded"] + f["liability"]
                                     + f["benefit_cost"] - f["benefit_partner_funded"])
    assert set(s) >= {"benefit_cost", "benefit_partner_funded"}
    # The points' money leaves the benefits out.
    assert run0["reward_cost"] == int(led.loc[led["kind"] == "redeem", "cost"].sum())
    plain = simulate(rulelang.loads(PROGRAM_TEXT, "p.loyalty"), tx, cu, scenario(runs=2), workers=1, engine=ENGINE)
    assert "benefit_cost" not in plain.summary and "benefit_cost" not in plain.monthly.columns


# --- paying with points ----------------------------------------------------------------------------

PAYING = "\npay with points: 100 points = 1 CNY, up to 50% of basket, from 200 points\n"


def _paying_simulation(tmp_path, scenario, workers=1, slice_rows=None):
    from simulator.api import simulate
    from tests.simulator.simkit import PROGRAM_TEXT, sample

    tx_path, cu_path = tmp_path / "t.parquet", tmp_path / "c.parquet"
    if not tx_path.exists():
        tx, cu = sample(customers=300, months=8)
        tx.to_parquet(tx_path)
        cu.to_parquet(cu_path)
        (tmp_path / "p.loyalty").write_text(PROGRAM_TEXT + PAYING, encoding="utf-8")
    return simulate(tmp_path / "p.loyalty", tx_path, cu_path, scenario=scenario, workers=workers, slice_rows=slice_rows)


def test_paying_with_points_is_its_own_cost_inside_the_program_cost(tmp_path):
    res = _paying_simulation(tmp_path, {"runs": 3, "seed": 4, "redemption": {"probability": 0.3, "pay_with_points": 0.5}})
    ledger = res.ledger  # run 0's
    paying = (ledger["kind"] == "redeem") & (ledger["reward"] == "pay_with_points")
    catalog = (ledger["kind"] == "redeem") & ~paying
    first = res.per_run[0]
    # The figures against the ledger summed here (an independent sum of the postings).
    assert paying.sum() > 0 and first["points_payment_cost"] == int(ledger.loc[paying, "cost"].sum()) > 0
    assert first["reward_cost"] == int(ledger.loc[catalog, "cost"].sum())
    assert first["points_redeemed"] == int(ledger.loc[ledger["kind"] == "redeem", "points"].sum())
    for r in res.per_run:
        assert r["program_cost"] == r["reward_cost"] + r["points_payment_cost"] - r["partner_funded"] + r["liability"]
    monthly = res.monthly[res.monthly["run"] == 0]
    assert round(monthly["points_payment_cost"].sum() * 100) == first["points_payment_cost"]
    # The roll-forward still balances, month by month.
    assert (monthly["opening"] + monthly["issued"] - monthly["clawed_back"] - monthly["redeemed"] - monthly["expired"] == monthly["closing"]).all()
    assert (monthly["opening"].iloc[1:].to_numpy() == monthly["closing"].iloc[:-1].to_numpy()).all()
    assert "points_payment_cost" in res.summary and res.summary["assumptions"]["redemption"]["pay_with_points"] == 0.5
    # Each payment is whole steps of 100 points, each paying 1 CNY (100 fen): its points are its cost.
    per_payment = ledger[paying].groupby(["customer_id", "row"], observed=True)[["points", "cost"]].sum()
    assert (per_payment["points"] % 100 == 0).all() and (per_payment["points"] == per_payment["cost"]).all()


def test_paying_with_points_draws_alike_in_slices_and_with_two_workers(tmp_path):
    scenario = {"runs": 2, "seed": 9, "redemption": {"probability": 0.2, "pay_with_points": 0.4}}
    one = _paying_simulation(tmp_path, scenario)
    sliced = _paying_simulation(tmp_path, scenario, workers=2, slice_rows=3000)
    assert one.per_run[0]["points_payment_cost"] > 0
    assert sliced.summary_json() == one.summary_json()
    pd.testing.assert_frame_equal(sliced.monthly, one.monthly)


def test_no_chance_to_pay_with_points_pays_nothing(tmp_path):
    res = _paying_simulation(tmp_path, {"runs": 1, "seed": 4})
    assert res.per_run[0]["points_payment_cost"] == 0
    assert not (res.ledger["reward"] == "pay_with_points").any()
