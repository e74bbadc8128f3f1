"""Lift from a pilot: difference in differences on a customer x week panel.

The panel has one cell per customer of the pilot (treated or control) and per week of the pre-period
and the pilot: the customer's net spend in the week (major units) and visits (purchase baskets).
Weeks, not months: a pilot runs a few weeks to a few months, so months would leave two or three
pilot periods, too few for period effects and a pre-period placebo; whole weeks average out the
weekday cycle that days would carry, and a customer-week is rarely empty for a regular shopper.
Weeks are counted from the pilot's start (so the pilot's first week starts on its first day); a
partial first or last week is absorbed by its week effect, which both groups share.

Each outcome y (spend, visits) is fitted by OLS (statsmodels) as
    y[c, w] = a + b * treated[c] + week effect[w] + effect * treated[c] * pilot[w]
with standard errors clustered by customer. In a balanced panel (every customer has every week,
empty weeks count as 0) this `effect` is the two-way fixed-effects estimate (customer and week
effects): the customer effects sum to zero against the residualised treatment, so the estimate and
its clustered score are the same (tested against a fit with a dummy per customer); the group term
keeps the treated group's counterfactual pilot-period mean, a + b + the mean pilot week effect, a
linear combination of the coefficients.

The relative uplift is effect / counterfactual, its standard error by the delta method (with the
clustered covariance of effect and counterfactual). Both outcomes' covariances are joined by the
same sandwich across outcomes (their clustered scores), which gives the spend uplift per visit
((1 + spend uplift) / (1 + visit uplift) - 1, what the simulator's `spend_uplift` means: it
scales each basket, and `visit_uplift` adds baskets) its interval too.

The placebo test fits the same model on the pre-period alone, its later half posing as the pilot;
under parallel trends both placebo effects are 0, and a Wald test of both (chi-squared, 2 degrees
of freedom) rejecting at 5% is a warning that the treated group was already diverging.
The naive comparison (treated vs control mean in the pilot period, relative) is reported beside:
it mixes the lift with how the groups differed before the pilot.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rulelang.errors import LoyaltyError

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile: 95% intervals are estimate ± Z95 x se
WEEK = np.timedelta64(7, "D")
OUTCOMES = ("spend", "visits")


class CalibrationError(LoyaltyError):
    """A pilot whose data cannot support the estimate (no customers in a group, no pre-period)."""


@dataclass(frozen=True)
class Panel:
    """Spend and visits per customer (rows) and week (columns); week w starts `week_starts[w]`."""

    customer_ids: np.ndarray
    treated: np.ndarray  # bool per customer
    pilot: np.ndarray  # bool per week: the week is in the pilot period
    week_starts: np.ndarray  # datetime64[D]
    spend: np.ndarray  # float64, customers x weeks, major units
    visits: np.ndarray  # float64, customers x weeks

    @property
    def shape(self) -> tuple[int, int]:
        return self.spend.shape


def build_panel(
    rows: pd.DataFrame, treated_ids, control_ids, pre_start: dt.date, start: dt.date, end: dt.date
) -> tuple[Panel, int]:
    """The panel of the treated and control customers over [pre_start, end] (days included), from
    transactions with the canonical columns (customer_id, timestamp, amount, event, transaction_id
    as `simulator.io.load_transactions` gives them). Returns it with the number of rows in the
    window whose customer is in neither group (not used, and reported)."""
    if not pre_start < start <= end:
        raise CalibrationError(f"the pre-period must start before the pilot: pre_start {pre_start}, start {start}, end {end}")
    treated_ids = pd.unique(np.asarray(treated_ids, dtype=object))
    control_ids = pd.unique(np.asarray(control_ids, dtype=object))
    ids = np.concatenate([treated_ids, control_ids])
    code = pd.Index(ids)
    if not code.is_unique:
        both = code[code.duplicated()][:5].tolist()
        raise CalibrationError(f"{len(ids) - code.nunique():,} customers are in both groups, e.g. {', '.join(map(str, both))}; a customer is treated or control")
    lo = np.datetime64(pre_start, "D")
    n_pre = -(-int((np.datetime64(start, "D") - lo) / np.timedelta64(1, "D")) // 7)  # weeks before start, the first maybe partial
    n_pilot = -(-(int((np.datetime64(end, "D") - np.datetime64(start, "D")) / np.timedelta64(1, "D")) + 1) // 7)
    week_starts = np.datetime64(start, "D") + np.arange(-n_pre, n_pilot) * WEEK
    week_starts[0] = max(week_starts[0], lo)

    t = rows["timestamp"].to_numpy(dtype="datetime64[ns]")
    in_window = (t >= lo.astype("datetime64[ns]")) & (t < (np.datetime64(end, "D") + np.timedelta64(1, "D")).astype("datetime64[ns]"))
    cust = code.get_indexer(rows["customer_id"].to_numpy(dtype=object))
    used = in_window & (cust >= 0)
    outside_groups = int(np.count_nonzero(in_window & (cust < 0)))
    cust = cust[used]
    days = (t[used] - np.datetime64(start, "ns")) // np.timedelta64(1, "D")
    week = np.floor_divide(days, 7) + n_pre
    amount = rows["amount"].to_numpy(dtype=np.float64)[used]
    event = rows["event"].astype(str).to_numpy()[used] if "event" in rows.columns else np.full(len(cust), "purchase")
    is_purchase_event = event == "purchase"
    refund = (is_purchase_event & (amount < 0)) | (event == "refund")
    purchase = is_purchase_event & (amount >= 0)
    net = np.where(purchase, amount, np.where(refund, -np.abs(amount), 0.0))  # refunds count against spend however written
    n_c, n_w = len(ids), n_pre + n_pilot
    spend = np.zeros(n_c * n_w)
    np.add.at(spend, cust * n_w + week, net)
    # A visit is a purchase basket: its transaction id, or (without one) its customer and time.
    tx = rows["transaction_id"].astype(str).to_numpy()[used] if "transaction_id" in rows.columns else np.full(len(cust), "")
    basket = pd.DataFrame({"c": cust[purchase], "w": week[purchase], "t": t[used][purchase], "x": tx[purchase]})
    basket["t"] = basket["t"].where(basket["x"] == "", pd.NaT)  # with an id, the id alone names the basket
    basket = basket.drop_duplicates(["c", "x", "t"])
    visits = np.bincount(basket["c"].to_numpy() * n_w + basket["w"].to_numpy(), minlength=n_c * n_w).astype(np.float64)
    panel = Panel(
        customer_ids=ids,
        treated=np.arange(n_c) < len(treated_ids),
        pilot=np.arange(n_w) >= n_pre,
        week_starts=week_starts,
        spend=spend.reshape(n_c, n_w),
        visits=visits.reshape(n_c, n_w),
    )
    return panel, outside_groups


@dataclass(frozen=True)
class Effect:
    """One outcome's difference in differences: the absolute effect per customer-week and the
    relative uplift (effect / the treated group's counterfactual pilot-period mean), each with its
    standard error; intervals are estimate ± Z95 x se."""

    effect: float
    effect_se: float
    counterfactual: float
    uplift: float
    uplift_se: float

    def effect_interval(self) -> tuple[float, float]:
        return self.effect - Z95 * self.effect_se, self.effect + Z95 * self.effect_se

    def uplift_interval(self) -> tuple[float, float]:
        return self.uplift - Z95 * self.uplift_se, self.uplift + Z95 * self.uplift_se


@dataclass(frozen=True)
class Placebo:
    """The same estimator on the pre-period, its later half posing as the pilot."""

    spend_uplift: float
    visit_uplift: float
    chi2: float
    p_value: float
    weeks_before: int
    weeks_after: int

    @property
    def rejects(self) -> bool:
        return self.p_value < 0.05


@dataclass(frozen=True)
class Calibration:
    """What `loyalty calibrate` reports."""

    spend: Effect
    visits: Effect
    spend_per_visit: float  # (1 + spend uplift) / (1 + visit uplift) - 1
    spend_per_visit_se: float
    placebo: Placebo | None  # None when the pre-period has fewer than two weeks
    naive_spend: float  # treated vs control mean in the pilot period, relative to control
    naive_visits: float
    treated_customers: int
    control_customers: int
    pre_weeks: int
    pilot_weeks: int

    def spend_per_visit_interval(self) -> tuple[float, float]:
        return self.spend_per_visit - Z95 * self.spend_per_visit_se, self.spend_per_visit + Z95 * self.spend_per_visit_se


@dataclass(frozen=True)
class _Fit:
    coef: dict  # outcome -> coefficients (a, b, week effects 1.., effect)
    cov: np.ndarray  # joint covariance of both outcomes' coefficients, spend's first
    k: int  # coefficients per outcome


def _design(treated: np.ndarray, pilot: np.ndarray) -> np.ndarray:
    """Rows customer-major (customer, week): constant, treated, week dummies (the first week is the
    base), treated x pilot."""
    n_c, n_w = len(treated), len(pilot)
    t = np.repeat(treated.astype(np.float64), n_w)
    weeks = np.tile(np.eye(n_w)[:, 1:], (n_c, 1))
    return np.column_stack([np.ones(n_c * n_w), t, weeks, t * np.tile(pilot.astype(np.float64), n_c)])


def _fit(panel: Panel, weeks: slice, pilot: np.ndarray) -> _Fit:
    import statsmodels.api as sm

    treated = panel.treated
    n_c = len(treated)
    x = _design(treated, pilot)
    n, k = x.shape
    groups = np.repeat(np.arange(n_c), len(pilot))
    coef, scores = {}, []
    for name in OUTCOMES:
        y = getattr(panel, name)[:, weeks].ravel()
        res = sm.OLS(y, x).fit(cov_type="cluster", cov_kwds={"groups": groups})
        coef[name] = res.params
        # Each customer's score x'e summed over their weeks (rows are customer-major).
        scores.append((x * res.resid[:, None]).reshape(n_c, len(pilot), k).sum(axis=1))
    # The clustered sandwich across both outcomes, with statsmodels' small-sample factor; its
    # diagonal blocks are statsmodels' own cluster covariances (tested).
    bread = np.linalg.inv(x.T @ x)
    s = np.hstack(scores)
    meat = s.T @ s
    b2 = np.kron(np.eye(2), bread)
    factor = n_c / (n_c - 1) * (n - 1) / (n - k)
    return _Fit(coef, factor * b2 @ meat @ b2, k)


def _effects(fit: _Fit, pilot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(effect, counterfactual) of spend and visits, as 4 values, and their covariance."""
    k = fit.k
    weight = np.zeros(k)
    weight[0] = weight[1] = 1.0
    dummies = pilot[1:].astype(np.float64)  # week effects of the pilot weeks (the base week is a pre-week)
    weight[2 : k - 1] = dummies / pilot.sum()
    effect = np.zeros(k)
    effect[k - 1] = 1.0
    lin = np.zeros((4, 2 * k))
    lin[0, :k], lin[1, :k], lin[2, k:], lin[3, k:] = effect, weight, effect, weight
    theta = np.concatenate([fit.coef[o] for o in OUTCOMES])
    return lin @ theta, lin @ fit.cov @ lin.T


def _uplifts(v: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relative spend and visit uplift and the spend uplift per visit, with their covariance (delta method)."""
    es, cs, ev, cv = v
    rs, rv = es / cs, ev / cv
    pv = (1 + rs) / (1 + rv) - 1
    grad = np.zeros((3, 4))
    grad[0, :2] = 1 / cs, -es / cs**2
    grad[1, 2:] = 1 / cv, -ev / cv**2
    grad[2] = grad[0] / (1 + rv) - grad[1] * (1 + rs) / (1 + rv) ** 2
    return np.array([rs, rv, pv]), grad @ cov @ grad.T


def estimate(panel: Panel) -> Calibration:
    """The difference-in-differences estimates, the placebo test and the naive comparison."""
    from threadpoolctl import threadpool_limits

    # The regressions are a few thousand to a few million rows by a few dozen columns: BLAS's
    # threads cost more in hand-offs than they save (several times the time, on a shared machine).
    with threadpool_limits(limits=1, user_api="blas"):
        return _estimate(panel)


def _estimate(panel: Panel) -> Calibration:
    n_t = int(panel.treated.sum())
    n_ctl = len(panel.treated) - n_t
    n_pre = int((~panel.pilot).sum())
    n_pilot = int(panel.pilot.sum())
    for count, what in ((n_t, "treated customers"), (n_ctl, "control customers"), (n_pre, "pre-period weeks"), (n_pilot, "pilot weeks")):
        if count < 2:
            raise CalibrationError(f"{count} {what}; the estimate needs at least 2 (and clustered errors want dozens of customers per group)")
    for name in OUTCOMES:
        y = getattr(panel, name)
        if not (y[panel.treated][:, panel.pilot].any() or y[~panel.treated][:, panel.pilot].any()):
            raise CalibrationError(f"no {name} in the pilot period by either group; check the pilot's dates against the transactions")
    fit = _fit(panel, slice(None), panel.pilot)
    v, cov = _effects(fit, panel.pilot)
    if v[1] <= 0 or v[3] <= 0:
        raise CalibrationError("the treated group's counterfactual spend or visits in the pilot period is not positive; the relative uplift is undefined")
    rel, rel_cov = _uplifts(v, cov)
    se = np.sqrt(np.diag(cov))
    rse = np.sqrt(np.diag(rel_cov))
    effects = [Effect(float(v[2 * i]), float(se[2 * i]), float(v[2 * i + 1]), float(rel[i]), float(rse[i])) for i in range(2)]
    naive = []
    for name in OUTCOMES:
        y = getattr(panel, name)[:, panel.pilot]
        control = y[~panel.treated].mean()
        naive.append(float(y[panel.treated].mean() / control - 1) if control > 0 else float("nan"))
    return Calibration(
        spend=effects[0],
        visits=effects[1],
        spend_per_visit=float(rel[2]),
        spend_per_visit_se=float(rse[2]),
        placebo=placebo(panel),
        naive_spend=naive[0],
        naive_visits=naive[1],
        treated_customers=n_t,
        control_customers=n_ctl,
        pre_weeks=n_pre,
        pilot_weeks=n_pilot,
    )


def placebo(panel: Panel) -> Placebo | None:
    """The estimator on the pre-period, its later half (rounded down) posing as the pilot; None
    when the pre-period has fewer than two weeks."""
    from scipy import stats

    n_pre = int((~panel.pilot).sum())
    if n_pre < 2:
        return None
    after = n_pre // 2
    fake = np.arange(n_pre) >= n_pre - after
    fit = _fit(panel, slice(0, n_pre), fake)
    v, cov = _effects(fit, fake)
    b = v[[0, 2]]
    vb = cov[np.ix_([0, 2], [0, 2])]
    chi2 = float(b @ np.linalg.pinv(vb) @ b)
    rel = [float(v[0] / v[1]) if v[1] > 0 else float("nan"), float(v[2] / v[3]) if v[3] > 0 else float("nan")]
    return Placebo(rel[0], rel[1], chi2, float(stats.chi2.sf(chi2, 2)), n_pre - after, after)
