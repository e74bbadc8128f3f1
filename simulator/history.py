"""The replayed history: validated transactions, sorted by customer then time, with helper columns.

Helper columns (all prefixed `_`, dropped before the engine sees the rows):
`_row` input position, `_m` customer code (customer ids in sorted order), `_key` the customer's
random-stream key, `_minor` amount in integer minor units, `_purchase`, `_refund`, `_visit`
(first line of a purchase basket), `_event` (lower-case event name).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import pandas as pd
from numba import njit

from rulelang.engine import arrowtext, parse_datetimes
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


@njit(cache=True, nogil=True)
def _minor_units(amount, scale):
    # amount x scale rounded half to even (as np.round), as integers: one pass, no temporaries;
    # and whether any amount is missing (NaN: its integer is then meaningless).
    out = np.empty(amount.shape[0], dtype=np.int64)
    missing = False
    for i in range(amount.shape[0]):
        a = amount[i]
        if np.isnan(a):
            missing = True
            out[i] = 0
        else:
            out[i] = np.int64(np.rint(a * scale))
    return out, missing


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
    minor, missing = _minor_units(np.ascontiguousarray(values), float(10**decimals))
    if missing:
        raise DataError("column amount: values that are not numbers; load the transactions with simulator.io first")
    if "event" in df.columns:
        ev_codes, ev_names = _text_codes(df["event"], lambda t: t.fillna("purchase").str.strip().str.lower().replace("", "purchase"))
    else:
        ev_codes, ev_names = np.zeros(n, dtype=np.int64), np.array(["purchase"], dtype=object)
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
    is_purchase_event = event == where.get("purchase", -2)
    purchase = is_purchase_event & (minor >= 0)
    refund = (is_purchase_event & (minor < 0)) | (event == where.get("refund", -2))
    t = take(ts.to_numpy())
    if refund.any():
        # Refunds are negative however they were written (`minor` is this function's own array).
        minor[refund] = -np.abs(minor[refund])
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
    visit = _basket_starts(rows["_purchase"].to_numpy(), tx, m, rows["timestamp"].to_numpy())
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


@njit(cache=True, nogil=True)
def _may_continue(m, t, purchase):
    # A purchase row of the same member at the same time as the purchase row before it.
    out = np.zeros(m.shape[0], dtype=np.bool_)
    for i in range(1, m.shape[0]):
        out[i] = m[i] == m[i - 1] and t[i] == t[i - 1] and purchase[i] and purchase[i - 1]
    return out


@njit(cache=True, nogil=True)
def _arrow_basket_starts(m, t, purchase, offsets, data, valid):
    # A purchase row starts a basket unless it continues the one before it (`_may_continue`)
    # with the same id, which is not blank (missing or empty).
    out = purchase.copy()
    for i in range(1, m.shape[0]):
        if (
            purchase[i] and purchase[i - 1] and m[i] == m[i - 1] and t[i] == t[i - 1]
            and valid[i] and valid[i - 1] and offsets[i + 1] > offsets[i]
            and arrowtext._same(data, offsets[i], offsets[i + 1], offsets[i - 1], offsets[i])
        ):  # fmt: skip
            out[i] = False
    return out


def _basket_starts(purchase: np.ndarray, col: pd.Series | None, m: np.ndarray, t: np.ndarray) -> np.ndarray:
    if col is None:
        return purchase.copy()
    m, t, purchase = np.ascontiguousarray(m), np.ascontiguousarray(t).view(np.int64), np.ascontiguousarray(purchase)
    if arrowtext.is_arrow_text(col):
        # Arrow text ids (a Parquet column of ids): neighbours compared by their bytes, only
        # where the row could continue a basket; all in one pass.
        return _arrow_basket_starts(m, t, purchase, *arrowtext.buffers(col))
    may = _may_continue(m, t, purchase)
    if isinstance(col.dtype, pd.CategoricalDtype):
        # Categories are distinct text: equal codes are equal ids, and at most one is blank;
        # missing (-1) reads as blank.
        codes = col.cat.codes.to_numpy()
        blank = np.flatnonzero(np.asarray(col.cat.categories == "", dtype=bool))
        has_id = codes >= 0
        if len(blank):
            has_id &= codes != blank[0]
    else:
        codes, text = _text_codes(col, lambda t: t.fillna(""))
        has_id = ~(text == "")[codes] if len(text) else np.zeros(len(codes), dtype=bool)
    same_id = np.r_[False, codes[1:] == codes[:-1]] if len(codes) else np.zeros(0, dtype=bool)
    # A blank id never continues a basket.
    return purchase & ~(may & has_id & same_id)


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


def _text_codes(col: pd.Series, clean) -> tuple[np.ndarray, np.ndarray]:
    """clean(text) as codes into an object array of distinct names (`names[codes]` is the text);
    a Categorical is cleaned one category at a time and keeps its codes."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        cats = clean(pd.Series(col.cat.categories.to_numpy(dtype=object)).astype("string"))
        # Missing (code -1) reads the last entry: the cleaned missing value.
        lut = np.append(cats.astype(object).to_numpy(), clean(pd.Series([None], dtype="string")).astype(object).to_numpy())
        codes = col.cat.codes.to_numpy()
        if not len(codes) or codes.min() >= 0:
            return codes, lut  # nothing missing: the codes as they are
        return np.where(codes < 0, len(lut) - 1, codes.astype(np.int64)), lut
    codes, names = pd.factorize(clean(col.astype("string")).astype(object).to_numpy())
    return codes.astype(np.int64), np.asarray(names, dtype=object)


def engine_frame(rows: pd.DataFrame, customer_ids: np.ndarray | pd.Index, decimals: int, minor_units: bool = False) -> pd.DataFrame:
    """The rows as the engine reads them: canonical columns, amounts back in currency units (or
    left in minor units, for `rulelang.engine.data.prepare(..., minor_units=True)`)."""
    keep = [c for c in rows.columns if not c.startswith("_")]
    # Categoricals: the engine encodes them by their codes instead of hashing a text per row.
    # `customer_ids` are distinct and sorted, so the codes `_m` are already the member order.
    # (pandas checks they are distinct: free when they are the categories it checked on loading,
    # which remember the answer; sorted ids are checked by comparing neighbours, not hashed.)
    ids = pd.CategoricalDtype(customer_ids, False)
    own = {
        "customer_id": pd.Categorical.from_codes(rows["_m"].to_numpy(), dtype=ids, validate=False),
        "amount": rows["_minor"].to_numpy() if minor_units else rows["_minor"].to_numpy() / 10**decimals,
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
