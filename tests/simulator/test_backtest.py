"""`loyalty backtest`: the CDNOW split of Fader, Hardie & Lee (2005) against counts made here from
the raw files, the plain BG/NBD's published shortfall reproduced, the forecast identical to
`simulate`'s own, a history drawn from BG/NBD with known parameters backtested, the outputs
(JSON, chart, the same bytes for the same seed) and clear errors for splits it cannot make."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from simulator import api, backtest
from simulator.cli import main
from simulator.scenario import Period, Scenario, load_scenario
from tests.simulator.forecast import cdnow

SCENARIO = cdnow.DATA / "backtest.yaml"
PROGRAM = cdnow.DATA / "cdnow.loyalty"
SPLIT = dt.date(1997, 9, 30)  # week 39 of the CDNOW calibration; the holdout runs to 1998-06-30


def _cli(*args):
    res = CliRunner().invoke(main, ["backtest", *args])
    assert "Traceback" not in res.output
    return res


def _ok(res):
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res


def _raw_days(raw: pd.DataFrame, id_column: str) -> pd.DataFrame:
    """The raw CDNOW rows as (customer, day, dollars), counted here without the toolkit."""
    return pd.DataFrame({"customer": raw[id_column].astype(int), "day": pd.to_datetime(raw["date"], format="%Y%m%d"), "dollars": raw["dollars"].astype(float)})


@pytest.fixture(scope="module")
def sample_result():
    return backtest.run(load_scenario(SCENARIO), [SPLIT], runs=8, workers=1)


def test_the_cdnow_sample_split_counts_the_holdout_as_purchase_days(sample_result):
    s = sample_result.splits[0]
    raw = _raw_days(cdnow.raw_sample(), "sample_id")
    after = raw[raw["day"] > pd.Timestamp(SPLIT)]
    assert (s.known_customers, s.new_customers, s.last_day, len(s.months)) == (2357, 0, dt.date(1998, 6, 30), 9)
    assert s.weeks == 39.0
    # A customer's rows on one day are one purchase (FHL 2005's count): 1,882 purchase days, 1,959 rows.
    assert s.known["purchases"].actual_total == after[["customer", "day"]].drop_duplicates().shape[0] == 1882
    assert len(after) == 1959
    per_month = after.drop_duplicates(["customer", "day"]).groupby(after["day"].dt.to_period("M")).size()
    assert s.known["purchases"].actual.tolist() == per_month.tolist()
    assert s.known["revenue"].actual_total == round(after["dollars"].sum() * 100)
    assert s.known["active_customers"].actual_total == after["customer"].nunique()
    active = after.groupby(after["day"].dt.to_period("M"))["customer"].nunique()
    assert s.known["active_customers"].actual.tolist() == active.tolist()
    # A point per whole dollar of each row (each row is a basket: CDNOW has no transaction ids).
    points = np.floor(after["dollars"] + 1e-9).groupby(after["day"].dt.to_period("M")).sum()
    assert s.known["points_issued"].actual.tolist() == points.tolist()


def test_the_plain_bgnbd_is_12_percent_low_on_the_sample_and_14_on_the_full_history(sample_result):
    s = sample_result.splits[0]
    assert round(100 * (s.plain_bgnbd / 1882 - 1), 1) == -12.1
    master = cdnow.as_transactions(cdnow.raw_master(), "customer_id")
    full = backtest.run(Scenario(program=PROGRAM, runs=3, seed=1), [SPLIT], transactions=master, workers=1).splits[0]
    assert (full.known_customers, full.known["purchases"].actual_total) == (23570, 19684)
    assert round(100 * (full.plain_bgnbd / 19684 - 1), 1) == -14.3


def test_the_forecast_is_simulates_own(sample_result):
    # The same scenario simulated with the period ending at the split and a 9-month horizon: every
    # run's forecast revenue per month is the backtest's, to the cent, and so are its points.
    s = sample_result.splits[0]
    sc = replace(load_scenario(SCENARIO), runs=8, period=Period(dt.date(1997, 1, 1), SPLIT), horizon=9)
    res = api.simulate(sc.program, sc.transactions, None, sc, workers=1)
    m = res.monthly[res.monthly["month"] > "1997-09"]
    revenue = m.pivot(index="run", columns="month", values="revenue_baseline").astype(float).to_numpy()
    assert np.allclose(revenue * 100, s.known["revenue"].forecast)
    issued = m.pivot(index="run", columns="month", values="issued").to_numpy()
    assert np.array_equal(issued, s.known["points_issued"].forecast)


def test_errors_bands_and_coverage_follow_from_the_figures(sample_result):
    s = sample_result.splits[0]
    for c in s.known.values():
        totals = c.forecast_totals
        assert c.total_error == pytest.approx(totals.mean() / c.actual_total - 1)
        lo, mid, hi = np.sort(totals)[[0, 3, 7]]  # 8 runs: the 1st, 4th and 8th values (inverted_cdf)
        assert backtest.quantiles(totals) == (lo, mid, hi)
        assert c.inside == (lo <= c.actual_total <= hi)
        has = c.actual > 0
        assert c.monthly_mape == pytest.approx(np.mean(np.abs(c.forecast.mean(axis=0)[has] / c.actual[has] - 1)))
    cov = sample_result.coverage()
    assert cov["purchases"] == {"inside_p5_p95": int(s.known["purchases"].inside), "splits": 1}


def test_new_customers_are_counted_apart_by_id():
    # At the end of January 1997 most of the sample's customers have not bought yet.
    s = backtest.run(load_scenario(SCENARIO), [dt.date(1997, 1, 31)], runs=3, workers=1).splits[0]
    raw = _raw_days(cdnow.raw_sample(), "sample_id")
    known = set(raw.loc[raw["day"] <= "1997-01-31", "customer"])
    after = raw[raw["day"] > "1997-01-31"]
    newer = after[~after["customer"].isin(known)]
    assert (s.known_customers, s.new_customers) == (len(known), newer["customer"].nunique())
    assert s.known["purchases"].actual_total == after[after["customer"].isin(known)][["customer", "day"]].drop_duplicates().shape[0]
    assert s.new == {
        "purchases": newer[["customer", "day"]].drop_duplicates().shape[0],
        "revenue": round(newer["dollars"].sum() * 100),
        "active_customers": newer["customer"].nunique(),
    }
    assert any("first bought after the split" in n for n in s.notes)


def _bgnbd_history(seed: int, customers: int, r=0.25, alpha=4.0, a=0.8, b=2.5) -> pd.DataFrame:
    """Purchases drawn from BG/NBD itself: first purchases spread over 12 weeks from 2020-01-01,
    rate ~ Gamma(r, alpha) per week, dropout p ~ Beta(a, b) after each repeat purchase, to
    2021-06-30; spend per purchase as Gamma-Gamma has it: Gamma(6, nu) dollars with the
    customer's nu ~ Gamma(4, 15) (shape, rate; a spend model with no heterogeneity has no maximum)."""
    g = np.random.default_rng(seed)
    start = pd.Timestamp("2020-01-01")
    end_weeks = (pd.Timestamp("2021-06-30") - start).days / 7 + 6 / 7
    lam = g.gamma(r, 1 / alpha, customers)
    p = g.beta(a, b, customers)
    nu = g.gamma(4.0, 1 / 15.0, customers)
    rows = []
    for i in range(customers):
        t = g.uniform(0, 12)
        rows.append((i, t))
        while True:
            t += g.exponential(1 / lam[i])
            if t > end_weeks:
                break
            rows.append((i, t))
            if g.uniform() < p[i]:
                break
    ids, weeks = np.array(rows).T
    return pd.DataFrame(
        {
            "customer_id": [f"c{int(i)}" for i in ids],
            "timestamp": (start + pd.to_timedelta(np.floor(weeks * 7), unit="D")).strftime("%Y-%m-%d"),
            "amount": np.round(g.gamma(6.0, 1 / nu[ids.astype(int)]), 2),
        }
    )


def test_a_history_drawn_from_bgnbd_is_forecast_within_its_band():
    # Where the model is true the backtest's error is small and the band covers the actual
    # (each run draws its parameters, so the band carries their uncertainty too).
    sc = Scenario(program=PROGRAM, runs=20, seed=3)
    errors, inside = [], []
    for seed in range(4):
        s = backtest.run(sc, [dt.date(2020, 9, 30)], transactions=_bgnbd_history(seed, 1500), workers=1).splits[0]
        c = s.known["purchases"]
        errors.append(c.total_error)
        inside.append(c.inside)
    assert max(abs(e) for e in errors) < 0.12, errors
    assert abs(np.mean(errors)) < 0.06, errors
    assert sum(inside) >= 3, (errors, inside)


def test_the_command_prints_writes_and_repeats_byte_for_byte(tmp_path):
    out = _ok(_cli(str(SCENARIO), "--split", "1997-09-30", "--runs", "4")).output
    assert "split 1997-09-30" in out and "1,882" in out and "plain BG/NBD" in out and "error -12.1%" in out
    d = json.loads(_ok(_cli(str(SCENARIO), "--split", "1997-09-30", "--runs", "4", "--format", "json")).output)
    assert d["format"] == backtest.FORMAT and d["runs"] == 4
    split = d["splits"][0]
    assert split["known_customers"]["purchases"]["actual"] == 1882
    assert split["plain_bgnbd"]["total_error_pct"] == -12.15
    assert len(split["known_customers"]["revenue"]["monthly"]) == 9
    files = []
    for name in ("a", "b"):
        _ok(_cli(str(SCENARIO), "--split", "1997-09-30", "--runs", "4", "--out", str(tmp_path / name)))
        files.append({p.name: p.read_bytes() for p in (tmp_path / name).iterdir()})
    assert set(files[0]) == set(backtest.FILES)
    assert files[0] == files[1]
    assert files[0]["backtest.svg"].startswith(b"<?xml") and b"<svg" in files[0]["backtest.svg"]
    assert json.loads(files[0]["backtest.json"])["splits"][0]["split"] == "1997-09-30"


def test_several_splits_report_their_coverage():
    d = json.loads(_ok(_cli(str(SCENARIO), "--splits", "3", "--runs", "3", "--format", "json")).output)
    days = [s["split"] for s in d["splits"]]
    assert days == sorted(days) and len(days) == 3 and days[-1] == "1998-03-31"
    inside = sum(s["known_customers"]["purchases"]["inside_p5_p95"] for s in d["splits"])
    assert d["coverage"]["purchases"] == {"inside_p5_p95": inside, "splits": 3}


def test_choose_splits_spreads_month_ends_with_room_on_both_sides():
    first, last = dt.date(1997, 1, 1), dt.date(1998, 6, 30)
    # Month ends from 1997-03-31 (3 months before) to 1998-03-31 (3 whole months after): 13 of them.
    assert backtest.choose_splits(first, last, 1) == [dt.date(1998, 3, 31)]
    assert backtest.choose_splits(first, last, 3) == [dt.date(1997, 3, 31), dt.date(1997, 9, 30), dt.date(1998, 3, 31)]
    assert len(backtest.choose_splits(first, last, 100)) == 13


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--split", "1997-09-15"], 2, "--split 1997-09-15: expected the last day of a month (such as 1997-09-30)"),
        (["--split", "1998-06-30"], 2, "--split 1998-06-30: outside the history (1997-01-01 to 1998-06-30)"),
        (["--split", "1996-12-31"], 2, "outside the history"),
        (["--split", "30/09/1997"], 2, "is not a date; write it like 1997-09-30"),
        (["--split", "1997-09-30", "--splits", "2"], 2, "give --split DATE (once or more) or --splits N, not both or neither"),
        ([], 2, "not both or neither"),
    ],
)
def test_splits_it_cannot_make_are_refused_clearly(args, code, message):
    res = _cli(str(SCENARIO), "--runs", "2", *args)
    assert res.exit_code == code, res.output
    assert message in res.output


def test_an_output_folder_over_an_input_is_refused(tmp_path):
    res = _cli(str(SCENARIO), "--split", "1997-09-30", "--out", str(cdnow.DATA))
    assert res.exit_code == 2 and "--out" in res.output
    (tmp_path / "mine.txt").write_text("keep me")
    res = _cli(str(SCENARIO), "--split", "1997-09-30", "--out", str(tmp_path))
    assert res.exit_code == 2 and (tmp_path / "mine.txt").read_text() == "keep me"


def test_rejected_rows_and_a_scenario_without_a_program_are_errors_in_the_data(tmp_path):
    (tmp_path / "tx.csv").write_text("customer_id,timestamp,amount\na,2020-01-05,10.00\na,2020-02-07,not money\n")
    (tmp_path / "s.yaml").write_text(f"program: {PROGRAM}\ntransactions: tx.csv\n")
    res = _cli(str(tmp_path / "s.yaml"), "--split", "2020-01-31")
    assert res.exit_code == 1
    assert "tx.csv: error: 1 row(s) rejected; a backtest compares every row" in res.output and "amount" in res.output
    (tmp_path / "none.yaml").write_text("transactions: tx.csv\n")
    res = _cli(str(tmp_path / "none.yaml"), "--split", "2020-01-31")
    assert res.exit_code == 1 and "program: the scenario names no program" in res.output
