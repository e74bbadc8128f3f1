"""Per-customer summaries: the published CDNOW summary rebuilt from the raw transactions, same-day
purchases as one, exact money, refunds and late customers left out, bad `until` refused."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from rulelang.errors import LoyaltyError
from simulator import io
from simulator.forecast import summary
from tests.simulator.forecast import cdnow


def _by_id(s: summary.CustomerSummary) -> pd.DataFrame:
    frame = pd.DataFrame({"x": s.x, "t_x": s.t_x, "T": s.T, "zbar": s.mean_spend}, index=s.customer_id.astype(int))
    return frame.sort_index()


def test_the_raw_cdnow_sample_gives_the_published_summary():
    s = summary.summarize(cdnow.loaded_sample().frame, cdnow.CALIBRATION_END)
    ours, theirs = _by_id(s), cdnow.published_summary()
    assert s.customers == 2357 == len(theirs)
    assert (ours.index == theirs.index).all()
    assert (ours["x"].to_numpy() == theirs["x"].to_numpy()).all()
    # Fader & Hardie give weeks and dollars to 2 decimals; ours are exact (days / 7, cents / x).
    for col in ("t_x", "T", "zbar"):
        assert np.abs(ours[col].to_numpy() - theirs[col].to_numpy()).max() <= 0.005 + 1e-9, col
    assert (np.round(ours["T"].to_numpy(), 2) == theirs["T"].to_numpy()).all()
    assert (np.round(ours["t_x"].to_numpy(), 2) == theirs["t_x"].to_numpy()).all()
    assert s.until == cdnow.CALIBRATION_END and s.first_day_of_data == dt.date(1997, 1, 1)
    assert s.purchase_rows + s.rows_after_until == 6919


def test_the_shipped_csv_is_the_raw_sample_row_for_row():
    raw = cdnow.as_transactions(cdnow.raw_sample(), "sample_id")
    shipped = pd.read_csv(cdnow.SAMPLE_CSV, dtype=str)
    assert list(shipped.columns[:3]) == ["customer_id", "timestamp", "amount"]
    pd.testing.assert_frame_equal(shipped[["customer_id", "timestamp", "amount"]], raw)
    assert (shipped["quantity"] == cdnow.raw_sample()["cds"]).all()


def test_holdout_purchase_days_match_a_plain_count():
    loaded = cdnow.loaded_sample()
    s = summary.summarize(loaded.frame, cdnow.CALIBRATION_END)
    held = summary.purchases_after(loaded.frame, s, cdnow.HOLDOUT_END)
    raw = cdnow.raw_sample()
    days = raw.drop_duplicates(["sample_id", "date"])
    in_holdout = days[(days["date"] > "19970930") & (days["date"] <= "19980630")]
    expected = in_holdout["sample_id"].str.lstrip("0").value_counts()
    assert held.sum() == len(in_holdout) == 1882
    assert dict(zip(s.customer_id[held > 0], held[held > 0], strict=True)) == expected.to_dict()


def _frame(rows) -> pd.DataFrame:
    return io.load_transactions(pd.DataFrame(rows, columns=["customer_id", "timestamp", "amount", "event"])).frame


def test_same_day_purchases_are_one_and_money_is_exact():
    s = summary.summarize(
        _frame([
            ("a", "2026-01-01T09:00", "5.00", "purchase"),
            ("a", "2026-01-08T10:00", "0.10", "purchase"),
            ("a", "2026-01-08T18:00", "0.20", "purchase"),  # same day: one purchase of 0.30
            ("a", "2026-01-15", "0.30", "purchase"),
            ("a", "2026-01-16", "9.99", "refund"),  # not a purchase
            ("b", "2026-01-03", "2.00", "purchase"),
            ("c", "2026-02-01", "1.00", "purchase"),  # first buys after until: not yet a customer
        ]),
        dt.date(2026, 1, 29),
    )  # fmt: skip
    assert list(s.customer_id) == ["a", "b"]
    assert list(s.x) == [2, 0]
    assert list(s.t_x) == [2.0, 0.0]  # 14 days
    assert list(s.T) == [4.0, 26 / 7]
    assert list(s.repeat_spend_minor) == [60, 0]  # 0.10 + 0.20 + 0.30, in cents, exactly
    assert s.mean_spend[0] == 0.3
    assert (s.other_rows, s.rows_after_until) == (1, 1)


def test_until_defaults_to_the_last_purchase_day_and_a_day_before_the_data_is_refused():
    frame = _frame([("a", "2026-01-01", "1", "purchase"), ("a", "2026-03-01T23:59", "1", "purchase")])
    assert summary.summarize(frame).until == dt.date(2026, 3, 1)
    with pytest.raises(LoyaltyError, match=r"--until 2025-12-31 is before the first purchase in the data \(2026-01-01\)"):
        summary.summarize(frame, dt.date(2025, 12, 31), until_name="--until")


def test_a_history_without_purchases_is_refused():
    with pytest.raises(LoyaltyError, match="no purchases"):
        summary.summarize(_frame([("a", "2026-01-01", "1", "refund")]))
