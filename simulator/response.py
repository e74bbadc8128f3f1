"""Response: how members change behaviour under the program (the revenue lift).

- `spend_uplift` scales each member purchase line by (1 + uplift of the member's tier). The tier
  is the one held before the row over the members' unchanged rows (the approximation: the uplift
  itself could lift a member into a higher tier sooner; that second-order effect is ignored): the
  engine's own, from a *first pass* of it, for a tier by points (and whenever the goal gradient
  runs one); read off the rows, for a tier by spend or visits otherwise.
- `goal_gradient` adds `uplift` to a purchase when, before it, the member's first-pass balance is
  within `within` x the cheapest reward's price of affording it (balance >= (1 - within) x price
  and < price), or the tier metric is within `within` x the next tier's threshold of reaching it.
- `visit_uplift` adds extra visits: each member purchase basket, with probability `visit_uplift`,
  is followed by an extra basket copying one of the member's own baskets (picked uniformly), at the
  midpoint between that basket and the member's next row (or the end of the period). The copy
  gets the uplift of the basket that spawned it and its own transaction id.
Amounts are rounded half-even to the minor unit after scaling. All draws are counter-based.
"""

from __future__ import annotations

import difflib

import numpy as np
import pandas as pd
from numba import njit

from rulelang.errors import LoyaltyError
from simulator import metrics, rng, tiers
from simulator.history import with_columns
from simulator.scenario import SegmentUplift
from simulator.segments import NO_HISTORY, SEGMENTS

STREAM_VISIT, STREAM_PICK = 31, 32


def tier_uplifts(response, model) -> np.ndarray:
    """The spend uplift of each tier level (one level when the program has no tiers)."""
    names = model.tiers.names if model.tiers else ()
    mapping = response.spend_uplift
    if hasattr(mapping, "items") and not isinstance(mapping, SegmentUplift):
        unknown = [t for t in mapping if t not in names]
        if unknown:
            known = ", ".join(names) or "none (the program has no tiers; give one number)"
            close = difflib.get_close_matches(unknown[0].casefold(), [s.casefold() for s in SEGMENTS], n=1, cutoff=0.75)
            hint = f" (or, for an uplift by segment, segments such as `{SEGMENTS[[s.casefold() for s in SEGMENTS].index(close[0])]}`)" if close else ""
            raise LoyaltyError(f"response.spend_uplift: `{unknown[0]}` is not a tier of the program; tiers: {known}{hint}")
    return np.array([response.spend_uplift_for(n) for n in names] or [response.spend_uplift_for("")], dtype=np.float64)


def tier_dependent(response, model) -> bool:
    """Whether the uplift depends on the member's tier (tiers whose uplifts differ)."""
    return model.tiers is not None and len(set(tier_uplifts(response, model))) > 1


def needs_first_pass(response, model) -> bool:
    """Whether the uplift depends on state only the engine knows (points-based tiers, balance).

    Tiers by spend or visits follow from the rows alone, so they need no engine pass.
    """
    by_points = tier_dependent(response, model) and model.tiers.metric == "points"
    by_status = tier_dependent(response, model) and not tiers.follow_rows(model.tiers)  # the engine's tiers, read off a first pass
    return by_points or by_status or response.goal_gradient is not None


def balance_before(ledger: pd.DataFrame, rows: pd.DataFrame, code_of: dict) -> np.ndarray:
    """Each row's balance before it: postings of earlier rows, and expiries up to its time."""
    n = len(rows)
    k = np.array(metrics.KINDS + ("",), dtype=object)[metrics.kind_codes(ledger)]
    sign = np.select([k == "earn", (k == "clawback") | (k == "redeem")], [1, -1], 0)
    pts = ledger["points"].to_numpy() * sign
    r = ledger["row"].to_numpy()
    expiry = k == "expire"
    per_row = np.bincount(r[~expiry & (r >= 0)], weights=pts[~expiry & (r >= 0)], minlength=n)
    c = np.concatenate([[0], np.cumsum(per_row)])
    m = rows["_m"].to_numpy()
    t = rows["timestamp"].to_numpy()
    member_start = tiers.lex_search(m, t, m, np.full(n, np.datetime64("1677-09-22", "ns")), "left")
    bal = c[np.arange(n)] - c[member_start]
    if expiry.any():
        em = pd.Series(ledger["customer_id"].to_numpy(dtype=object)[expiry]).map(code_of).to_numpy(dtype=np.int64)
        et = ledger.loc[expiry, "timestamp"].to_numpy()
        ce = np.concatenate([[0], np.cumsum(pts[expiry])])
        upto = tiers.lex_search(em, et, m, t, "right")
        first = tiers.lex_search(em, et, m, np.full(n, np.datetime64("1677-09-22", "ns")), "left")
        bal = bal + ce[upto] - ce[first]
    return bal.astype(np.int64)


def factors(response, model, rows: pd.DataFrame, first_pass, code_of: dict, decimals: int, seg=None) -> np.ndarray:
    """Per row: the share by which a member purchase line grows (0 elsewhere). `first_pass`: the
    engine's evaluation of the rows with each row's tier (`rulelang.engine` Evaluation), or None;
    `seg`: the customers' segments (simulator.segments), read for an uplift by segment."""
    if isinstance(response.spend_uplift, SegmentUplift):
        # By segment, not tier: the tiers' uplift is 0, and the goal gradient adds to it as ever.
        return _tier_factors(response, model, rows, first_pass, code_of, decimals) + segment_factors(response.spend_uplift, seg, rows)
    return _tier_factors(response, model, rows, first_pass, code_of, decimals)


def segment_factors(uplift, seg, rows: pd.DataFrame) -> np.ndarray:
    """Per row: the uplift of its customer's segment on a purchase (0 elsewhere); a customer the
    segmentation does not know (a new customer of a horizon) has no history."""
    table = np.array([float(uplift.get(name, 0.0)) for name in SEGMENTS], dtype=np.float64)
    m = rows["_m"].to_numpy()
    n = len(seg.segment)
    own = np.full(len(m), SEGMENTS.index(NO_HISTORY), dtype=np.int64)
    known = m < n
    own[known] = seg.segment[m[known]]
    return np.where(rows["_purchase"].to_numpy(), table[own], 0.0)


def _tier_factors(response, model, rows: pd.DataFrame, first_pass, code_of: dict, decimals: int) -> np.ndarray:
    uplifts = tier_uplifts(response, model)
    n = len(rows)
    level = np.zeros(n, dtype=np.int64)
    metric = np.zeros(n, dtype=np.int64)
    gg = response.goal_gradient
    if model.tiers is not None and (tier_dependent(response, model) or gg is not None):
        if first_pass is not None:
            # The engine's tier before each row (and the metric it progresses by), by row number.
            level = _by_position(first_pass.row_tier, n)
            metric = _by_position(first_pass.row_metric, n)
        elif model.tiers.metric != "points" and tiers.follow_rows(model.tiers):
            contrib = tiers.contributions(model.tiers, rows)
            if gg is None:
                # Only the level matters: each row's uplift found with it, in one pass.
                return tiers.uplift_before_rows(model.tiers, decimals, rows["_m"].to_numpy(), rows["timestamp"].to_numpy(), contrib, uplifts, rows["_purchase"].to_numpy())
            level, metric = tiers.before_rows(model.tiers, decimals, rows["_m"].to_numpy(), rows["timestamp"].to_numpy(), contrib)
    f = uplifts[np.minimum(level, len(uplifts) - 1)]
    if gg is not None and first_pass is not None:
        near = np.zeros(n, dtype=bool)
        if model.rewards:
            price = min(r.points for r in model.rewards)
            bal = balance_before(first_pass.ledger, rows, code_of)
            near |= (bal < price) & (bal >= (1 - gg.within) * price)
        if model.tiers is not None:
            limits = tiers.thresholds(model.tiers, decimals)
            nxt = np.minimum(level + 1, len(limits) - 1)
            has_next = level + 1 < len(limits)
            goal = limits[nxt]
            near |= has_next & (metric < goal) & (metric >= (1 - gg.within) * goal)
        f = f + np.where(near, gg.uplift, 0.0)
    return np.where(rows["_purchase"].to_numpy(), f, 0.0)


def _by_position(values: np.ndarray, n: int) -> np.ndarray:
    """A per-row-number array of the engine's, as int64 over the n rows (0 for a row it did not see)."""
    out = np.zeros(n, dtype=np.int64)
    size = min(len(values), n)
    out[:size] = np.maximum(values[:size], 0)
    return out


def extra_visits(rows: pd.DataFrame, share: float, keys: np.ndarray, seed: int, run: int, until: pd.Timestamp) -> pd.DataFrame:
    """Extra baskets copied from each member's own baskets; `_spawn` is the spawning row's input row."""
    if share <= 0 or rows.empty:
        return rows.iloc[0:0]
    visit = rows["_visit"].to_numpy()
    if "_extra" in rows.columns:
        visit = visit & ~rows["_extra"].to_numpy()
    starts = np.flatnonzero(visit)
    m = rows["_m"].to_numpy()
    row = rows["_row"].to_numpy()
    spawn, src = _spawning(
        starts,
        np.asarray(m, dtype=np.int64),
        np.asarray(keys, dtype=np.uint64),
        np.asarray(row, dtype=np.int64),
        float(share),
        rng.stream_prefix(seed, run, STREAM_VISIT),
        rng.stream_prefix(seed, run, STREAM_PICK),
    )
    if not len(spawn):
        return rows.iloc[0:0]
    # Lines of a basket run from its start to the next row that is not one of its lines.
    n_lines = basket_ends(rows, src) - src
    line_pos = np.repeat(src, n_lines) + _ranges(n_lines)
    spawn_rep = np.repeat(spawn, n_lines)
    spawn_end = np.repeat(basket_ends(rows, spawn), n_lines) - 1  # last line of the spawning basket
    t = rows["timestamp"].to_numpy()
    nxt = np.minimum(spawn_end + 1, len(rows) - 1)
    same = (spawn_end + 1 < len(rows)) & (m[nxt] == m[spawn_rep])
    later = np.where(same, t[nxt], np.datetime64(until, "ns"))
    t0 = t[spawn_rep].view("int64")
    own = {
        "timestamp": (t0 + (later.view("int64") - t0) // 2).view("datetime64[ns]"),
        "_ord": rows["_ord"].to_numpy()[spawn_end] + 2,
        "_spawn": row[spawn_rep],
        "_extra": np.ones(len(line_pos), dtype=bool),
        "_enroll": np.zeros(len(line_pos), dtype=bool),
    }
    if "transaction_id" in rows.columns:
        own["transaction_id"] = "~extra" + pd.Series(own["_spawn"]).astype(str).to_numpy()
    return with_columns(rows.iloc[line_pos].reset_index(drop=True), own)


@njit(cache=True, nogil=True)
def _spawning(starts, m, keys, row, share, p_visit, p_pick):
    # Per basket start (`starts`, rows grouped by member): whether it spawns an extra basket (its
    # visit draw < share), and if so which of its member's baskets it copies, picked uniformly by
    # its pick draw. Draws are keyed by row, so drawing only for the spawning baskets gives each
    # the same pick. Returns (spawning starts, copied starts).
    ns = starts.shape[0]
    spawn = np.empty(ns, dtype=np.int64)  # (only what is written is touched)
    src = np.empty(ns, dtype=np.int64)
    found = 0
    a = 0
    while a < ns:
        member = m[starts[a]]
        b = a + 1
        while b < ns and m[starts[b]] == member:
            b += 1
        key = keys[member]
        for q in range(a, b):
            s = starts[q]
            if rng.draw(key, np.uint64(row[s]), p_visit) < share:
                u = rng.draw(key, np.uint64(row[s]), p_pick)
                spawn[found] = s
                src[found] = starts[a + np.int64(np.floor(u * (b - a)))]
                found += 1
        a = b
    return spawn[:found], src[:found]


def merged(rows: pd.DataFrame, extra: pd.DataFrame, drop: tuple = ()) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows with the extra rows inserted in `_ord` order, and a mask of where they went;
    the columns of `drop` (`_ord` itself, say) are not carried over.

    Both are in `_ord` order and an extra row's `_ord` is never a row's, so this is a merge, not a
    sort: each column is written once into its place.
    """
    ins = np.searchsorted(rows["_ord"].to_numpy(), extra["_ord"].to_numpy())
    at = ins + np.arange(len(extra))
    is_extra = np.zeros(len(rows) + len(extra), dtype=bool)
    is_extra[at] = True
    out = {}
    for c in (c for c in rows.columns if c not in drop):
        a, b = rows[c], extra[c]
        if isinstance(a.dtype, pd.CategoricalDtype) and a.dtype == b.dtype:
            out[c] = pd.Categorical.from_codes(interleave(a.cat.codes.to_numpy(), b.cat.codes.to_numpy(), is_extra), dtype=a.dtype, validate=False)
        else:
            out[c] = interleave(a.to_numpy(), b.to_numpy(), is_extra)
    return pd.DataFrame(out, copy=False), is_extra


def interleave(a: np.ndarray, b: np.ndarray, is_b: np.ndarray) -> np.ndarray:
    """`a`'s values where `is_b` is false and `b`'s where it is true, each in order."""
    object_ = a.dtype == object or b.dtype == object
    out = np.empty(len(is_b), dtype=object if object_ else np.result_type(a, b))
    if len(a) + len(b) != len(is_b) or int(np.count_nonzero(is_b)) != len(b):
        raise ValueError(f"interleave: {len(a)} + {len(b)} values for {len(is_b)} places, {int(np.count_nonzero(is_b))} of them b's")
    if not object_ and out.dtype.kind in "biufM" and a.dtype == out.dtype == b.dtype:
        # One pass in numba (two masked assignments read and write every row twice); date-times as their integers.
        as_int = out.dtype.kind == "M"
        _interleave(*(x.view(np.int64) if as_int else x for x in (a, b)), is_b, out.view(np.int64) if as_int else out)
        return out
    out[~is_b] = a
    out[is_b] = b
    return out


@njit(cache=True, nogil=True)
def _interleave(a, b, is_b, out):
    ia = 0
    ib = 0
    for i in range(is_b.shape[0]):
        if is_b[i]:
            out[i] = b[ib]
            ib += 1
        else:
            out[i] = a[ia]
            ia += 1


def basket_ends(rows: pd.DataFrame, at: np.ndarray) -> np.ndarray:
    """For the rows `at` (basket starts), one past the last row of the basket each starts: the next
    row that starts something new (a basket, or any row that is not a purchase line), else the end.
    Walked to from each row asked about (a few lines each), not worked out for every row."""
    return _ends(rows["_visit"].to_numpy(), rows["_purchase"].to_numpy(), np.asarray(at, dtype=np.int64))


@njit(cache=True, nogil=True)
def _ends(visit, purchase, at):
    n = visit.shape[0]
    out = np.empty(at.shape[0], dtype=np.int64)
    for i in range(at.shape[0]):
        e = at[i] + 1
        while e < n and purchase[e] and not visit[e]:
            e += 1
        out[i] = e
    return out


def _ranges(lengths: np.ndarray) -> np.ndarray:
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.arange(total) - starts


def scaled(rows: pd.DataFrame, f: np.ndarray) -> np.ndarray:
    """Amounts (minor units) with member purchase lines scaled by (1 + f), rounded half-even."""
    minor = np.asarray(rows["_minor"].to_numpy(), dtype=np.int64)
    return _scaled(minor, np.asarray(f, dtype=np.float64), rows["_purchase"].to_numpy())


@njit(cache=True, nogil=True)
def _scaled(minor, f, purchase):
    # np.rint rounds half to even, as np.round does; one pass instead of five.
    out = np.empty(minor.shape[0], dtype=np.int64)
    for i in range(minor.shape[0]):
        out[i] = np.int64(np.rint(minor[i] * (1.0 + f[i]))) if purchase[i] else minor[i]
    return out


def apply(rows: pd.DataFrame, f: np.ndarray) -> pd.DataFrame:
    """Member purchase lines scaled by (1 + f), rounded half-even to the minor unit."""
    return rows.assign(_minor=scaled(rows, f))
