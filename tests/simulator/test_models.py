"""Behaviour models: enrolment, redemption draws, response (uplift, extra visits), tiers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import rulelang
from rulelang.errors import LoyaltyError
from simulator import enrollment, redemption, response, tiers
from simulator.history import prepare
from simulator.scenario import Scenario
from tests.simulator.simkit import PROGRAM_TEXT, program, sample, scenario


def _history(customers=20):
    tx, _ = sample(customers)
    return prepare(tx, 2)


def test_random_pick_takes_the_share_and_depends_on_run_not_on_others():
    h = _history()
    a = enrollment.pick(h, 0.5, "random", seed=1, run=0)
    b = enrollment.pick(h, 0.5, "random", seed=1, run=1)
    assert a.sum() == b.sum() == round(0.5 * h.customers)
    assert not np.array_equal(a, b)
    assert np.array_equal(a, enrollment.pick(h, 0.5, "random", seed=1, run=0))


def test_the_choice_takes_the_smallest_draws_or_the_most_spend_ties_in_customer_order():
    rng = np.random.default_rng(4)
    can_join = rng.random(3000) < 0.7
    spend = rng.integers(0, 5, 3000).astype(float)  # many ties
    keys = rng.integers(0, 2**63, 3000).astype(np.uint64)
    eligible = np.flatnonzero(can_join)
    for how in enrollment.PICKS:
        for share in (0.0, 0.3, 0.999, 1.0):
            k = min(len(eligible), int(np.floor(share * len(eligible) + 0.5)))
            first = -spend[eligible] if how == "top_spenders" else enrollment.rng.uniform(2, 1, keys[eligible], 0, enrollment.STREAM)
            want = np.zeros(3000, dtype=bool)
            want[eligible[np.lexsort((eligible, first))[:k]]] = True  # by the key, then customer order
            assert np.array_equal(enrollment.choose(can_join, spend, keys, share, how, 2, 1), want)


def test_first_purchases_are_each_customers_first_purchase_row():
    h = _history(60)
    rows = h.rows
    want = np.full(h.customers, -1)
    for m, pos in rows[rows["_purchase"]].groupby("_m").groups.items():
        want[m] = min(pos)
    assert np.array_equal(h.first_purchase, want)


def test_top_spenders_are_the_biggest_buyers():
    h = _history()
    chosen = enrollment.pick(h, 0.25, "top_spenders", seed=1, run=0)
    rows = h.rows
    spend = rows[rows["_purchase"]].groupby("_m")["_minor"].sum()
    assert spend[chosen[spend.index]].min() >= spend[~chosen[spend.index]].max()


def test_enroll_row_precedes_the_first_purchase_and_earlier_rows_go():
    h = _history()
    chosen = enrollment.pick(h, 1.0, "random", seed=1, run=0)
    rows = enrollment.member_rows(h, chosen)
    firsts = rows.groupby("_m").head(1)
    assert firsts["_enroll"].all() and not firsts["_purchase"].any()
    assert len(firsts) == chosen.sum()
    second = rows.groupby("_m").nth(1)
    assert second["_purchase"].all()
    assert (second["timestamp"].to_numpy() == firsts["timestamp"].to_numpy()).all()
    assert rows["_enroll"].sum() == chosen.sum()


def _with_draws(rows: pd.DataFrame, keys: np.ndarray, seed: int, run: int) -> pd.DataFrame:
    """The rows with their redemption draws as the columns `_u_redeem` and `_u_choice`."""
    u_redeem, u_choice = redemption.draws(rows, keys, seed, run)
    return rows.assign(_u_redeem=u_redeem, _u_choice=u_choice)


def test_redemption_draws_are_keyed_by_customer_and_row_not_by_the_subset():
    h = _history()
    everyone = enrollment.member_rows(h, np.ones(h.customers, dtype=bool))
    some = everyone[everyone["_m"] % 2 == 0]
    a = _with_draws(everyone, h.keys, 9, 2)
    b = _with_draws(some, h.keys, 9, 2)
    assert np.array_equal(a.loc[some.index, "_u_redeem"].to_numpy(), b["_u_redeem"].to_numpy())
    visit = a["_visit"].to_numpy()
    assert ((a["_u_redeem"] >= 0) & (a["_u_redeem"] < 1))[visit].all()
    # The engine reads draws only where a basket starts: elsewhere 1.0, which never redeems.
    assert (a["_u_redeem"][~visit] == 1.0).all() and (~visit).any()
    assert not np.array_equal(a["_u_redeem"].to_numpy(), a["_u_choice"].to_numpy())
    assert redemption.policy(0.3, "dearest").choice == "dearest"


def test_extra_visits_copy_the_members_own_baskets_inside_the_period():
    h = _history()
    rows = enrollment.member_rows(h, np.ones(h.customers, dtype=bool))
    extra = response.extra_visits(rows, 0.5, h.keys, 3, 0, h.until)
    starts = extra[extra["_visit"]]
    assert 0 < len(starts) < rows["_visit"].sum()
    assert (extra["timestamp"] <= h.until).all()
    for _, line in extra.head(20).iterrows():
        own = rows[(rows["_m"] == line["_m"]) & rows["_purchase"]]
        assert line["_minor"] in own["_minor"].to_list()
    none = response.extra_visits(rows, 0.0, h.keys, 3, 0, h.until)
    assert none.empty


def test_spend_uplift_by_tier_scales_member_purchases_only():
    prog = program()
    h = _history()
    rows = enrollment.member_rows(h, np.ones(h.customers, dtype=bool))
    sc = Scenario.from_dict({"response": {"spend_uplift": {"Basic": 0.1, "Plus": 0.2}}})
    # Tiers by spend follow from the rows alone: no engine pass is needed.
    assert not response.needs_first_pass(sc.response, prog.model)
    assert response.needs_first_pass(Scenario.from_dict({"response": {"goal_gradient": {"within": 0.2, "uplift": 0.1}}}).response, prog.model)
    f = response.factors(sc.response, prog.model, rows, None, {}, 2)
    p = rows["_purchase"].to_numpy()
    spend = np.where(p | rows["_refund"].to_numpy(), rows["_minor"].to_numpy(), 0)
    level, _ = tiers.before_rows(prog.model.tiers, 2, rows["_m"].to_numpy(), rows["timestamp"].to_numpy(), spend)
    assert (level[p] == 1).any() and (level[p] == 0).any()  # both tiers occur, so the check below can fail
    assert np.allclose(f[p], np.where(level[p] == 1, 0.2, 0.1))
    assert (f[~p] == 0).all()
    scaled = response.apply(rows, f)
    assert (scaled["_minor"].to_numpy()[p] == np.round(rows["_minor"].to_numpy()[p] * (1 + f[p]))).all()
    assert (scaled["_minor"].to_numpy()[~p] == rows["_minor"].to_numpy()[~p]).all()


def test_unknown_tier_in_spend_uplift_is_an_error():
    sc = Scenario.from_dict({"response": {"spend_uplift": {"Gould": 0.1}}})
    with pytest.raises(LoyaltyError, match=r"response\.spend_uplift: `Gould` is not a tier of the program; tiers: .*Basic"):
        response.tier_uplifts(sc.response, program().model)


def test_tier_before_rows_follows_the_rolling_window():
    spec = program().model.tiers  # spend over 365 days, Plus from 300 CNY
    t = pd.to_datetime(["2026-01-01", "2026-01-02", "2026-06-01", "2027-01-02", "2027-01-03", "2026-01-01"]).to_numpy()
    member = np.array([0, 0, 0, 0, 0, 1])
    spend = np.array([20_000, 15_000, 100, 100, 100, 50_000])  # minor units
    level, metric = tiers.before_rows(spec, 2, member, t, spend)
    # 2026-01-02 is not after 2027-01-02 minus 365 days, so it has left the window.
    assert metric.tolist() == [0, 20_000, 35_000, 100, 200, 0]
    assert level.tolist() == [0, 0, 1, 0, 0, 0]


def test_extra_rows_merge_into_place_as_a_stable_sort_by_ord_would_put_them():
    h = _history(40)
    rows = enrollment.member_rows(h, enrollment.pick(h, 0.8, "random", seed=2, run=0))
    rows["_extra"] = False
    rows["_spawn"] = np.int64(-1)
    extra = response.extra_visits(rows, 0.4, h.keys, 2, 0, h.until)
    assert len(extra) > 1
    got, is_extra = response.merged(rows, extra)
    want = pd.concat([rows, extra], ignore_index=True).sort_values("_ord", kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)
    assert np.array_equal(is_extra, want["_extra"].to_numpy())
    f = np.arange(len(rows), dtype=float)
    assert np.array_equal(response.interleave(f, -np.ones(len(extra)), is_extra)[~is_extra], f)
    # The columns that only order the merge can be left out of it.
    lean, _ = response.merged(rows, extra, drop=("_ord",))
    pd.testing.assert_frame_equal(lean, want.drop(columns=["_ord"]))


def test_basket_ends_are_the_next_row_that_starts_something_new():
    # Rows: a 3-line basket, a refund, a 2-line basket, a 1-line basket at the end.
    rows = pd.DataFrame(
        {
            "_visit": [True, False, False, False, True, False, True],
            "_purchase": [True, True, True, False, True, True, True],
        }
    )
    assert response.basket_ends(rows, np.array([0, 4, 6])).tolist() == [3, 6, 7]
    # Every row asked about, against the running minimum it replaced.
    rng = np.random.default_rng(3)
    for n in (1, 2, 40, 500):
        rows = pd.DataFrame({"_visit": rng.random(n) < 0.4, "_purchase": rng.random(n) < 0.8})
        starts = rows["_visit"].to_numpy() | ~rows["_purchase"].to_numpy()
        idx = np.where(starts, np.arange(n), n)
        want = np.minimum.accumulate(np.r_[idx[1:], n][::-1])[::-1]
        assert response.basket_ends(rows, np.arange(n)).tolist() == want.tolist()


@pytest.mark.parametrize("columns", [("_visit", "_enroll", "_extra"), ("_visit",), ()])
def test_redemption_draws_are_the_streams_draws_at_basket_starts_and_one_elsewhere(columns):
    from simulator import rng

    rows = pd.DataFrame(
        {
            "_m": [0, 0, 1, 1, 2],
            "_row": [7, 7, 8, 9, 11],
            "_visit": [False, True, True, False, True],
            "_enroll": [True, False, False, False, False],
            "_extra": [False, False, False, True, False],
            "_spawn": [-1, -1, -1, 8, -1],
        }
    )
    rows = rows[["_m", "_row", *(c for c in columns if c != "_extra"), *(["_extra", "_spawn"] if "_extra" in columns else [])]]
    keys = np.array([5, 2**63 + 1, 17], dtype=np.uint64)
    u_redeem, u_choice = redemption.draws(rows, keys, 3, 1)
    # Each row's counter is its input row, shifted for added rows: an enrol row's by ENROLL_OFFSET,
    # an extra visit's is its spawning row's shifted by EXTRA_OFFSET.
    counter = np.array([7 + redemption.ENROLL_OFFSET, 7, 8, 8 + redemption.EXTRA_OFFSET, 11], dtype=np.uint64)
    if "_enroll" not in rows.columns:
        counter[0] = 7
    if "_extra" not in rows.columns:
        counter[3] = 9
    at = np.flatnonzero(rows["_visit"].to_numpy()) if "_visit" in rows.columns else np.arange(len(rows))
    for got, stream in ((u_redeem, redemption.STREAM_REDEEM), (u_choice, redemption.STREAM_CHOICE)):
        want = np.ones(len(rows))
        want[at] = rng.uniform(3, 1, keys[rows["_m"].to_numpy()[at]], counter[at], stream)
        assert np.array_equal(got, want)


def test_path_sources_are_the_merge_of_kept_rows_and_enrol_rows():
    # The one-pass numba version against the NumPy merge it replaced, on random histories.
    rng = np.random.default_rng(7)
    for _ in range(30):
        customers = int(rng.integers(1, 12))
        m = np.sort(rng.integers(0, customers, int(rng.integers(1, 80))))
        purchase = rng.random(len(m)) < 0.7
        enroll_rows = ~purchase & (rng.random(len(m)) < 0.3)
        first = np.full(customers, -1, dtype=np.int64)
        for i in range(len(m) - 1, -1, -1):
            if purchase[i]:
                first[m[i]] = i
        chosen = (first >= 0) & (rng.random(customers) < 0.7)
        keep = chosen[m] & (np.arange(len(m)) >= first[m]) & ~enroll_rows
        kept, joins = np.flatnonzero(keep), first[chosen]
        at = np.searchsorted(kept, joins) + np.arange(len(joins))
        want_enroll = np.zeros(len(kept) + len(joins), dtype=bool)
        want_enroll[at] = True
        want_src = np.empty(len(want_enroll), dtype=np.int64)
        want_src[~want_enroll] = kept
        want_src[at] = joins
        src, enroll, order = enrollment._path_sources(m, chosen, first, enroll_rows, 0, len(m))
        assert src.tolist() == want_src.tolist() and enroll.tolist() == want_enroll.tolist()
        assert order.tolist() == (want_src * 4 + ~want_enroll).tolist()  # enrol rows order just before their row


def test_scaled_amounts_round_half_to_even():
    rows = pd.DataFrame({"_minor": [1, 3, 5, -1, -3, 7], "_purchase": [True, True, True, True, True, False]})
    # x 1.5: 1.5 -> 2, 4.5 -> 4, 7.5 -> 8, -1.5 -> -2, -4.5 -> -4; a row that is no purchase keeps its amount.
    assert response.scaled(rows, np.full(6, 0.5)).tolist() == [2, 4, 8, -2, -4, 7]


@pytest.mark.parametrize("seed", range(3))
def test_spawning_baskets_and_their_picks_equal_the_numpy_formulation(seed):
    from simulator import rng

    r = np.random.default_rng(seed)
    n = 3000
    m = np.sort(r.integers(0, 200, n)).astype(np.int64)
    row = r.permutation(n).astype(np.int64)
    keys = r.integers(0, 2**63, 200).astype(np.uint64)
    starts = np.flatnonzero(r.random(n) < 0.6)
    share = 0.3
    spawn, src = response._spawning(starts, m, keys, row, share, rng.stream_prefix(seed, 1, response.STREAM_VISIT), rng.stream_prefix(seed, 1, response.STREAM_PICK))
    # The vectorised version it replaced: draws for every start, picks among each member's starts.
    bm = m[starts]
    go = rng.uniform(seed, 1, keys[bm], row[starts], response.STREAM_VISIT) < share
    run_start = np.flatnonzero(np.r_[True, bm[1:] != bm[:-1]])
    sizes = np.diff(np.r_[run_start, len(bm)])
    first_of = np.repeat(run_start, sizes)[go]
    count = np.repeat(sizes, sizes)[go]
    pick = first_of + np.floor(rng.uniform(seed, 1, keys[bm[go]], row[starts[go]], response.STREAM_PICK) * count).astype(np.int64)
    assert go.sum() > 100
    assert np.array_equal(spawn, starts[go]) and np.array_equal(src, starts[pick])


@pytest.mark.parametrize(
    "tiers",
    ["tiers by points over 60 days {\n  Basic from 0\n  Plus  from 150\n}", "tiers by visits over calendar year {\n  Basic from 0\n  Plus  from 6\n}"],
    ids=["points", "visits-calendar-year"],
)
def test_the_response_reads_the_tiers_each_engine_reports_and_both_agree(tiers):
    # The uplift by tier and the goal gradient read the first pass's tier of each row (and the
    # points metric needs it): the compiled engine and the reference interpreter, each with its
    # own tiers, give the same simulation, and tiers by points make the uplift differ by tier.
    from simulator.api import simulate

    text = PROGRAM_TEXT.replace("tiers by spend over 365 days {\n  Basic from 0\n  Plus  from 300\n}", tiers)
    prog = rulelang.loads(text, "t.loyalty")
    tx, cu = sample(customers=12, months=6, seed=5)
    sc = scenario(runs=2)
    compiled = simulate(prog, tx, cu, sc, workers=1, engine="compiled")
    reference = simulate(prog, tx, cu, sc, workers=1, engine="reference")
    assert compiled.summary_json() == reference.summary_json()
    assert compiled.monthly.equals(reference.monthly)
    flat = simulate(prog, tx, cu, scenario(runs=2, response={"spend_uplift": 0.02}), workers=1, engine="compiled")
    assert flat.summary_json() != compiled.summary_json()  # the tiers and the goal gradient move the figures
