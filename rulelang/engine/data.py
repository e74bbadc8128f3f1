"""The data contract: transactions and customers are validated once, here, into a `Batch`.

Both evaluators read a `Batch` and nothing else; they never see raw input. Every problem raises
`DataError` naming the column, the rule, and the first failing rows (1-based data rows, header
excluded) with their count. Everything here is column-at-a-time.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

from rulelang import builtins as B
from rulelang.engine import arrowtext, ledger
from rulelang.errors import DataError
from rulelang.model import Model

# Event codes carried in `Batch.frame["kind"]`.
PURCHASE, REFUND, REDEEM, EVENT = 0, 1, 2, 3

REQUIRED = ("customer_id", "timestamp", "amount")
# An optional column: the points a purchase row paid with (`pay with points`), replayed as recorded.
POINTS_PAID = "points_paid"


@dataclass(frozen=True)
class RedemptionPolicy:
    """The simulator's redemption behaviour: after each purchase basket, redeem one reward with
    `probability` when affordable, chosen by `cheapest|dearest|random`, using the float draw
    columns `draw` and `choice_draw` of the transactions (values in [0, 1))."""

    probability: float
    choice: str = "cheapest"
    draw: str = "_u_redeem"
    choice_draw: str = "_u_choice"
    # Paying with points (docs/semantics.md, "Paying with points"): a member pays a basket partly
    # with points when its draw `pay_draw` is below `pay_probability` (and the program has
    # `pay with points`; a history with a `points_paid` column is replayed as recorded instead).
    pay_probability: float = 0.0
    pay_draw: str = "_u_pay"


@dataclass(frozen=True)
class Origin:
    """Where a batch's rows were copied from: row i is `base`'s row `src[i]` with possibly another
    amount, event, transaction id and basket, and, where `moved`, another timestamp; every other
    column and the member are the same. Conditions that read only what is the same are evaluated
    on the base once and gathered (`rulelang.engine.masks`). `span` (None: all) is the stretch of the
    base's rows that `src` lies in: the base's masks are then evaluated over that stretch only, so
    threads that share a base and split its members each evaluate their own."""

    base: Batch
    src: np.ndarray
    moved: np.ndarray
    span: tuple[int, int] | None = None


@dataclass(frozen=True)
class Batch:
    """Validated input, rows grouped by member (members sorted by id), input order kept within.

    frame columns: `row` (int64, 0-based input position), `member` (int32, 0..members-1, in id
    order), `customer_id`, `timestamp` (datetime64[ns]), `amount` (int64 minor units), `event`,
    `reward` ("" if none) as categoricals of text, `transaction_id` ("" if none) as categorical
    text, or as Arrow text when it came so (ids are compared by `rulelang.engine.arrowtext`, never
    dictionary-encoded), `kind` (int8:
    PURCHASE/REFUND/REDEEM/EVENT), `unit` (int32: rows of one basket share it; every other row is
    its own unit), `refund_of` (int32: the unit a refund refers to, or -1), and every other input
    column, unchanged.
    customers: one row per member in `member` order, with `customer_id` and attributes
    (`birthday`, `enrolled` as datetime64[ns] when present).
    """

    frame: pd.DataFrame
    customers: pd.DataFrame
    decimals: int
    until: pd.Timestamp
    members: int
    origin: Origin | None = None  # set when the rows are copies of another batch's (same customers)

    @cached_property
    def encodings(self) -> dict:
        """Per-batch cache of column encodings for conditions (`rulelang.engine.columns.Env.typed`)."""
        return {}

    @cached_property
    def id_dtype(self) -> pd.CategoricalDtype:
        """The ledger's `customer_id` dtype for these members (built once per batch, or taken from
        the batch these rows were copied from: the same customers, and one dtype for every copy)."""
        if self.origin is not None and self.origin.base.customers is self.customers:
            return self.origin.base.id_dtype
        return ledger.id_dtype(self.customers["customer_id"])

    def derive(self, frame: pd.DataFrame, origin: Origin | None = None, id_dtype: pd.CategoricalDtype | None = None) -> Batch:
        """A batch of `frame`'s rows over this batch's customers (the same members, decimals and
        end): the simulator's path rows, made from its history. `origin` says when the rows are
        copies of this batch's (`Origin`). `id_dtype`, when the caller holds it already, is the
        ledger's `customer_id` dtype for these members (its categories the customers' ids in
        member order), so it is not built again."""
        batch = Batch(frame, self.customers, self.decimals, self.until, self.members, origin)
        if id_dtype is not None:
            if len(id_dtype.categories) != self.members:
                raise ValueError(f"id_dtype has {len(id_dtype.categories)} categories for {self.members} members")
            batch.__dict__["id_dtype"] = id_dtype  # the cached property's value, given by the one who holds it
        return batch

    def cached(self, key, make):
        """`make()`, computed once per batch and kept with it under `key` (a tuple naming the
        caller first): what several users of one batch would otherwise each compute."""
        if key not in self.encodings:
            self.encodings[key] = make()
        return self.encodings[key]


def _rows(mask: np.ndarray, positions: np.ndarray | None = None) -> str:
    idx = np.flatnonzero(mask)
    if positions is not None:
        idx = np.sort(positions[idx])
    shown = ", ".join(str(i + 1) for i in idx[:10])
    more = f" (and {len(idx) - 10} more; {len(idx)} in all)" if len(idx) > 10 else f" ({len(idx)} in all)"
    return f"rows {shown}{more}"


def _suggest(name: str, available) -> str:
    close = difflib.get_close_matches(name, [str(a) for a in available], n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""


def reads_column(name: str, model: Model) -> bool:
    """Whether a name in a condition is a transaction column (not a variable, an attribute such as
    `customer.segment` or `basket.total`, or a tier)."""
    return "." not in name and (name in model.columns or (name in B.COLUMNS and name not in B.VARIABLES))


def needed_columns(model: Model) -> tuple[set[str], set[str]]:
    """Transaction columns and customer attributes the program's rules read."""
    cols: set[str] = set()
    cust: set[str] = set()
    exprs = [r.condition for r in (*model.firing, *model.discounts) if r.condition is not None] + list(model.asserts)
    from rulelang.model import names_in

    for e in exprs:
        for n in names_in(e):
            if n.startswith("customer."):
                attr = n.split(".", 1)[1]
                if attr not in ("enrolled", "days_enrolled"):
                    cust.add(attr)
            elif reads_column(n, model):
                cols.add(n)
    if any(r.kind == "per_unit" for r in model.rules) or any(d.kind == "buy_get" for d in model.discounts):
        cols.add("quantity")  # `N points per unit` counts the line's quantity: the data must say it
    return cols, cust


def _encode(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Dictionary-encode a column without touching each row's value: codes (-1 for missing) into
    its distinct values. Categoricals give their codes as they are; other columns are factorized."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(), values.cat.categories
    codes, uniques = pd.factorize(values)
    return codes, pd.Index(uniques)


def _used(codes: np.ndarray, uniques: pd.Index) -> tuple[np.ndarray, pd.Index]:
    """Drop distinct values no row uses (a categorical's unused categories)."""
    some = codes if not len(codes) or codes.min() >= 0 else codes[codes >= 0]
    used = np.bincount(some, minlength=len(uniques)) > 0
    if used.all():
        return codes, uniques
    new = np.cumsum(used) - 1
    return np.where(codes >= 0, new[codes], -1), uniques[used]


def _text_codes(values: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Text cells (read like `astype("string")`, missing is "") as codes into distinct texts."""
    codes, uniques = _encode(values)
    if pd.api.types.is_string_dtype(uniques.dtype) and uniques.dtype != object:
        texts = uniques  # distinct, not missing, already text: nothing to convert
    else:
        # Values of other types read as text; some may read the same (1 and "1"): merge them.
        read = pd.Series(uniques, dtype=object).astype("string").fillna("").to_numpy(dtype=object)
        remap, merged = pd.factorize(read)
        # Missing cells (-1) stay -1: the extra entry is what index -1 reads (a column with no
        # value at all, such as an all-blank CSV column read as NaN floats, has no distinct value).
        codes = np.append(remap, -1)[codes]
        texts = pd.Index(np.asarray(merged, dtype=object), dtype=object)
    empty = np.flatnonzero(np.asarray(texts == "", dtype=bool))
    if len(empty):
        none = int(empty[0])
    else:
        none = len(texts)
        texts = texts.append(pd.Index([""], dtype=texts.dtype))
    if not len(codes) or codes.min() >= 0:
        return codes.astype(np.int32, copy=False), texts  # nothing missing: the codes as they are
    return np.where(codes >= 0, codes, none).astype(np.int32), texts


def _blank(uniques: pd.Index) -> np.ndarray:
    """Per distinct value: missing, or blank once stripped (read like `astype("string")`)."""
    if isinstance(uniques.dtype, pd.StringDtype) and uniques.dtype.storage == "pyarrow":
        # Arrow text already: strip it there, without a round trip through Python objects.
        return np.asarray(uniques.str.strip() == "", dtype=bool) | np.asarray(uniques.isna(), dtype=bool)
    return (pd.Series(uniques, dtype=object).astype("string").str.strip() == "").fillna(True).to_numpy()


def _same_ids(col: pd.Series, ids) -> bool:
    """True when `col` holds exactly `ids`, in order and of the same type (compared, not hashed)."""
    ids = pd.Index(ids)
    if len(col) != len(ids) or col.dtype != ids.dtype:
        return False
    return bool(np.asarray(col.array == ids.array, dtype=bool).all())


def _categorical(codes: np.ndarray, texts) -> pd.Categorical:
    # The texts are distinct by construction. pandas checks them anyway; an Index it checked before
    # (a Categorical's categories) remembers the answer, so it is passed as it is, not rewrapped.
    dtype = pd.CategoricalDtype(texts if isinstance(texts, pd.Index) else pd.Index(texts), False)
    return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


def event_codes(values: pd.Series | None, n: int) -> tuple[np.ndarray, pd.Index]:
    """A column of events (None: no column, every row a purchase) as (integer codes, the sorted
    distinct names they index), each name read by `event_names` once, not once per row."""
    if values is None:
        return np.zeros(n, dtype=np.int32), pd.Index([B.PURCHASE], dtype=object)
    codes, uniques = _encode(values)
    names = event_names(pd.Series(uniques, dtype=object))
    # The last entry is what a missing cell (code -1) reads.
    names = np.append(names.to_numpy(dtype=object), B.PURCHASE).astype(str)
    canon, remap = np.unique(names, return_inverse=True)
    remap = remap.astype(np.int32)
    if len(codes) and codes.min() >= 0 and np.array_equal(remap[:-1], np.arange(len(remap) - 1)):
        # Distinct, sorted and canonical already (a loaded file's categories): the codes as they
        # are, in their own (narrow) type: no gather and no widened copy of every row.
        return codes, pd.Index(canon, dtype=object)
    return remap[codes], pd.Index(canon, dtype=object)


def _amounts(col: pd.Series, moneyless: np.ndarray) -> np.ndarray:
    """Amounts as float64; a blank amount is 0 where `moneyless`, anything else unreadable an error."""
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        amount = col.to_numpy(dtype="float64", na_value=np.nan)
        missing = np.isnan(amount)
        blank = missing
    else:
        num = pd.to_numeric(col, errors="coerce")
        blank = col.isna().to_numpy() | (col.astype("string").str.strip() == "").fillna(True).to_numpy()
        amount = num.to_numpy(dtype="float64", na_value=np.nan)
        missing = np.isnan(amount)
    bad = missing & ~(blank & moneyless)
    if bad.any():
        raise DataError(f"column amount: values that are not numbers at {_rows(bad)}; purchases and refunds need an amount like 12.50")
    return np.where(missing, 0.0, amount) if missing.any() else amount


# --- What an event, a refund, a basket and an amount are ----------------------------------------
# Decided here once, for both engines (`prepare`) and for the simulator's replayed history, which
# reaches these through the door (`rulelang.engine`): the two must read every row the same way.


def event_names(text: pd.Series) -> pd.Series:
    """Event names as the contract reads them: edge spaces stripped, lower-cased; blank or missing
    is `purchase`. Meant for distinct values (a column's categories), not for every row. Text
    keeps its dtype; anything else is read as text (`astype("string")`)."""
    if not isinstance(text.dtype, pd.StringDtype):
        text = text.astype("string")
    return text.fillna("").str.strip().str.lower().replace("", B.PURCHASE)


def money_kinds(purchase_event: np.ndarray, refund_event: np.ndarray, minor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(purchase, refund) per row. A `purchase` row with a negative amount is a refund, as is every
    `refund` row; refund amounts are made negative however they were written (in place on
    `minor`, the caller's own array of minor units)."""
    purchase = purchase_event & (minor >= 0)
    refund = (purchase_event & (minor < 0)) | refund_event
    if refund.any():
        minor[refund] = -np.abs(minor[refund])
    return purchase, refund


@njit(cache=True, nogil=True)
def _to_minor(amount, scale):
    # amount x scale rounded half to even (as np.round), as integers, in one pass with no
    # temporaries; whether any amount is missing (NaN: its integer is then 0), and the largest
    # magnitude before the conversion (beyond 2**53 the integers are not exact).
    out = np.empty(amount.shape[0], dtype=np.int64)
    missing = False
    largest = 0.0
    for i in range(amount.shape[0]):
        a = amount[i]
        if np.isnan(a):
            missing = True
            out[i] = 0
        else:
            m = np.rint(a * scale)
            largest = max(largest, abs(m))
            out[i] = np.int64(m) if abs(m) <= 2.0**63 - 1024 else 0
    return out, missing, largest


def to_minor_units(amount: np.ndarray, decimals: int) -> tuple[np.ndarray, bool, float]:
    """Currency amounts (float64) as int64 minor units (cents for 2 decimals), rounded half to
    even; returns (minor units, whether any amount is missing, the largest magnitude in minor
    units: beyond 2**53 they are not exact). A missing amount is 0."""
    return _to_minor(np.ascontiguousarray(amount, dtype=np.float64), float(10**decimals))


@njit(inline="always")
def _continues(member, ts, i, purchase_before, purchase):
    # Row i (> 0) may continue the basket of the row before it: both are purchase lines of one
    # member at one time. (It does when, besides, both carry the same id, which is not blank: the
    # callers compare ids their own way, after this, as comparing them costs the most.) Inlined in
    # numba's IR and with `&`, not `and`: a call per row, or a branch per condition, made the
    # basket passes slower than these conditions written out in each loop.
    return purchase & purchase_before & (member[i] == member[i - 1]) & (ts[i] == ts[i - 1])


@njit(cache=True, nogil=True)
def _coded_basket_starts(member, ts, purchase, codes, blank):
    out = purchase.copy()
    for i in range(1, member.shape[0]):
        if _continues(member, ts, i, purchase[i - 1], purchase[i]) and codes[i] != blank and codes[i] == codes[i - 1]:
            out[i] = False
    return out


@njit(cache=True, nogil=True)
def _arrow_basket_starts(member, ts, purchase, offsets, data, valid):
    # Neighbours' ids compared by their bytes, only where the row could continue a basket.
    out = purchase.copy()
    for i in range(1, member.shape[0]):
        if (
            _continues(member, ts, i, purchase[i - 1], purchase[i]) and valid[i] and valid[i - 1] and offsets[i + 1] > offsets[i]
            and arrowtext._same(data, offsets[i], offsets[i + 1], offsets[i - 1], offsets[i])
        ):  # fmt: skip
            out[i] = False
    return out


def basket_starts(member: np.ndarray, ts: np.ndarray, purchase: np.ndarray, ids: pd.Series | None) -> np.ndarray:
    """Per row, with rows grouped by member in time order: whether it is the first line of a
    purchase basket. A basket is consecutive purchase lines of one member with one timestamp and
    one transaction id that is not blank (missing or ""); any other purchase row is a basket of
    its own. `ids` (None: none) may be Arrow text (compared by its bytes), a categorical or any
    column read as text."""
    member, ts, purchase = np.ascontiguousarray(member), np.ascontiguousarray(ts).view(np.int64), np.ascontiguousarray(purchase, dtype=bool)
    if ids is None:
        return purchase.copy()
    if arrowtext.is_arrow_text(ids):
        return _arrow_basket_starts(member, ts, purchase, *arrowtext.buffers(ids))
    if isinstance(ids.dtype, pd.CategoricalDtype):
        # Categories are distinct: equal codes are equal ids; missing (-1) and "" are blank.
        codes = ids.cat.codes.to_numpy()
        blank = np.flatnonzero(np.asarray(ids.cat.categories == "", dtype=bool))
        if len(blank):
            codes = np.where(codes == blank[0], -1, codes)
        return _coded_basket_starts(member, ts, purchase, np.ascontiguousarray(codes), -1)
    codes, texts = _text_codes(ids)
    blank = np.flatnonzero(np.asarray(texts == "", dtype=bool))
    return _coded_basket_starts(member, ts, purchase, codes, int(blank[0]) if len(blank) else -1)


_SPLIT_BASKET = 1


@njit(cache=True, nogil=True)
def _baskets(member, ts, kind, tx, blank, texts):
    """One pass over rows grouped by member in time order: each row's unit (a purchase basket, as
    `basket_starts` finds them; any other row alone), and each refund's basket (`refund_of`: the
    unit of the member's earlier basket with the refund's id, else -1). Returns (unit, refund_of,
    problem): problem is _SPLIT_BASKET when one id names two baskets of a member (lines of one id
    at different times, or apart)."""
    n = member.shape[0]
    unit = np.empty(n, dtype=np.int32)
    refund_of = np.full(n, -1, dtype=np.int32)
    # Per id: the member whose basket it last started (rows are grouped by member, so an entry of
    # another member is stale), and that basket's unit.
    seen = np.full(max(texts, 1), -1, dtype=np.int32)
    seen_unit = np.empty(max(texts, 1), dtype=np.int32)
    u = -1
    for i in range(n):
        c = tx[i]
        has = c != blank
        purchase = kind[i] == PURCHASE
        if i > 0 and _continues(member, ts, i, kind[i - 1] == PURCHASE, purchase) and has and c == tx[i - 1]:
            unit[i] = u
            continue
        # (Lines of one basket at different times start a second basket of the id: found below.)
        u += 1
        unit[i] = u
        if not has:
            continue
        if purchase:
            if seen[c] == member[i]:
                return unit, refund_of, _SPLIT_BASKET
            seen[c] = member[i]
            seen_unit[c] = u
        elif kind[i] == REFUND and seen[c] == member[i]:
            refund_of[i] = seen_unit[c]
    return unit, refund_of, 0


def _basket_problem(same_member, kind, tx, ts, member, blank_tx, tx_texts, order) -> None:
    """Raise the error `_baskets` found, naming every row or the first id concerned: lines of one
    id at different times first (a basket split by its timestamps), else the id named twice."""
    has_tx = tx != blank_tx
    purchase = kind == PURCHASE
    prev_same_basket = same_member & purchase & np.r_[False, purchase[:-1]] & has_tx & np.r_[False, tx[1:] == tx[:-1]]
    bad = prev_same_basket & np.r_[False, ts[1:] != ts[:-1]]
    if bad.any():
        raise DataError(f"column timestamp: lines of one basket (same transaction_id) have different timestamps at {_rows(bad, order)}")
    # The first basket, in row order, whose (member, id) another basket has too.
    basket = np.flatnonzero(~prev_same_basket & purchase & has_tx)
    key = member[basket].astype(np.int64) * np.int64(len(tx_texts)) + tx[basket]
    values, counts = np.unique(key, return_counts=True)
    twice = np.isin(key, values[counts > 1])
    first = tx_texts[tx[basket[np.flatnonzero(twice)[0]]]]
    raise DataError(
        f"column transaction_id: `{first}` names lines that are not together; the lines of a basket must be consecutive rows "
        "of one customer with one timestamp"
    )


def prepare(transactions: pd.DataFrame, model: Model, customers: pd.DataFrame | None = None, until=None, minor_units: bool = False) -> Batch:
    """Validate `transactions` (and `customers`) against the data contract for `model`.

    Column-at-a-time and per distinct value: text columns (plain, Arrow-backed or categorical) are
    dictionary-encoded once and compared by code; input already grouped by member is not re-sorted.
    `minor_units`: the amounts are integers in minor units already (cents for 2 decimals), as
    the simulator's history holds them, rather than currency amounts to scale and round.
    """
    if not isinstance(transactions, pd.DataFrame):
        raise DataError(f"transactions must be a pandas DataFrame, not {type(transactions).__name__}")
    df = transactions.reset_index(drop=True)
    n = len(df)
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        avail = ", ".join(map(str, df.columns)) or "none"
        hints = "".join(_suggest(c, df.columns) for c in missing)
        raise DataError(f"transactions lack the column(s) {', '.join(missing)}; available: {avail}{hints}")
    needed, needed_cust = needed_columns(model)
    for col in sorted(needed):
        if col not in df.columns:
            users = [r.name for r in (*model.firing, *model.discounts) if col in r.names or (col == "quantity" and r.kind in ("per_unit", "buy_get"))]
            raise DataError(
                f"column `{col}` is used by rule(s) {', '.join(users) or '(assert)'} but the transactions do not have it; "
                f"available: {', '.join(map(str, df.columns))}{_suggest(col, df.columns)}"
            )

    ids = df["customer_id"]
    id_codes, id_uniques = _used(*_encode(ids))
    blank_u = _blank(id_uniques)
    bad = (id_codes < 0) | blank_u[id_codes] if blank_u.any() else id_codes < 0
    if bad.any():
        raise DataError(f"column customer_id: empty customer ids at {_rows(bad)}")

    ts = parse_datetimes(df["timestamp"])
    tsv = ts.to_numpy(dtype="datetime64[ns]")
    bad = np.isnat(tsv)
    if bad.any():
        raise DataError(f"column timestamp: values that are not date-times at {_rows(bad)}; write them like 2026-03-01 14:30:00")

    ev_codes, ev_names = event_codes(df["event"] if "event" in df.columns else None, n)
    code = {name: i for i, name in enumerate(ev_names)}
    ev_purchase = ev_codes == code.get(B.PURCHASE, -2)
    ev_refund = ev_codes == code.get(B.REFUND, -2)
    ev_redeem = ev_codes == code.get(B.REDEEM, -2)
    # Redeem, enroll and other event rows carry no money: a blank amount there is 0.
    if minor_units:
        if not pd.api.types.is_integer_dtype(df["amount"].dtype):
            raise DataError(f"column amount: minor units must be integers, not {df['amount'].dtype}")
        minor = df["amount"].to_numpy(dtype=np.int64, copy=True)  # refunds are negated in place below
    else:
        minor, _, largest = to_minor_units(_amounts(df["amount"], ~(ev_purchase | ev_refund)), model.decimals)
        if largest > 2**53:
            raise DataError("column amount: amounts too large to hold exactly")

    kind = np.full(n, EVENT, dtype=np.int8)
    purchase, refund = money_kinds(ev_purchase, ev_refund, minor)
    kind[purchase] = PURCHASE
    kind[refund] = REFUND
    kind[ev_redeem] = REDEEM

    if "reward" in df.columns:
        rw_codes, rw_texts = _text_codes(df["reward"])
    else:
        rw_codes, rw_texts = np.zeros(n, dtype=np.int32), pd.Index([""], dtype=object)
    if ev_redeem.any():
        known = {r.name for r in model.rewards}
        unknown_text = ~np.asarray(rw_texts.isin(list(known)), dtype=bool)
        unknown = ev_redeem & unknown_text[rw_codes]
        if unknown.any():
            first = rw_texts[rw_codes[np.flatnonzero(unknown)[0]]]
            raise DataError(
                f"column reward: redeem rows name rewards the program does not have at {_rows(unknown)} "
                f"({f'e.g. `{first}`{_suggest(first, known)}' if first else 'a redeem row needs the reward it redeems'}); "
                f"rewards: {', '.join(sorted(known)) or 'none'}"
            )

    points_paid = _points_paid(df[POINTS_PAID], kind) if model.pay_with_points is not None and POINTS_PAID in df.columns else None

    # Members in id order: sort the distinct ids, not the rows.
    try:
        # Ascending already (a sorted file's ids): no argsort of the distinct ids.
        perm = None if arrowtext.ascending(id_uniques) else np.asarray(id_uniques.argsort())
        if perm is None or (perm == np.arange(len(perm))).all():
            member_codes, member_ids = id_codes, id_uniques
        else:
            rank = np.empty_like(perm)
            rank[perm] = np.arange(len(perm))
            member_codes, member_ids = rank[id_codes], id_uniques.take(perm)
    except TypeError:  # ids of mixed types: let pandas order them
        member_codes, member_ids = pd.factorize(ids, sort=True)
    member_codes = member_codes.astype(np.int32, copy=False)
    grouped = n < 2 or bool((member_codes[1:] >= member_codes[:-1]).all())
    order = None if grouped else np.argsort(member_codes, kind="stable")

    def take(a: np.ndarray) -> np.ndarray:
        return a if order is None else a[order]

    m_sorted = take(member_codes)
    t_sorted = take(tsv)
    same_member = np.r_[False, m_sorted[1:] == m_sorted[:-1]]
    backwards = same_member & np.r_[False, t_sorted[1:] < t_sorted[:-1]]
    if backwards.any():
        raise DataError(
            f"column timestamp: rows are not in time order within a customer at {_rows(backwards, order)}; "
            "sort the transactions by customer_id and timestamp (a stable sort keeps basket lines together)"
        )

    k_sorted = take(kind)
    tx_sorted, blank_tx, tx_texts, tx_column = _transaction_ids(df, n, m_sorted, order)
    unit, refund_of, problem = _baskets(m_sorted, t_sorted.view(np.int64), k_sorted, tx_sorted, blank_tx, len(tx_texts))
    if problem:
        _basket_problem(same_member, k_sorted, tx_sorted, t_sorted, m_sorted, blank_tx, tx_texts, order)

    frame = df if order is None else df.take(order).reset_index(drop=True)
    columns = {c: frame[c] for c in frame.columns}
    columns.update(
        timestamp=t_sorted,
        amount=take(minor),
        event=_categorical(take(ev_codes), ev_names),
        transaction_id=tx_column,
        reward=_categorical(take(rw_codes), rw_texts),
        row=np.arange(n, dtype=np.int64) if order is None else order.astype(np.int64),
        member=m_sorted,
        kind=k_sorted,
        unit=unit,
        refund_of=refund_of,
    )
    if points_paid is not None:
        columns[POINTS_PAID] = take(points_paid)
    frame = pd.DataFrame(columns, copy=False)

    members = len(member_ids)
    cust = _prepare_customers(customers, member_ids, needed_cust)
    last = pd.Timestamp(tsv.max()) if n else None
    if until is None:
        until_ts = last if n else pd.Timestamp("1970-01-01")
    else:
        until_ts = pd.Timestamp(until)
        if n and until_ts < last:
            raise DataError(f"until ({until_ts}) is before the last transaction ({last})")
    return Batch(frame, cust, model.decimals, until_ts, members)


def check_pay_draws(model: Model, frame: pd.DataFrame, redemption: RedemptionPolicy | None) -> None:
    """Refuse a policy that pays with points on a batch with neither its draws nor recorded
    payments, rather than pay nothing without a word (both engines call it before running)."""
    if model.pay_with_points is None or redemption is None or redemption.pay_probability <= 0 or POINTS_PAID in frame.columns:
        return
    if redemption.pay_draw not in frame.columns:
        raise DataError(f"the redemption policy pays with points (probability {redemption.pay_probability}) but the transactions have no "
                        f"`{redemption.pay_draw}` column of draws in [0, 1); add one per row, or record the payments in a `{POINTS_PAID}` column")


def _points_paid(values: pd.Series, kind: np.ndarray) -> np.ndarray:
    """The `points_paid` column as int64 points (blank: 0): whole, not negative, and only on purchase rows."""
    if isinstance(values.dtype, pd.CategoricalDtype) or values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        text = values.astype("string").str.strip()
        values = text.where(text != "")
    given = values.notna().to_numpy()
    x = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        bad = given & (np.isnan(x) | (x < 0) | (x != np.floor(x)) | (x >= 2**53))
    if bad.any():
        raise DataError(f"column {POINTS_PAID}: values that are not whole numbers of points (0 or more) at {_rows(bad)}; "
                        "write the points the purchase row paid with, like 500, or leave it blank")
    out = np.where(given, np.nan_to_num(x), 0).astype(np.int64)
    elsewhere = (out != 0) & (kind != PURCHASE)
    if elsewhere.any():
        raise DataError(f"column {POINTS_PAID}: points paid on rows that are not purchases at {_rows(elsewhere)}; "
                        "only a purchase is paid with points: leave the cell blank (or 0) on refunds, redemptions and events")
    return out


def _transaction_ids(df: pd.DataFrame, n: int, member: np.ndarray, order: np.ndarray | None):
    """The ids of the rows in grouped order (`order`, None: as they are) as (codes, blank code,
    texts, Batch column): equal codes of one member are equal ids. Arrow text is compared from its
    bytes, per member (`rulelang.engine.arrowtext`: codes are row positions, no dictionary is built);
    any other column is dictionary-encoded."""
    if "transaction_id" not in df.columns:
        codes, texts = np.zeros(n, dtype=np.int32), pd.Index([""], dtype=object)
        return codes, 0, texts, _categorical(codes, texts)
    ids = df["transaction_id"]
    if arrowtext.is_arrow_text(ids):
        ids = (ids if order is None else ids.take(order)).reset_index(drop=True)
        # Missing reads as "", as a categorical column gives it.
        return arrowtext.member_codes(member, ids), -1, ids.array, ids.fillna("") if ids.hasnans else ids
    codes, texts = _text_codes(ids)
    codes = codes if order is None else codes[order]
    # The texts are distinct: at most one is "".
    blank = np.flatnonzero(np.asarray(texts == "", dtype=bool))
    return codes, int(blank[0]) if len(blank) else -1, texts, _categorical(codes, texts)


# ISO 8601 as the loader accepts it by default: a date, optionally a time (minutes, optionally
# seconds and a fraction) after `T` or a space, optionally a time zone offset after the time.
# Nothing else is guessed: `03/04/2026` is March or April depending on the reader, and `now` is
# whenever the run happens (a scenario names any other layout: `timestamp_format`).
_DATE_TIME = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?"
_OFFSET = r"(?P<offset>Z|[+-]\d{2}(?::?\d{2})?)$"
_ISO_LOCAL = f"^{_DATE_TIME}$"
_ISO_ZONED = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)$"  # an offset only after a time
# The date-times a datetime64[ns] can hold (pandas' range): others are rejected, not wrapped.
FIRST_DATETIME, LAST_DATETIME = pd.Timestamp.min, pd.Timestamp.max
DATETIME_RANGE = f"{FIRST_DATETIME.ceil('D').date()} to {LAST_DATETIME.floor('D').date() - pd.Timedelta(days=1)}"
ISO_EXAMPLE = "ISO 8601, like 2026-03-01 or 2026-03-01 14:30:00"


@dataclass(frozen=True)
class DateTimes:
    """Date-times read from a column (`read_datetimes`): `values` (datetime64[ns], NaT where none
    was read), and per row whether the value is a date-time outside `DATETIME_RANGE` and which
    time zone offset it gave ("" for none; the offset is dropped, the local wall time kept; None
    when no value can have one: typed date-times, which need no array of empty texts)."""

    values: pd.Series
    out_of_range: np.ndarray
    offset: np.ndarray | None


def read_datetimes(values: pd.Series, format: str | None = None, *, distinct: bool = False) -> DateTimes:
    """Date-times from text (or typed date-times), per distinct value (`distinct`: the values are
    distinct already, as a Categorical's categories are): ISO 8601 by default (`_ISO_LOCAL`, or
    `_ISO_ZONED` with the offset dropped), else
    exactly the strftime `format`; what does not match is NaT."""
    n = len(values)
    if pd.api.types.is_datetime64_any_dtype(values):
        out = values.reset_index(drop=True)
        if getattr(out.dt, "tz", None) is not None:
            out = out.dt.tz_localize(None)
        if out.dtype == "datetime64[ns]":  # (every value is in the range: nothing to check)
            return DateTimes(out, np.zeros(n, dtype=bool), None)
        return _in_range(out, None)
    if format is not None and ("%z" in format or "%Z" in format):
        raise DataError(f"timestamp_format {format!r}: time zones are not read (%z, %Z); write the layout of the local time")
    if distinct:
        codes, uniques = np.arange(n), values.reset_index(drop=True)
    else:
        codes, uniques = pd.factorize(values.reset_index(drop=True), use_na_sentinel=True)
    text = _arrow_text(uniques)
    offset = np.full(len(text), "", dtype=object)
    far = np.zeros(len(text), dtype=bool)
    if format is None:
        # Checked and cut in Arrow (RE2, compiled once per call): a million distinct date-times in a
        # fraction of a second; pandas' own ISO 8601 parser then reads what passed.
        iso = _matches(text, _ISO_LOCAL)
        wall = text.to_numpy(zero_copy_only=False)
        if not iso.all():
            # Only what is not plain local time is looked at again for an offset (usually nothing).
            at = np.flatnonzero(~iso)
            zoned = _matches(text.take(at), _ISO_ZONED)
            if zoned.any():
                at = at[zoned]
                some = text.take(at)
                iso[at] = True
                offset[at] = pc.extract_regex(some, _OFFSET).field("offset").to_numpy(zero_copy_only=False)
                wall[at] = pc.replace_substring_regex(some, _OFFSET, "").to_numpy(zero_copy_only=False)
        wall = pd.Series(wall, dtype=object)
        parsed = pd.to_datetime(wall.where(iso, None), format="ISO8601", errors="coerce")
        lost = iso & parsed.isna().to_numpy()
        if lost.any():
            # A date of a year outside the range that pandas read as nothing (when another value's
            # fraction of a second made it read them all in nanoseconds).
            year = pd.to_numeric(wall[lost].str[:4], errors="coerce").to_numpy()
            far[lost] = (year < FIRST_DATETIME.year) | (year > LAST_DATETIME.year)
    else:
        given = pd.Series(text.to_numpy(zero_copy_only=False), dtype=object)
        # pandas reads `now` and `today` as the time of the run whatever the format: not a date here.
        parsed = pd.to_datetime(given.where(~given.isin(["now", "today"]), None), format=format, errors="coerce")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_localize(None)
    if distinct:
        return _in_range(parsed, offset, far)
    # Missing cells (code -1) read as the extra last entry: missing, no offset.
    known = parsed.to_numpy()
    parsed = pd.Series(np.append(known, np.array(["NaT"], dtype=known.dtype))[codes])
    return _in_range(parsed, np.append(offset, "")[codes], np.append(far, False)[codes])


def _matches(text: pa.Array, pattern: str) -> np.ndarray:
    """Whether each text matches the RE2 `pattern` (missing: no), as a writable NumPy array."""
    return np.array(pc.fill_null(pc.match_substring_regex(text, pattern), False).to_numpy(zero_copy_only=False), dtype=bool)


def _arrow_text(values) -> pa.Array:
    """Distinct values as Arrow text, edge spaces stripped (missing stays missing); values that are
    not text (dates, numbers of an object column) as `str` writes them."""
    values = pd.Series(values, copy=False)
    try:
        text = pa.array(values.array if isinstance(values.dtype, pd.StringDtype) else values.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        text = pa.array(values.astype("string").array, type=pa.large_string(), from_pandas=True)
    return pc.utf8_trim_whitespace(text)


def _in_range(out: pd.Series, offset: np.ndarray | None, far: np.ndarray | None = None) -> DateTimes:
    beyond = (out.notna() & ((out < FIRST_DATETIME) | (out > LAST_DATETIME))).to_numpy()
    far = beyond if far is None else far | beyond
    if far.any():
        out = out.where(~far)
    return DateTimes(out.astype("datetime64[ns]").reset_index(drop=True), far, offset)


def parse_datetimes(values: pd.Series, format: str | None = None) -> pd.Series:
    """Date-times (datetime64[ns]) from ISO 8601 text (or `format`), or typed date-times; what
    cannot be read, or lies outside `DATETIME_RANGE`, becomes NaT (`read_datetimes`)."""
    return read_datetimes(values, format).values.set_axis(values.index)


def _prepare_customers(customers: pd.DataFrame | None, member_ids, needed: set[str]) -> pd.DataFrame:
    base = pd.DataFrame({"customer_id": member_ids})
    if customers is None:
        if needed:
            raise DataError(
                f"the program reads customer.{sorted(needed)[0]} but no customers table was given; "
                "pass customers=DataFrame with customer_id and " + ", ".join(sorted(needed))
            )
        return base
    if "customer_id" not in customers.columns:
        raise DataError(f"customers lack the column customer_id; available: {', '.join(map(str, customers.columns))}")
    for col in sorted(needed):
        if col not in customers.columns:
            raise DataError(
                f"the program reads customer.{col} but the customers table has no `{col}` column; "
                f"available: {', '.join(map(str, customers.columns))}{_suggest(col, customers.columns)}"
            )
    if customers.columns.is_unique and _same_ids(customers["customer_id"], member_ids):
        # The usual case (io.load_customers gives one row per id in id order, and every customer
        # bought): the members' own rows, in order, with no join. The same frame as the merge below.
        c = customers.reset_index(drop=True)
        out = pd.DataFrame({"customer_id": member_ids, **{k: c[k] for k in c.columns if k != "customer_id"}}, copy=False)
        return _customer_dates(out, member_ids)
    c = customers.drop_duplicates("customer_id", keep="first")
    if len(c) and pd.api.types.is_numeric_dtype(c["customer_id"]) != pd.api.types.is_numeric_dtype(base["customer_id"]):
        c = c.assign(customer_id=c["customer_id"].astype(str))
        base = base.assign(customer_id=base["customer_id"].astype(str))
    out = base.merge(c, on="customer_id", how="left")
    return _customer_dates(out, member_ids)


def _customer_dates(out: pd.DataFrame, member_ids) -> pd.DataFrame:
    for col in ("birthday", "enrolled"):
        if col in out.columns:
            parsed = parse_datetimes(out[col])
            bad = parsed.isna().to_numpy() & out[col].notna().to_numpy()
            if bad.any():
                raise DataError(f"customers column {col}: values that are not dates at {_rows(bad)}")
            out[col] = parsed.astype("datetime64[ns]")
    out["customer_id"] = member_ids
    return out
