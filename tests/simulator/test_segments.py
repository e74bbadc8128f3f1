"""RFM scores, segments and lifecycle stages (simulator.segments) against slow references and the
published table of the R package rfm (rfm 0.2.0, `rfm_segment`'s example)."""

from __future__ import annotations

import itertools
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from simulator import segments
from simulator.api import simulate
from simulator.scenario import ScenarioError, SegmentUplift, loads_scenario

# The published table, as printed in rfm 0.2.0's documentation of `rfm_segment`.
PUBLISHED_NAMES = [
    "Champions",
    "Loyal Customers",
    "Potential Loyalist",
    "New Customers",
    "Promising",
    "Need Attention",
    "About To Sleep",
    "At Risk",
    "Can't Lose Them",
    "Lost",
]
RECENCY_LOWER = [4, 2, 3, 4, 3, 2, 2, 1, 1, 1]
RECENCY_UPPER = [5, 5, 5, 5, 4, 3, 3, 2, 1, 2]
FREQUENCY_LOWER = [4, 3, 1, 1, 1, 2, 1, 2, 4, 1]
FREQUENCY_UPPER = [5, 5, 3, 1, 1, 3, 2, 5, 5, 2]
MONETARY_LOWER = [4, 3, 1, 1, 1, 2, 1, 2, 4, 1]
MONETARY_UPPER = [5, 5, 3, 1, 1, 3, 2, 5, 5, 2]
OUR_NAME = dict(zip(PUBLISHED_NAMES, (b[0] for b in segments.BOXES), strict=True))


def test_boxes_are_the_published_table():
    for i, (name, r, f, m) in enumerate(segments.BOXES):
        assert OUR_NAME[PUBLISHED_NAMES[i]] == name
        assert r == (RECENCY_LOWER[i], RECENCY_UPPER[i])
        assert f == (FREQUENCY_LOWER[i], FREQUENCY_UPPER[i])
        assert m == (MONETARY_LOWER[i], MONETARY_UPPER[i])


def _reference_segment(r: int, f: int, m: int) -> str:
    """Every box of the published table holding the scores; the smallest, the first listed of equals."""
    best, best_size = "Others", None
    for i, name in enumerate(PUBLISHED_NAMES):
        if (
            RECENCY_LOWER[i] <= r <= RECENCY_UPPER[i]
            and FREQUENCY_LOWER[i] <= f <= FREQUENCY_UPPER[i]
            and MONETARY_LOWER[i] <= m <= MONETARY_UPPER[i]
        ):
            size = (
                (RECENCY_UPPER[i] - RECENCY_LOWER[i] + 1)
                * (FREQUENCY_UPPER[i] - FREQUENCY_LOWER[i] + 1)
                * (MONETARY_UPPER[i] - MONETARY_LOWER[i] + 1)
            )
            if best_size is None or size < best_size:
                best, best_size = OUR_NAME[name], size
    return best


def test_every_score_takes_the_smallest_published_box():
    cells = list(itertools.product(range(1, 6), repeat=3))
    r, f, m = (np.array(c) for c in zip(*cells, strict=True))
    got = [segments.SEGMENTS[c] for c in segments.segment_codes(r, f, m)]
    assert got == [_reference_segment(*c) for c in cells]


@pytest.mark.parametrize(
    "scores, name",
    [
        ((5, 5, 5), "Champions"),
        ((5, 1, 1), "New"),  # inside Potential loyalist, but the smaller box
        ((3, 1, 1), "Promising"),
        ((1, 5, 5), "Cannot lose them"),  # inside At risk
        ((2, 4, 4), "At risk"),
        ((1, 1, 1), "Lost"),
        ((2, 2, 2), "Need attention"),  # Need attention, About to sleep and Lost hold it: the first listed of equal size
        ((3, 4, 3), "Loyal"),
        ((1, 5, 1), "Others"),
    ],
)
def test_hand_picked_scores(scores, name):
    assert segments.SEGMENTS[segments.segment_codes(*(np.array([s]) for s in scores))[0]] == name


def _reference_scores(values) -> list[int]:
    n = len(values)
    return [1 + (5 * sum(1 for w in values if w < v)) // n for v in values]


@pytest.mark.parametrize("seed", range(6))
def test_quintile_scores_against_counting(seed):
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 8 if seed % 2 else 1000, size=int(rng.integers(1, 60)))  # many ties, or few
    assert segments.quintile_scores(values).tolist() == _reference_scores(values.tolist())


def test_quintile_scores_few_customers_and_ties():
    assert segments.quintile_scores(np.array([7])).tolist() == [1]
    assert segments.quintile_scores(np.array([1, 2])).tolist() == [1, 3]
    assert segments.quintile_scores(np.array([3, 3, 3, 3])).tolist() == [1, 1, 1, 1]
    assert segments.quintile_scores(np.arange(10)).tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


DAY = 86_400 * 10**9


def _history(rows):
    """(customer, day, event, minor) rows -> the Prior of the purchases among them."""
    ids = np.array([r[0] for r in rows], dtype=object)
    t = np.array([pd.Timestamp("2026-01-01").value + r[1] * DAY for r in rows], dtype=np.int64)
    purchase = np.array([r[2] == "purchase" for r in rows])
    minor = np.array([r[3] for r in rows], dtype=np.int64)
    return segments.Prior.of_rows(ids, t, purchase, minor)


def test_a_hand_worked_history():
    # The period starts on day 200 (2026-07-20). Five customers with purchases before it:
    rows = [
        ("a", 190, "purchase", 5000), ("a", 195, "purchase", 5000), ("a", 199, "purchase", 9000),  # recent, often, most
        ("b", 10, "purchase", 8000), ("b", 20, "purchase", 8000), ("b", 30, "purchase", 8000),  # long ago, often, much
        ("c", 150, "purchase", 100),  # 50 days ago, once, little
        ("d", 60, "purchase", 300), ("d", 61, "refund", -300),  # 140 days ago, once (the refund is no purchase)
        ("e", 5, "purchase", 200),  # 195 days ago, once
        ("f", 100, "visit", 0),  # no purchase: no history
    ]  # fmt: skip
    prior = _history(rows)
    assert prior.ids.tolist() == ["a", "b", "c", "d", "e"]
    assert prior.purchases.tolist() == [3, 3, 1, 1, 1]
    assert prior.spend.tolist() == [19000, 24000, 100, 300, 200]
    start = pd.Timestamp("2026-01-01").value + 200 * DAY
    s = segments.scored(prior, start)
    # Recency by the latest purchase: a (199) > c (150) > d (60) > b (30) > e (5).
    assert s["r"].tolist() == [5, 2, 4, 3, 1]
    # Frequency: three customers tie at 1 (score 1), two at 3: 1 + 5 x 3 // 5 = 4.
    assert s["f"].tolist() == [4, 4, 1, 1, 1]
    assert s["m"].tolist() == [4, 5, 1, 3, 2]
    names = [segments.SEGMENTS[c] for c in s["segment"]]
    assert names == ["Champions", "At risk", "New", "Potential loyalist", "Lost"]
    assert s["days"].tolist() == [1, 170, 50, 140, 195]
    assert [segments.STAGES[c] for c in s["stage"]] == ["active", "at risk", "active", "at risk", "lapsed"]
    seg = segments.assign(prior, start, np.array(["a", "e", "f", "z"], dtype=object))
    assert [segments.SEGMENTS[c] for c in seg.segment] == ["Champions", "Lost", "No history", "No history"]
    assert [segments.STAGES[c] for c in seg.stage] == ["active", "lapsed", "new", "new"]


def test_stage_thresholds_are_inclusive():
    start = pd.Timestamp("2026-07-01").value
    prior = segments.Prior(
        np.array(["a", "b", "c", "d"], dtype=object),
        np.array([start - 90 * DAY, start - 91 * DAY, start - 180 * DAY, start - 181 * DAY]),
        np.ones(4, np.int64),
        np.ones(4, np.int64),
    )
    assert [segments.STAGES[c] for c in segments.scored(prior, start)["stage"]] == ["active", "at risk", "at risk", "lapsed"]


def test_summaries_of_parts_join_as_the_whole():
    rng = np.random.default_rng(3)
    n = 400
    rows = [
        (
            f"c{int(rng.integers(0, 40))}",
            int(rng.integers(0, 300)),
            "purchase" if rng.random() < 0.8 else "visit",
            int(rng.integers(1, 10_000)),
        )
        for _ in range(n)
    ]
    whole = _history(rows)
    parts = segments.Prior.joined([_history(rows[k : k + 70]) for k in range(0, n, 70)][::-1])
    for f in ("ids", "last", "purchases", "spend"):
        assert getattr(parts, f).tolist() == getattr(whole, f).tolist()
    # The slow reference: per customer, by plain Python.
    for cid in whole.ids:
        mine = [r for r in rows if r[0] == cid and r[2] == "purchase"]
        k = whole.ids.tolist().index(cid)
        assert whole.purchases[k] == len(mine)
        assert whole.spend[k] == sum(r[3] for r in mine)
        assert whole.last[k] == pd.Timestamp("2026-01-01").value + max(r[1] for r in mine) * DAY


def test_no_prior_history_makes_everyone_new():
    seg = segments.assign(None, None, np.array(["a", "b"], dtype=object))
    assert seg.counts()["stage"]["new"] == 2
    assert seg.counts()["segment"]["No history"] == 2


# --- segments.csv: a simulation broken down by segment and stage ---------------------------------

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import generate  # noqa: E402

PROGRAM = ROOT / "programs" / "coffee.loyalty"
# The generated year is 2026: its first half is the history before the replayed period.
SCENARIO = {
    "period": "2026-07-01 to 2026-12-31",
    "enrollment": {"share": 0.6, "pick": "random"},
    "redemption": {"probability": 0.5, "choice": "random"},
    "response": {"spend_uplift": {"Green": 0.0, "Gold": 0.03, "Black": 0.06}, "visit_uplift": 0.1},
    "margin": 0.6,
    "runs": 3,
    "seed": 7,
}


@pytest.fixture(scope="module")
def history_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("segments")
    t, c = generate.chunk(0, 0, 150, 3000, 13, 0)
    tx = t.to_pandas()
    tx["customer_id"] = tx["customer_id"].astype(str)
    tx.loc[[3, 900], "amount"] = np.nan  # rejected in the period or not used before it
    path = d / "tx.parquet"
    pq.write_table(pa.Table.from_pandas(tx, preserve_index=False), path, row_group_size=700)
    cu = d / "cu.parquet"
    pq.write_table(c, cu)
    return path, cu, tx


@pytest.fixture(scope="module")
def whole(history_file):
    tx, cu, _ = history_file
    return simulate(PROGRAM, tx, cu, SCENARIO, workers=1)


ADDING = (
    "members",
    "points_issued",
    "points_redeemed",
    "points_expired",
    "points_outstanding",
    "program_cost",
    "liability",
    "revenue_lift",
    "revenue_baseline",
    "revenue_with_program",
)


def test_every_dimension_adds_up_to_run_0s_figures(whole):
    table = whole.segments
    fig = whole.per_run[0]
    scale = 10**whole.program.model.decimals
    assert set(table["dimension"]) == {"segment", "stage", "tier"}  # coffee.loyalty has tiers
    for dim, rows in table.groupby("dimension"):
        for f in ADDING:
            total = sum((Decimal(str(v)) for v in rows[f]), Decimal(0))
            want = (
                Decimal(fig[f]) / scale
                if f in ("program_cost", "liability", "revenue_lift", "revenue_baseline", "revenue_with_program")
                else fig[f]
            )
            assert total == want, (dim, f)
    # Every customer is counted once in each dimension; the tiers' members are the members.
    customers = table.groupby("dimension")["customers"].sum()
    assert customers["segment"] == customers["stage"] == customers["tier"]
    tiers = table[table["dimension"] == "tier"].set_index("group")
    assert list(tiers.index) == [*whole.program.model.tiers.names, "not a member"]
    assert tiers["members"].sum() == fig["members"] and tiers.loc["not a member", "members"] == 0
    # More than one segment and stage is seen: the history before the period is used.
    assert (table["dimension"] == "segment").sum() >= 4
    assert set(table.loc[table["dimension"] == "stage", "group"]) >= {"new", "active"}


def _reference_groups(raw: pd.DataFrame) -> dict[str, str]:
    """Each customer's segment from the raw rows by plain Python: purchases before 2026-07-01."""
    start = pd.Timestamp("2026-07-01")
    ts = pd.to_datetime(raw["timestamp"])
    ok = (ts < start) & raw["amount"].notna() & (raw["event"] == "purchase") & (raw["amount"] >= 0)
    per: dict[str, list] = {}
    for cid, t, a in zip(raw.loc[ok, "customer_id"], ts[ok], raw.loc[ok, "amount"], strict=True):
        per.setdefault(cid, []).append((t, round(a * 100)))
    ids = sorted(per)
    r = _reference_scores([max(t for t, _ in per[c]).value for c in ids])
    f = _reference_scores([len(per[c]) for c in ids])
    m = _reference_scores([sum(a for _, a in per[c]) for c in ids])
    return {c: _reference_segment(r[k], f[k], m[k]) for k, c in enumerate(ids)}


def test_points_by_segment_against_run_0s_ledger(whole, history_file):
    _, _, raw = history_file
    group = _reference_groups(raw)
    ledger = whole.ledger
    seg = ledger["customer_id"].astype(str).map(lambda c: group.get(c, "No history"))
    table = whole.segments.set_index(["dimension", "group"])
    for kind, col in (("earn", "points_issued"), ("redeem", "points_redeemed")):
        got = ledger["points"][ledger["kind"] == kind].groupby(seg[ledger["kind"] == kind]).sum()
        assert len(got) >= 4 and got.sum() > 0
        for name, points in got.items():
            assert table.loc[("segment", name), col] == points, (kind, name)


def _csv(result, out: Path) -> bytes:
    result.write(out)
    return (out / "segments.csv").read_bytes()


def test_workers_and_slices_give_the_same_segments_csv(history_file, whole, tmp_path):
    tx, cu, _ = history_file
    want = _csv(whole, tmp_path / "whole")
    assert _csv(simulate(PROGRAM, tx, cu, SCENARIO, workers=2), tmp_path / "two") == want
    assert _csv(simulate(PROGRAM, tx, cu, SCENARIO, workers=1, slice_rows=400), tmp_path / "sliced") == want


# --- scenario keys: enrolment by segment, spend uplift by segment ----------------------------------


def _scenario_error(text: str) -> str:
    with pytest.raises(ScenarioError) as info:
        loads_scenario(text, "s.yaml")
    return str(info.value)


def test_enrolment_by_segment_is_read_and_written_back():
    sc = loads_scenario("enrollment:\n  share: 0.5\n  pick: segment\n  segments: [At risk, Champions]\n", "s.yaml")
    assert (sc.enrollment.pick, sc.enrollment.segments) == ("segment", ("At risk", "Champions"))
    assert sc.to_dict()["enrollment"] == {"share": 0.5, "pick": "segment", "segments": ["At risk", "Champions"]}
    assert "segments" not in loads_scenario("enrollment: {pick: random}\n", "s.yaml").to_dict()["enrollment"]


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "enrollment:\n  pick: segment\n  segments: [Champions, At Risk]\n",
            "s.yaml:3:25: error: enrollment.segments.1: unknown segment `At Risk`; did you mean `At risk`?",
        ),
        (
            "enrollment:\n  pick: segment\n  segments:\n    - Hibernators\n",
            "s.yaml:4:7: error: enrollment.segments.0: unknown segment `Hibernators`; segments: Champions",
        ),
        ("enrollment:\n  pick: segment\n  segments: [Lost, Lost]\n", "enrollment.segments.1: the segment `Lost` is named twice"),
        ("enrollment:\n  pick: segment\n", "s.yaml:2:9: error: enrollment.pick: `pick: segment` needs the segments to enrol"),
        (
            "enrollment:\n  pick: random\n  segments: [Lost]\n",
            "s.yaml:3:3: error: enrollment.segments: segments are enrolled only with `pick: segment`",
        ),
        ("enrollment:\n  pick: segments\n", "did you mean `segment`?"),
        (
            "response:\n  spend_uplift: {At risk: 0.05, Gold: 0.01}\n",
            "s.yaml:2:33: error: response.spend_uplift.Gold: `Gold` is not a segment, and `At risk` is: give the uplift by tier or by segment, not both",
        ),
        ("response:\n  spend_uplift: {Champions: 0.05, Can't lose them: 0.01}\n", "did you mean `Cannot lose them`?"),
        ("response:\n  spend_uplift: {Champions: 2}\n", "response.spend_uplift.Champions: 2 is out of range"),
    ],
)
def test_segment_keys_refuse_bad_values_with_their_place(text, expected):
    assert expected in _scenario_error(text)


def test_spend_uplift_by_segment_or_by_tier():
    by_segment = loads_scenario("response:\n  spend_uplift: {At risk: 0.05, Champions: 0.01}\n", "s.yaml").response
    assert isinstance(by_segment.spend_uplift, SegmentUplift)
    assert dict(by_segment.spend_uplift) == {"At risk": 0.05, "Champions": 0.01}
    assert by_segment.spend_uplift_for("Gold") == 0.0  # no tier has an uplift of its own
    by_tier = loads_scenario("response:\n  spend_uplift: {Gold: 0.03}\n", "s.yaml").response
    assert not isinstance(by_tier.spend_uplift, SegmentUplift) and by_tier.spend_uplift_for("Gold") == 0.03


def test_pick_segment_enrols_only_the_segments_named(history_file):
    tx, cu, _ = history_file
    sc = SCENARIO | {"enrollment": {"share": 1.0, "pick": "segment", "segments": ["Champions", "At risk"]}, "runs": 1}
    table = simulate(PROGRAM, tx, cu, sc, workers=1).segments
    seg = table[table["dimension"] == "segment"].set_index("group")
    assert seg.loc["Champions", "members"] > 0 and seg.loc["At risk", "members"] > 0
    assert seg["members"].drop(["Champions", "At risk"]).eq(0).all()
    # Everyone of those segments who buys in the period joins (share 1): as counted from the raw rows.
    raw = history_file[2]
    group = _reference_groups(raw)
    t = pd.to_datetime(raw["timestamp"])
    buyers = set(raw.loc[(t >= pd.Timestamp("2026-07-01")) & (raw["event"] == "purchase") & (raw["amount"] >= 0), "customer_id"])
    assert seg.loc["Champions", "members"] == sum(1 for c in buyers if group.get(c) == "Champions")
    assert seg.loc["At risk", "members"] == sum(1 for c in buyers if group.get(c) == "At risk")


def test_spend_uplift_by_segment_lifts_only_those_segments(history_file):
    tx, cu, _ = history_file
    sc = SCENARIO | {"enrollment": {"share": 1.0, "pick": "random"}, "response": {"spend_uplift": {"Champions": 0.05}}, "runs": 1}
    table = simulate(PROGRAM, tx, cu, sc, workers=1).segments
    seg = table[table["dimension"] == "segment"].set_index("group")
    lift = seg["revenue_lift"].astype(float)
    assert lift.drop("Champions").eq(0).all()
    # 5% of the Champions' purchase lines in the period (all join: share 1), counted from the raw
    # rows; each scaled line rounds to the cent, so within half a cent a line.
    raw = history_file[2]
    group = _reference_groups(raw)
    t = pd.to_datetime(raw["timestamp"])
    lines = raw[
        (t >= pd.Timestamp("2026-07-01"))
        & (raw["event"] == "purchase")
        & (raw["amount"] >= 0)
        & raw["customer_id"].map(lambda c: group.get(c) == "Champions")
    ]
    assert len(lines) > 50
    assert abs(lift["Champions"] - 0.05 * lines["amount"].sum()) <= 0.005 * len(lines)


# --- the VIP pyramid ---------------------------------------------------------------------------------


def test_pyramid_against_the_raw_rows_and_run_0s_cost(whole, history_file):
    _, _, raw = history_file
    seg = whole.segmentation
    # Revenue per customer in the period by plain pandas: purchases and refunds (made negative).
    t = pd.to_datetime(raw["timestamp"])
    used = raw[(t >= pd.Timestamp("2026-07-01")) & raw["amount"].notna() & (raw["customer_id"] != "")]
    money = used[used["event"].isin(["purchase", "refund"])]
    signed = np.where((money["event"] == "refund") | (money["amount"] < 0), -money["amount"].abs(), money["amount"])
    per = pd.Series(np.round(signed * 100).astype(np.int64), index=money["customer_id"].to_numpy()).groupby(level=0).sum()
    revenue = per.reindex(np.asarray(seg.ids, dtype=object), fill_value=0).to_numpy()
    assert revenue.tolist() == seg.revenue.tolist()
    fig = whole.per_run[0]
    costs = segments.customer_costs(seg, whole.ledger, whole.program.model.point_cost, fig["urr"], whole.program.model.decimals)
    assert abs(costs.sum() - fig["program_cost"]) < 1  # the liability rounds once in total, not per customer
    p = segments.pyramid(seg, costs)
    ranked = sorted(range(len(revenue)), key=lambda i: (-revenue[i], i))
    top = ranked[: round(len(revenue) / 5)]
    assert p.top == len(top)
    assert p.top_revenue_share == pytest.approx(sum(revenue[i] for i in top) / revenue.sum())
    assert p.top_cost_share == pytest.approx(sum(costs[i] for i in top) / costs.sum())
    c = p.curve
    assert c["customer_share"].iloc[0] == 0 and c["customer_share"].iloc[-1] == 1
    assert c["revenue_share"].iloc[-1] == pytest.approx(1) and c["cost_share"].iloc[-1] == pytest.approx(1)
    assert (np.diff(c["revenue_share"]) >= -1e-12).all()  # most revenue first: the curve only rises
    assert len(c) <= segments.PYRAMID_POINTS + 1


def test_the_report_shows_segments_and_the_pyramid(whole, tmp_path):
    whole.write(tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "<h2>Segments and the VIP pyramid</h2>" in html
    assert "The top fifth of the customers by revenue" in html
    for name in whole.segments.loc[whole.segments["dimension"] == "segment", "group"]:
        assert f"<td>{name}</td>" in html
    assert "<h3>Tier migration (run 1's members)</h3>" in html
    moved = segments.migration(whole.segmentation, whole.ledger)
    assert int(moved[0].to_numpy().sum()) == whole.per_run[0]["members"]
    assert int(moved[1].to_numpy().sum()) == whole.per_run[0]["members"]
    text = (tmp_path / "out" / "segments.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == ",".join(segments.COLUMNS)


def test_tier_at_the_end_is_each_members_last_postings_tier(whole):
    ledger = whole.ledger
    last = ledger.groupby(ledger["customer_id"].astype(str), sort=False)["tier"].last().astype(str)
    names = whole.program.model.tiers.names
    counts = last.value_counts()
    members = whole.per_run[0]["members"]
    want = {t: int(counts.get(t, 0)) for t in names}
    want[names[0]] += members - len(last)  # a member with no posting holds the lowest tier
    tiers = whole.segments[whole.segments["dimension"] == "tier"].set_index("group")
    assert {t: int(tiers.loc[t, "members"]) for t in names} == want
    points = ledger[ledger["kind"] == "earn"].groupby(ledger["customer_id"].astype(str))["points"].sum()
    by_tier = points.groupby(last.reindex(points.index)).sum()
    assert {t: int(tiers.loc[t, "points_issued"]) for t in names} == {t: int(by_tier.get(t, 0)) for t in names}


def test_enrolment_and_uplift_by_segment_are_the_same_in_slices(history_file, tmp_path):
    tx, cu, _ = history_file
    sc = SCENARIO | {
        "enrollment": {"share": 0.5, "pick": "segment", "segments": ["Champions", "Loyal", "No history"]},
        "response": {"spend_uplift": {"Champions": 0.02, "No history": 0.04}, "visit_uplift": 0.05},
    }
    whole = simulate(PROGRAM, tx, cu, sc, workers=1)
    sliced = simulate(PROGRAM, tx, cu, sc, workers=1, slice_rows=350)
    assert _csv(sliced, tmp_path / "sliced") == _csv(whole, tmp_path / "whole")
    assert (tmp_path / "sliced" / "summary.json").read_bytes() == (tmp_path / "whole" / "summary.json").read_bytes()


def test_summaries_by_dictionary_code_equal_those_by_id():
    rng = np.random.default_rng(9)
    n = 500
    names = np.array([f"k{i:03d}" for i in range(60)], dtype=object)
    codes = rng.integers(-1, 60, size=n)  # -1: a row with no id (not counted)
    t = rng.integers(0, 10**15, size=n)
    purchase = rng.random(n) < 0.7
    minor = rng.integers(0, 10**6, size=n)
    by_code = segments.Prior.of_codes(names, codes, t, purchase, minor)
    keep = codes >= 0
    by_id = segments.Prior.of_rows(names[codes[keep]], t[keep], purchase[keep], minor[keep])
    for f in ("ids", "last", "purchases", "spend"):
        assert getattr(by_code, f).tolist() == getattr(by_id, f).tolist()


def test_a_program_with_discounts_adds_up_too(history_file):
    tx, cu, _ = history_file
    result = simulate(ROOT / "benchmarks" / "programs" / "coffee_discounts.loyalty", tx, cu, SCENARIO | {"runs": 2}, workers=1)
    fig = result.per_run[0]
    assert fig["discount_cost"] > 0
    scale = 10**result.program.model.decimals
    for dim, rows in result.segments.groupby("dimension"):
        for f in ("discount_cost", "discount_partner_funded", "reward_cost", "program_cost", "revenue_lift", "revenue_with_program"):
            assert sum((Decimal(str(v)) for v in rows[f]), Decimal(0)) == Decimal(fig[f]) / scale, (dim, f)


def test_a_program_with_benefits_adds_up_too(history_file):
    # fashion_vip.loyalty gives benefits (a birthday gift, free alterations) beside its discounts:
    # each kind of cost lands in its own columns, and the groups add up to run 0's figures.
    tx, cu, _ = history_file
    scenario = SCENARIO | {"runs": 2, "response": {"spend_uplift": 0.02, "visit_uplift": 0.1}}
    result = simulate(ROOT / "programs" / "fashion_vip.loyalty", tx, cu, scenario, workers=1)
    fig = result.per_run[0]
    assert fig["benefit_cost"] > 0
    scale = 10**result.program.model.decimals
    for dim, rows in result.segments.groupby("dimension"):
        for f in ("benefit_cost", "benefit_partner_funded", "discount_cost", "reward_cost", "program_cost", "revenue_lift", "revenue_with_program"):
            assert sum((Decimal(str(v)) for v in rows[f]), Decimal(0)) == Decimal(fig[f]) / scale, (dim, f)


def test_a_program_with_vouchers_shares_out_what_was_used(history_file):
    # clubcard.loyalty turns balances into vouchers every quarter; at a use rate of 0.85 each
    # group's cost of vouchers used is its share of the run's, and the groups add up to it.
    tx, cu, _ = history_file
    scenario = SCENARIO | {"runs": 2, "response": {"spend_uplift": 0.02}, "vouchers": {"use_rate": 0.85}}
    result = simulate(ROOT / "programs" / "clubcard.loyalty", tx, cu, scenario, workers=1)
    fig = result.per_run[0]
    assert fig["voucher_cost"] > 0
    scale = 10**result.program.model.decimals
    for dim, rows in result.segments.groupby("dimension"):
        for f in ("voucher_cost", "voucher_partner_funded", "reward_cost", "program_cost", "revenue_lift"):
            assert sum((Decimal(str(v)) for v in rows[f]), Decimal(0)) == Decimal(fig[f]) / scale, (dim, f)
        # Shared by the vouchers each group was given: no group gets more than its vouchers' face value.
        assert (rows["voucher_cost"] >= 0).all()
