"""The replayed history: validated transactions, sorted by customer then time, with helper columns.

Helper columns (all prefixed `_`, dropped before the engine sees the rows):
`_row` input position, `_m` customer code (customer ids in sorted order), `_key` the customer's
random-stream key, `_minor` amount in integer minor units, `_purchase`, `_refund`, `_visit`
(first line of a purchase basket), `_event` (lower-case event name).

What an event, a refund, a basket and an amount in minor units are is the engine's data contract
(`rulelang.engine`: `event_codes`, `money_kinds`, `basket_starts`, `to_minor_units`), so these
columns read every row as the engine's batch does (tests/simulator/test_history.py checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import pandas as pd
from numba import njit

from rulelang.engine import arrowtext, basket_starts, event_codes, money_kinds, parse_datetimes, to_minor_units
from rulelang.errors import DataError
from simulator import rng


@dataclass(frozen=True)
class History:
    """Sorted transactions with helper columns, and per-customer facts."""

    rows: pd.DataFrame
    # The customer ids, sorted, indexed by `_m`: the Arrow text index they came from (saves
    # converting them to Python strings and back), else an object array.
    ids: np.ndarray | pd.Index
    keys: np.ndarray | None  # rng key per customer code (None before `annotated`)
    decimals: int
    until: pd.Timestamp
    start: pd.Timestamp

    @property
    def customers(self) -> int:
        return len(self.ids)

    @cached_property
    def customer_ids(self) -> np.ndarray:
        """The customer ids as an object array (made when first asked for: a path over Arrow text
        ids never needs them as Python strings)."""
        return np.asarray(self.ids, dtype=object)

    @cached_property
    def first_purchase(self) -> np.ndarray:
        """Per customer code: the row position of the first purchase, or -1 if none."""
        return _first_purchase(np.ascontiguousarray(self.rows["_m"].to_numpy()), np.ascontiguousarray(self.rows["_purchase"].to_numpy()), self.customers)

    @cached_property
    def enroll_rows(self) -> np.ndarray:
        """True on `enroll` rows of the data."""
        return (self.rows["_event"] == "enroll").to_numpy()


@njit(cache=True, nogil=True)
def _first_purchase(m, purchase, customers):
    # Rows are grouped by customer in time order: the first purchase row seen of each customer.
    first = np.full(customers, -1, dtype=np.int64)
    for i in range(m.shape[0]):
        if purchase[i] and first[m[i]] < 0:
            first[m[i]] = i
    return first


def prepare(transactions: pd.DataFrame, decimals: int, until=None) -> History:
    """Sort and annotate transactions for replay; amounts become integer minor units."""
    return annotated(sorted_rows(transactions, decimals, until))


def sorted_rows(transactions: pd.DataFrame, decimals: int, until=None) -> History:
    """The first stage of `prepare`: the rows sorted, with the helper columns the engine's base
    batch reads (simulator.batch) and no random keys yet, so the base can be built from it while
    `annotated` finishes the history (`_visit`, and `_row` for rows that kept their order)."""
    df = transactions.reset_index(drop=True)
    n = len(df)
    ts = parse_datetimes(df["timestamp"]).astype("datetime64[ns]")
    if ts.isna().any():
        raise DataError("column timestamp: values that are not date-times; load the transactions with simulator.io first")
    amount = df["amount"]
    # (Floats, as simulator.io gives them, are numbers already: no conversion pass.)
    values = amount.to_numpy() if amount.dtype == np.float64 else pd.to_numeric(amount, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    minor, missing, _ = to_minor_units(values, decimals)
    if missing:
        raise DataError("column amount: values that are not numbers; load the transactions with simulator.io first")
    ev_codes, ev_names = event_codes(df["event"] if "event" in df.columns else None, n)
    ev_names = ev_names.to_numpy(dtype=object)
    codes, ids = _factorize_sorted(df["customer_id"])
    if isinstance(ids, pd.Index) and (not len(ids) or ids.dtype != pd.Index(np.asarray(ids[:1], dtype=object)).dtype):
        ids = np.asarray(ids, dtype=object)  # an index only when it is what pandas makes of the ids themselves
    # Stable sort by customer then time keeps basket lines and same-time rows in input order.
    order = _order(codes, ts.to_numpy())
    # simulator.io already sorts this way: then the rows need no reordered copy.
    identity = order is None
    out = df.copy(deep=False) if identity else df.iloc[order].reset_index(drop=True)

    def take(a: np.ndarray) -> np.ndarray:
        return a if identity else a[order]

    # A Categorical (with `enroll` among its categories): paths copy and flag it by integer code.
    # Built from codes: the event names are looked at once per distinct name, not once per row.
    present = ev_names[_used(ev_codes, len(ev_names))]
    categories = sorted(set(present.tolist()) | {"enroll"})
    where = {name: i for i, name in enumerate(categories)}
    # Codes in the narrow type pandas keeps them in: no widening here and narrowing again below.
    lut = np.array([where.get(name, -1) for name in ev_names.tolist()], dtype=np.int8 if len(categories) < 128 else np.int64)
    event = lut[take(ev_codes)] if n else np.zeros(0, dtype=np.int64)
    minor = take(minor)
    # (`minor` is this function's own array: refunds are made negative in it.)
    purchase, refund = money_kinds(event == where.get("purchase", -2), event == where.get("refund", -2), minor)
    t = take(ts.to_numpy())
    # (A row's position in the history is its index: a path's rows carry theirs as `_pos`.)
    # The customer codes in the type they come in, and the input positions only when the rows
    # moved: the base reads neither as int64, so `annotated` makes those beside it.
    helpers = {"timestamp": t} | ({} if identity else {"_row": order.astype(np.int64)}) | {"_m": take(codes)}
    helpers.update(
        _minor=minor,
        _event=pd.Categorical.from_codes(event, categories=categories),
        _purchase=purchase,
        _refund=refund,
    )
    out = with_columns(out, helpers)
    last = pd.Timestamp(t.max()) if n else pd.Timestamp("1970-01-01")  # (no date-time is missing here)
    first = pd.Timestamp(t.min()) if n else pd.Timestamp("1970-01-01")
    until = pd.Timestamp(until) if until is not None else last
    return History(out, ids, None, decimals, until, first)


def annotated(core: History) -> History:
    """The second stage of `prepare`: each purchase basket's first line (`_visit`), each
    customer's random-stream key, and the columns the first stage left in the form the base reads
    them: the input positions (`_row`) of rows that did not move, and 64-bit customer codes."""
    rows = core.rows
    tx = rows["transaction_id"] if "transaction_id" in rows.columns else None
    m = rows["_m"].to_numpy().astype(np.int64, copy=False)
    visit = basket_starts(m, rows["timestamp"].to_numpy(), rows["_purchase"].to_numpy(), tx)
    keys = rng.customer_keys(core.ids)
    own = {"_m": m, "_visit": visit}
    if "_row" not in rows.columns:  # the rows kept their input order: their positions
        own["_row"] = np.arange(len(rows), dtype=np.int64)
    return replace(core, rows=with_columns(rows, own), keys=keys)


def with_columns(frame: pd.DataFrame, new: dict, drop: tuple = ()) -> pd.DataFrame:
    """A new frame: `frame` with the columns of `new` set (replaced in place, or added at the end)
    and those of `drop` left out, as `frame[c] = v` would, but without copying: pandas copies every
    array set that way (a column of a million rows, 8 MB of fresh memory, each time). `frame`
    itself is left as it was."""
    if frame.columns.is_unique:
        if not drop and not any(c in frame.columns for c in new):
            return pd.concat([frame, pd.DataFrame(new, index=frame.index, copy=False)], axis=1)  # (shares every array)
        return pd.DataFrame({**{c: frame[c].array for c in frame.columns if c not in drop}, **new}, index=frame.index, copy=False)
    frame = frame.drop(columns=list(drop)) if drop else frame.copy(deep=False)
    for c, v in new.items():
        frame[c] = v
    return frame


def _order(codes: np.ndarray, ts: np.ndarray) -> np.ndarray | None:
    """The stable order by (customer, time); None (the identity), without sorting, when already so."""
    n = len(codes)
    if grouped_in_time(codes, ts):
        return None
    return np.lexsort((np.arange(n), ts, codes))


def grouped_in_time(keys: np.ndarray, ts: np.ndarray) -> bool:
    """Whether rows are sorted by (key, time) already (times datetime64 or int64, none missing)."""
    return _grouped_in_time(np.ascontiguousarray(keys), np.ascontiguousarray(ts).view(np.int64))


@njit(cache=True, nogil=True)
def _grouped_in_time(keys, ts):
    # One pass, stopping at the first row out of order (five NumPy passes and temporaries otherwise).
    for i in range(1, keys.shape[0]):
        if keys[i] < keys[i - 1] or (keys[i] == keys[i - 1] and ts[i] < ts[i - 1]):
            return False
    return True


def _factorize_sorted(col: pd.Series) -> tuple[np.ndarray, np.ndarray | pd.Index]:
    """Codes and distinct values in sorted order of the values (a Categorical's by its text); the
    values as an object array, or as the categories' own Arrow text index when that is sorted."""
    if not isinstance(col.dtype, pd.CategoricalDtype):
        codes, ids = pd.factorize(col, sort=True)
        return codes, np.asarray(ids, dtype=object)
    size = len(col.cat.categories)
    c = col.cat.codes.to_numpy()
    if len(c) and c.min() >= 0:
        # Counted, not sorted: the categories in use, in category order.
        present = np.flatnonzero(_used(c, size))
        index = col.cat.categories if len(present) == size else col.cat.categories[present]
        if arrowtext.ascending(index):
            # Every category in use, in order: the codes are the ranks already (and the ids stay
            # Arrow text, not turned into Python strings).
            return (c if len(present) == size else _ranks(present, size)[c]), index
        cats = col.cat.categories.to_numpy(dtype=object)
        order = present[np.argsort(cats[present], kind="stable")]
    else:
        cats = col.cat.categories.to_numpy(dtype=object)
        present = np.unique(c)
        order = present[np.argsort(cats[present], kind="stable")]
    return _ranks(order, size)[c], cats[order]


@njit(cache=True, nogil=True)
def _used(codes, size):
    # Which of `size` codes occur (a missing code, -1, is none of them): one pass, no count per code,
    # ending as soon as every code has been seen (a few event names: within the first rows).
    seen = np.zeros(size, dtype=np.bool_)
    left = size
    for c in codes:
        if c >= 0 and not seen[c]:
            seen[c] = True
            left -= 1
            if left == 0:
                break
    return seen


def _ranks(order: np.ndarray, size: int) -> np.ndarray:
    rank = np.full(size, -1, dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank


def engine_frame(rows: pd.DataFrame, customer_ids: np.ndarray | pd.Index) -> pd.DataFrame:
    """The rows as the engine reads them: canonical columns, amounts in minor units as the history
    holds them (for `rulelang.engine.prepare(..., minor_units=True)`: no round trip through
    currency units)."""
    keep = [c for c in rows.columns if not c.startswith("_")]
    # Categoricals: the engine encodes them by their codes instead of hashing a text per row.
    # `customer_ids` are distinct and sorted, so the codes `_m` are already the member order.
    # (pandas checks they are distinct: free when they are the categories it checked on loading,
    # which remember the answer; sorted ids are checked by comparing neighbours, not hashed.)
    ids = pd.CategoricalDtype(customer_ids, False)
    own = {
        "customer_id": pd.Categorical.from_codes(rows["_m"].to_numpy(), dtype=ids, validate=False),
        "amount": rows["_minor"].to_numpy(),
        "event": _drop_unused(rows["_event"].array),
    }
    for col in ("_u_redeem", "_u_choice"):
        if col in rows.columns:
            own[col] = rows[col].to_numpy()
    return with_columns(rows[keep], own)


def _drop_unused(values: pd.Categorical) -> pd.Categorical:
    """`values.remove_unused_categories()`, finding the codes in use rather than sorting them."""
    codes = values.codes
    used = _used(codes, len(values.categories))
    if used.all():
        return values.copy()
    # One lookup per row in the codes' own type; its last entry takes the missing code -1 to -1.
    lut = np.append(np.cumsum(used) - 1, -1).astype(codes.dtype)
    dtype = pd.CategoricalDtype(values.categories[used], values.ordered)  # a few event names to check
    return pd.Categorical.from_codes(lut[codes], dtype=dtype, validate=False)


def gather(col: pd.Series, src: np.ndarray):
    """The column's values at positions `src`, as a new array; a Categorical keeps its dtype (its
    codes are gathered, and codes taken from valid ones need no check)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return pd.Categorical.from_codes(col.cat.codes.to_numpy()[src], dtype=col.dtype, validate=False)
    return col.to_numpy()[src]
