"""Synthetic pilots with a known injected lift, to validate `simulator.calibration`.

Each customer has their own weekly visit rate (gamma across customers) and their own mean basket
(gamma across customers); every week has a seasonal factor shared by both groups. Visits per
customer-week are Poisson(rate x season), each basket's amount gamma around the customer's mean.
In the pilot weeks treated customers visit (1 + visit_lift) times as often and each basket is
(1 + spend_lift) times as large, so the true uplifts are: visits `visit_lift`, spend per visit
`spend_lift`, total spend (1 + spend_lift)(1 + visit_lift) - 1.

`heavy_selected`: treated customers are picked more often the higher their visit rate (as when a
pilot enrols the best customers), so the groups differ before the pilot. `pre_trend`: the treated
group's rates grow by this share over the whole window, before the pilot too (parallel trends fail).

Every draw is counter-based (simulator.rng): the same seed and pilot number give the same pilot.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from simulator import rng

# One stream per kind of draw, so that adding a draw never shifts the others.
_RATE, _BASKET, _PICK, _VISITS, _AMOUNT, _TIME = range(61, 67)
RATE_SHAPE = 2.0  # spread of the customers' visit rates (coefficient of variation 1/sqrt(2))
BASKET_SHAPE = 4.0  # spread of the customers' mean baskets
AMOUNT_SHAPE = 3.0  # spread of one customer's baskets around their mean


@dataclass(frozen=True)
class SyntheticPilot:
    """A pilot's transactions (canonical columns), its groups and dates, and the true uplifts."""

    transactions: pd.DataFrame
    treated: np.ndarray
    control: np.ndarray
    pre_start: dt.date
    start: dt.date
    end: dt.date
    spend_lift: float  # per visit
    visit_lift: float

    @property
    def total_spend_lift(self) -> float:
        return (1 + self.spend_lift) * (1 + self.visit_lift) - 1


def generate(
    seed: int,
    pilot: int = 0,
    customers: int = 400,
    weeks: int = 16,
    pilot_weeks: int = 8,
    spend_lift: float = 0.04,
    visit_lift: float = 0.03,
    visits_per_week: float = 1.0,
    mean_basket: float = 20.0,
    treated_share: float = 0.5,
    heavy_selected: bool = False,
    pre_trend: float = 0.0,
    start: dt.date = dt.date(2026, 3, 2),
) -> SyntheticPilot:
    """Pilot number `pilot` of the study `seed`: `weeks` weeks, the last `pilot_weeks` the pilot."""
    if not 0 < pilot_weeks < weeks:
        raise ValueError(f"pilot_weeks must be between 1 and weeks - 1, got {pilot_weeks} of {weeks}")
    c = np.arange(customers, dtype=np.uint64)
    zero = np.zeros(customers, dtype=np.uint64)
    rate = stats.gamma.ppf(_open(rng.uniform(seed, pilot, c, zero, _RATE)), RATE_SHAPE, scale=visits_per_week / RATE_SHAPE)
    basket = stats.gamma.ppf(_open(rng.uniform(seed, pilot, c, zero, _BASKET)), BASKET_SHAPE, scale=mean_basket / BASKET_SHAPE)
    u_pick = rng.uniform(seed, pilot, c, zero, _PICK)
    if heavy_selected:
        rank = stats.rankdata(rate) / customers  # (0, 1]: the heaviest are picked about four times as often as the lightest
        treated = u_pick < treated_share * (0.4 + 1.2 * rank)
    else:
        treated = u_pick < treated_share
    w = np.arange(weeks)
    season = 1 + 0.25 * np.sin(2 * np.pi * (w + 3) / 13) + 0.1 * (w % 4 == 0)  # shared by both groups
    in_pilot = w >= weeks - pilot_weeks
    trend = 1 + pre_trend * treated[:, None] * (w[None, :] / max(weeks - 1, 1))
    mean_visits = rate[:, None] * season[None, :] * trend * (1 + visit_lift * (treated[:, None] & in_pilot[None, :]))
    cell = np.arange(customers * weeks, dtype=np.uint64)
    u_visits = rng.uniform(seed, pilot, cell // weeks, cell % weeks, _VISITS)
    n = poisson_quantile(u_visits, mean_visits.ravel())
    cust = np.repeat(np.arange(customers), weeks)[np.repeat(np.arange(customers * weeks), n)]
    week = np.tile(w, customers)[np.repeat(np.arange(customers * weeks), n)]
    k = np.arange(len(cust), dtype=np.uint64)  # the basket's number in the pilot
    amount = stats.gamma.ppf(_open(rng.uniform(seed, pilot, cust.astype(np.uint64), k, _AMOUNT)), AMOUNT_SHAPE, scale=basket[cust] / AMOUNT_SHAPE)
    amount = amount * np.where(treated[cust] & in_pilot[week], 1 + spend_lift, 1.0)
    first = np.datetime64(start, "s") - np.timedelta64(7 * (weeks - pilot_weeks), "D")
    seconds = np.floor(rng.uniform(seed, pilot, cust.astype(np.uint64), k, _TIME) * 7 * 86400).astype(np.int64)
    ts = first + week * np.timedelta64(7, "D") + seconds.astype("timedelta64[s]")
    ids = np.array([f"S{i:05d}" for i in range(customers)], dtype=object)
    order = np.lexsort((ts, cust))
    tx = pd.DataFrame(
        {
            "customer_id": ids[cust[order]],
            "timestamp": ts[order].astype("datetime64[ns]"),
            "amount": np.round(amount[order], 2),
            "event": "purchase",
            "transaction_id": np.char.add("B", np.arange(1, len(order) + 1).astype(str)),  # numbered in the file's order
        }
    )
    return SyntheticPilot(
        transactions=tx,
        treated=ids[treated],
        control=ids[~treated],
        pre_start=dt.date.fromisoformat(str(first.astype("datetime64[D]"))),
        start=start,
        end=start + dt.timedelta(days=7 * pilot_weeks - 1),
        spend_lift=spend_lift,
        visit_lift=visit_lift,
    )


def poisson_quantile(u: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """The Poisson(mean) quantile of each draw u: the least n with P(N <= n) > u (scipy.stats.poisson.ppf's
    answer, tested against it), by summing the probabilities up from 0 for all draws at once."""
    n = np.zeros(len(u), dtype=np.int64)
    p = np.exp(-mean)
    cdf = p.copy()
    k = 0
    short = cdf <= u
    while short.any():
        k += 1
        p = p * mean / k
        cdf = cdf + p
        n += short
        short &= (cdf <= u) & (p > 0)  # (p gone to 0: the sum has met u up to rounding)
    return n


def _open(u: np.ndarray) -> np.ndarray:
    """Draws in [0, 1) moved into (0, 1), where every inverse distribution function is finite."""
    return np.clip(u, 2.0**-54, 1 - 2.0**-53)


@dataclass(frozen=True)
class Coverage:
    """A study's results: per uplift (spend, visits, spend per visit), the share of pilots whose
    95% interval covers the truth, the mean estimate, the truth, and the mean standard error."""

    pilots: int
    covered: dict
    mean_estimate: dict
    truth: dict
    mean_se: dict
    placebo_rejections: int
    naive_mean: dict


def coverage_study(seed: int, pilots: int = 200, **options) -> Coverage:
    """`pilots` synthetic pilots (`generate(seed, i, **options)`), each read into a panel and
    estimated as `loyalty calibrate` does; how often the 95% intervals cover the injected lift."""
    from simulator import calibration

    names = ("spend", "visits", "spend_per_visit")
    est = {k: [] for k in names}
    se = {k: [] for k in names}
    naive = {"spend": [], "visits": []}
    hits = dict.fromkeys(names, 0)
    rejections = 0
    truth = {}
    for i in range(pilots):
        p = generate(seed, i, **options)
        truth = {"spend": p.total_spend_lift, "visits": p.visit_lift, "spend_per_visit": p.spend_lift}
        panel, _ = calibration.build_panel(p.transactions, p.treated, p.control, p.pre_start, p.start, p.end)
        c = calibration.estimate(panel)
        for k, effect in zip(names, (c.spend, c.visits, c.spend_per_visit), strict=True):
            est[k].append(effect.uplift)
            se[k].append(effect.uplift_se)
            lo, hi = effect.uplift_interval()
            hits[k] += lo <= truth[k] <= hi
        naive["spend"].append(c.naive_spend)
        naive["visits"].append(c.naive_visits)
        rejections += bool(c.placebo is not None and c.placebo.rejects)
    covered = {k: hits[k] / pilots for k in names}
    return Coverage(
        pilots=pilots,
        covered=covered,
        mean_estimate={k: float(np.mean(v)) for k, v in est.items()},
        truth=truth,
        mean_se={k: float(np.mean(v)) for k, v in se.items()},
        placebo_rejections=rejections,
        naive_mean={k: float(np.mean(v)) for k, v in naive.items()},
    )
