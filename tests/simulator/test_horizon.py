"""The horizon beyond the history (simulator.horizon): points expire and the roll-forward balances
over a 24-month forecast of the bundled sample; the future purchase counts match BG/NBD's closed
form; future baskets are the customer's own; seasonality follows the history's December peak;
the same seed gives the same bytes whatever the workers or threads; bad input is refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rulelang.errors import LoyaltyError
from simulator import horizon, metrics, montecarlo
from simulator.api import simulate
from simulator.forecast import bgnbd, summary
from simulator.history import prepare
from simulator.sample_data import bundled_paths, generate
from simulator.scenario import Scenario, ScenarioError
from tests.simulator.simkit import ENGINE, program, scenario

COFFEE = "programs/coffee.loyalty"


@pytest.fixture(scope="module")
def coffee():
    tx, cust = bundled_paths()
    return simulate(COFFEE, tx, cust, {"horizon": "24 months", "runs": 3, "seed": 11, "redemption": {"probability": 0.3}}, workers=1, engine=ENGINE)


def test_coffee_points_expire_and_the_roll_forward_balances_in_every_month_of_every_run(coffee):
    m = coffee.monthly
    # The history's 12 months and the horizon's 24, every one reported in every run.
    months = pd.period_range("2026-01", "2028-12", freq="M").astype(str).tolist()
    for _, run in m.groupby("run"):
        assert run["month"].astype(str).tolist() == months
        assert run["opening"].iloc[0] == 0
        assert (run["opening"].to_numpy()[1:] == run["closing"].to_numpy()[:-1]).all()
        # Points earned in the history expire 12 months on, inside the forecast.
        assert run["expired"].sum() > 0
        assert (run.loc[run["month"].astype(str) >= "2027-01", "revenue_baseline"] > 0).all()
    assert (m["opening"] + m["issued"] - m["clawed_back"] - m["redeemed"] - m["expired"] == m["closing"]).all()
    assert (m["closing"] >= 0).all()
    assert coffee.summary["breakage_rate"]["p5"] > 0
    assert coffee.summary["assumptions"]["horizon"] == "24 months"
    assert len({r["points_issued"] for r in coffee.per_run}) == 3, "each run draws its own future"
    record = coffee.summary["horizon"]
    assert (record["first_day"], record["last_day"], record["months"]) == ("2027-01-01", "2028-12-31", 24)
    assert record["customers_with_a_future"] == 2000 and record["seasonality"]["estimated"]
    assert set(record["bgnbd"]["parameters"]) == {"r", "alpha", "a", "b"}


def test_the_summary_totals_are_the_months(coffee):
    run0 = coffee.monthly[coffee.monthly["run"] == 0]
    first = coffee.per_run[0]
    assert first["points_issued"] == int(run0["issued"].sum())
    assert first["points_expired"] == int(run0["expired"].sum())


@pytest.fixture(scope="module")
def coffee_history():
    tx, _ = bundled_paths()
    frame = pd.read_parquet(tx)
    return frame, prepare(frame, 2)


def test_future_purchase_counts_match_the_bgnbd_conditional_expectation(coffee_history):
    frame, h = coffee_history
    runs, seed = 6, 5
    hz = horizon.fit(h, 24, runs, seed)
    # The oracle: the summary of the loaded transactions, observed to the midnight after the last day.
    s = summary.summarize(frame, h.until.date())
    T = s.T + 1 / 7
    assert len(hz.code) == s.customers  # every customer of the sample has a basket to copy
    fitted = bgnbd.fit(s.x, s.t_x, T)
    assert fitted.params == pytest.approx(hz.bgnbd.params, rel=1e-9)
    weeks = (hz.end - hz.origin).value / (7 * 86_400e9)
    ids = np.asarray(h.customer_ids)
    months = metrics.month_index(h.start, hz.end)
    diff = dev2 = 0.0
    expected_total = 0.0
    for r, params in enumerate(bgnbd.draw_parameters(fitted, runs, seed)):
        expected = bgnbd.conditional_expected_purchases(params, weeks, s.x, s.t_x, T)
        rows = horizon.draw(hz, h, months, seed, r).rows
        baskets = rows[rows["_visit"]]
        counts = pd.Series(ids[baskets["_m"].to_numpy()]).value_counts().reindex(s.customer_id, fill_value=0).to_numpy()
        diff += float((counts - expected).sum())
        dev2 += float(((counts - expected) ** 2).sum())
        expected_total += float(expected.sum())
    # Customers are independent given the parameters: the sum's standard error from the
    # squared deviations; 4 of them is a false alarm once in ~16,000.
    assert abs(diff) < 4 * np.sqrt(dev2)
    assert abs(diff) / expected_total < 0.03


def test_future_baskets_are_copies_of_the_customers_own_scaled_to_the_drawn_spend(coffee_history):
    frame, h = coffee_history
    hz = horizon.fit(h, 6, 2, 1)
    rows = horizon.draw(hz, h, metrics.month_index(h.start, hz.end), 1, 1).rows
    hist = h.rows
    src = rows["_pos"].to_numpy()
    # Each line copies a purchase line of the same customer's history.
    assert (hist["_m"].to_numpy()[src] == rows["_m"].to_numpy()).all()
    assert hist["_purchase"].to_numpy()[src].all()
    original = frame.iloc[hist["_row"].to_numpy()[src]]
    by_customer = frame[frame["event"] == "purchase"].groupby("customer_id")
    own = {c: set(zip(g["category"], g["sku"], g["channel"], strict=True)) for c, g in by_customer}
    cust = original["customer_id"].to_numpy()
    lines = zip(original["category"], original["sku"], original["channel"], strict=True)
    assert all(line in own[c] for c, line in zip(cust, lines, strict=True))
    # A basket's lines are a whole basket: as many lines as the copied one, in its order.
    basket = np.cumsum(rows["_visit"].to_numpy()) - 1
    starts = np.flatnonzero(rows["_visit"].to_numpy())
    assert (np.diff(src)[np.diff(basket) == 0] == 1).all()
    # Amounts scaled by largest remainder: each line within one minor unit of its exact share.
    minor = rows["_minor"].to_numpy()
    totals = np.add.reduceat(minor, starts)
    src_minor = hist["_minor"].to_numpy()[src]
    src_totals = np.add.reduceat(src_minor, starts)
    exact = src_minor * totals[basket] / src_totals[basket]
    assert (np.abs(minor - exact) < 1).all()
    assert (minor >= 0).all()
    # New times: after the history, within the horizon, in order per customer.
    t = rows["timestamp"].to_numpy()
    assert (t >= hz.origin.to_datetime64()).all() and (t <= hz.end.to_datetime64()).all()
    m = rows["_m"].to_numpy()
    assert ((np.diff(m) > 0) | ((np.diff(m) == 0) & (np.diff(t.view("int64")) >= 0))).all()
    # Each basket's counter is its own: distinct across all customers.
    assert len(np.unique(rows["_row"].to_numpy()[starts])) == len(starts)
    assert (rows["_row"].to_numpy() >= horizon.FUTURE_ROW).all()


def _december_history(customers: int = 600, seed: int = 2) -> pd.DataFrame:
    """Two years of purchases with December's rate four times the other months'."""
    g = np.random.default_rng(seed)
    days = pd.date_range("2024-01-01", "2025-12-31", freq="D")
    weight = np.where(days.month == 12, 4.0, 1.0)
    rate = g.gamma(2.0, 1 / 40, customers)  # purchases per day, per customer
    # Customers arrive over the first year and leave after an exponential while (BG/NBD's dropout).
    first = g.integers(0, 365, customers)
    last = first + g.exponential(500, customers)
    rows = []
    for c in range(customers):
        active = (np.arange(len(days)) >= first[c]) & (np.arange(len(days)) <= last[c])
        n = g.poisson(rate[c] * weight * active)
        day = np.repeat(days.to_numpy(), n)
        rows.append(pd.DataFrame({"customer_id": f"K{c:04d}", "timestamp": day + np.timedelta64(9, "h"), "amount": np.round(g.gamma(4, 2.5, len(day)), 2)}))
    out = pd.concat(rows, ignore_index=True)
    out["event"] = "purchase"
    out["transaction_id"] = [f"T{i}" for i in range(len(out))]
    return out


def test_a_december_peak_in_the_history_gives_forecast_decembers_above_the_mean_month():
    h = prepare(_december_history(), 2)
    hz = horizon.fit(h, 24, 2, 4)
    assert hz.seasonal
    assert hz.seasonal_index[11] > 2.5 and (hz.seasonal_index[:11] < 1.2).all()
    rows = horizon.draw(hz, h, metrics.month_index(h.start, hz.end), 4, 0).rows
    baskets = rows[rows["_visit"]]
    per_month = baskets["timestamp"].dt.to_period("M").value_counts().sort_index()
    assert len(per_month) == 24
    decembers = per_month[per_month.index.month == 12]
    assert (decembers > 2 * per_month.mean()).all()


def test_a_history_shorter_than_a_year_has_flat_seasonality():
    tx, _ = generate(300, 6, 2)
    h = prepare(tx, 2)
    hz = horizon.fit(h, 12, 1, 0)
    assert not hz.seasonal
    assert (hz.seasonal_index == 1).all()
    # A flat warp: model time is real time.
    assert np.allclose(hz.warp_model, hz.warp_real)


@pytest.fixture(scope="module")
def small():
    return generate(300, 12, 5)


def test_same_seed_same_bytes_whatever_the_workers_and_threads(small, monkeypatch, tmp_path):
    tx, cu = small
    sc = scenario(runs=2, horizon="12 months")
    one = simulate(program(), tx, cu, sc, workers=1, engine=ENGINE)
    two = simulate(program(), tx, cu, sc, workers=2, engine=ENGINE)
    assert one.summary_json() == two.summary_json()
    pd.testing.assert_frame_equal(one.monthly, two.monthly)
    # One run on two threads, the customers cut into several pieces: the same path.
    monkeypatch.setattr(montecarlo, "PART_ROWS", 100)
    monkeypatch.setattr(montecarlo, "PIECE_ROWS", 1500)
    sc1 = scenario(runs=1, horizon="12 months")
    whole = simulate(program(), tx, cu, sc1, workers=1, engine=ENGINE)
    pieces = simulate(program(), tx, cu, sc1, workers=2, engine=ENGINE)
    assert whole.summary_json() == pieces.summary_json()
    pd.testing.assert_frame_equal(whole.ledger, pieces.ledger)
    one.write(tmp_path / "out")
    assert (tmp_path / "out" / "monthly.csv").read_text().count("\n") == 1 + 2 * 24


def test_the_forecast_rows_go_through_the_response_and_the_engine(small):
    tx, cu = small
    # The real customers' future alone (new customers, simulator.acquisition, would add members).
    none = {"per_month": 0}
    plain = simulate(program(), tx, cu, scenario(runs=1, horizon="12 months", response={}, acquisition=none), workers=1, engine=ENGINE)
    lifted = simulate(program(), tx, cu, scenario(runs=1, horizon="12 months", response={"spend_uplift": 0.1, "visit_uplift": 0.2}, acquisition=none), workers=1, engine=ENGINE)
    pm, lm = plain.monthly, lifted.monthly
    future = pm["month"].astype(str) >= "2027-01"
    # The baseline of the forecast months is the future rows' own spend, the same with or without the response.
    assert (pm.loc[future, "revenue_baseline"].to_numpy() == lm.loc[future, "revenue_baseline"].to_numpy()).all()
    assert (pm.loc[future, "revenue_with_program"] == pm.loc[future, "revenue_baseline"]).all()
    assert (lm.loc[future, "revenue_with_program"].to_numpy() > lm.loc[future, "revenue_baseline"].to_numpy()).all()
    ledger = lifted.ledger
    late = ledger[ledger["timestamp"] >= pd.Timestamp("2027-01-01")]
    assert (late["kind"] == "earn").any() and (late["kind"] == "redeem").any()
    assert (lm.loc[future, "issued"] > 0).all() and (lm.loc[future, "members"] == lm["members"].max()).all()


def test_the_scenario_reads_the_horizon_and_refuses_what_is_not_one():
    assert Scenario.from_dict({"horizon": "24 months"}).horizon == 24
    assert Scenario.from_dict({"horizon": "2 years"}).horizon == 24
    assert Scenario.from_dict({"horizon": "1 month"}).horizon == 1
    assert "horizon" not in Scenario().to_dict()  # no horizon: the assumptions read as before
    for bad in ("soon", 24, "0 months", "2000 years", "24 weeks"):
        with pytest.raises(ScenarioError, match="horizon"):
            Scenario.from_dict({"horizon": bad})


def test_a_history_too_small_to_fit_is_refused_naming_the_horizon():
    tx, cu = generate(6, 2, 1)
    with pytest.raises(horizon.HorizonError, match=r"^horizon: .*BG/NBD.*customer"):
        simulate(program(), tx, cu, scenario(runs=1, horizon="12 months"), workers=1, engine=ENGINE)


def test_a_sliced_replay_forecasts_the_real_customers_and_refuses_new_ones(small, tmp_path):
    # (tests/simulator/test_chunked.py checks the slices give the figures of one pass.)
    tx, cu = small
    path = tmp_path / "tx.parquet"
    tx.to_parquet(path)
    with pytest.raises(LoyaltyError, match=r"^acquisition: a history replayed in slices"):
        simulate(program(), path, None, scenario(runs=1, horizon="12 months"), workers=1, engine=ENGINE, slice_rows=1000)
    res = simulate(program(), path, None, scenario(runs=1, horizon="12 months", acquisition={"per_month": 0}), workers=1, engine=ENGINE, slice_rows=1000)
    assert res.monthly["month"].astype(str).iloc[-1] == "2027-12" and res.summary["horizon"]["customers_with_a_future"] == 300


def test_the_command_line_takes_a_horizon(tmp_path):
    from click.testing import CliRunner

    from simulator.cli import main

    out = tmp_path / "sim"
    res = CliRunner().invoke(main, ["simulate", COFFEE, "--horizon", "6 months", "--runs", "2", "--out", str(out), "--quiet", "--workers", "1", "--engine", ENGINE])
    assert res.exit_code == 0, res.output + str(res.exception)
    monthly = pd.read_csv(out / "monthly.csv")
    assert monthly.groupby("run")["month"].nunique().tolist() == [18, 18]  # 12 of history, 6 forecast
    bad = CliRunner().invoke(main, ["simulate", COFFEE, "--horizon", "soon", "--out", str(tmp_path / "x"), "--quiet", "--engine", ENGINE])
    assert bad.exit_code == 1 and "horizon: expected a horizon like `24 months`" in bad.output


def test_a_scenario_file_whose_history_cannot_be_fitted_is_named_in_the_refusal(tmp_path):
    from click.testing import CliRunner

    from simulator.cli import main
    from simulator.sample_data import write
    from tests.simulator.simkit import PROGRAM_TEXT

    write(*generate(6, 2, 1), tmp_path, "csv")
    (tmp_path / "p.loyalty").write_text(PROGRAM_TEXT, encoding="utf-8")
    (tmp_path / "s.yaml").write_text("program: p.loyalty\ntransactions: transactions.csv\nruns: 2\nhorizon: 12 months\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["simulate", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "out"), "--quiet", "--engine", ENGINE])
    assert res.exit_code == 1
    assert f"{tmp_path / 's.yaml'}: error: horizon: the purchase model (BG/NBD) cannot be fitted" in res.output
    assert not (tmp_path / "out").exists()
