"""The Gamma-Gamma model of the spend per purchase.

Fader, Hardie & Lee (2005b), "RFM and CLV: using iso-value curves for customer base analysis",
Journal of Marketing Research 42(4), and Fader & Hardie's note "The Gamma-Gamma model of monetary
value" (2013). Each of a customer's purchases is worth Z ~ Gamma(p, nu) (shape p, rate nu); across
customers nu ~ Gamma(q, gamma). A customer is summarised by x (the purchases whose values are
averaged: the repeat purchases) and zbar (their mean value), so only repeat buyers (x > 0) inform
the fit. Spend is independent of the purchase counts, so this model sits beside BG/NBD.

Column-at-a-time in log space, fitted over log parameters (`mle`), standard errors from the
observed information by the delta method.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit
from scipy.special import digamma, gammaln

from rulelang.errors import LoyaltyError
from simulator import rng
from simulator.forecast import draws, mle
from simulator.forecast.mle import FitError

NAMES = ("p", "q", "gamma")
STREAM_NU, STREAM_VALUES, STREAM_PARAMETERS = 71, 72, 73  # rng streams of the draws
MIN_CUSTOMERS = 10  # repeat buyers; fewer cannot pin down three parameters


@dataclass(frozen=True)
class GammaGammaFit(mle.FittedParameters):
    """A fitted Gamma-Gamma model: parameters, standard errors and the log-scale covariance."""

    NAMES = NAMES

    p: float
    q: float
    gamma: float
    se: tuple[float, float, float]
    log_covariance: np.ndarray  # 3x3, of (log p, log q, log gamma)
    log_likelihood: float
    customers: int  # the repeat buyers fitted


def log_likelihood(params, x, zbar) -> np.ndarray:
    """Each repeat buyer's log-density of their mean spend zbar over x purchases:
    Gamma(px+q) / (Gamma(px) Gamma(q)) * gamma^q x^(px) zbar^(px-1) / (gamma + x zbar)^(px+q)."""
    p, q, g = params
    x = np.asarray(x, dtype=np.float64)
    zbar = np.asarray(zbar, dtype=np.float64)
    px = p * x
    return gammaln(px + q) - gammaln(px) - gammaln(q) + q * math.log(g) + (px - 1.0) * np.log(zbar) + px * np.log(x) - (px + q) * np.log(g + x * zbar)


def _gradient(params, x, zbar) -> np.ndarray:
    p, q, g = params
    px = p * x
    psi = digamma(px + q)
    lg = np.log(g + x * zbar)
    d_p = x * (psi - digamma(px) + np.log(zbar) + np.log(x) - lg)
    d_q = psi - digamma(q) + math.log(g) - lg
    d_g = q / g - (px + q) / (g + x * zbar)
    return np.array([d_p.sum(), d_q.sum(), d_g.sum()])


def fit(x, zbar, start=(1.0, 1.0, 1.0)) -> GammaGammaFit:
    """The maximum-likelihood Gamma-Gamma fit to repeat buyers' (x > 0, zbar > 0)."""
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    zbar = np.ascontiguousarray(np.asarray(zbar, dtype=np.float64))
    bad = ~(np.isfinite(x) & np.isfinite(zbar)) | (x <= 0) | (zbar <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise FitError(
            f"customer {i + 1} of the spend summary: (x, zbar) = ({x[i]}, {zbar[i]}); the spend model takes repeat buyers "
            "only, with a positive mean spend (leave out the others)"
        )
    n = x.shape[0]
    if n < MIN_CUSTOMERS:
        raise FitError(f"only {n} repeat buyer(s) with a positive spend: the spend model needs at least {MIN_CUSTOMERS}; give a longer history")
    best = mle.maximize(lambda p: float(log_likelihood(p, x, zbar).sum()), lambda p: _gradient(p, x, zbar), start, n, "Gamma-Gamma")
    return GammaGammaFit(*(float(v) for v in best.params), tuple(float(v) for v in best.standard_errors), best.log_covariance, best.log_likelihood, n)


def population_mean_spend(params) -> float:
    """E[Z] for a customer nothing is known of: p gamma / (q - 1) (infinite when q <= 1)."""
    p, q, g = params
    return p * g / (q - 1.0) if q > 1.0 else math.inf


def conditional_expected_spend(params, x, zbar) -> np.ndarray:
    """E[Z | x, zbar]: the expected value of a customer's next purchase, (gamma + x zbar) p / (px + q - 1),
    a weighted mean of the population's mean and the customer's own (x = 0: the population's)."""
    p, q, g = params
    x = np.asarray(x, dtype=np.float64)
    zbar = np.where(x > 0, np.asarray(zbar, dtype=np.float64), 0.0)
    with np.errstate(divide="ignore"):
        return np.where(p * x + q > 1.0, (g + x * zbar) * p / (p * x + q - 1.0), np.inf)


def draw_parameters(fitted: GammaGammaFit, n: int, seed: int) -> np.ndarray:
    """n parameter vectors (rows of p, q, gamma) from the fit's asymptotic normal on the log scale.
    Row i depends only on (seed, i)."""
    z = draws.standard_normals(seed, 0, np.arange(n, dtype=np.uint64), 3, STREAM_PARAMETERS)
    chol = np.linalg.cholesky(fitted.log_covariance)
    return np.exp(np.log(np.array(fitted.params)) + z @ chol.T)


def sample_spend(params, x, zbar, keys, starts, seed: int, run: int = 0) -> np.ndarray:
    """The value of each future purchase: customer i's `starts[i+1] - starts[i]` purchases (as
    `bgnbd.FuturePurchases` lays them out). nu is drawn from its posterior Gamma(q + p x, gamma + x zbar)
    (the prior for x = 0), then each value from Gamma(p, nu). In the unit zbar was given in;
    customer i's draws depend only on its key, `seed` and `run`."""
    p, q, g = (float(v) for v in params)
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    zbar = np.ascontiguousarray(np.where(x > 0, np.asarray(zbar, dtype=np.float64), 0.0))
    keys = np.ascontiguousarray(np.asarray(keys, dtype=np.uint64))
    starts = np.ascontiguousarray(np.asarray(starts, dtype=np.int64))
    if not (keys.shape == x.shape == zbar.shape and starts.shape[0] == x.shape[0] + 1):
        raise ValueError("one key, x and zbar per customer, and len(customers) + 1 starts")
    if ((x > 0) & ~(zbar > 0)).any():
        raise LoyaltyError("a repeat buyer's mean spend is not positive; the spend model takes positive spends only")
    out = np.empty(int(starts[-1]), dtype=np.float64)
    _values(p, q + p * x, g + x * zbar, keys, starts, rng.stream_prefix(seed, run, STREAM_NU), rng.stream_prefix(seed, run, STREAM_VALUES), out)
    return out


@njit(cache=True, nogil=True)
def _values(p, shape_nu, rate_nu, keys, starts, prefix_nu, prefix_values, out):
    for i in range(keys.shape[0]):
        if starts[i + 1] == starts[i]:
            continue
        key = keys[i]
        nu, _ = draws.gamma(shape_nu[i], key, 0, prefix_nu)
        nu /= rate_nu[i]
        counter = 0
        for j in range(starts[i], starts[i + 1]):
            z, counter = draws.gamma(p, key, counter, prefix_values)
            out[j] = z / nu
