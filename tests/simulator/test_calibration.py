"""simulator.calibration: the difference-in-differences estimate of lift from a pilot.

Oracles: a two-way fixed-effects fit with a dummy per customer (statsmodels), the difference of
the groups' mean changes (the 2x2 formula), statsmodels' own clustered covariance, a pandas
group-by of the transactions, and synthetic pilots with a known injected lift (the coverage study).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from simulator import calibration, pilot_synthetic
from simulator.calibration import CalibrationError, build_panel, estimate


def _panel(seed=7, pilot=0, **kw):
    p = pilot_synthetic.generate(seed, pilot, **kw)
    panel, outside = build_panel(p.transactions, p.treated, p.control, p.pre_start, p.start, p.end)
    return p, panel, outside


@pytest.mark.slow
def test_coverage_of_the_95_percent_intervals_over_200_synthetic_pilots():
    study = pilot_synthetic.coverage_study(2026, pilots=200)  # 400 customers x 16 weeks, the last 8 the pilot
    assert 0.93 <= study.covered["spend"] <= 0.97, study
    assert 0.93 <= study.covered["visits"] <= 0.97, study
    # Spend per visit (the response's spend_uplift) too, less tightly: 0.90 is 2 binomial standard errors below 0.95.
    assert 0.90 <= study.covered["spend_per_visit"] <= 0.98, study
    # No material bias: the mean estimate within three standard errors of the mean (se / sqrt(pilots)) of the truth.
    for k in ("spend", "visits", "spend_per_visit"):
        assert abs(study.mean_estimate[k] - study.truth[k]) < 3 * study.mean_se[k] / np.sqrt(study.pilots), (k, study)
    # The placebo test's size: about 5% of pilots with parallel trends reject (at most 22 of 200: 99.9% binomial).
    assert study.placebo_rejections <= 22


def test_naive_difference_is_biased_when_heavier_buyers_are_treated_and_did_is_not():
    naive, did, se = [], [], []
    for i in range(30):
        p, panel, _ = _panel(11, i, heavy_selected=True)
        c = estimate(panel)
        naive.append(c.naive_spend)
        did.append(c.spend.uplift)
        se.append(c.spend.uplift_se)
    truth = p.total_spend_lift
    assert np.mean(naive) > truth + 0.3  # treated customers buy far more anyway
    assert abs(np.mean(did) - truth) < 3 * np.mean(se) / np.sqrt(30)
    # An additive difference in differences (OLS in levels) on the same pilots is biased: the heavier
    # buyers' larger seasonal swing is charged to the program. (Why the estimator is multiplicative.)
    ols = []
    for i in range(30):
        _, panel, _ = _panel(11, i, heavy_selected=True)
        x = calibration._design(panel.treated, panel.pilot)
        fit = sm.OLS(panel.spend.ravel(), x).fit()
        ols.append(fit.params[-1] / (panel.spend[panel.treated][:, panel.pilot].mean() - fit.params[-1]))
    assert np.mean(ols) - truth > 3 * np.mean(se) / np.sqrt(30)


def test_placebo_warns_when_pre_trends_diverge():
    _, panel, _ = _panel(5, 0, customers=2000, pre_trend=0.6)
    c = estimate(panel)
    assert c.placebo.rejects and c.placebo.p_value < 0.05
    assert c.placebo.spend_uplift > 0 and c.placebo.visit_uplift > 0
    _, panel, _ = _panel(5, 0, customers=2000)
    assert not estimate(panel).placebo.rejects


def test_log_ratio_equals_a_poisson_fit_with_a_dummy_per_customer():
    _, panel, _ = _panel(3, 0, customers=40, weeks=8, pilot_weeks=3)
    c = estimate(panel)
    n_c, n_w = panel.shape
    cust = np.repeat(np.arange(n_c), n_w)
    week = np.tile(np.arange(n_w), n_c)
    d = (panel.treated[cust] & panel.pilot[week]).astype(float)
    x = np.column_stack([np.eye(n_c)[cust], np.eye(n_w)[week][:, 1:], d])
    for name, effect in (("spend", c.spend), ("visits", c.visits)):
        y = getattr(panel, name).ravel()
        fe = sm.GLM(y, x, family=sm.families.Poisson()).fit(cov_type="cluster", cov_kwds={"groups": cust})
        assert effect.log_ratio == pytest.approx(fe.params[-1], rel=1e-6, abs=1e-8)
        # Clustered errors of the same size (they differ by the small-sample factor's count of coefficients only).
        assert effect.log_ratio_se == pytest.approx(fe.bse[-1], rel=0.25)
        # The counterfactual is the treated group's pilot mean over exp(log ratio); the effect, their difference.
        treated_mean = y.reshape(n_c, n_w)[panel.treated][:, panel.pilot].mean()
        assert effect.counterfactual == pytest.approx(treated_mean / np.exp(fe.params[-1]))
        assert effect.effect == pytest.approx(treated_mean - effect.counterfactual)


def test_two_weeks_give_the_ratio_of_ratios():
    # With one week before and one in the pilot the model is saturated: exp(log ratio) is
    # (treated after / treated before) / (control after / control before), the textbook 2x2.
    _, panel, _ = _panel(6, 0, customers=80, weeks=2, pilot_weeks=1)
    fit = calibration._fit(panel, slice(None), panel.pilot)
    for i, name in enumerate(calibration.OUTCOMES):
        y = getattr(panel, name)
        t, ctl = y[panel.treated].sum(axis=0), y[~panel.treated].sum(axis=0)
        assert np.exp(fit.coef[i, -1]) == pytest.approx((t[1] / t[0]) / (ctl[1] / ctl[0]), rel=1e-8)


def test_joint_covariance_matches_statsmodels_per_outcome():
    _, panel, _ = _panel(4, 0, customers=60, weeks=10, pilot_weeks=4)
    fit = calibration._fit(panel, slice(None), panel.pilot)
    x = calibration._design(panel.treated, panel.pilot)
    groups = np.repeat(np.arange(panel.shape[0]), panel.shape[1])
    k = x.shape[1]
    for i, name in enumerate(calibration.OUTCOMES):
        res = sm.GLM(getattr(panel, name).ravel(), x, family=sm.families.Poisson()).fit(cov_type="cluster", cov_kwds={"groups": groups})
        np.testing.assert_allclose(fit.coef[i], res.params, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(fit.cov[i * k : (i + 1) * k, i * k : (i + 1) * k], res.cov_params(), rtol=1e-6, atol=1e-12)


def test_intervals_are_the_log_ratios_transformed():
    _, panel, _ = _panel(8, 0)
    c = estimate(panel)
    lo, hi = c.spend.uplift_interval()
    assert lo < c.spend.uplift < hi
    assert np.log1p(lo) == pytest.approx(c.spend.log_ratio - calibration.Z95 * c.spend.log_ratio_se)
    assert np.log1p(hi) == pytest.approx(c.spend.log_ratio + calibration.Z95 * c.spend.log_ratio_se)
    assert c.spend_per_visit.log_ratio == pytest.approx(c.spend.log_ratio - c.visits.log_ratio)
    elo, ehi = c.spend.effect_interval()
    assert elo < c.spend.effect < ehi


def test_panel_matches_a_groupby_of_the_transactions():
    p, panel, outside = _panel(2, 0, customers=50, weeks=6, pilot_weeks=2)
    tx = p.transactions.copy()
    # Add a refund, a customer in neither group and a basket of two lines.
    extra = pd.DataFrame(
        {
            "customer_id": [p.treated[0], "NOBODY", p.control[0], p.control[0]],
            "timestamp": pd.to_datetime([str(p.start)] * 4) + pd.Timedelta(hours=10),
            "amount": [-5.0, 9.0, 3.0, 4.0],
            "event": ["refund", "purchase", "purchase", "purchase"],
            "transaction_id": ["R1", "X1", "B2L", "B2L"],
        }
    )
    tx = pd.concat([tx, extra], ignore_index=True)
    panel, outside = build_panel(tx, p.treated, p.control, p.pre_start, p.start, p.end)
    assert outside == 1
    ids = list(panel.customer_ids)
    days = (tx["timestamp"] - pd.Timestamp(p.start)).dt.days
    week = days // 7 + int((~panel.pilot).sum())
    net = np.where(tx["event"] == "refund", -tx["amount"].abs(), tx["amount"])
    known = tx["customer_id"].isin(ids)
    by = pd.DataFrame({"c": tx["customer_id"][known].map({c: i for i, c in enumerate(ids)}), "w": week[known], "net": net[known]})
    expected = np.zeros(panel.shape)
    for (c, w), s in by.groupby(["c", "w"])["net"].sum().items():
        expected[c, w] = s
    np.testing.assert_allclose(panel.spend, expected, atol=1e-9)
    bought = tx[known & (tx["event"] == "purchase")]
    counts = bought.groupby([bought["customer_id"].map({c: i for i, c in enumerate(ids)}), week[bought.index]])["transaction_id"].nunique()
    expected_visits = np.zeros(panel.shape)
    for (c, w), n in counts.items():
        expected_visits[c, w] = n
    np.testing.assert_array_equal(panel.visits, expected_visits)
    assert panel.treated.sum() == len(p.treated) and (~panel.treated).sum() == len(p.control)


def test_a_customer_in_both_groups_is_an_error():
    p = pilot_synthetic.generate(1, 0, customers=20, weeks=4, pilot_weeks=2)
    with pytest.raises(CalibrationError, match="in both groups"):
        build_panel(p.transactions, p.treated, np.append(p.control, p.treated[0]), p.pre_start, p.start, p.end)


def test_too_few_customers_or_weeks_is_an_error():
    p = pilot_synthetic.generate(1, 0, customers=20, weeks=4, pilot_weeks=2)
    panel, _ = build_panel(p.transactions, p.treated[:1], p.control, p.pre_start, p.start, p.end)
    with pytest.raises(CalibrationError, match="1 treated customers"):
        estimate(panel)
    panel, _ = build_panel(p.transactions, p.treated, p.control, p.start - dt.timedelta(days=3), p.start, p.end)
    with pytest.raises(CalibrationError, match="pre-period weeks"):
        estimate(panel)


def test_same_seed_same_pilot_and_estimates():
    a = _panel(9, 3)[0].transactions
    b = _panel(9, 3)[0].transactions
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(_panel(9, 4)[0].transactions)


def test_poisson_quantile_is_scipys():
    rng = np.random.default_rng(0)
    u = rng.random(20_000)
    mean = rng.gamma(2.0, 1.5, 20_000)
    np.testing.assert_array_equal(pilot_synthetic.poisson_quantile(u, mean), stats.poisson.ppf(u, mean).astype(np.int64))


def test_a_panel_over_the_cell_limit_is_refused(monkeypatch):
    p = pilot_synthetic.generate(1, 0, customers=20, weeks=4, pilot_weeks=2)
    monkeypatch.setattr(calibration, "MAX_CELLS", 79)
    with pytest.raises(CalibrationError, match="20 customers over 4 weeks are 80 customer-weeks; at most 79"):
        build_panel(p.transactions, p.treated, p.control, p.pre_start, p.start, p.end)
