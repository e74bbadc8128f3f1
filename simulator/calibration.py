"""Lift from a pilot: difference in differences on a customer x week panel.

The panel has one cell per customer of the pilot (treated or control) and per week of the pre-period
and the pilot: the customer's net spend in the week (major units) and visits (purchase baskets).
Weeks, not months: a pilot runs a few weeks to a few months, so months would leave two or three
pilot periods, too few for period effects and a pre-period placebo; whole weeks average out the
weekday cycle that days would carry, and a customer-week is rarely empty for a regular shopper.
Weeks are counted from the pilot's start (so the pilot's first week starts on its first day); a
partial first or last week is absorbed by its week effect, which both groups share.

Each outcome y (spend, visits) is fitted by Poisson pseudo-maximum likelihood (statsmodels GLM,
log link) as
    E y[c, w] = exp(a + b * treated[c] + week effect[w] + log_ratio * treated[c] * pilot[w])
with standard errors clustered by customer (the fit is made on the group x week means, which gives
the same coefficients, and the clustered covariance from each customer's own score: `_fit`).
Multiplicative, not additive: seasonality scales a
customer's spend and visits in proportion to their level, so when the treated customers are heavier
buyers (as pilots often pick them) an additive difference in differences (OLS in levels) charges
their larger seasonal swing to the program; the synthetic pilots show it (+5 points of spend uplift
on a true +7%, tests/simulator/test_calibration.py). Poisson pseudo-likelihood needs only the mean
to be right, not Poisson counts, holds empty weeks (0) as they are, and exp(log_ratio) is the ratio
of the treated group's pilot-period mean to its counterfactual, so the relative uplift is
exp(log_ratio) - 1. In a balanced panel (every customer has every week, empty weeks 0) the group
term gives the same log ratio as a dummy per customer (a Poisson fit's customer effects are
concentrated out cell by cell; tested), and the clustered score is the same.
The uplift's 95% interval is the Wald interval of the log ratio, transformed (exp(. ± 1.96 se) - 1);
its standard error, for a response distribution, is the delta method's, exp(log_ratio) x se.
Both outcomes' covariances are joined by the same sandwich across outcomes (their clustered
scores), which gives the spend per visit (spend's log ratio less visits') its interval too: that is
what the simulator's `spend_uplift` means (it scales each basket; `visit_uplift` adds baskets).
A customer-week whose refunds exceed its purchases counts as 0 spend (the pseudo-likelihood needs
outcomes of 0 or more); the count of such cells is reported.

The placebo test fits the same model on the pre-period alone, its later half posing as the pilot;
under parallel trends (in ratios) both placebo log ratios are 0, and a Wald test of both (chi-squared, 2 degrees
of freedom) rejecting at 5% is a warning that the treated group was already diverging.
The naive comparison (treated vs control mean in the pilot period, relative) is reported beside:
it mixes the lift with how the groups differed before the pilot.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rulelang.errors import LoyaltyError

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile: 95% intervals are estimate ± Z95 x se
WEEK = np.timedelta64(7, "D")
OUTCOMES = ("spend", "visits")
MAX_CELLS = 100_000_000  # customer-weeks of a panel: 800 MB for each of spend and visits (a million customers over two years)


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
    if n_c * n_w > MAX_CELLS:
        raise CalibrationError(f"{n_c:,} customers over {n_w:,} weeks are {n_c * n_w:,} customer-weeks; at most {MAX_CELLS:,}: shorten the pre-period or the pilot")
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
    """One outcome's difference in differences: the log ratio `log_ratio` (the coefficient of
    treated x pilot) with its clustered standard error, the relative uplift exp(log_ratio) - 1,
    and per customer-week the treated group's pilot-period mean, its counterfactual (that mean /
    (1 + uplift)) and the absolute effect (their difference)."""

    log_ratio: float
    log_ratio_se: float
    treated_mean: float

    @property
    def uplift(self) -> float:
        return float(np.expm1(self.log_ratio))

    @property
    def uplift_se(self) -> float:
        """The uplift's standard error by the delta method (what a response distribution's sd is)."""
        return float(np.exp(self.log_ratio) * self.log_ratio_se)

    def uplift_interval(self) -> tuple[float, float]:
        """The 95% Wald interval of the log ratio, transformed: exp(log_ratio ± Z95 x se) - 1."""
        return _interval(self.log_ratio, self.log_ratio_se)

    @property
    def counterfactual(self) -> float:
        return float(self.treated_mean * np.exp(-self.log_ratio))

    @property
    def effect(self) -> float:
        return self.treated_mean - self.counterfactual

    def effect_interval(self) -> tuple[float, float]:
        """The absolute effect's 95% interval, given the treated group's observed pilot mean."""
        lo, hi = self.uplift_interval()
        return self.treated_mean * lo / (1 + lo), self.treated_mean * hi / (1 + hi)


def _interval(log_ratio: float, se: float) -> tuple[float, float]:
    return float(np.expm1(log_ratio - Z95 * se)), float(np.expm1(log_ratio + Z95 * se))


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
    spend_per_visit: Effect  # the spend of a visit: spend's log ratio less visits'; its treated_mean is spend per visit
    placebo: Placebo | None  # None when the pre-period has fewer than two weeks
    naive_spend: float  # treated vs control mean in the pilot period, relative to control
    naive_visits: float
    treated_customers: int
    control_customers: int
    pre_weeks: int
    pilot_weeks: int

    negative_spend_cells: int = 0  # customer-weeks whose refunds exceeded their purchases, counted as 0


@dataclass(frozen=True)
class _Fit:
    coef: np.ndarray  # (outcome, coefficient): a, b, week effects 1.., log ratio
    cov: np.ndarray  # joint covariance of both outcomes' coefficients, spend's first


def _design(treated: np.ndarray, pilot: np.ndarray) -> np.ndarray:
    """Rows customer-major (customer, week): constant, treated, week dummies (the first week is the
    base), treated x pilot."""
    n_c, n_w = len(treated), len(pilot)
    t = np.repeat(treated.astype(np.float64), n_w)
    weeks = np.tile(np.eye(n_w)[:, 1:], (n_c, 1))
    return np.column_stack([np.ones(n_c * n_w), t, weeks, t * np.tile(pilot.astype(np.float64), n_c)])


def _fit(panel: Panel, weeks: slice, pilot: np.ndarray) -> _Fit:
    """Both outcomes' Poisson fits, errors clustered by customer, and their joint covariance.

    The regressors are the same for every customer of a group in a week, so a Poisson fit's score,
    the sum over rows of x (y - mu), sums each group-week's customers into n x (their mean - mu):
    the fit on the group x week means weighted by the group's customers (statsmodels GLM,
    `freq_weights`) has the customer-level fit's coefficients. The clustered covariance is built
    from each customer's own score, the sum over weeks of x (y - mu), with statsmodels' small-sample
    factor: it equals statsmodels' `cov_type="cluster"` on the customer x week rows (tested), in
    memory of customers x weeks rather than customers x weeks x coefficients.
    """
    import statsmodels.api as sm

    treated = panel.treated
    n_c, n_w = len(treated), len(pilot)
    n_groups = np.array([(~treated).sum(), treated.sum()])
    x = _design(np.array([False, True]), pilot)  # the control group's weeks, then the treated group's
    k = x.shape[1]
    by_group = x.reshape(2, n_w, k)
    weight = np.repeat(n_groups, n_w).astype(np.float64)
    coef, scores, breads = [], [], []
    for name in OUTCOMES:
        y = np.maximum(getattr(panel, name)[:, weeks], 0.0)
        means = np.vstack([y[~treated].mean(axis=0), y[treated].mean(axis=0)])
        with warnings.catch_warnings():  # (two weeks fit the table exactly: statsmodels warns of no scale to estimate)
            warnings.simplefilter("ignore")
            res = sm.GLM(means.ravel(), x, family=sm.families.Poisson(), freq_weights=weight).fit(tol=1e-12)
        mu = res.fittedvalues.reshape(2, n_w)
        score = np.empty((n_c, k))
        for g, members in enumerate((~treated, treated)):
            score[members] = (y[members] - mu[g]) @ by_group[g]
        coef.append(res.params)
        scores.append(score)
        breads.append(np.linalg.inv(x.T @ (x * (mu.ravel() * weight)[:, None])))
    s = np.hstack(scores)
    b2 = np.zeros((2 * k, 2 * k))
    b2[:k, :k], b2[k:, k:] = breads
    n = n_c * n_w
    factor = n_c / (n_c - 1) * (n - 1) / (n - k)
    return _Fit(np.array(coef), factor * b2 @ (s.T @ s) @ b2)


def estimate(panel: Panel) -> Calibration:
    """The difference-in-differences estimates, the placebo test and the naive comparison."""
    from threadpoolctl import threadpool_limits

    # The fits are group x week tables and customers x weeks products: BLAS's threads cost more in
    # hand-offs than they save on them (twice the time and more, on a shared machine).
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
        for group, who in ((panel.treated, "the treated"), (~panel.treated, "the control")):
            for weeks, when in ((~panel.pilot, "the pre-period"), (panel.pilot, "the pilot period")):
                if not (y[group][:, weeks] > 0).any():
                    raise CalibrationError(f"no {name} by {who} customers in {when}; check the pilot's dates and groups against the transactions")
    fit = _fit(panel, slice(None), panel.pilot)
    k = fit.coef.shape[1]
    se = np.sqrt(np.diag(fit.cov))
    means = [float(np.maximum(getattr(panel, o)[panel.treated][:, panel.pilot], 0).mean()) for o in OUTCOMES]
    effects = [Effect(float(fit.coef[i, -1]), float(se[(i + 1) * k - 1]), means[i]) for i in range(2)]
    # Spend per visit: the difference of the two log ratios, with their covariance.
    diff = np.zeros(2 * k)
    diff[k - 1], diff[2 * k - 1] = 1.0, -1.0
    per_visit = Effect(
        float(diff @ fit.coef.ravel()), float(np.sqrt(diff @ fit.cov @ diff)), means[0] / means[1] if means[1] > 0 else float("nan")
    )
    naive = []
    for name in OUTCOMES:
        y = getattr(panel, name)[:, panel.pilot]
        control = y[~panel.treated].mean()
        naive.append(float(y[panel.treated].mean() / control - 1) if control > 0 else float("nan"))
    return Calibration(
        spend=effects[0],
        visits=effects[1],
        spend_per_visit=per_visit,
        placebo=placebo(panel),
        naive_spend=naive[0],
        naive_visits=naive[1],
        treated_customers=n_t,
        control_customers=n_ctl,
        pre_weeks=n_pre,
        pilot_weeks=n_pilot,
        negative_spend_cells=int((panel.spend < 0).sum()),
    )


def placebo(panel: Panel) -> Placebo | None:
    """The estimator on the pre-period, its later half (rounded down) posing as the pilot; None
    when the pre-period has fewer than two weeks, or a group has neither spend nor visits in a half."""
    from scipy import stats

    n_pre = int((~panel.pilot).sum())
    if n_pre < 2:
        return None
    after = n_pre // 2
    fake = np.arange(n_pre) >= n_pre - after
    for name in OUTCOMES:
        y = getattr(panel, name)[:, :n_pre]
        if not all((y[g][:, h] > 0).any() for g in (panel.treated, ~panel.treated) for h in (fake, ~fake)):
            return None
    fit = _fit(panel, slice(0, n_pre), fake)
    k = fit.coef.shape[1]
    at = [k - 1, 2 * k - 1]
    b = fit.coef[:, -1]
    chi2 = float(b @ np.linalg.pinv(fit.cov[np.ix_(at, at)]) @ b)
    return Placebo(float(np.expm1(b[0])), float(np.expm1(b[1])), chi2, float(stats.chi2.sf(chi2, 2)), n_pre - after, after)
