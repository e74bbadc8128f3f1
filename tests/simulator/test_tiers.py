"""Tier levels before rows, without an engine pass: the one-pass forms agree with the definition."""

from __future__ import annotations

import math
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


def _brute_force_levels(spec, m, t, contrib):
    """Each row's level (and metric) from the definition, row by row: the member's earlier rows
    inside the window (after `t - N`; this or last calendar year), summed in plain Python."""
    limits = [math.ceil(x * (100 if spec.metric == "spend" else 1)) for x in spec.thresholds]

    def level(metric):
        return max(i for i, x in enumerate(limits) if metric >= x) if metric >= limits[0] else 0

    levels, metrics_ = [], []
    for i in range(len(m)):
        earlier = [j for j in range(i) if m[j] == m[i]]
        now = pd.Timestamp(t[i])
        if spec.window == "calendar_year":
            ytd = sum(int(contrib[j]) for j in earlier if pd.Timestamp(t[j]).year == now.year)
            last = sum(int(contrib[j]) for j in earlier if pd.Timestamp(t[j]).year == now.year - 1)
            levels.append(max(level(ytd), level(last)))
            metrics_.append(ytd)
            continue
        back = pd.Timedelta(days=spec.n) if spec.window == "days" else pd.DateOffset(months=spec.n * (12 if spec.window == "years" else 1))
        inside = sum(int(contrib[j]) for j in earlier if pd.Timestamp(t[j]) > now - back)
        levels.append(level(inside))
        metrics_.append(inside)
    return levels, metrics_


@pytest.mark.parametrize("spec", [*SPECS, TierSpec("spend", "years", 1, ("Green", "Gold"), (Fraction(0), Fraction(40)))], ids=lambda s: s.window)
def test_levels_before_rows_follow_the_definition(spec):
    m, t, contrib, _, _ = _rows(5, members=12)
    level, metric = tiers.before_rows(spec, 2, m, t, contrib)
    want_level, want_metric = _brute_force_levels(spec, m, t, contrib)
    assert level.tolist() == want_level and metric.tolist() == want_metric


def test_a_row_on_the_window_start_has_left_the_window():
    spec = SPECS[0]  # spend over 30 days, Gold from 10.00, Black from 25.00
    t0 = np.datetime64("2026-01-29T10:00", "ns")
    t = np.array([t0, t0 + np.timedelta64(1, "D"), t0 + np.timedelta64(30, "D")])
    contrib = np.array([1_500, 1_000, 0])  # minor units
    level, metric = tiers.before_rows(spec, 2, np.zeros(3, dtype=np.int64), t, contrib)
    # The third row's window starts exactly at the first row: it holds 10.00 (Gold), not 25.00 (Black).
    assert metric.tolist() == [0, 1_500, 1_000] and level.tolist() == [0, 1, 1]


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


# --- status rules: one implementation of tiers, the engine's -------------------------------------

STATUS_PROGRAM = """\
program "Status"
currency CNY
point_cost 0.01 CNY
tiers by spend over 30 days {
  Green from 0
  Gold  from 300 CNY or 3 visits keep 2 months
}
earn base: 1 point per 1 CNY
earn gold: 2x base when tier >= Gold
expire after 12 months
reward cup: 100 points cost 2 CNY
"""


def test_month_end_tiers_with_status_rules_are_the_engines_own():
    """With alternatives and retention, the simulator's members per tier at each month's end are
    what the engine itself computes on the same rows (every buyer joins, no response): the
    simulator has no tier code of its own for them."""
    import rulelang
    from rulelang.engine.compile import evaluate_batch
    from rulelang.engine.data import prepare
    from simulator.api import simulate
    from tests.simulator.simkit import sample, scenario

    prog = rulelang.loads(STATUS_PROGRAM, "status.loyalty")
    assert not tiers.follow_rows(prog.model.tiers)
    tx, cu = sample(customers=30, months=8, seed=11)
    sc = scenario(runs=1, enrollment={"share": 1.0, "pick": "random"}, redemption={"probability": 0.0, "choice": "cheapest"},
                  response={"spend_uplift": 0.0, "visit_uplift": 0.0})
    result = simulate(prog, tx, cu, sc, workers=1, engine="compiled")
    m = result.monthly.set_index("month")
    ends = pd.PeriodIndex(m.index, freq="M").end_time.to_numpy()
    own = evaluate_batch(prog.model, prepare(tx.sort_values(["customer_id", "timestamp"], kind="stable"), prog.model, cu), moments=ends)
    assert own.tier_counts[:, 1].sum() > 0 and own.tier_counts[:, 0].sum() > 0  # both tiers occur, so the check can fail
    assert m["tier_Green"].tolist() == own.tier_counts[:, 0].tolist()
    assert m["tier_Gold"].tolist() == own.tier_counts[:, 1].tolist()


def test_an_uplift_by_tier_reads_the_engines_tier_for_status_rules():
    """Tiers with alternatives, `over lifetime` or `keep` are not read off the rows here: the
    response asks for the engine's first pass and takes each row's uplift from its tier."""
    import rulelang
    from simulator import response
    from simulator.scenario import Scenario

    sc = Scenario.from_dict({"response": {"spend_uplift": {"Green": 0.0, "Gold": 0.1}}})
    for text in (STATUS_PROGRAM, STATUS_PROGRAM.replace(" or 3 visits keep 2 months", "").replace("30 days", "lifetime")):
        assert response.needs_first_pass(sc.response, rulelang.loads(text).model)
    plain = STATUS_PROGRAM.replace(" or 3 visits keep 2 months", "")
    assert not response.needs_first_pass(sc.response, rulelang.loads(plain).model)
