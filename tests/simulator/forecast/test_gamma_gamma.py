"""Gamma-Gamma: the ML fit of the published CDNOW summary's 946 repeat buyers, the density and the
conditional mean against integrals, the spend sampler against the conditional mean, and recovery
of known parameters within the standard errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from rulelang.errors import LoyaltyError
from simulator import rng
from simulator.forecast import gamma_gamma, summary
from simulator.forecast.mle import FitError
from tests.simulator.forecast import cdnow


def test_the_fit_of_the_published_cdnow_repeat_buyers():
    s = cdnow.published_summary()
    repeat = s[s["x"] > 0]
    f = gamma_gamma.fit(repeat["x"], repeat["zbar"])
    assert f.customers == 946
    assert {k: round(v, 4) for k, v in zip(gamma_gamma.NAMES, f.params, strict=True)} == cdnow.GAMMA_GAMMA_FIT
    assert (round(f.p, 2), round(f.q, 2)) == (6.25, 3.74)  # as published (FHL 2005b)
    assert round(f.gamma, 1) == 15.4  # published 15.44; the file's ML fit is 15.4477
    assert all(se > 0 for se in f.se)


def test_the_fit_from_the_raw_transactions():
    s = summary.summarize(cdnow.loaded_sample().frame, cdnow.CALIBRATION_END)
    repeat = s.x > 0
    # Fader & Hardie's mean spends are rounded half up to cents: so rounded (from the exact cents),
    # the raw data give the file's values and its fit.
    cents = np.floor(s.repeat_spend_minor[repeat] / s.x[repeat] + 0.5) / 100
    published = cdnow.published_summary()
    assert (np.sort(cents) == np.sort(published["zbar"][published["x"] > 0].to_numpy())).all()
    rounded = gamma_gamma.fit(s.x[repeat], cents)
    assert {k: round(v, 4) for k, v in zip(gamma_gamma.NAMES, rounded.params, strict=True)} == cdnow.GAMMA_GAMMA_FIT
    exact = gamma_gamma.fit(s.x[repeat], s.mean_spend[repeat])
    assert np.allclose(exact.params, list(cdnow.GAMMA_GAMMA_FIT.values()), rtol=2e-3)


def test_the_density_of_the_mean_spend_integrates_to_one_and_is_the_mixture():
    params = (6.25, 3.74, 15.44)
    p, q, g = params
    for x in (1, 2, 7):
        total, _ = integrate.quad(lambda z, x=x: math.exp(gamma_gamma.log_likelihood(params, x, z)), 0, np.inf, limit=200)
        assert total == pytest.approx(1.0, rel=1e-8)
        # The mixture itself: zbar | nu ~ Gamma(px, rate x nu), nu ~ Gamma(q, rate gamma).
        mixed, _ = integrate.quad(lambda nu, x=x: stats.gamma.pdf(30.0, p * x, scale=1 / (x * nu)) * stats.gamma.pdf(nu, q, scale=1 / g), 0, np.inf, limit=200)
        assert math.exp(gamma_gamma.log_likelihood(params, x, 30.0)) == pytest.approx(mixed, rel=1e-7)


def test_the_conditional_mean_is_the_posterior_mean():
    params = (6.25, 3.74, 15.44)
    p, q, g = params
    for x, zbar in ((1, 11.77), (2, 22.35), (10, 80.0), (0, 0.0)):
        # E[Z | nu] = p / nu, nu | data ~ Gamma(q + px, rate gamma + x zbar).
        post = stats.gamma(q + p * x, scale=1 / (g + x * zbar))
        oracle, _ = integrate.quad(lambda nu, post=post: p / nu * post.pdf(nu), 0, np.inf, limit=200)
        assert float(gamma_gamma.conditional_expected_spend(params, x, zbar)) == pytest.approx(oracle, rel=1e-8)
    assert float(gamma_gamma.conditional_expected_spend(params, 0, 0.0)) == pytest.approx(gamma_gamma.population_mean_spend(params))


def test_the_spend_samplers_mean_is_the_conditional_mean():
    params = (6.25, 3.74, 15.44)
    reps, each = 20_000, 3
    for x, zbar in ((1, 11.77), (4, 40.0), (0, 0.0)):
        keys = rng.customer_keys(np.array([f"k{i}" for i in range(reps)], dtype=object))
        starts = np.arange(reps + 1, dtype=np.int64) * each
        values = gamma_gamma.sample_spend(params, np.full(reps, float(x)), np.full(reps, zbar), keys, starts, seed=5)
        assert (values > 0).all()
        # Customers are independent; a customer's purchases share its nu, so the standard error is of customer means.
        per_customer = values.reshape(reps, each).mean(axis=1)
        expected = float(gamma_gamma.conditional_expected_spend(params, x, zbar))
        assert abs(per_customer.mean() - expected) < 4 * per_customer.std(ddof=1) / math.sqrt(reps), (x, per_customer.mean(), expected)
    # A customer's values do not depend on the batch: customer 5 alone gets what it got among all.
    batch = gamma_gamma.sample_spend(params, np.full(reps, 4.0), np.full(reps, 40.0), keys, starts, seed=5)
    alone = gamma_gamma.sample_spend(params, np.array([4.0]), np.array([40.0]), keys[5:6], np.array([0, each]), seed=5)
    assert np.array_equal(alone, batch[5 * each : 6 * each])


def test_a_fit_recovers_known_parameters_within_its_standard_errors():
    truth = (4.0, 5.0, 60.0)
    p, q, g = truth
    gen = np.random.default_rng(3)
    n = 3000
    nu = gen.gamma(q, 1 / g, n)
    x = gen.integers(1, 12, n)
    zbar = gen.gamma(p * x, 1 / (x * nu))  # the mean of x Gamma(p, nu) values
    f = gamma_gamma.fit(x, zbar)
    z = (np.log(f.params) - np.log(truth)) / np.sqrt(np.diag(f.log_covariance))
    assert (np.abs(z) < 3.5).all(), z


def test_draw_parameters_stay_positive_and_centre_on_the_fit():
    s = cdnow.published_summary()
    repeat = s[s["x"] > 0]
    f = gamma_gamma.fit(repeat["x"], repeat["zbar"])
    drawn = gamma_gamma.draw_parameters(f, 10_000, seed=1)
    assert (drawn > 0).all()
    se_mean = np.sqrt(np.diag(f.log_covariance) / 10_000)
    assert (np.abs(np.log(drawn).mean(axis=0) - np.log(f.params)) < 4 * se_mean).all()


def test_spends_that_cannot_be_fitted_are_refused():
    with pytest.raises(FitError, match="at least 10"):
        gamma_gamma.fit([1, 2], [3.0, 4.0])
    with pytest.raises(FitError, match=r"customer 3 of the spend summary.*positive mean spend"):
        gamma_gamma.fit([1, 2, 1] + [1] * 10, [3.0, 4.0, 0.0] + [5.0] * 10)
    with pytest.raises(LoyaltyError, match="not positive"):
        gamma_gamma.sample_spend((1, 2, 3), np.array([1.0]), np.array([-1.0]), np.array([1], dtype=np.uint64), np.array([0, 1]), seed=0)
