"""The ledger: one posting per change to a member's points (columns in docs/semantics.md).

Both engines build their result with `frame`, so dtypes and column order are identical and
ledgers can be compared posting for posting with `pandas.testing.assert_frame_equal`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

KINDS = ("earn", "capped", "clawback", "shortfall", "redeem", "expire")
EARN, CAPPED, CLAWBACK, SHORTFALL, REDEEM, EXPIRE = range(len(KINDS))
COLUMNS = ("customer_id", "timestamp", "kind", "rule", "points", "earned_on", "reward", "cost", "partner_share", "row")
# Direction of each kind in the balance: earn adds, clawback/redeem/expire take, the rest inform.
SIGN = {"earn": 1, "capped": 0, "clawback": -1, "shortfall": 0, "redeem": -1, "expire": -1}


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
) -> pd.DataFrame:
    """Assemble a ledger from code arrays: `member` indexes `customer_ids`, `kind` indexes KINDS,
    `rule`/`reward` index the names (-1 for none), `earned_on` is datetime64[ns] (NaT for none)."""
    rules = np.array(("",) + tuple(rule_names), dtype=object)
    rewards = np.array(("",) + tuple(reward_names), dtype=object)
    ids = pd.Index(customer_ids)
    member = np.asarray(member, dtype=np.int64)
    out = pd.DataFrame(
        {
            "customer_id": ids.take(member),
            "timestamp": np.asarray(timestamp, dtype="datetime64[ns]"),
            "kind": np.array(KINDS, dtype=object)[np.asarray(kind, dtype=np.int64)],
            "rule": rules[np.asarray(rule, dtype=np.int64) + 1],
            "points": np.asarray(points, dtype=np.int64),
            "earned_on": np.asarray(earned_on, dtype="datetime64[ns]"),
            "reward": rewards[np.asarray(reward, dtype=np.int64) + 1],
            "cost": np.asarray(cost, dtype=np.int64),
            "partner_share": np.asarray(partner_share, dtype=np.int64),
            "row": np.asarray(row, dtype=np.int64),
        },
        columns=list(COLUMNS),
    )
    # Text columns get one dtype whether or not the ledger is empty, so ledgers compare equal.
    return out.astype({"kind": "str", "rule": "str", "reward": "str"})


def balances(ledger: pd.DataFrame) -> pd.Series:
    """Each member's balance: earned - clawed back - redeemed - expired."""
    sign = ledger["kind"].map(SIGN).to_numpy()
    return (ledger["points"] * sign).groupby(ledger["customer_id"], sort=True).sum()
