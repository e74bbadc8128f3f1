"""Tier counts at month ends: the one-pass tally agrees with a level looked up per (member, moment)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from rulelang.model import TierSpec
from simulator import metrics, tiers

MONTHS = metrics.month_index(pd.Timestamp("2026-01-01"), pd.Timestamp("2027-03-31"))
ENDS = np.array([p.end_time for p in MONTHS], dtype="datetime64[ns]")
SPECS = [
    TierSpec("spend", "days", 30, ("Green", "Gold", "Black"), (Fraction(0), Fraction(10), Fraction(25))),
    TierSpec("visits", "months", 2, ("Base", "Plus"), (Fraction(0), Fraction(3))),
    TierSpec("points", "calendar_year", None, ("Base", "Silver", "Gold"), (Fraction(0), Fraction(400), Fraction(900))),
]


def _rows(seed: int, members: int = 40):
    """Rows sorted by (member, time), many on month ends, window edges and new year's midnight."""
    rng = np.random.default_rng(seed)
    edges = np.concatenate([ENDS, ENDS - np.timedelta64(30, "D"), tiers._window_start(SPECS[1], ENDS), tiers._year_start(ENDS)])
    n = members * 12
    anywhere = np.datetime64("2025-06-01", "ns") + rng.integers(0, 700 * 86_400, n).astype("timedelta64[s]")
    on_edge = rng.choice(edges, n) + rng.integers(-1, 2, n).astype("timedelta64[ns]")
    t = np.where(rng.random(n) < 0.4, on_edge, anywhere).astype("datetime64[ns]")
    m = rng.integers(0, members + 3, n)  # some codes have no rows
    order = np.lexsort((t, m))
    m, t = m[order], t[order]
    contrib = rng.integers(-300, 1_500, n)
    q_m = rng.permutation(members + 3)[:members]
    q_m = np.concatenate([q_m, q_m[:2]])  # an enrolment seen twice counts twice
    join = rng.choice(np.concatenate([t, ENDS]), len(q_m))
    return m, t, contrib, q_m, join


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.window)
@pytest.mark.parametrize("seed", range(4))
def test_counts_at_month_ends_match_levels_looked_up_per_member(spec, seed):
    m, t, contrib, q_m, join = _rows(seed)
    got = tiers.counts_at(spec, 2, m, t, contrib, q_m, join, ENDS)
    level = tiers.at_moments(spec, 2, m, t, contrib, np.repeat(q_m, len(ENDS)), np.tile(ENDS, len(q_m))).reshape(len(q_m), len(ENDS))
    joined = join[:, None] <= ENDS[None, :]
    want = np.stack([((level == i) & joined).sum(axis=0) for i in range(len(spec.names))], axis=1)
    assert got.dtype == np.int64
    assert got.tolist() == want.tolist()
    # Queries in member order (as enrolment rows come) take another way to the members' rows.
    by_member = np.argsort(q_m, kind="stable")
    assert tiers.counts_at(spec, 2, m, t, contrib, q_m[by_member], join[by_member], ENDS).tolist() == want.tolist()
    before = tiers.positions(t, ENDS, strict=True)  # as a caller that has them passes them
    assert tiers.counts_at(spec, 2, m, t, contrib, q_m, join, ENDS, before).tolist() == want.tolist()
    assert got.sum(axis=1).tolist() == joined.sum(axis=0).tolist()


def test_counts_at_keeps_the_order_of_the_moments():
    m, t, contrib, q_m, join = _rows(9)
    spec = SPECS[0]
    shuffled = ENDS[::-1].copy()
    assert (
        tiers.counts_at(spec, 2, m, t, contrib, q_m, join, shuffled).tolist()
        == tiers.counts_at(spec, 2, m, t, contrib, q_m, join, ENDS)[::-1].tolist()
    )


def test_a_row_on_the_window_start_has_left_the_window():
    spec = SPECS[0]  # spend over 30 days, Gold from 10.00, Black from 25.00
    feb_start = ENDS[1] - np.timedelta64(30, "D")  # 29 Jan, the time of day of the month end
    t = np.array([feb_start, np.datetime64("2026-02-27", "ns")])
    m = np.array([0, 0])
    contrib = np.array([1_500, 1_000])  # minor units
    got = tiers.counts_at(spec, 2, m, t, contrib, np.array([0]), t[:1], ENDS[:3])
    # Feb's window starts exactly at the first row: it holds 10.00 (Gold), not 25.00 (Black).
    assert got.tolist() == [[0, 1, 0], [0, 1, 0], [1, 0, 0]]


@pytest.mark.parametrize("strict", [True, False])
def test_positions_count_the_moments_before_each_time(strict):
    m, t, *_ = _rows(4)
    q = np.sort(np.concatenate([ENDS, t[::37]]))  # some moments fall exactly on rows
    far = np.concatenate([[np.datetime64("1700-01-01", "ns")], q])  # too far apart for a day table
    for moments in (q, far):
        want = (moments[None, :] < t[:, None]) | (~strict & (moments[None, :] == t[:, None]))
        assert tiers.positions(t, moments, strict).tolist() == want.sum(axis=1).tolist()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("spec", [*SPECS, TierSpec("spend", "years", 1, ("Green", "Gold"), (Fraction(0), Fraction(40)))], ids=lambda s: getattr(s, "window", None))
def test_levels_before_rows_by_one_pass_equal_a_search_per_row(seed, spec):
    m, t, contrib, _, _ = _rows(seed)
    want = tiers._levels(spec, 2, m, t, contrib, m, t, np.arange(len(m)))
    got = tiers.before_rows(spec, 2, m, t, contrib)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert len(np.unique(got[0])) > 1  # the case has members in more than one tier



@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("spec", [*SPECS, TierSpec("spend", "years", 1, ("Green", "Gold"), (Fraction(0), Fraction(40)))], ids=lambda s: getattr(s, "window", None))
def test_uplifts_before_rows_in_one_pass_equal_a_lookup_of_the_levels(seed, spec):
    m, t, contrib, _, _ = _rows(seed)
    purchase = np.random.default_rng(seed).random(len(m)) < 0.8
    level, _ = tiers.before_rows(spec, 2, m, t, contrib)
    for uplifts in (np.array([0.0, 0.03, 0.06, 0.1]), np.array([0.0, 0.05]), np.array([0.02])):  # more, as many or fewer than the levels
        want = np.where(purchase, uplifts[np.minimum(level, len(uplifts) - 1)], 0.0)
        assert np.array_equal(tiers.uplift_before_rows(spec, 2, m, t, contrib, uplifts, purchase), want)

def test_a_window_of_years_is_twelve_months_each_as_in_the_engine():
    years = TierSpec("spend", "years", 2, ("A", "B"), (Fraction(0), Fraction(1)))
    months = TierSpec("spend", "months", 24, ("A", "B"), (Fraction(0), Fraction(1)))
    assert np.array_equal(tiers._window_start(years, ENDS), tiers._window_start(months, ENDS))
