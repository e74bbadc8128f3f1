"""The shared maximum-likelihood fit: on a model whose answer is known in closed form (exponential
waiting times: rate 1 / mean, standard error rate / sqrt(n) from the observed information)."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.forecast import mle


def test_an_exponential_rate_and_its_standard_error():
    gen = np.random.default_rng(1)
    waits = gen.exponential(2.5, 500)
    n, total = waits.shape[0], waits.sum()
    best = mle.maximize(lambda p: n * np.log(p[0]) - p[0] * total, lambda p: np.array([n / p[0] - total]), [1.0], n, "exponential")
    rate = n / total
    assert best.params[0] == pytest.approx(rate, rel=1e-10)
    # Observed information n / rate^2: se(rate) = rate / sqrt(n); on the log scale 1 / sqrt(n).
    assert best.standard_errors[0] == pytest.approx(rate / np.sqrt(n), rel=1e-6)
    assert best.log_covariance[0, 0] == pytest.approx(1 / n, rel=1e-6)
    assert best.log_likelihood == pytest.approx(n * np.log(rate) - n, rel=1e-12)


def test_a_likelihood_without_a_maximum_is_refused():
    # Increasing for ever in the parameter: the fit runs off to infinity.
    with pytest.raises(mle.FitError, match="did not converge|no clear maximum"):
        mle.maximize(lambda p: float(np.log(p[0])), lambda p: np.array([1 / p[0]]), [1.0], 10, "unbounded")
