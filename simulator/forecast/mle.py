"""Maximum likelihood over log parameters, with the observed information as covariance.

Shared by the models of this package: each gives its total log-likelihood and analytic gradient in
its natural parameters; the fit runs in log parameters (so they stay positive), BFGS first and then
Newton steps on a finite-difference Hessian to polish the optimum to the digits the published fits
give. The covariance of the log parameters is the inverse of the observed information (minus the
Hessian of the log-likelihood at the optimum, by central differences of the analytic gradient);
standard errors on the natural scale follow by the delta method: se(theta) = theta * se(log theta).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from rulelang.errors import LoyaltyError


class FittedParameters:
    """What a fitted model's record shares (a frozen dataclass whose first fields are the
    parameters named by `NAMES`, then `se`, `log_covariance`, `log_likelihood` and `customers`):
    the parameters as a tuple, and the record as plain data for model.json and back."""

    NAMES: tuple[str, ...] = ()

    @property
    def params(self) -> tuple[float, ...]:
        return tuple(getattr(self, n) for n in self.NAMES)

    def to_dict(self) -> dict:
        return {
            "parameters": dict(zip(self.NAMES, self.params, strict=True)),
            "standard_errors": dict(zip(self.NAMES, self.se, strict=True)),
            "log_parameter_order": list(self.NAMES),
            "log_covariance": self.log_covariance.tolist(),
            "log_likelihood": self.log_likelihood,
            "customers": self.customers,
        }

    @classmethod
    def from_dict(cls, d: dict):
        p, se = d["parameters"], d["standard_errors"]
        return cls(*(float(p[n]) for n in cls.NAMES), tuple(float(se[n]) for n in cls.NAMES), np.array(d["log_covariance"], dtype=float),
                   float(d["log_likelihood"]), int(d["customers"]))  # fmt: skip


class FitError(LoyaltyError):
    """A history a model cannot be fitted to (too few customers, no repeat purchases, no optimum)."""


@dataclass(frozen=True)
class Optimum:
    params: np.ndarray  # natural scale
    standard_errors: np.ndarray  # natural scale (delta method)
    log_covariance: np.ndarray  # of the log parameters
    log_likelihood: float


def log_scale_hessian(gradient: Callable, theta: np.ndarray) -> np.ndarray:
    """The Hessian in log parameters, by central differences of the analytic gradient (step about
    eps^(1/3) relative, the usual balance of truncation and rounding error), symmetrised."""
    k = theta.shape[0]

    def grad(th):
        p = np.exp(th)
        return gradient(p) * p  # chain rule: d/dlog(theta) = theta * d/dtheta

    h = np.empty((k, k))
    for j in range(k):
        step = 6e-6 * max(1.0, abs(theta[j]))
        up, down = theta.copy(), theta.copy()
        up[j] += step
        down[j] -= step
        h[:, j] = (grad(up) - grad(down)) / (2.0 * step)
    return (h + h.T) / 2.0


def maximize(loglik: Callable, gradient: Callable, start, n: int, model: str) -> Optimum:
    """Maximise `loglik(params)` (total, natural parameters) with its `gradient`, from `start`; `n`
    (the customers) scales the objective so that the optimizer's tolerances mean the same at any size."""
    scale = 1.0 / max(n, 1)

    def objective(theta):
        p = np.exp(theta)
        ll = loglik(p)
        if not np.isfinite(ll):
            return np.inf, np.zeros_like(theta)
        return -ll * scale, -gradient(p) * p * scale

    theta = np.log(np.asarray(start, dtype=float))
    with np.errstate(all="ignore"):
        theta = optimize.minimize(objective, theta, jac=True, method="BFGS", options={"gtol": 1e-10, "maxiter": 5000}).x
        # Newton steps on the finite-difference Hessian: BFGS stops near the optimum, these land on it.
        for _ in range(8):
            g = gradient(np.exp(theta)) * np.exp(theta)
            try:
                step = np.linalg.solve(log_scale_hessian(gradient, theta), g)
            except np.linalg.LinAlgError:
                break
            trial = theta - step
            if not np.isfinite(trial).all() or not loglik(np.exp(trial)) >= loglik(np.exp(theta)):
                break
            theta = trial
            if np.max(np.abs(step)) < 1e-12:
                break
        hess = log_scale_hessian(gradient, theta)
        ll = float(loglik(np.exp(theta)))
    if not np.isfinite(theta).all() or not np.isfinite(ll) or np.max(np.abs(theta)) > 30:
        raise FitError(f"the {model} fit did not converge (a parameter ran off to 0 or infinity); the history may be too short or too regular to fit")
    if not np.isfinite(hess).all():
        raise FitError(f"the {model} fit's curvature could not be computed at the optimum; the history may be too short or too regular to fit")
    info = -hess
    try:
        np.linalg.cholesky(info)
    except np.linalg.LinAlgError:
        raise FitError(f"the {model} fit found no clear maximum (the likelihood is flat in some direction); the history may be too short to fit") from None
    cov = np.linalg.inv(info)
    p = np.exp(theta)
    return Optimum(p, p * np.sqrt(np.diag(cov)), cov, ll)
