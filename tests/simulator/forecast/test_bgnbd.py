"""BG/NBD: the published CDNOW fit to the published digits, the closed forms against integrals and
the paper's plain formulas, the sampler against the closed forms, and the standard errors against
the spread of fits to simulated histories with known parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import beta as B
from scipy.special import gamma as G

from rulelang.errors import LoyaltyError
from simulator import rng
from simulator.forecast import bgnbd, summary
from simulator.forecast.mle import FitError
from tests.simulator.forecast import cdnow

PAPER = (0.2426, 4.4135, 0.7929, 2.4258)


def _published_digits(f: bgnbd.BGNBDFit) -> None:
    assert {k: round(v, 4) for k, v in zip(bgnbd.NAMES, f.params, strict=True)} == cdnow.PUBLISHED_BGNBD
    assert round(f.log_likelihood, 2) == cdnow.PUBLISHED_LL


def test_the_published_cdnow_fit_from_the_published_summary():
    s = cdnow.published_summary()
    f = bgnbd.fit(s["x"], s["t_x"], s["T"])
    _published_digits(f)
    assert f.customers == 2357
    # The standard errors: positive, and the log-scale covariance symmetric positive definite.
    assert all(se > 0 for se in f.se)
    np.linalg.cholesky(f.log_covariance)


def test_the_published_cdnow_fit_from_the_raw_transactions():
    s = summary.summarize(cdnow.loaded_sample().frame, cdnow.CALIBRATION_END)
    # Fader & Hardie fitted weeks rounded to 2 decimals (their summary file): so rounded, the
    # raw transactions give their numbers to every published digit.
    _published_digits(bgnbd.fit(s.x, np.round(s.t_x, 2), np.round(s.T, 2)))
    # Unrounded (days / 7 exactly), the fit moves in the fourth decimal only.
    exact = bgnbd.fit(s.x, s.t_x, s.T)
    assert np.allclose(exact.params, PAPER, rtol=0, atol=2e-4)
    assert round(exact.log_likelihood, 2) == cdnow.PUBLISHED_LL


def test_the_log_likelihood_is_the_papers_formula():
    params = (0.2426, 4.4135, 0.7929, 2.4258)
    r, alpha, a, b = params
    x = np.array([0, 1, 2, 5, 14])
    t_x = np.array([0.0, 3.0, 30.43, 20.0, 37.5])
    T = np.array([38.86, 30.0, 38.86, 50.0, 38.0])
    # FHL 2005, eq. 6, as written (plain, not log space: fine for small x).
    plain = B(a, b + x) / B(a, b) * G(r + x) * alpha**r / (G(r) * (alpha + T) ** (r + x))
    plain = plain + (x > 0) * B(a + 1, b + np.maximum(x, 1) - 1) / B(a, b) * G(r + x) * alpha**r / (G(r) * (alpha + t_x) ** (r + x))
    assert np.allclose(bgnbd.log_likelihood(params, x, t_x, T), np.log(plain), rtol=1e-12, atol=0)


def test_no_overflow_for_a_million_purchases_or_a_long_time():
    params = (0.2426, 4.4135, 0.7929, 2.4258)
    x = np.array([1e6, 1e6, 3.0])
    t_x = np.array([99.0, 100.0, 1e6])
    T = np.array([100.0, 100.0, 1e7])
    ll = bgnbd.log_likelihood(params, x, t_x, T)
    assert np.isfinite(ll).all()
    alive = bgnbd.probability_alive(params, x, t_x, T)
    assert alive[0] < 1e-100 and alive[1] > 0.99
    e = bgnbd.conditional_expected_purchases(params, 52.0, x, t_x, T)
    assert np.isfinite(e).all()
    # A customer buying 10,000 times a week until now: E = int (1 - ((alpha+T)/(alpha+T+pt))^(r+x)) / p
    # over p ~ Beta(a, b + x), whose mass lies near a / (b + x) (integrated in u = p (b + x)).
    r, alpha, a, b = params
    n = b + 1e6

    def integrand(u):
        p = u / n
        return (1 - ((alpha + 100) / (alpha + 100 + p * 52)) ** (r + 1e6)) / p * stats.beta.pdf(p, a, n) / n

    oracle, _ = integrate.quad(integrand, 0, 80, limit=400)
    assert e[1] == pytest.approx(alive[1] * oracle, rel=1e-6)
    assert 0.75 * 520_000 < e[1] < 520_000  # below its rate's 52 weeks: it may leave on the way


def _beta_pdf(p, a, b):
    return stats.beta.pdf(p, a, b)


def test_expected_purchases_of_a_new_customer_is_the_integral_over_lambda_and_p():
    params = (0.2426, 4.4135, 0.7929, 2.4258)
    r, alpha, a, b = params
    for t in (1.0, 39.0, 78.0, 520.0):
        # E[X(t) | lambda, p] = (1 - exp(-lambda p t)) / p; its mean over lambda ~ Gamma(r, alpha) is closed.
        oracle, _ = integrate.quad(lambda p, t=t: (1 - (alpha / (alpha + p * t)) ** r) / p * _beta_pdf(p, a, b), 0, 1, limit=200)
        assert bgnbd.expected_purchases(params, t) == pytest.approx(oracle, rel=1e-7)


def test_conditional_expectation_is_the_posterior_integral_and_the_papers_example():
    params = (0.2426, 4.4135, 0.7929, 2.4258)
    r, alpha, a, b = params
    # FHL 2005 (and Fader & Hardie's note on the model in Excel): a customer with x = 2, t_x = 30.43,
    # T = 38.86 is expected to make 1.226 purchases in the next 39 weeks.
    assert round(float(bgnbd.conditional_expected_purchases(params, 39.0, 2, 30.43, 38.86)), 3) == 1.226
    for x, t_x, T, t in ((0, 0.0, 38.86, 39.0), (2, 30.43, 38.86, 39.0), (7, 35.0, 38.0, 104.0), (40, 10.0, 60.0, 52.0), (300, 52.0, 52.0, 10.0)):
        alive = 1.0 / (1.0 + (x > 0) * a / (b + max(x, 1) - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x))
        oracle, _ = integrate.quad(
            lambda p, x=x, T=T, t=t: (1 - ((alpha + T) / (alpha + T + p * t)) ** (r + x)) / p * _beta_pdf(p, a, b + x), 0, 1, limit=200
        )
        assert float(bgnbd.probability_alive(params, x, t_x, T)) == pytest.approx(alive, rel=1e-12)
        assert float(bgnbd.conditional_expected_purchases(params, t, x, t_x, T)) == pytest.approx(alive * oracle, rel=1e-7)


def test_the_holdout_forecast_on_the_cdnow_sample_is_twelve_percent_low():
    loaded = cdnow.loaded_sample()
    s = summary.summarize(loaded.frame, cdnow.CALIBRATION_END)
    f = bgnbd.fit(s.x, s.t_x, s.T)
    forecast = bgnbd.conditional_expected_purchases(f.params, 39.0, s.x, s.t_x, s.T).sum()
    actual = summary.purchases_after(loaded.frame, s, cdnow.HOLDOUT_END).sum()
    # Weeks 40-78: 1,882 repeat purchase days happened; the plain BG/NBD forecast is 1,653 (12% low).
    assert actual == 1882
    assert round(forecast) == 1653
    assert round(forecast / actual - 1, 2) == -0.12


# --- the sampler ----------------------------------------------------------------------------------


def test_the_samplers_mean_is_the_conditional_expectation():
    params = PAPER
    reps = 40_000
    for x, t_x, T, horizon in ((0, 0.0, 38.86, 39.0), (2, 30.43, 38.86, 39.0), (7, 35.0, 38.0, 104.0), (1, 2.0, 38.0, 104.0), (25, 50.0, 52.0, 26.0)):
        keys = rng.customer_keys(np.array([f"c{i}" for i in range(reps)], dtype=object))
        xs, txs, Ts = np.full(reps, float(x)), np.full(reps, t_x), np.full(reps, T)
        drawn = bgnbd.sample_purchases(params, xs, txs, Ts, keys, horizon, seed=7)
        counts = drawn.counts
        expected = float(bgnbd.conditional_expected_purchases(params, horizon, x, t_x, T))
        se = counts.std(ddof=1) / math.sqrt(reps)
        assert abs(counts.mean() - expected) < 4 * se, (x, t_x, T, counts.mean(), expected, se)
        p_alive = float(bgnbd.probability_alive(params, x, t_x, T))
        assert abs(drawn.alive.mean() - p_alive) <= 4 * math.sqrt(p_alive * (1 - p_alive) / reps) + 1e-12
        assert (drawn.counts[~drawn.alive] == 0).all()
        # Times increase within a customer and lie in (0, horizon].
        t = drawn.times
        assert ((t > 0) & (t <= horizon)).all()
        first = np.zeros(len(t), dtype=bool)
        first[drawn.starts[:-1][counts > 0]] = True
        assert (np.diff(t)[~first[1:]] > 0).all()


def test_draws_depend_on_the_seed_and_the_customer_not_the_batch():
    s = cdnow.published_summary()
    keys = rng.customer_keys(s.index.astype(str).to_numpy(dtype=object))
    x, t_x, T = s["x"].to_numpy(), s["t_x"].to_numpy(), s["T"].to_numpy()
    whole = bgnbd.sample_purchases(PAPER, x, t_x, T, keys, 104.0, seed=3, run=1)
    again = bgnbd.sample_purchases(PAPER, x, t_x, T, keys, 104.0, seed=3, run=1)
    assert np.array_equal(whole.times, again.times) and np.array_equal(whole.starts, again.starts)
    # In two batches, the second reversed: each customer's purchases are the same.
    cut = 1000
    first = bgnbd.sample_purchases(PAPER, x[:cut], t_x[:cut], T[:cut], keys[:cut], 104.0, seed=3, run=1)
    rev = slice(None, cut - 1, -1)
    second = bgnbd.sample_purchases(PAPER, x[rev], t_x[rev], T[rev], keys[rev], 104.0, seed=3, run=1)
    counts = np.concatenate([first.counts, second.counts[::-1]])
    assert np.array_equal(counts, whole.counts)
    i = int(np.flatnonzero(whole.counts[cut:] > 2)[0]) + cut
    j = len(x) - 1 - i  # its place in the reversed batch
    assert np.array_equal(whole.times[whole.starts[i] : whole.starts[i + 1]], second.times[second.starts[j] : second.starts[j + 1]])
    # Another seed or run: other draws.
    assert not np.array_equal(bgnbd.sample_purchases(PAPER, x, t_x, T, keys, 104.0, seed=4, run=1).counts, whole.counts)
    assert not np.array_equal(bgnbd.sample_purchases(PAPER, x, t_x, T, keys, 104.0, seed=3, run=2).counts, whole.counts)


def test_a_sample_past_the_limit_is_refused_without_running_on(monkeypatch):
    monkeypatch.setattr(bgnbd, "MAX_SAMPLED_PURCHASES", 1000)
    keys = np.arange(3, dtype=np.uint64)
    # A million purchases in a week, then a horizon of a million weeks: about 10^12 purchases a
    # customer if counted to the end; the count stops at the limit instead.
    with pytest.raises(LoyaltyError, match="more than 1,000 purchases; sample fewer customers at a time or a shorter horizon"):
        bgnbd.sample_purchases(PAPER, np.full(3, 1e6), np.ones(3), np.ones(3), keys, 1e6, seed=0)
    small = bgnbd.sample_purchases(PAPER, np.full(3, 5.0), np.full(3, 30.0), np.full(3, 39.0), keys, 39.0, seed=0)
    assert small.counts.sum() <= 1000


def test_draw_parameters_follows_the_fits_log_normal():
    s = cdnow.published_summary()
    f = bgnbd.fit(s["x"], s["t_x"], s["T"])
    n = 20_000
    drawn = bgnbd.draw_parameters(f, n, seed=11)
    assert drawn.shape == (n, 4) and (drawn > 0).all()
    logs = np.log(drawn)
    se_mean = np.sqrt(np.diag(f.log_covariance) / n)
    assert (np.abs(logs.mean(axis=0) - np.log(f.params)) < 4 * se_mean).all()
    # The sample covariance's entries, within 4 of their standard errors (normal theory).
    cov = np.cov(logs, rowvar=False)
    c = f.log_covariance
    se_cov = np.sqrt((c * c + np.outer(np.diag(c), np.diag(c))) / n)
    assert (np.abs(cov - c) < 4 * se_cov).all()
    # Row i is the same however many are drawn; another seed, other rows.
    assert np.array_equal(bgnbd.draw_parameters(f, 10, seed=11), drawn[:10])
    assert not np.array_equal(bgnbd.draw_parameters(f, 10, seed=12), drawn[:10])


# --- standard errors on simulated histories ----------------------------------------------------------


def simulate_histories(params, T: np.ndarray, gen: np.random.Generator):
    """(x, t_x) of customers who follow BG/NBD with `params` for T after their first purchase: a
    reference simulation of the model's story (Poisson purchases, dropout after each repeat)."""
    r, alpha, a, b = params
    n = T.shape[0]
    lam = gen.gamma(r, 1.0 / alpha, n)
    p = gen.beta(a, b, n)
    x = np.zeros(n, dtype=np.int64)
    t_x = np.zeros(n)
    t = np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        i = np.flatnonzero(active)
        t[i] += gen.exponential(1.0, i.shape[0]) / lam[i]
        bought = t[i] <= T[i]
        active[i[~bought]] = False
        i = i[bought]
        x[i] += 1
        t_x[i] = t[i]
        active[i[gen.random(i.shape[0]) < p[i]]] = False
    return x, t_x


def test_a_fit_recovers_known_parameters_within_its_standard_errors():
    truth = (0.6, 5.0, 0.9, 3.0)
    gen = np.random.default_rng(20261207)
    T = gen.uniform(26.0, 78.0, 6000)
    x, t_x = simulate_histories(truth, T, gen)
    f = bgnbd.fit(x, t_x, T)
    z = (np.log(f.params) - np.log(truth)) / np.sqrt(np.diag(f.log_covariance))
    assert (np.abs(z) < 3.5).all(), z


@pytest.mark.slow
def test_the_standard_errors_match_the_spread_of_refits():
    """A parametric bootstrap: the spread of the log parameters over fits to 40 simulated data sets
    matches the standard errors the observed information gives (within the ~11% sampling error of
    a standard deviation from 40 values, times 3)."""
    truth = (0.6, 5.0, 0.9, 3.0)
    gen = np.random.default_rng(7)
    estimates, ses = [], []
    for _ in range(40):
        T = gen.uniform(26.0, 78.0, 2000)
        x, t_x = simulate_histories(truth, T, gen)
        f = bgnbd.fit(x, t_x, T)
        estimates.append(np.log(f.params))
        ses.append(np.sqrt(np.diag(f.log_covariance)))
    ratio = np.std(estimates, axis=0, ddof=1) / np.sqrt(np.mean(np.square(ses), axis=0))
    assert ((ratio > 0.67) & (ratio < 1.33)).all(), ratio


def test_histories_that_cannot_be_fitted_are_refused():
    with pytest.raises(FitError, match="at least 10"):
        bgnbd.fit([1, 0, 2], [3.0, 0.0, 4.0], [10.0, 10.0, 10.0])
    with pytest.raises(FitError, match="repeat buyers"):
        bgnbd.fit(np.zeros(50), np.zeros(50), np.full(50, 20.0))
    with pytest.raises(FitError, match=r"customer 2 of the summary.*t_x <= T"):
        bgnbd.fit([1, 2] + [0] * 20, [3.0, 12.0] + [0.0] * 20, [10.0] * 22)
