"""Cohort triangles and the ultimate redemption rate: Mack's RAA figures, a ledger worked on paper,
a simulated ledger checked against plain groupbys of its postings, and the ledger's validation."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from rulelang.errors import DataError
from simulator.finance import triangles
from simulator.finance.triangles import ALL, analyse, chain_ladder, flows_by_month, read_ledger, urr_by_month
from tests.simulator.finance.ledgers import HAND_LEDGER

# --- RAA (Mack 1993): the reference triangle of the actuarial literature ----------------------------


def raa() -> np.ndarray:
    """The RAA cumulative triangle as the casact chainladder package ships it (10 accident years)."""
    import warnings

    import chainladder as cl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the package's own loader warns of a pandas deprecation
        return np.asarray(cl.load_sample("raa").values, dtype=np.float64)[0, 0]


def test_raa_gives_mack_1993_figures_to_the_cent():
    ladder = chain_ladder(raa())
    assert round(ladder.total_ultimate, 2) == 213_122.23
    assert round(ladder.ibnr, 2) == 52_135.23
    assert round(ladder.total_std_error, 2) == 26_880.74
    # The oldest year is fully developed: no uncertainty left; the youngest carries the most.
    assert ladder.std_error[0] == 0
    assert round(ladder.std_error[-1], 2) == 24_565.78
    # Volume-weighted factors, the first by hand: Σ C(i,1) / Σ C(i,0) over the nine years with both.
    tri = raa()
    assert ladder.factors[0] == pytest.approx(np.nansum(tri[:9, 1]) / np.nansum(tri[:9, 0]), rel=1e-12)


def test_the_numpy_projection_gives_raa_ultimates_to_the_cent():
    factors, ultimate = triangles.project(raa())
    assert round(float(ultimate.sum()), 2) == 213_122.23
    ladder = chain_ladder(raa())
    np.testing.assert_allclose(ultimate, ladder.ultimate, rtol=1e-12)
    np.testing.assert_allclose(factors, ladder.factors, rtol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_the_numpy_projection_equals_the_packages_on_triangles_with_zeros(seed):
    # The package is the oracle: its reading of zeros (no value) is what `project` must copy.
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 9))
    increments = rng.integers(0, 50, (n, n)) * (rng.random((n, n)) < 0.6)
    increments[rng.integers(0, n), :] = 0  # an origin with nothing yet
    tri = np.cumsum(increments, axis=1).astype(np.float64)
    tri[np.add.outer(np.arange(n), np.arange(n)) >= n] = np.nan
    ladder = chain_ladder(tri)
    factors, ultimate = triangles.project(tri)
    np.testing.assert_allclose(ultimate, ladder.ultimate, rtol=1e-12, atol=1e-9)


def _random_triangle(seed: int) -> np.ndarray:
    """A cumulative staircase of 2 to 9 origins with many zeros (months with nothing redeemed),
    sometimes an origin with nothing at all, sometimes a dense one."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 10))  # one origin: nothing to fit (test below), and the package refuses it
    increments = rng.integers(0, 60, (n, n)) * (rng.random((n, n)) < rng.uniform(0.3, 1.0))
    if rng.random() < 0.3:
        increments[rng.integers(0, n), :] = 0
    tri = np.cumsum(increments, axis=1).astype(np.float64)
    tri[np.add.outer(np.arange(n), np.arange(n)) >= n] = np.nan
    return tri


@pytest.mark.parametrize("block", range(8))
def test_mack_in_numpy_equals_the_packages_on_random_triangles(block):
    # The casact package is the oracle (tests/simulator/finance/mack_oracle.py): every figure within
    # 1e-9 relative, or 1e-9 of the triangle's largest value for the vanishing errors of ages whose
    # sigma was extrapolated from exact zeros. 20 triangles per block, 160 in all
    # (seeds 0-999 were checked the same way while writing it).
    from tests.simulator.finance.mack_oracle import package_chain_ladder

    for seed in range(block * 20, block * 20 + 20):
        tri = _random_triangle(seed)
        ours, package = chain_ladder(tri), package_chain_ladder(tri)
        scale = 1e-9 * max(1.0, float(np.nanmax(tri)))
        for name in ("ultimate", "std_error", "total_ultimate", "total_std_error", "estimable_std_error"):
            np.testing.assert_allclose(getattr(ours, name), getattr(package, name), rtol=1e-9, atol=scale, equal_nan=True, err_msg=f"seed {seed}: {name}")
        np.testing.assert_allclose(ours.factors, np.nan_to_num(package.factors, nan=1.0), rtol=1e-12, err_msg=f"seed {seed}")


def test_mack_on_raa_by_origin_and_in_numpy_alone():
    # Every origin's error equals the package's on RAA, and none of it needs the package loaded.
    from tests.simulator.finance.mack_oracle import package_chain_ladder

    ours, package = chain_ladder(raa()), package_chain_ladder(raa())
    np.testing.assert_allclose(ours.std_error, package.std_error, rtol=1e-12)
    assert ours.total_std_error == pytest.approx(package.total_std_error, rel=1e-12)


def test_a_triangle_not_known_to_one_diagonal_is_refused():
    with pytest.raises(ValueError, match="diagonal"):
        chain_ladder(np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, np.nan, np.nan]]))


def test_chain_ladder_with_one_origin_projects_nothing():
    ladder = chain_ladder(np.array([[5.0, 9.0, 12.0]]))
    assert ladder.total_ultimate == 12 and ladder.total_std_error == 0


# --- a ledger worked on paper (tests/simulator/finance/ledgers.py) -----------------------------------


@pytest.fixture
def hand_csv(tmp_path):
    path = tmp_path / "ledger.csv"
    path.write_text(HAND_LEDGER, encoding="utf-8")
    return path


def test_hand_ledger_triangle_as_worked_on_paper(hand_csv):
    report = analyse(read_ledger(hand_csv))
    table = report.table
    assert (report.first_month, report.last_month) == ("2026-01", "2026-03")
    cells = {(r.cohort, r.development): (r.earned, r.clawed_back, r.redeemed, r.expired) for r in table.itertuples()}
    assert cells == {
        ("2026-01", 0): (1000, 0, 200, 0),
        ("2026-01", 1): (1000, 0, 500, 0),
        ("2026-01", 2): (1000, 0, 600, 50),
        ("2026-02", 0): (500, 50, 100, 0),
        ("2026-02", 1): (500, 50, 250, 0),
        ("2026-03", 0): (800, 0, 200, 0),
    }
    # Shares of the points kept (earned net of clawbacks): February kept 450.
    feb = table[(table.cohort == "2026-02") & (table.development == 1)].iloc[0]
    assert feb.redeemed_share == pytest.approx(250 / 450)


def test_hand_ledger_urr_as_worked_on_paper(hand_csv):
    overall = analyse(read_ledger(hand_csv)).overall
    # f(0->1) = (500 + 250) / (200 + 100) = 2.5; f(1->2) = 600 / 500 = 1.2.
    # Ultimates: January 600 (complete), February 250 x 1.2 = 300, March 200 x 2.5 x 1.2 = 600.
    cohorts = overall.cohorts.set_index("cohort")
    assert cohorts["ultimate_redeemed"].tolist() == pytest.approx([600, 300, 600])
    assert cohorts["urr"].tolist() == pytest.approx([600 / 1000, 300 / 450, 600 / 800])
    assert (overall.earned, overall.exposure, overall.redeemed, overall.expired) == (2300, 2250, 1050, 50)
    assert overall.urr == pytest.approx(1500 / 2250)
    assert cohorts.loc["2026-01", "std_error"] == 0  # fully developed


def test_hand_ledger_by_tier_follows_each_lot_to_the_tier_it_was_earned_at(hand_csv):
    report = analyse(read_ledger(hand_csv), by_tier=True)
    assert sorted(report.by_tier) == ["Gold", "Green"]
    green = report.by_tier["Green"]
    # Green lots: a's January 600 (200 redeemed in January, 300 more in February at Gold), c's March
    # 800 (200). f(0->1) = 500 / 200 = 2.5 (February earned nothing at Green), f(1->2) = 500 / 500 = 1.
    assert (green.earned, green.redeemed) == (1400, 700)
    assert green.cohorts["ultimate_redeemed"].tolist() == pytest.approx([500, 0, 500])
    assert green.urr == pytest.approx(1000 / 1400)
    gold = report.by_tier["Gold"]
    assert (gold.earned, gold.exposure, gold.redeemed, gold.expired) == (900, 850, 350, 50)
    # Gold's only cohort two months old had redeemed nothing by its first month: a ratio from 0 is
    # no ratio, so the factor from month 1 to 2 has nothing to learn from and is 1 (the chain
    # ladder's convention, as for ages beyond the oldest cohort). Ultimates: January 100 (complete),
    # February 250 x 1, March 0 (nothing earned). Mack's error needs ratios at that age: not
    # estimable, and said so (NaN), never a number made up.
    assert gold.cohorts["ultimate_redeemed"].tolist() == pytest.approx([100, 250, 0])
    assert gold.urr == pytest.approx(350 / 850)
    assert np.isnan(gold.std_error)
    rows = report.table[report.table.tier == "Gold"]
    assert rows.set_index(["cohort", "development"]).loc[("2026-01", 2), "expired"] == 50
    # The groups add up to the whole.
    assert green.earned + gold.earned == report.overall.earned


def test_projections_stay_within_the_points_a_cohort_has_left():
    # January: 100 earned, 20 redeemed in January, 60 by February, none since. February: 50 earned,
    # 10 redeemed in February, the other 40 in March: closed, 50 exactly, no error. f(0->1) =
    # (60 + 50) / (20 + 10) = 11/3, f(1->2) = 60 / 60 = 1. March: 100 earned, 40 redeemed:
    # 40 x 11/3 = 146.67 is more than the 100 it has, so 100; its error at most half the 60 left.
    text = HEADER + "".join(
        f"{who},{day} 10:00:00,{kind},{points},{lot}\n"
        for who, day, kind, points, lot in [
            ("a", "2026-01-02", "earn", 100, "2026-01-02"),
            ("a", "2026-01-03", "redeem", 20, "2026-01-02"),
            ("a", "2026-02-03", "redeem", 40, "2026-01-02"),
            ("b", "2026-02-04", "earn", 50, "2026-02-04"),
            ("b", "2026-02-05", "redeem", 10, "2026-02-04"),
            ("b", "2026-03-05", "redeem", 40, "2026-02-04"),
            ("c", "2026-03-01", "earn", 100, "2026-03-01"),
            ("c", "2026-03-02", "redeem", 40, "2026-03-01"),
        ]
    )
    overall = analyse(read_ledger(pd.read_csv(io.StringIO(text), dtype=str))).overall
    cohorts = overall.cohorts.set_index("cohort")
    assert cohorts["ultimate_redeemed"].tolist() == [60, 50, 100]
    assert cohorts.loc["2026-02", "std_error"] == 0
    assert 0 <= cohorts.loc["2026-03", "std_error"] * 100 <= 30
    assert chain_ladder(np.array([[20, 60, 60], [10, 50, np.nan], [40, np.nan, np.nan]])).ultimate[2] == pytest.approx(40 * 11 / 3)
    assert overall.urr == pytest.approx(210 / 250)


def test_a_ledger_without_tiers_has_no_tier_groups(hand_csv):
    frame = pd.read_csv(hand_csv).drop(columns="tier")
    report = analyse(read_ledger(frame), by_tier=True)
    assert report.by_tier == {} and report.overall.group == ALL


# --- a simulated ledger, against plain groupbys of its postings --------------------------------------


def test_simulated_ledger_cohorts_match_its_postings(coffee_ledger):
    ledger, path, _ = coffee_ledger
    report = analyse(read_ledger(path), by_tier=True)
    month = ledger["earned_on"].dt.to_period("M").astype(str)
    for kind, column in triangles.FLOWS.items():
        expected = ledger[ledger["kind"] == kind].groupby(month[ledger["kind"] == kind])["points"].sum()
        got = report.overall.cohorts.set_index("cohort")[column]
        assert got[got > 0].to_dict() == expected[expected > 0].to_dict(), kind
    # Cumulative redemptions never fall; shares stay within [0, 1]; every URR is at least the share
    # redeemed so far (factors of a non-decreasing triangle are >= 1).
    for _, rows in report.table.groupby(["tier", "cohort"]):
        assert (np.diff(rows["redeemed"].to_numpy()) >= 0).all()
    shares = report.table["redeemed_share"].dropna()
    assert ((shares >= 0) & (shares <= 1)).all()
    for estimate in [report.overall, *report.by_tier.values()]:
        assert estimate.redeemed / estimate.exposure <= estimate.urr <= 1
        assert 0 < estimate.std_error < estimate.urr
    assert sum(e.earned for e in report.by_tier.values()) == report.overall.earned
    assert set(report.by_tier) == {"Green", "Gold", "Black"}


def test_the_parquet_ledger_and_the_frame_give_the_same_figures(coffee_ledger):
    ledger, path, _ = coffee_ledger
    from_file, from_frame = analyse(read_ledger(path)), analyse(ledger)
    pd.testing.assert_frame_equal(from_file.table, from_frame.table)
    assert from_file.overall.as_dict() == from_frame.overall.as_dict()


# --- inputs for the accounting ----------------------------------------------------------------------


def test_the_urr_as_known_at_each_months_end(hand_csv):
    ledger = read_ledger(hand_csv)
    # January: one cohort, 200 of 1,000 redeemed. February: f(0->1) = 500 / 200 = 2.5, so February's
    # 100 -> 250; (500 + 250) / (1,000 + 450). March: the whole ledger's 1,500 / 2,250.
    by_month = urr_by_month(ledger)
    assert by_month["month"].tolist() == ["2026-01", "2026-02", "2026-03"]
    assert by_month["urr"].tolist() == pytest.approx([0.2, 750 / 1450, 1500 / 2250])
    flows = flows_by_month(ledger)
    assert flows.drop(columns="month").values.tolist() == [[1000, 0, 200, 0], [500, 50, 400, 0], [800, 0, 450, 50]]
    # The month-end rate alone (what a simulation makes per run and month) is the full estimate's.
    dev = triangles.developments(ledger)[0]
    for m, expected in enumerate([0.2, 750 / 1450, 1500 / 2250]):
        as_of = triangles.as_of(dev, m)
        full = triangles.redemption(as_of)
        assert triangles.urr_only(as_of) == (pytest.approx(expected), full.projectable)
        assert full.urr == pytest.approx(expected)


def test_simulated_flows_are_the_simulations_monthly_figures(coffee_ledger):
    ledger, _, monthly = coffee_ledger
    flows = flows_by_month(ledger)
    mine = flows.rename(columns={"earned": "issued"}).set_index("month")
    theirs = monthly.assign(month=monthly["month"].astype(str)).set_index("month")
    for col in ("issued", "clawed_back", "redeemed", "expired"):
        assert mine[col].tolist() == theirs[col].astype("int64").tolist(), col
    by_month = urr_by_month(ledger)
    assert by_month["urr"].iloc[-1] == pytest.approx(analyse(ledger).overall.urr, rel=1e-12)


# --- validation ---------------------------------------------------------------------------------------


def bad(text: str) -> str:
    with pytest.raises(DataError) as info:
        read_ledger(pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False))
    return str(info.value)


HEADER = "customer_id,timestamp,kind,points,earned_on\n"


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ("a,2026-01-05,earn,10,2026-01-05\na,2026-01-06,gift,5,2026-01-05\n", "row 2, column `kind`: 'gift' is not a kind of posting"),
        ("a,2026-01-05,earn,10.5,2026-01-05\n", "row 1, column `points`: '10.5' is not a whole number"),
        ("a,2026-01-05,earn,-3,2026-01-05\n", "row 1, column `points`: '-3' is not a whole number"),
        ("a,yesterday,earn,3,2026-01-05\n", "row 1, column `timestamp`: 'yesterday' is not a date-time"),
        ("a,2026-01-05,earn,3,\n", "row 1, column `earned_on`: an empty cell where a date is needed"),
        (
            "a,2026-01-05,earn,10,2026-01-05\na,2026-01-06,redeem,20,2026-01-05\n",
            "row 2: customer a's points earned on 2026-01-05 are spent",
        ),
        ("a,2026-01-05,redeem,20,2025-12-01\n", "row 1: customer a's points earned on 2025-12-01"),
        ("a,2025-12-05,redeem,20,2026-01-05\n", "row 1, column `timestamp`"),
        ("a,2026-01-05,capped,20,\n", "the ledger has no earned points"),
        ("", "the ledger has no postings"),
        ("a,2026-01-05,earn,10,1970-01-05\n", "spans more than 600 months"),
        (
            "a,2026-01-05,earn,10,2026-01-05,Gold\nb,2026-01-05,earn,10,2026-01-05,(all)\n",
            "row 2, column `tier`: '(all)' names the whole ledger",
        ),
        ("".join(f"c{i},2026-01-05,earn,1,2026-01-05,t{i}\n" for i in range(51)), "holds 51 different tiers"),
    ],
)
def test_bad_ledgers_are_refused_naming_row_and_column(rows, expected):
    header = HEADER if rows.count(",") <= 4 * rows.count("\n") else HEADER.replace("\n", ",tier\n")
    assert expected in bad(header + rows)


def test_a_missing_column_is_named_with_what_a_ledger_holds():
    message = bad("customer_id,timestamp,kind,points\na,2026-01-05,earn,1\n")
    assert "no column `earned_on`" in message and "ledger.parquet" in message


def test_unreadable_files_are_named(tmp_path):
    with pytest.raises(DataError, match="no such ledger file"):
        read_ledger(tmp_path / "nothing.csv")
    (tmp_path / "ledger.txt.xlsx").write_text("x", encoding="utf-8")
    with pytest.raises(DataError, match="unknown file type"):
        read_ledger(tmp_path / "ledger.txt.xlsx")
