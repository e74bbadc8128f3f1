"""The BG/NBD model: how many purchases a customer makes, and when they stop for good.

Fader, Hardie & Lee (2005), "Counting your customers the easy way: an alternative to the
Pareto/NBD model", Marketing Science 24(2). While active, a customer buys as a Poisson process of
rate lambda; after each purchase they leave for good with probability p. Across customers
lambda ~ Gamma(r, alpha) (shape r, rate alpha) and p ~ Beta(a, b). A customer's history is
summarised by x (repeat purchases), t_x (the time of the last one, from the first purchase) and T
(the time observed, from the first purchase), all in one time unit (`summary` uses weeks).

Everything is column-at-a-time over customers and in log space (`gammaln`, `betaln`, `logaddexp`),
so x of a million or a T of centuries neither overflows nor loses the likelihood's small terms.
The fit maximises the likelihood over the logarithms of the four parameters (they stay positive);
the standard errors come from the observed information (the Hessian of the log-likelihood at the
optimum, by central differences of the analytic gradient on the log scale), carried to the
natural scale by the delta method.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from rulelang.errors import LoyaltyError
from simulator import rng
from simulator.forecast import draws, mle
from simulator.forecast.mle import FitError

NAMES = ("r", "alpha", "a", "b")
# rng streams of the sampler's draws (distinct from the simulator's other streams).
STREAM_ALIVE, STREAM_LAMBDA, STREAM_P_A, STREAM_P_B, STREAM_EVENTS, STREAM_PARAMETERS = 61, 62, 63, 64, 65, 66
# Refuse a sampling that would hold more purchase times than this (8 bytes each): a model fitted to
# extreme data or a horizon of millennia, rather than memory exhausted half-way.
MAX_SAMPLED_PURCHASES = 200_000_000
MIN_CUSTOMERS = 10  # fewer cannot pin down four parameters


@dataclass(frozen=True)
class BGNBDFit(mle.FittedParameters):
    """A fitted BG/NBD model: parameters, their standard errors and the log-scale covariance."""

    NAMES = NAMES

    r: float
    alpha: float
    a: float
    b: float
    se: tuple[float, float, float, float]  # of (r, alpha, a, b), by the delta method
    log_covariance: np.ndarray  # 4x4, of (log r, log alpha, log a, log b): the inverse observed information
    log_likelihood: float
    customers: int


def _arrays(x, t_x, T):
    x = np.asarray(x, dtype=np.float64)
    t_x = np.asarray(t_x, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    return np.broadcast_arrays(x, t_x, T)


def _terms(params, x, t_x, T):
    """log of the likelihood's common factor, its "still active" term and its "left at t_x" term."""
    r, alpha, a, b = params
    repeat = x > 0
    x1 = np.where(repeat, x, 1.0)  # the third term exists only for x > 0; x = 1 keeps b + x - 1 valid
    common = gammaln(r + x) - gammaln(r) + r * math.log(alpha)
    active = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + T)
    left = np.where(repeat, betaln(a + 1.0, b + x1 - 1.0) - betaln(a, b) - (r + x) * np.log(alpha + t_x), -np.inf)
    return common, active, left


def log_likelihood(params, x, t_x, T) -> np.ndarray:
    """Each customer's log-likelihood (FHL 2005, eq. 6) at params = (r, alpha, a, b)."""
    x, t_x, T = _arrays(x, t_x, T)
    common, active, left = _terms(params, x, t_x, T)
    return common + np.logaddexp(active, left)


def _gradient(params, x, t_x, T, weights) -> np.ndarray:
    """d(sum of weighted log-likelihoods)/d(r, alpha, a, b), analytic."""
    r, alpha, a, b = params
    repeat = x > 0
    x1 = np.where(repeat, x, 1.0)
    _, active, left = _terms(params, x, t_x, T)
    w_left = np.where(repeat, expit(left - active), 0.0)  # the "left at t_x" term's share of the likelihood
    w_active = 1.0 - w_left
    lT, ltx = np.log(alpha + T), np.log(alpha + t_x)
    d_r = digamma(r + x) - digamma(r) + math.log(alpha) - w_active * lT - w_left * ltx
    d_alpha = r / alpha - (r + x) * (w_active / (alpha + T) + w_left / (alpha + t_x))
    psi_ab, psi_abx = digamma(a + b), digamma(a + b + x)
    d_a = psi_ab - psi_abx + w_left * (digamma(a + 1.0) - digamma(a))
    d_b = w_active * (digamma(b + x) - digamma(b)) + w_left * (digamma(b + x1 - 1.0) - digamma(b)) + psi_ab - psi_abx
    return np.array([weights @ d_r, weights @ d_alpha, weights @ d_a, weights @ d_b])


def fit(x, t_x, T, start=(1.0, 1.0, 1.0, 1.0)) -> BGNBDFit:
    """The maximum-likelihood BG/NBD fit to the customers' (x, t_x, T)."""
    x, t_x, T = (np.ascontiguousarray(v) for v in _arrays(x, t_x, T))
    n = x.shape[0]
    _check_summary(x, t_x, T)
    if n < MIN_CUSTOMERS:
        raise FitError(f"only {n} customer(s): the BG/NBD fit needs at least {MIN_CUSTOMERS}; give a longer or larger history")
    if not (x > 0).any():
        raise FitError("no customer bought again after their first purchase: the BG/NBD fit needs repeat buyers; give a longer history")
    # Identical summaries weigh as one row with a count (many customers share (x, t_x, T) when
    # times are whole days): the likelihood is evaluated once per distinct summary.
    rows, counts = np.unique(np.stack([x, t_x, T], axis=1), axis=0, return_counts=True)
    ux, utx, uT = (np.ascontiguousarray(rows[:, i]) for i in range(3))
    w = counts.astype(np.float64)
    best = mle.maximize(lambda p: w @ log_likelihood(p, ux, utx, uT), lambda p: _gradient(p, ux, utx, uT, w), start, n, "BG/NBD")
    return BGNBDFit(*(float(v) for v in best.params), tuple(float(v) for v in best.standard_errors), best.log_covariance, best.log_likelihood, n)


def _check_summary(x, t_x, T) -> None:
    bad = ~(np.isfinite(x) & np.isfinite(t_x) & np.isfinite(T)) | (x < 0) | (t_x < 0) | (t_x > T) | ((x == 0) & (t_x != 0)) | ((x > 0) & (t_x <= 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise FitError(
            f"customer {i + 1} of the summary: (x, t_x, T) = ({x[i]}, {t_x[i]}, {T[i]}) is not a purchase history; "
            "expected x >= 0 repeat purchases, 0 < t_x <= T when x > 0 and t_x = 0 when x = 0"
        )


# --- what the model says ------------------------------------------------------------------------


def _hyp_term(params, t, x, T):
    """((alpha+T)/(alpha+T+t))^(r+x) * 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t)), through Euler's
    transformation 2F1(A,B;C;z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z): here C-A and C-B do not grow
    with x, so the series stays short and nothing overflows for large x."""
    r, alpha, a, b = params
    z = t / (alpha + T + t)
    return np.exp((a - 1.0) * np.log1p(-z)) * hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)


def expected_purchases(params, t) -> np.ndarray:
    """E[X(t)]: the expected purchases in (0, t] of a customer who has just made a first purchase
    (FHL 2005, eq. 7). `params` = (r, alpha, a, b) with a != 1."""
    r, alpha, a, b = params
    t = np.asarray(t, dtype=np.float64)
    return (a + b - 1.0) / (a - 1.0) * (1.0 - _hyp_term(params, t, 0.0, 0.0))


def log_odds_left(params, x, t_x, T) -> np.ndarray:
    """log(P(left) / P(active)) at T given the history: log(a / (b+x-1)) + (r+x) log((alpha+T)/(alpha+t_x))
    for x > 0; -inf when x = 0 (a customer who never bought again cannot have left after a repeat)."""
    r, alpha, a, b = params
    x, t_x, T = _arrays(x, t_x, T)
    x1 = np.where(x > 0, x, 1.0)
    with np.errstate(divide="ignore"):
        return np.where(x > 0, math.log(a) - np.log(b + x1 - 1.0) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x)), -np.inf)


def probability_alive(params, x, t_x, T) -> np.ndarray:
    """P(still active at T | x, t_x, T) (FHL 2005, eq. 11)."""
    return expit(-log_odds_left(params, x, t_x, T))


def conditional_expected_purchases(params, t, x, t_x, T) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: each customer's expected purchases in (T, T + t] (FHL 2005, eq. 10)."""
    r, alpha, a, b = params
    x, t_x, T = _arrays(x, t_x, T)
    t = np.asarray(t, dtype=np.float64)
    lead = (a + b + x - 1.0) / (a - 1.0) * (1.0 - _hyp_term(params, t, x, T))
    return lead * probability_alive(params, x, t_x, T)


def draw_parameters(fitted: BGNBDFit, n: int, seed: int) -> np.ndarray:
    """n parameter vectors (rows of r, alpha, a, b) from the fit's asymptotic normal on the log
    scale, so they stay positive. Row i depends only on (seed, i): run i of a Monte Carlo gets
    the same parameters whatever the number of runs."""
    z = draws.standard_normals(seed, 0, np.arange(n, dtype=np.uint64), 4, STREAM_PARAMETERS)
    chol = np.linalg.cholesky(fitted.log_covariance)
    return np.exp(np.log(np.array(fitted.params)) + z @ chol.T)


# --- the sampler --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FuturePurchases:
    """Sampled purchase times after the end of calibration, customer by customer.

    Customer i's purchases are `times[starts[i]:starts[i + 1]]`, increasing, in the model's time
    unit counted from that customer's T (the end of calibration); `alive[i]` says whether the
    customer was drawn as still active at T.
    """

    starts: np.ndarray  # int64, len(customers) + 1
    times: np.ndarray  # float64
    alive: np.ndarray  # bool

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.starts)


def sample_purchases(params, x, t_x, T, keys, horizon: float, seed: int, run: int = 0) -> FuturePurchases:
    """Each customer's purchases in (T, T + horizon], drawn from the posterior given their history.

    Alive-ness at T is drawn from P(alive); an active customer's lambda from Gamma(r + x, alpha + T)
    and p from Beta(a, b + x) (the prior updated by x purchases and no dropout through T); then
    purchases come as a Poisson process of rate lambda, each followed by dropout with probability
    p. `keys` are the customers' uint64 random keys (`rng.customer_keys`): a customer's draws
    depend only on its key, `seed` and `run`, not on the batch it is sampled in.
    """
    r, alpha, a, b = (float(v) for v in params)
    x, t_x, T = (np.ascontiguousarray(v) for v in _arrays(x, t_x, T))
    keys = np.ascontiguousarray(np.asarray(keys, dtype=np.uint64))
    if keys.shape != x.shape:
        raise ValueError("one key per customer")
    if not horizon >= 0 or not math.isfinite(horizon):
        raise LoyaltyError(f"the horizon {horizon} is not a finite time of 0 or more")
    p_alive = np.ascontiguousarray(probability_alive((r, alpha, a, b), x, t_x, T))
    prefixes = np.array([rng.stream_prefix(seed, run, s) for s in (STREAM_ALIVE, STREAM_LAMBDA, STREAM_P_A, STREAM_P_B, STREAM_EVENTS)], dtype=np.uint64)
    args = (r + x, alpha + T, a, b + x, p_alive, keys, float(horizon), prefixes)
    # Counting stops as soon as the total passes the limit (a customer's own loop too), so an
    # extreme rate cannot keep the count going for hours before the refusal.
    counts, alive, total = _count(*args, MAX_SAMPLED_PURCHASES)
    if total > MAX_SAMPLED_PURCHASES:
        raise LoyaltyError(
            f"the sample would hold more than {MAX_SAMPLED_PURCHASES:,} purchases; "
            "sample fewer customers at a time or a shorter horizon"
        )
    starts = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    times = np.empty(total, dtype=np.float64)
    _fill(*args, starts, times, MAX_SAMPLED_PURCHASES)
    return FuturePurchases(starts, times, alive)


@njit(cache=True, nogil=True)
def _customer(i, shape, rate, a, b_post, p_alive, keys, horizon, prefixes, starts, times, write, limit):
    """Customer i's purchases: their count (stopping past `limit`), and when `write` their times into `times`."""
    key = keys[i]
    if rng.draw(key, np.uint64(0), prefixes[0]) >= p_alive[i]:
        return 0, False
    lam, _ = draws.gamma(shape[i], key, 0, prefixes[1])
    lam /= rate[i]
    p = draws.beta(a, b_post[i], key, 0, 0, prefixes[2], prefixes[3])
    if lam <= 0.0:
        return 0, True
    t = 0.0
    n = 0
    while True:
        t += -math.log(draws.open_uniform(key, 2 * n, prefixes[4])) / lam
        if t > horizon:
            return n, True
        if write:
            times[starts[i] + n] = t
        n += 1
        if rng.draw(key, np.uint64(2 * n - 1), prefixes[4]) < p or n > limit:
            return n, True


@njit(cache=True, nogil=True)
def _count(shape, rate, a, b_post, p_alive, keys, horizon, prefixes, limit):
    n = keys.shape[0]
    counts = np.zeros(n, dtype=np.int64)
    alive = np.zeros(n, dtype=np.bool_)
    dummy_starts = np.zeros(1, dtype=np.int64)
    dummy_times = np.zeros(1, dtype=np.float64)
    total = 0
    for i in range(n):
        counts[i], alive[i] = _customer(i, shape, rate, a, b_post, p_alive, keys, horizon, prefixes, dummy_starts, dummy_times, False, limit - total)
        total += counts[i]
        if total > limit:
            break
    return counts, alive, total


@njit(cache=True, nogil=True)
def _fill(shape, rate, a, b_post, p_alive, keys, horizon, prefixes, starts, times, limit):
    for i in range(keys.shape[0]):
        _customer(i, shape, rate, a, b_post, p_alive, keys, horizon, prefixes, starts, times, True, limit)
