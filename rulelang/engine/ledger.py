"""The ledger: one posting per change to a member's points (columns in docs/semantics.md).

Both engines build their result with `frame`, so dtypes and column order are identical and
ledgers can be compared posting for posting with `pandas.testing.assert_frame_equal`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

# `discount`: money a discount took off a basket (cost, partner share; no points), negative when
# a refund reverses it; `benefit`: what a benefit given cost (cost, partner share; no points).
KINDS = ("earn", "capped", "clawback", "shortfall", "redeem", "expire", "discount", "benefit")
EARN, CAPPED, CLAWBACK, SHORTFALL, REDEEM, EXPIRE, DISCOUNT, BENEFIT = range(len(KINDS))
COLUMNS = ("customer_id", "timestamp", "kind", "rule", "points", "earned_on", "reward", "cost", "partner_share", "row", "tier")
# Direction of each kind in the balance: earn adds, clawback/redeem/expire take, the rest inform.
SIGN = {"earn": 1, "capped": 0, "clawback": -1, "shortfall": 0, "redeem": -1, "expire": -1, "discount": 0, "benefit": 0}


def id_dtype(customer_ids) -> pd.CategoricalDtype:
    """The ledger's `customer_id` dtype: a categorical over the member ids (in member order)."""
    if isinstance(customer_ids, pd.CategoricalDtype):
        return customer_ids
    ids = pd.Index(customer_ids)
    if ids.dtype == object:
        ids = pd.Index(ids.to_numpy())  # inferred again: text ids get the text dtype however they came
    return pd.CategoricalDtype(ids.rename(None))


def _names(names) -> pd.CategoricalDtype:
    # Object categories: `.to_numpy()` and comparisons on a few short names stay cheap.
    return pd.CategoricalDtype(pd.Index(list(names), dtype=object))


KIND_DTYPE = _names(KINDS)


def frame(
    customer_ids,
    member: np.ndarray,
    timestamp: np.ndarray,
    kind: np.ndarray,
    rule: np.ndarray,
    points: np.ndarray,
    earned_on: np.ndarray,
    reward: np.ndarray,
    cost: np.ndarray,
    partner_share: np.ndarray,
    row: np.ndarray,
    rule_names: tuple[str, ...],
    reward_names: tuple[str, ...],
    tier: np.ndarray,
    tier_names: tuple[str, ...],
    shifted: bool = False,
) -> pd.DataFrame:
    """Assemble a ledger from code arrays: `member` indexes `customer_ids` (or `id_dtype`'s
    categories), `kind` indexes KINDS, `rule`/`reward`/`tier` index the names (-1 for none; or,
    when `shifted`, 0 for none and the name's index + 1; a program without tiers has no tier
    names and every posting none), `earned_on` is datetime64[ns] (NaT for none).
    Text columns are categoricals built from the codes, without copying or converting a string per
    posting; numeric arrays of the right dtype, and codes of the type `code_dtype` gives, are not copied."""
    rule_dtype = _names(("",) + tuple(rule_names))
    reward_dtype = _names(("",) + tuple(reward_names))
    tier_dtype = _names(("",) + tuple(tier_names))
    columns = {
        "customer_id": pd.Categorical.from_codes(np.asarray(member), dtype=id_dtype(customer_ids), validate=False),
        "timestamp": np.asarray(timestamp, dtype="datetime64[ns]"),
        "kind": pd.Categorical.from_codes(np.asarray(kind), dtype=KIND_DTYPE, validate=False),
        "rule": pd.Categorical.from_codes(np.asarray(rule), dtype=rule_dtype, validate=False) if shifted else _shifted_codes(np.asarray(rule), rule_dtype),
        "points": np.asarray(points, dtype=np.int64),
        "earned_on": np.asarray(earned_on, dtype="datetime64[ns]"),
        "reward": pd.Categorical.from_codes(np.asarray(reward), dtype=reward_dtype, validate=False) if shifted else _shifted_codes(np.asarray(reward), reward_dtype),
        "cost": np.asarray(cost, dtype=np.int64),
        "partner_share": np.asarray(partner_share, dtype=np.int64),
        "row": np.asarray(row, dtype=np.int64),
        "tier": pd.Categorical.from_codes(np.asarray(tier), dtype=tier_dtype, validate=False) if shifted else _shifted_codes(np.asarray(tier), tier_dtype),
    }
    return pd.DataFrame(columns, columns=list(COLUMNS), copy=False)


class Evaluation(NamedTuple):
    """What an engine reports of a batch: the ledger and, when asked, the members at each tier at
    given moments and each row's tier (`rulelang.engine.evaluate_batch`)."""

    ledger: pd.DataFrame
    # (moments, tiers): members at each tier at each moment (the tier held then, counting every
    # unit at or before it), from the moment of their first row on; a program without tiers has
    # one level.
    tier_counts: np.ndarray
    # Indexed by the batch's row numbers (the ledger's `row`; -1 where a number is not a row of
    # the batch): the tier held before the row's unit and the tier metric then (for calendar-year
    # tiers, this year's). Empty unless asked for.
    row_tier: np.ndarray = np.zeros(0, dtype=np.int8)
    row_metric: np.ndarray = np.zeros(0, dtype=np.int64)


def by_row(row_ids: np.ndarray, tier: np.ndarray, metric: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row values in batch order, placed at the rows' numbers (-1 and 0 elsewhere)."""
    size = int(row_ids.max()) + 1 if len(row_ids) else 0
    by_tier = np.full(size, -1, dtype=tier.dtype)
    by_metric = np.zeros(size, dtype=np.int64)
    by_tier[row_ids] = tier
    by_metric[row_ids] = metric
    return by_tier, by_metric


def code_dtype(categories: int) -> type:
    """The integer type pandas keeps the codes of a Categorical with this many categories in."""
    return np.int8 if categories < 2**7 else np.int16 if categories < 2**15 else np.int32 if categories < 2**31 else np.int64


def _shifted_codes(codes: np.ndarray, dtype: pd.CategoricalDtype) -> pd.Categorical:
    """Codes -1.. (-1 for none) as a Categorical of `dtype`, whose first category is the empty name:
    shifted by one straight into the narrow integer type pandas keeps codes in (one pass, not an
    add and then a narrowing copy)."""
    narrow = code_dtype(len(dtype.categories))
    shifted = np.add(codes, 1, out=np.empty(len(codes), dtype=narrow), casting="unsafe") if len(codes) else np.zeros(0, dtype=narrow)
    return pd.Categorical.from_codes(shifted, dtype=dtype, validate=False)


def balances(ledger: pd.DataFrame) -> pd.Series:
    """Each member's balance: earned - clawed back - redeemed - expired."""
    sign = ledger["kind"].map(SIGN).to_numpy()
    return (ledger["points"] * sign).groupby(ledger["customer_id"], sort=True).sum()
