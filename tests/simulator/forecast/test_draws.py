"""The counter-based Gamma, Beta and normal draws follow their laws (Kolmogorov-Smirnov against
scipy's distributions, fixed seeds) and depend only on their key, counter and stream."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from scipy import stats

from simulator import rng
from simulator.forecast import draws


@njit(cache=True)
def _gammas(shape, keys, prefix):
    out = np.empty(keys.shape[0])
    for i in range(keys.shape[0]):
        out[i], _ = draws.gamma(shape, keys[i], 0, prefix)
    return out


@njit(cache=True)
def _betas(a, b, keys, pa, pb):
    out = np.empty(keys.shape[0])
    for i in range(keys.shape[0]):
        out[i] = draws.beta(a, b, keys[i], 0, 0, pa, pb)
    return out


KEYS = rng.customer_keys(np.array([f"c{i}" for i in range(20_000)], dtype=object))


@pytest.mark.parametrize("shape", [0.05, 0.3, 1.0, 2.5, 40.0, 1e6])
def test_gamma_draws_follow_the_gamma_law(shape):
    values = _gammas(shape, KEYS, rng.stream_prefix(1, 0, 9))
    assert stats.kstest(values, stats.gamma(shape).cdf).pvalue > 1e-3
    assert np.array_equal(values, _gammas(shape, KEYS, rng.stream_prefix(1, 0, 9)))
    assert not np.array_equal(values, _gammas(shape, KEYS, rng.stream_prefix(2, 0, 9)))


@pytest.mark.parametrize(("a", "b"), [(0.79, 2.43), (0.79, 2000.0), (5.0, 5.0)])
def test_beta_draws_follow_the_beta_law(a, b):
    values = _betas(a, b, KEYS, rng.stream_prefix(1, 0, 3), rng.stream_prefix(1, 0, 4))
    assert stats.kstest(values, stats.beta(a, b).cdf).pvalue > 1e-3


def test_standard_normals_by_inversion():
    z = draws.standard_normals(4, 0, np.arange(5000, dtype=np.uint64), 4, stream=8)
    assert z.shape == (5000, 4) and np.isfinite(z).all()
    assert stats.kstest(z.ravel(), stats.norm.cdf).pvalue > 1e-3
    assert np.array_equal(draws.standard_normals(4, 0, np.arange(10, dtype=np.uint64), 4, stream=8), z[:10])
