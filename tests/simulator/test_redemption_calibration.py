"""Redemption behaviour from a ledger (simulator.redemption_calibration).

Oracles: a ledger counted by hand (tests/simulator/simkit.py `redemption_case`); statsmodels'
cluster-robust variance of a mean and its Wilson interval; and the engine itself: a simulation of
the bundled sample under a known policy, whose ledger must give the policy back (with probability
1 every affordable visit redeems, so the estimate must be exactly 1: the balance the estimate
computes is the one the engine decided on).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import rulelang
from simulator import io, simulate
from simulator import redemption_calibration as rc
from simulator.sample_data import bundled_paths
from tests.conftest import ROOT
from tests.simulator import simkit

COFFEE = ROOT / "programs" / "coffee.loyalty"


def _estimate(ledger, tx, catalog=None):
    return rc.estimate(rc.load_ledger(ledger), io.load_transactions(tx).frame, catalog)


def test_the_hand_counted_ledger_gives_its_counts():
    ledger, tx = simkit.redemption_case()
    e = _estimate(ledger, tx)
    assert e.overall.visits == sum(simkit.REDEMPTION_CASE_AFFORDABLE.values()) == e.visits_affordable == 7
    assert e.overall.redemptions == 2 and e.overall.estimate == pytest.approx(2 / 7)
    assert e.overall.members == 2
    assert {t: (p.redemptions, p.visits) for t, p in e.by_tier.items()} == {"Green": (1, 3), "Gold": (1, 4)}
    assert e.prices == simkit.REDEMPTION_CASE_PRICES  # from the ledger's redemptions: 200 + 100, and 2000
    assert e.redemptions == 3 and e.redemptions_off_visit == 1 and e.redemptions_unaffordable == 0
    assert e.visits == 13 and e.members == 2  # A 5 baskets (two lines of a1 are one), B 5, C 3
    # One choice between two affordable rewards, the dearest; the coffee was the only one A afforded.
    assert e.choice_counts == {"cheapest": 0, "dearest": 1, "other": 0} and e.single_choice == 1
    # One observation: random's likelihood is 1/2 with no parameter; dearest's is 1 with one (AIC 2).
    assert e.aic["random"] == pytest.approx(2 * math.log(2)) and e.aic["dearest"] == pytest.approx(2.0)
    assert e.choice == "random"


def test_a_catalog_prices_rewards_never_redeemed():
    ledger, tx = simkit.redemption_case()
    e = _estimate(ledger, tx, {"cup": 100, "coffee": 300, "mug": 2000})
    # With a 100-point reward A's 3-01 (200) and 3-04 (150) visits become affordable too (B's 3-10, 0, stays not).
    assert e.overall.visits == 9 and e.overall.redemptions == 2
    assert e.prices == {"cup": 100, "coffee": 300, "mug": 2000}
    # A's coffee at 450 now had the cup beside it: the dearest of two; B's mug the dearest of three.
    assert e.choice_counts == {"cheapest": 0, "dearest": 2, "other": 0}
    with pytest.raises(rc.RedemptionCalibrationError, match="'mug', which the program does not offer"):
        _estimate(ledger, tx, {"coffee": 300})


def test_the_interval_is_wilson_on_the_clustered_effective_size():
    sm = pytest.importorskip("statsmodels.api")
    from statsmodels.stats.proportion import proportion_confint

    rng = np.random.default_rng(4)
    members = np.repeat(np.arange(40), rng.integers(1, 12, 40))
    propensity = rng.uniform(0.05, 0.9, 40)
    y = (rng.uniform(size=len(members)) < propensity[members]).astype(float)
    p = rc.proportion(y, np.ones_like(y), members)
    fit = sm.OLS(y, np.ones((len(y), 1))).fit(cov_type="cluster", cov_kwds={"groups": members})
    mean = y.mean()
    assert p.estimate == pytest.approx(mean)
    assert p.design_effect == pytest.approx(fit.bse[0] ** 2 / (mean * (1 - mean) / len(y)), rel=1e-9)
    n_eff = len(y) / p.design_effect
    low, high = proportion_confint(mean * n_eff, n_eff, alpha=0.05, method="wilson")
    assert (p.low, p.high) == pytest.approx((low, high), rel=1e-9)
    # Visits of one member given as one row with several chances are the same data.
    per_member = pd.DataFrame({"m": members, "y": y}).groupby("m")["y"].agg(["sum", "size"])
    q = rc.proportion(per_member["sum"].to_numpy(), per_member["size"].to_numpy(), per_member.index.to_numpy())
    assert (q.estimate, q.low, q.high) == pytest.approx((p.estimate, p.low, p.high))


def _simulated(probability: float, choice: str, seed: int = 5):
    tx, cu = bundled_paths()
    # enrollment 0.7: the customers who never joined have visits and no postings (never affordable).
    # No visit_uplift: the engine's rows are the members' rows plus their enrol rows (the ledger's
    # `row` numbers those, not the file's), which is why visits are matched by customer and time.
    sc = {"runs": 1, "seed": seed, "enrollment": {"share": 0.7}, "redemption": {"probability": probability, "choice": choice}}
    res = simulate(str(COFFEE), str(tx), str(cu), sc, workers=1, engine=simkit.ENGINE)
    return res.ledger, io.load_transactions(str(tx)).frame


def _catalog():
    return rc.catalog_of(rulelang.load(COFFEE))


@pytest.mark.parametrize("choice", ["cheapest", "dearest", "random"])
def test_a_simulated_policy_is_recovered(choice):
    ledger, tx = _simulated(0.3, choice)
    e = rc.estimate(rc.load_ledger(ledger), tx, _catalog())
    assert e.overall.low <= 0.3 <= e.overall.high, e.overall
    assert e.overall.high - e.overall.low < 0.02
    assert e.choice == choice
    assert e.redemptions_unaffordable == 0 and e.redemptions_off_visit == 0
    assert set(e.by_tier) == {"Green", "Gold", "Black"}
    if choice != "random":
        assert e.choice_counts[choice] == sum(e.choice_counts.values()) > 1000
        assert e.tremble[choice] == 0.0


def test_with_probability_1_every_affordable_visit_redeems():
    # The engine redeemed on exactly the visits whose balance (after the visit's own postings)
    # afforded the cheapest reward: the estimate's affordable visits must be those, no more, no fewer.
    ledger, tx = _simulated(1.0, "cheapest")
    e = rc.estimate(rc.load_ledger(ledger), tx, _catalog())
    assert e.overall.estimate == 1.0 and e.overall.redemptions == e.overall.visits > 10_000
    assert e.redemptions_unaffordable == 0


def test_a_ledger_without_redemptions_has_nothing_to_estimate():
    ledger, tx = _simulated(0.0, "cheapest")
    assert (ledger["kind"] == "redeem").sum() == 0
    with pytest.raises(rc.RedemptionCalibrationError, match="no redeem postings; nothing to estimate"):
        rc.estimate(rc.load_ledger(ledger), tx, _catalog())


def test_members_missing_from_the_transactions_are_named():
    ledger, tx = simkit.redemption_case()
    with pytest.raises(rc.RedemptionCalibrationError, match=r"1 of the ledger's 2 members have no rows in .* \(e\.g\. B\)"):
        _estimate(ledger, tx[tx["customer_id"] != "B"])


def test_transactions_with_no_affordable_visit_have_nothing_to_estimate():
    # Every visit a month after the ledger's postings (another period's transactions): none in its span.
    ledger, tx = simkit.redemption_case()
    later = tx.assign(timestamp=(pd.to_datetime(tx["timestamp"]) + pd.Timedelta(days=40)).astype(str))
    with pytest.raises(rc.RedemptionCalibrationError, match=r"none of the 0 visits in .* \(2026-03-01 to 2026-03-10; 13 visits outside it\) had a balance of 300 points"):
        _estimate(ledger, later)


def test_bad_ledger_cells_name_the_column_and_rows():
    ledger, _ = simkit.redemption_case()
    with pytest.raises(rc.RedemptionCalibrationError, match=r"no column `kind`, `row`"):
        rc.load_ledger(ledger.drop(columns=["kind", "row"]))
    bad = ledger.astype({"kind": object, "points": object})
    bad.loc[2, "kind"] = "bonus"
    bad.loc[4, "points"] = -3
    bad.loc[5, "points"] = 2.5
    with pytest.raises(rc.RedemptionCalibrationError) as info:
        rc.load_ledger(bad)
    text = str(info.value)
    assert "column kind: 'bonus' at row 3; a posting's kind is one of earn, clawback" in text
    assert "column points: not a whole number of 0 or more at rows 5, 6 (2 rows)" in text
    blank = ledger.copy()
    blank.loc[3, "reward"] = ""
    with pytest.raises(rc.RedemptionCalibrationError, match="blank on redeem postings at row 4"):
        rc.load_ledger(blank)


def test_a_csv_ledger_reads_as_the_frame(tmp_path):
    ledger, tx = simkit.redemption_case()
    ledger.to_csv(tmp_path / "ledger.csv", index=False)
    a = _estimate(ledger, tx)
    b = _estimate(tmp_path / "ledger.csv", tx)
    assert a == b
