"""Redemption: the engine's policy and the draws it reads.

After each purchase basket the engine redeems at most one reward: if the member's draw
`_u_redeem < probability` and the balance affords a reward, it picks one by `choice`
(`cheapest | dearest | random`, the latter indexed by `_u_choice`). See docs/semantics.md.
Draws are keyed by (seed, run, customer, counter): the counter is the input row for replayed rows
and an offset one for rows the simulator adds, so no two rows of a customer share a draw.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit

from rulelang.engine import RedemptionPolicy
from simulator import rng

STREAM_REDEEM, STREAM_CHOICE = 21, 22
STREAM_PAY = 23  # paying with points (`redemption.pay_with_points`)
# Counters for added rows: enrol rows and extra visits live far above any input row number.
ENROLL_OFFSET = 1 << 41
EXTRA_OFFSET = 1 << 42


def policy(probability: float, choice: str, pay_with_points: float = 0.0) -> RedemptionPolicy:
    """The engine's redemption policy for these assumptions (`pay_with_points`: the chance a member
    pays a basket partly with points, for a program with `pay with points`)."""
    return RedemptionPolicy(float(probability), choice, pay_probability=float(pay_with_points))


def pay_draws(rows: pd.DataFrame, keys: np.ndarray, seed: int, run: int) -> np.ndarray:
    """Each row's paying-with-points draw (`_u_pay`), keyed as the redemption draws are (by
    customer and row counter, its own stream), so slices, threads and workers draw the same."""
    u_pay, _ = _drawn(rows, keys, rng.stream_prefix(seed, run, STREAM_PAY), rng.stream_prefix(seed, run, STREAM_PAY))
    return u_pay


def draws(rows: pd.DataFrame, keys: np.ndarray, seed: int, run: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's redemption draw and choice draw.

    The engine reads them only where a purchase basket starts (`_visit`), so only those rows are
    drawn (every row when the rows have no `_visit`); the others get 1.0, a draw that never
    redeems. Draws are keyed by row, so which rows are drawn changes no row's draw.
    """
    return _drawn(rows, keys, rng.stream_prefix(seed, run, STREAM_REDEEM), rng.stream_prefix(seed, run, STREAM_CHOICE))


def _drawn(rows: pd.DataFrame, keys: np.ndarray, first_stream, second_stream) -> tuple[np.ndarray, np.ndarray]:
    """Two draws per drawn row (`_draw_rows`) from two streams, the rows' columns read once."""
    none = np.zeros(0, dtype=bool)
    extra = "_extra" in rows.columns
    return _draw_rows(
        rows["_visit"].to_numpy() if "_visit" in rows.columns else none,
        np.asarray(rows["_m"].to_numpy(), dtype=np.int64),
        np.asarray(keys, dtype=np.uint64),
        np.asarray(rows["_row"].to_numpy(), dtype=np.int64),
        rows["_enroll"].to_numpy() if "_enroll" in rows.columns else none,
        rows["_extra"].to_numpy() if extra else none,
        np.asarray(rows["_spawn"].to_numpy(), dtype=np.int64) if extra else np.zeros(0, dtype=np.int64),
        first_stream,
        second_stream,
    )


@njit(cache=True, nogil=True)
def _draw_rows(visit, member, keys, row, enroll, extra, spawn, p_redeem, p_choice):
    # Both draws of every row in one pass (an empty `visit`: every row is drawn). A row's counter
    # is its input row, shifted for rows the simulator added (an extra visit's is its spawning
    # row's); an empty `enroll` or `extra` means the column is absent. (Written out: as an
    # inlined helper handed the arrays, the counter made the pass twice as slow.)
    n = member.shape[0]
    u_redeem = np.empty(n, dtype=np.float64)
    u_choice = np.empty(n, dtype=np.float64)
    every = visit.shape[0] == 0
    has_enroll = enroll.shape[0] > 0
    has_extra = extra.shape[0] > 0
    for i in range(n):
        if every or visit[i]:
            if has_extra and extra[i]:
                c = np.uint64(spawn[i] + EXTRA_OFFSET)
            elif has_enroll and enroll[i]:
                c = np.uint64(row[i] + ENROLL_OFFSET)
            else:
                c = np.uint64(row[i])
            k = keys[member[i]]
            u_redeem[i] = rng.draw(k, c, p_redeem)
            u_choice[i] = rng.draw(k, c, p_choice)
        else:
            u_redeem[i] = 1.0
            u_choice[i] = 1.0
    return u_redeem, u_choice
