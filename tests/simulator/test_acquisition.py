"""New customers in a horizon (simulator.acquisition): the monthly counts have the configured
Poisson mean; the default rate is the history's recent pace (0 for a cohort like CDNOW's); ids
are new and never a real one; a new customer's rows are a past new customer's first year,
shifted into their month and cut at the horizon's end; they enrol and earn; the real customers'
path is untouched by them; the roll-forward balances; the same seed gives the same bytes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rulelang.errors import LoyaltyError
from simulator import acquisition, horizon, montecarlo
from simulator.api import simulate
from simulator.history import prepare
from simulator.sample_data import generate
from simulator.scenario import Scenario, ScenarioError
from tests.simulator.simkit import ENGINE, program, scenario

CDNOW = Path(__file__).resolve().parent.parent / "data" / "cdnow" / "cdnow_sample.csv.gz"


@pytest.fixture(scope="module")
def small():
    return generate(300, 12, 5)


@pytest.fixture(scope="module")
def fitted(small):
    tx, _ = small
    h = prepare(tx, 2)
    hz = horizon.fit(h, 12, 3, 4)
    return tx, h, hz


def test_new_customers_per_month_have_the_configured_poisson_mean(fitted):
    _, h, hz = fitted
    runs, rate = 400, 7.5
    acq = acquisition.fit(h, hz, rate, runs, 3)
    counts = np.array([acq.month_counts(r) for r in range(runs)])
    assert counts.shape == (runs, 12) and (acq.totals == counts.sum(axis=1)).all()
    n = counts.size
    # The mean within 4 standard errors of a Poisson mean; the variance equals the mean (its own
    # standard error is about sqrt(2 rate^2 / n) for large rates: 4 of them allowed).
    assert abs(counts.mean() - rate) < 4 * np.sqrt(rate / n)
    assert abs(counts.var() - rate) < 4 * np.sqrt((2 * rate**2 + rate) / n)
    assert acq.capacity == counts.sum(axis=1).max()
    # Each run's counts are its own, the same whatever the number of runs.
    assert np.array_equal(acquisition.fit(h, hz, rate, 5, 3).totals, acq.totals[:5])
    assert acquisition.fit(h, hz, 0.0, runs, 3).capacity == 0


def _first_purchase_months(frame: pd.DataFrame) -> pd.Series:
    buys = frame[frame["event"] == "purchase"]
    return pd.to_datetime(buys.groupby("customer_id")["timestamp"].min()).dt.to_period("M")


def test_the_default_rate_is_the_last_six_complete_months_first_purchases_per_month(fitted):
    tx, h, hz = fitted
    acq = acquisition.fit(h, hz, None, 2, 1)
    # The oracle: first purchases counted from the raw rows, in 2026-07 .. 2026-12 (the sample's
    # last 6 of 12 complete months; its first 3 never count).
    first = _first_purchase_months(tx)
    window = pd.period_range("2026-07", "2026-12", freq="M")
    assert acq.window == ("2026-07", "2026-12")
    assert acq.new_in_window == int(first.isin(window).sum()) > 0
    assert acq.per_month == pytest.approx(first.isin(window).sum() / 6)
    assert not acq.rate_given and acq.describe()["source"] == "the history"
    # The sources: customers whose first purchase is from the fourth month (2026-04) on.
    late = first[first >= pd.Period("2026-04", "M")].index
    assert sorted(np.asarray(h.customer_ids)[acq.source_code].tolist()) == sorted(late.tolist())
    # How much of their first year the history holds: from the first purchase to its end (a
    # fraction of each one's 12 months), averaged.
    buys = tx[tx["event"] == "purchase"].assign(timestamp=lambda d: pd.to_datetime(d["timestamp"]))
    f0 = buys.groupby("customer_id")["timestamp"].min()[late]
    end = pd.to_datetime(tx["timestamp"]).max() + pd.Timedelta(nanoseconds=1)
    year = (f0 + pd.DateOffset(months=12)) - f0
    seen = ((f0 + pd.DateOffset(months=12)).clip(upper=end) - f0) / year
    assert acq.months_seen == pytest.approx(12 * seen.mean(), rel=1e-9) and acq.months_seen < 9
    assert acq.capacity and acq.describe()["first_year_months_seen"] == round(acq.months_seen, 2)


def test_a_short_history_measures_over_the_months_after_its_first_three():
    tx, _ = generate(200, 7, 2)
    h = prepare(tx, 2)
    acq = acquisition.fit(h, horizon.fit(h, 6, 1, 1), None, 1, 1)
    first = _first_purchase_months(tx)
    window = pd.period_range("2026-04", "2026-07", freq="M")
    assert acq.window == ("2026-04", "2026-07")
    assert acq.per_month == pytest.approx(first.isin(window).sum() / 4)


def test_a_cohort_history_like_cdnow_gets_no_new_customers_by_default():
    frame = pd.read_csv(CDNOW, dtype={"customer_id": str})
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    h = prepare(frame[["customer_id", "timestamp", "amount"]].assign(event="purchase"), 2)
    hz = horizon.fit(h, 12, 2, 1)
    acq = acquisition.fit(h, hz, None, 2, 1)
    # Every CDNOW customer first bought in 1997's first quarter: none in 1998-01 .. 1998-06.
    assert acq.window == ("1998-01", "1998-06") and acq.new_in_window == 0 and acq.per_month == 0
    assert acq.capacity == 0
    # Asked for, they copy every customer's first year (there is no later first purchase).
    asked = acquisition.fit(h, hz, 3.0, 2, 1)
    assert asked.capacity > 0 and not asked.sources_new and len(asked.source_code) == h.customers


def test_a_new_customers_rows_are_a_past_new_customers_first_year_shifted_into_their_month(fitted):
    tx, h, hz = fitted
    acq = acquisition.fit(h, hz, 6.0, 3, 9)
    run = 1
    months = pd.period_range("2026-01", "2027-12", freq="M")
    new = acquisition.draw(acq, h, months, 0.5, "random", 9, run)
    counts = acq.month_counts(run)
    n = int(counts.sum())
    assert len(new.source) == n and new.chosen[:n].sum() == int(np.floor(0.5 * n + 0.5)) and not new.chosen[n:].any()
    month_of = np.repeat(np.arange(12), counts)
    rows = new.rows
    raw = tx.assign(timestamp=pd.to_datetime(tx["timestamp"]), _input=np.arange(len(tx)))
    ids = np.asarray(h.customer_ids)
    cut = hz.end
    for i in range(n):
        mine = rows[rows["_m"] == acq.first_code + i]
        enrol = mine["_enroll"].to_numpy()
        copies = mine[~enrol]
        assert enrol.sum() == int(new.chosen[i]) and (not enrol.any() or enrol[0])
        # The oracle: the source's raw rows from its first purchase to 12 months later.
        src = raw[raw["customer_id"] == ids[new.source[i]]].sort_values(["timestamp", "_input"], kind="stable")
        f0 = src.loc[src["event"] == "purchase", "timestamp"].min()
        assert f0 >= pd.Timestamp("2026-04-01")  # a past new customer
        year = src[(src["timestamp"] >= f0) & (src["timestamp"] < f0 + pd.DateOffset(months=12)) & (src["event"] != "enroll")]
        start = copies["timestamp"].iloc[0]
        shifted = year["timestamp"] + (start - f0)
        kept = (shifted <= cut).to_numpy()
        assert (copies["timestamp"].to_numpy() == shifted[kept].to_numpy()).all()
        sign = np.where(year["event"].to_numpy() == "refund", -1, 1)
        assert (copies["_minor"].to_numpy() == (np.rint(np.abs(year["amount"].to_numpy()) * 100) * sign)[kept]).all()
        # It joins at a moment (a whole second) in its month of the horizon.
        month = hz.origin + pd.DateOffset(months=int(month_of[i]))
        assert month <= start < month + pd.DateOffset(months=1) and start.value % 10**9 == 0
    assert rows["_row"].is_unique


def test_new_ids_never_collide_with_real_ones(small):
    tx, cu = small
    # A real customer whose id looks like a new one: the new ids step aside.
    real = tx["customer_id"].iloc[0]
    tx = tx.assign(customer_id=tx["customer_id"].replace({real: "new-1"}))
    cu = cu.assign(customer_id=cu["customer_id"].replace({real: "new-1"}))
    h = prepare(tx, 2)
    acq = acquisition.fit(h, horizon.fit(h, 12, 2, 3), 5.0, 2, 3)
    assert len(set(acq.ids)) == len(acq.ids) and not set(acq.ids) & set(tx["customer_id"])
    assert acq.ids[0] == "~new-1"
    res = simulate(program(), tx, cu, scenario(runs=2, horizon="12 months", acquisition={"per_month": 5}), workers=1, engine=ENGINE)
    ledger_ids = set(res.ledger["customer_id"].astype(str))
    assert {i for i in ledger_ids if i.startswith("~new-")} and res.summary["horizon"]["acquisition"]["ids"].startswith("~new-1")


@pytest.fixture(scope="module")
def with_and_without(small):
    tx, cu = small
    sc = scenario(runs=3, horizon="12 months", enrollment={"share": 0.6, "pick": "random"})
    on = simulate(program(), tx, cu, {**sc, "acquisition": {"per_month": 8}}, workers=1, engine=ENGINE)
    off = simulate(program(), tx, cu, {**sc, "acquisition": {"per_month": 0}}, workers=1, engine=ENGINE)
    return tx, on, off


def test_new_customers_enrol_earn_and_redeem(with_and_without, small):
    tx, on, off = with_and_without
    h = prepare(tx, 2)
    acq = acquisition.fit(h, horizon.fit(h, 12, 3, 7), 8.0, 3, 7)
    for run in range(3):
        n = int(acq.totals[run])
        joined = int(np.floor(0.6 * n + 0.5))
        assert on.per_run[run]["members"] - off.per_run[run]["members"] == joined
        m_on, m_off = (x.monthly[x.monthly["run"] == run] for x in (on, off))
        # They join in the horizon's months, never before.
        extra = m_on["members"].to_numpy() - m_off["members"].to_numpy()
        assert (extra[:12] == 0).all() and extra[-1] == joined and (np.diff(extra) >= 0).all()
    ledger = on.ledger
    new = ledger[ledger["customer_id"].astype(str).str.startswith("new-")]
    assert (new["kind"] == "earn").any() and (new["kind"] == "redeem").any()
    assert (new["timestamp"] >= pd.Timestamp("2027-01-01")).all()
    # Their spend is in the forecast's baseline.
    future = on.monthly["month"].astype(str) >= "2027-01"
    assert (on.monthly.loc[future, "revenue_baseline"].to_numpy() >= off.monthly.loc[future, "revenue_baseline"].to_numpy()).all()
    assert on.monthly.loc[future, "revenue_baseline"].sum() > off.monthly.loc[future, "revenue_baseline"].sum()
    assert on.summary["horizon"]["acquisition"]["per_month"] == 8 and on.summary["assumptions"]["acquisition"] == {"per_month": 8.0}


def test_the_real_customers_path_is_untouched_by_new_customers(with_and_without):
    _, on, off = with_and_without
    real = ~on.ledger["customer_id"].astype(str).str.startswith("new-").to_numpy()
    a = on.ledger[real].reset_index(drop=True).assign(customer_id=lambda d: d["customer_id"].astype(str))
    b = off.ledger.reset_index(drop=True).assign(customer_id=lambda d: d["customer_id"].astype(str))
    pd.testing.assert_frame_equal(a, b)


def test_the_roll_forward_balances_in_every_month_of_every_run(with_and_without):
    _, on, _ = with_and_without
    m = on.monthly
    for _, run in m.groupby("run"):
        assert len(run) == 24 and run["opening"].iloc[0] == 0
        assert (run["opening"].to_numpy()[1:] == run["closing"].to_numpy()[:-1]).all()
    assert (m["opening"] + m["issued"] - m["clawed_back"] - m["redeemed"] - m["expired"] == m["closing"]).all()
    assert (m["closing"] >= 0).all()


def test_same_seed_same_bytes_whatever_the_workers_and_threads(small, monkeypatch):
    tx, cu = small
    sc = scenario(runs=2, horizon="12 months", acquisition={"per_month": 6})
    one = simulate(program(), tx, cu, sc, workers=1, engine=ENGINE)
    again = simulate(program(), tx, cu, sc, workers=1, engine=ENGINE)
    two = simulate(program(), tx, cu, sc, workers=2, engine=ENGINE)
    assert one.summary_json() == again.summary_json() == two.summary_json()
    pd.testing.assert_frame_equal(one.ledger, again.ledger)
    # One run on two threads, the customers cut into pieces and the new customers a piece of their own.
    monkeypatch.setattr(montecarlo, "PART_ROWS", 100)
    monkeypatch.setattr(montecarlo, "PIECE_ROWS", 1500)
    sc1 = scenario(runs=1, horizon="12 months", acquisition={"per_month": 6})
    whole = simulate(program(), tx, cu, sc1, workers=1, engine=ENGINE)
    pieces = simulate(program(), tx, cu, sc1, workers=2, engine=ENGINE)
    assert whole.summary_json() == pieces.summary_json()
    pd.testing.assert_frame_equal(whole.ledger, pieces.ledger)


def test_the_scenario_reads_acquisition_and_refuses_what_is_not_a_rate():
    assert Scenario.from_dict({"horizon": "1 year", "acquisition": {"per_month": 25}}).acquisition == 25.0
    assert Scenario.from_dict({"horizon": "1 year"}).acquisition is None
    assert "acquisition" not in Scenario().to_dict()
    over = Scenario.from_dict({"horizon": "1 year"}).with_overrides(**{"acquisition.per_month": 3})
    assert over.acquisition == 3.0 and over.to_dict()["acquisition"] == {"per_month": 3.0}
    for bad, msg in (({"per_month": -1}, "out of range"), ({"per_month": "many"}, "expected new customers per month"), ({"rate": 3}, "unknown key `rate`")):
        with pytest.raises(ScenarioError, match=msg):
            Scenario.from_dict({"horizon": "1 year", "acquisition": bad})


def test_acquisition_without_a_horizon_is_refused(small):
    tx, cu = small
    with pytest.raises(LoyaltyError, match=r"acquisition: new customers join only in a horizon"):
        simulate(program(), tx, cu, scenario(runs=1, acquisition={"per_month": 3}), workers=1, engine=ENGINE)


def test_the_command_line_takes_an_acquisition_rate(tmp_path):
    import json

    from click.testing import CliRunner

    from simulator.cli import main

    out = tmp_path / "sim"
    args = ["simulate", "programs/coffee.loyalty", "--horizon", "3 months", "--runs", "1", "--quiet", "--workers", "1", "--engine", ENGINE]
    res = CliRunner().invoke(main, [*args, "--acquisition", "12.5", "--out", str(out)])
    assert res.exit_code == 0, res.output + str(res.exception)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["horizon"]["acquisition"]["per_month"] == 12.5 and summary["horizon"]["acquisition"]["source"].startswith("the scenario")
    bad = CliRunner().invoke(main, [*args, "--acquisition", "-2", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "acquisition.per_month: -2.0 is out of range" in bad.output


def test_more_new_customers_than_a_horizon_holds_are_refused_naming_the_key(fitted, monkeypatch):
    _, h, hz = fitted
    # (The real bound is 2**24 customers; lowered here so a small history reaches it.)
    monkeypatch.setattr(acquisition, "MAX_CUSTOMERS", h.customers + 100)
    with pytest.raises(horizon.HorizonError, match=r"^acquisition: .* new customers and 300 real ones are more than a horizon takes .* give a smaller acquisition.per_month"):
        acquisition.fit(h, hz, 50.0, 2, 1)
    assert acquisition.fit(h, hz, 5.0, 2, 1).capacity < 100
