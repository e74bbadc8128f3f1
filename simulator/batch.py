"""The engine's input for every path, validated once.

`base(history, model, customers)` runs the engine's data contract (`rulelang.engine.data.prepare`) once
over the whole replayed history, keeping only the columns the program reads. A path's rows are a
selection of history rows (`_pos`) plus rows the simulator adds (enrol rows, extra visits), with
amounts overridden; `for_path` gathers them from the base as a `Batch` without validating again:
every row it gathers was validated by the base, and what it changes (amounts scaled, added rows)
keeps the contract (amounts stay on the same side of zero, added baskets have their own
transaction ids, rows stay in time order per member). Text columns are pandas Categoricals, so a
gather moves integer codes, not strings.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
from numba import njit

from rulelang.engine import ENROLL, EVENT, Batch, Origin, arrowtext, needed_columns, prepare
from simulator.history import History, engine_frame, gather

CANONICAL = ("customer_id", "timestamp", "amount", "event", "transaction_id", "reward")
# Columns `for_path` computes for the path itself rather than gathering from the base.
OWN = ("row", "member", "customer_id", "timestamp", "amount", "event", "kind", "transaction_id", "reward", "unit", "refund_of")


def base(history: History, model, customers: pd.DataFrame | None) -> Batch:
    """The whole history as one validated Batch, in history order, text columns as Categoricals."""
    rows = history.rows
    cols, _ = needed_columns(model)
    # basket.<attribute> other than total/lines reads quantity when the data has it.
    keep = list(CANONICAL) + sorted((cols | {"quantity"}) - set(CANONICAL))
    if model.pay_with_points is not None:  # the payments a history records, replayed (docs/semantics.md)
        keep.append("points_paid")
    # Amounts stay in minor units: no division here to be scaled and rounded back in `prepare`.
    frame = engine_frame(rows[[c for c in rows.columns if c.startswith("_") or c in keep]], history.ids)
    b = prepare(frame, model, customers, history.until, minor_units=True)
    f = b.frame
    # History rows are sorted by (customer, time, input row), which prepare's order keeps.
    if not np.array_equal(f["row"].to_numpy(), np.arange(len(f))):
        raise AssertionError("the engine reordered the history; simulator.batch needs history order")
    out = {}
    for c in f.columns:
        v = f[c]
        # (A Categorical already is kept: astype("category") would only copy it.)
        # (Transaction ids held as Arrow text stay so: a dictionary of them is never needed.)
        if c not in ("timestamp", "row", "member", "amount", "kind", "unit", "refund_of") and not isinstance(v.dtype, pd.CategoricalDtype) and (
            pd.api.types.is_object_dtype(v) or pd.api.types.is_string_dtype(v)
        ) and not (c == "transaction_id" and arrowtext.is_arrow_text(v)):
            v = v.astype("category")
        out[c] = v
    # Member codes index the customers table (ids in sorted order), and so do the id categories.
    if not np.array_equal(out["customer_id"].cat.codes.to_numpy(), f["member"].to_numpy()):
        raise AssertionError("customer id categories differ from the engine's member codes")
    # Compared, not looked up with `in`: a lookup builds a hash table of every category.
    for col, name in (("event", ENROLL), ("reward", ""), ("transaction_id", "")):
        if isinstance(out[col].dtype, pd.CategoricalDtype) and not np.asarray(out[col].cat.categories == name, dtype=bool).any():
            out[col] = out[col].cat.add_categories([name])
    # copy=False: the columns are the base's own; stacking them into 2-D blocks is a full copy.
    # The id categories are the customers' ids in member order (the codes are the member codes,
    # checked above): they are the ledgers' customer_id dtype, not a second one built from the
    # customers table, which would hash every id again.
    ids = out["customer_id"].dtype
    return b.derive(pd.DataFrame(out, copy=False), id_dtype=ids if len(ids.categories) == len(b.customers) else None)


def _codes(col: pd.Series) -> np.ndarray:
    return col.cat.codes.to_numpy()


def _loc(categories: pd.Index, name) -> int:
    # By comparison: `get_loc` would build a hash table of every category (~100k ids).
    return int(np.flatnonzero(np.asarray(categories == name, dtype=bool))[0])


def _categorical(codes: np.ndarray, dtype: pd.CategoricalDtype) -> pd.Categorical:
    # Codes gathered from (or set to known positions of) the base's own categories are valid: no check.
    return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


def _unit_starts(b: Batch) -> np.ndarray:
    """The base's first row of each unit, computed once per base (every path's refunds look them up)."""
    def starts():
        u = b.frame["unit"].to_numpy()
        return np.flatnonzero(np.r_[True, u[1:] != u[:-1]])

    return b.cached(("simulator.batch", "unit_starts"), starts)


@njit(cache=True, nogil=True)
def _units(purchase, visit, src, enroll, extra, base_refund_of, unit_starts, member):
    # One pass for the units and the rows that refer to a base basket (refunds); then, the refunds' referred basket starts
    # (base rows) in order, one walk along the path's own rows, which are in history order (a
    # merge: no index of them and no search). Returns (unit, refund_of, own rows in order).
    # A copied refund (an added row: a new customer's, simulator.acquisition) refers to the copy
    # of its basket among the same member's added rows before it, looked for backwards.
    n = src.shape[0]
    unit = np.empty(n, dtype=np.int64)
    refund_of = np.full(n, -1, dtype=np.int64)
    u = -1
    count = 0
    last = -1
    in_order = True
    for i in range(n):
        u += not (purchase[i] and not visit[i])
        unit[i] = u
        if not (enroll[i] or extra[i]):
            in_order &= src[i] > last
            last = src[i]
            count += base_refund_of[src[i]] >= 0
        elif extra[i] and base_refund_of[src[i]] >= 0:
            want = unit_starts[base_refund_of[src[i]]]
            j = i - 1
            while j >= 0 and member[j] == member[i]:
                if extra[j] and not enroll[j] and src[j] == want:
                    refund_of[i] = unit[j]
                    break
                j -= 1
    at = np.empty(count, dtype=np.int64)
    target = np.empty(count, dtype=np.int64)
    k = 0
    for i in range(n):
        if not (enroll[i] or extra[i]) and base_refund_of[src[i]] >= 0:
            at[k] = i
            target[k] = unit_starts[base_refund_of[src[i]]]
            k += 1
    order = np.argsort(target)
    j = 0
    for q in range(count):
        want = target[order[q]]
        while j < n and (enroll[j] or extra[j] or src[j] < want):
            j += 1
        if j < n and src[j] == want:
            refund_of[at[order[q]]] = unit[j]
    return unit, refund_of, in_order


def for_path(
    b: Batch, rows: pd.DataFrame, exact_ids: bool = True, columns=None, span: tuple[int, int] | None = None, until: pd.Timestamp | None = None, cast: tuple | None = None
) -> Batch:
    """The Batch of a path's rows (history rows by `_pos`, enrol and extra rows flagged).

    `columns` (None: all) names the base's other columns the path carries: the compiled engine
    reads its conditions' shared parts from the base (`rulelang.engine.masks.copied_columns`).
    `span` (first, end), when given, holds every base row the path's rows come from: those shared
    parts are then evaluated over that stretch of the base only (`rulelang.engine.data.Origin`).

    Extra baskets get transaction ids of their own (`~extra<row>`) when `exact_ids`; otherwise,
    when no rule reads transaction_id, they are left blank: the engine groups baskets by `unit`
    and matches refunds by `refund_of`, never by the id's text, and blank ids save building
    new categories in every path.

    Future rows (`_future`, simulator.horizon) are copies like extra baskets, named `~future<n>`
    by their counter (`_spawn`); `until`, when given, is the path's end (a horizon's), up to which
    the engine posts expiries (default: the history's).

    `cast` (customers table, ledger id dtype), when given, holds the customers who join in the
    horizon (simulator.acquisition) after the base's own: member codes from the base's count on
    are theirs. Their rows are copies of other customers' rows (added rows, as future ones), whose
    attributes they carry, so what the engine gathers from the base still holds for them.
    """
    f = b.frame
    n = len(rows)
    src = rows["_pos"].to_numpy()
    if span is not None and n and not (span[0] <= src.min() and src.max() < span[1]):
        raise AssertionError("a path's rows come from outside its span of the base")
    enroll = rows["_enroll"].to_numpy()
    extra = rows["_extra"].to_numpy()
    future = rows["_future"].to_numpy() if "_future" in rows.columns else None
    # Rows that are no history row in its place: extra baskets and future ones.
    added = extra if future is None else extra | future
    out = {c: gather(f[c], src) for c in f.columns if c not in OWN and (columns is None or c in columns)}
    if "points_paid" in out and (added.any() or enroll.any()):
        # A payment the history records is its own basket's: an extra or future copy of the basket,
        # or an enrol row, pays nothing with points (the draws do not apply to a recorded history).
        paid = np.array(out["points_paid"], dtype=np.int64)
        paid[added | enroll] = 0
        out["points_paid"] = paid

    # The enrol rows (a few per cent) by position: each assignment below then touches only them.
    at_enroll = np.flatnonzero(enroll)
    event = _codes(f["event"])[src]
    event[at_enroll] = _loc(f["event"].cat.categories, ENROLL)
    kind = f["kind"].to_numpy()[src]
    kind[at_enroll] = EVENT
    reward = _codes(f["reward"])[src]
    reward[at_enroll] = _loc(f["reward"].cat.categories, "")
    ids = f["transaction_id"]
    if isinstance(ids.dtype, pd.CategoricalDtype):
        tx_cats, tx = ids.cat.categories, _codes(ids)[src]
    elif exact_ids:
        # Arrow text ids (rulelang.engine.arrowtext) that a rule reads: the path's own, as a categorical.
        own = pd.Categorical(np.append(ids.to_numpy(dtype=object)[src], ""))
        tx_cats, tx = own.categories, own.codes[:-1].copy()
    else:
        # Arrow text ids no rule reads: blank (baskets are grouped by `unit`, refunds by `refund_of`).
        tx_cats, tx = pd.Index([""], dtype=object), np.zeros(n, dtype=np.int8)
    tx[at_enroll] = tx[added] = _loc(tx_cats, "")
    if added.any() and exact_ids:
        # Each extra or future basket gets its own id, so no refund can match it: the key
        # 2 x counter (+1 for a future basket) keeps an extra visit spawned by a future basket apart from it.
        spawn = rows["_spawn"].to_numpy()[added].astype(np.int64)
        key = 2 * spawn + (future[added] if future is not None else 0)
        keys = np.unique(key)
        new = "~extra" + pd.Index(keys // 2).astype(str)
        if future is not None:
            new = pd.Index(np.where(keys % 2 == 1, "~future", "~extra").astype(object) + (keys // 2).astype(str).astype(object), dtype=object)
        tx = tx.astype(np.int64)  # the new codes need not fit the categories' narrow code type
        tx[added] = len(tx_cats) + np.searchsorted(keys, key)
        tx_cats = tx_cats.append(new)
    # Units (a basket's lines share one; every other row is its own), and each refund's unit: a
    # refund refers to a basket of the base, in the path to that basket's unit if the path kept it.
    unit, refund_of, in_order = _units(
        rows["_purchase"].to_numpy(),
        rows["_visit"].to_numpy(),
        np.asarray(src, dtype=np.int64),
        enroll,
        added,
        f["refund_of"].to_numpy(),
        _unit_starts(b),
        np.asarray(rows["_m"].to_numpy(), dtype=np.int64),
    )
    if not in_order:
        raise AssertionError("a path's own rows are not in history order")
    member = rows["_m"].to_numpy().astype(np.int64, copy=False)
    frame = pd.DataFrame(
        {
            "row": np.arange(n, dtype=np.int64),
            "member": member,
            "customer_id": _categorical(member, f["customer_id"].dtype if cast is None else cast[1]),
            "timestamp": rows["timestamp"].to_numpy(),
            "amount": rows["_minor"].to_numpy().astype(np.int64, copy=False),
            "event": _categorical(event, f["event"].dtype),
            "kind": kind,
            "transaction_id": _categorical(tx, ids.dtype if isinstance(ids.dtype, pd.CategoricalDtype) and tx_cats is ids.dtype.categories else pd.CategoricalDtype(tx_cats)),
            "reward": _categorical(reward, f["reward"].dtype),
            "unit": unit.astype(np.int64, copy=False),
            "refund_of": refund_of,
            **out,
            # The redemption draws ride along (set afterwards, each would be copied).
            **{col: rows[col].to_numpy() for col in ("_u_redeem", "_u_choice", "_u_pay") if col in rows.columns},
        },
        copy=False,  # the arrays are the path's own: no stacking them into 2-D blocks
    )
    # Conditions that read only what a path row shares with its history row are gathered from the base.
    # A horizon's path ends after the base's: derived from a copy of the base that ends there
    # (the rows still come from the base itself, whose masks and caches they share).
    ends = b if until is None or until == b.until else replace(b, until=until)
    if cast is not None:
        ends = replace(ends, customers=cast[0], members=len(cast[0]))
        return ends.derive(frame, Origin(b, src, added, span), id_dtype=cast[1])
    return ends.derive(frame, Origin(b, src, added, span))
