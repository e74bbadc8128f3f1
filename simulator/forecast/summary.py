"""Per-customer purchase summaries for the models: (x, t_x, T) and the mean spend per repeat purchase.

From a loaded transactions frame (`simulator.io.load_transactions`): a purchase is a day with a
purchase (a customer's purchases on one day are one purchase, as Fader, Hardie & Lee aggregate the
CDNOW data), so x counts the purchase days after the first. Time is in weeks (days / 7) from the
customer's first purchase day: t_x to the last purchase day up to the end of calibration, T to the
end of calibration (`until`, a day: its purchases count; default the data's last purchase day).
Customers whose first purchase comes after `until` are not yet customers and are not summarised.

Money stays exact until the fit: each day's spend is summed in integer minor units, and the mean
spend per repeat purchase (the purchase days after the first) is that integer total over x, in
currency units as a float for the fit. Refunds (`refund` rows and negative purchases) and other
events are not purchases; the summary counts them so that nothing is left out unsaid.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rulelang.errors import LoyaltyError

TIME_UNIT = "weeks"
DAYS_PER_UNIT = 7.0
_NS_PER_DAY = 86_400 * 10**9


@dataclass(frozen=True)
class CustomerSummary:
    """One entry per customer who bought on or before `until` (in the order of the frame's customer codes)."""

    customer_id: np.ndarray  # object (the ids as text)
    x: np.ndarray  # int64: purchase days after the first, through `until`
    t_x: np.ndarray  # float64 weeks: first purchase day to the last, through `until`
    T: np.ndarray  # float64 weeks: first purchase day to `until`
    first_day: np.ndarray  # datetime64[D]
    repeat_spend_minor: np.ndarray  # int64: the spend of the repeat purchase days, minor units
    decimals: int
    first_day_of_data: dt.date
    until: dt.date
    purchase_rows: int  # the rows read as purchases, through `until`
    rows_after_until: int  # purchase rows after `until` (the holdout of a backtest)
    other_rows: int  # refunds and other events: not purchases

    @property
    def customers(self) -> int:
        return int(self.x.shape[0])

    @property
    def mean_spend(self) -> np.ndarray:
        """The mean spend per repeat purchase in currency units (0 for customers with no repeat)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            minor = np.where(self.x > 0, self.repeat_spend_minor / np.maximum(self.x, 1), 0.0)
        return minor / 10**self.decimals


@dataclass(frozen=True)
class _Days:
    """Purchase days: one entry per (customer code, day), in that order, with the day's spend."""

    code: np.ndarray
    day: np.ndarray  # int64 days since 1970-01-01
    spend: np.ndarray  # int64 minor units
    categories: pd.Index
    purchase_rows: np.ndarray  # bool per row of the frame
    other_rows: int


def _purchase_days(frame: pd.DataFrame, decimals: int) -> _Days:
    ids = frame["customer_id"]
    ids = ids.array if isinstance(ids.dtype, pd.CategoricalDtype) else pd.Categorical(ids.astype(str))
    code = np.asarray(ids.codes, dtype=np.int64)
    minor = np.rint(frame["amount"].to_numpy(dtype=np.float64) * 10**decimals).astype(np.int64)
    if "event" in frame.columns:
        purchase_event = (frame["event"] == "purchase").to_numpy(dtype=bool)
    else:
        purchase_event = np.ones(len(frame), dtype=bool)
    purchase = purchase_event & (minor >= 0)
    ts = frame["timestamp"].to_numpy().astype("datetime64[ns]").view(np.int64)
    day = np.floor_divide(ts, _NS_PER_DAY)
    code, day, minor = code[purchase], day[purchase], minor[purchase]
    order = np.lexsort((day, code))
    code, day, minor = code[order], day[order], minor[order]
    new = np.ones(code.shape[0], dtype=bool)
    new[1:] = (code[1:] != code[:-1]) | (day[1:] != day[:-1])
    starts = np.flatnonzero(new)
    spend = np.add.reduceat(minor, starts) if starts.shape[0] else np.zeros(0, dtype=np.int64)
    return _Days(code[starts], day[starts], spend, ids.categories, purchase, int((~purchase).sum()))


def _day_number(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def _date(day_number: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(day_number))


def summarize(frame: pd.DataFrame, until: dt.date | None = None, decimals: int = 2, until_name: str = "until") -> CustomerSummary:
    """The customers' summaries from a loaded transactions frame, calibrated through the day `until`
    (`until_name`: what the caller calls it, for the error when it is before the data)."""
    days = _purchase_days(frame, decimals)
    if days.day.shape[0] == 0:
        raise LoyaltyError("the history has no purchases (rows with the event `purchase` and an amount of 0 or more); nothing to fit")
    first_data, last_data = int(days.day.min()), int(days.day.max())
    end = last_data if until is None else _day_number(until)
    if end < first_data:
        raise LoyaltyError(f"{until_name} {_date(end)} is before the first purchase in the data ({_date(first_data)}); give a day from {_date(first_data)} on")
    in_cal = days.day <= end
    code, day, spend = days.code[in_cal], days.day[in_cal], days.spend[in_cal]
    new = np.ones(code.shape[0], dtype=bool)
    new[1:] = code[1:] != code[:-1]
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], code.shape[0]) - 1
    n_days = ends - starts + 1
    first, last = day[starts], day[ends]
    total = np.add.reduceat(spend, starts)
    purchase_day_rows = _rows_through(frame, days, end)
    return CustomerSummary(
        customer_id=np.asarray(days.categories.astype(str), dtype=object)[code[starts]],
        x=(n_days - 1).astype(np.int64),
        t_x=(last - first) / DAYS_PER_UNIT,
        T=(end - first) / DAYS_PER_UNIT,
        first_day=first.astype("datetime64[D]"),
        repeat_spend_minor=(total - spend[starts]).astype(np.int64),
        decimals=decimals,
        first_day_of_data=_date(first_data),
        until=_date(end),
        purchase_rows=purchase_day_rows[0],
        rows_after_until=purchase_day_rows[1],
        other_rows=days.other_rows,
    )


def _rows_through(frame: pd.DataFrame, days: _Days, end: int) -> tuple[int, int]:
    """(purchase rows on or before the day `end`, purchase rows after it)."""
    ts = frame["timestamp"].to_numpy().astype("datetime64[ns]").view(np.int64)[days.purchase_rows]
    through = int((np.floor_divide(ts, _NS_PER_DAY) <= end).sum())
    return through, int(ts.shape[0]) - through


def purchases_after(frame: pd.DataFrame, summary: CustomerSummary, through: dt.date, decimals: int = 2) -> np.ndarray:
    """Each summarised customer's purchase days after `summary.until`, through the day `through`
    (the holdout's actual counts, as the models forecast them)."""
    days = _purchase_days(frame, decimals)
    lo, hi = _day_number(summary.until), _day_number(through)
    held = (days.day > lo) & (days.day <= hi)
    ids = np.asarray(days.categories.astype(str), dtype=object)[days.code[held]]
    counts = pd.Series(ids).value_counts()
    return counts.reindex(summary.customer_id, fill_value=0).to_numpy(dtype=np.int64)
