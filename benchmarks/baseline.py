"""Hand-written NumPy for programs/coffee.loyalty's stateless earn: the yardstick of the engine.

What a skilled NumPy programmer would write for that one program, given the same validated rows
(`rulelang.engine.data.prepare`'s Batch: amounts in int64 minor units, members, units) and asked for the
same answer as `CompiledProgram.earn_columns(batch, tier)`: per rule and row, the exact points as
integer numerators over DEN = 200 (the program's common denominator: 1 point per 2 CNY is 1/200
point per fen), at one tier level, with no frequency limits, caps or rounding (those are state),
and basket rules (app_order, birthday, welcome, review) on each basket's first row only.
Everything is hard-coded for the coffee program; a test checks it against the engine.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DEN = 200
RULES = ("base", "gold_boost", "pastry", "student", "app_order", "new_year", "birthday", "welcome", "review")
GOLD = 1  # tier levels: Green 0, Gold 1, Black 2
PURCHASE, EVENT = 0, 3  # rulelang.engine.data event codes
NS_PER_DAY = 86_400_000_000_000
NEW_YEAR = (np.datetime64("2026-12-26", "D").astype(np.int64), np.datetime64("2027-01-03", "D").astype(np.int64))


def _is(series: pd.Series, value: str) -> np.ndarray:
    # Compared in pandas (Arrow-backed text), not on an object array; missing is False.
    return series.eq(value).fillna(False).to_numpy(dtype=bool)


def earn(frame: pd.DataFrame, customers: pd.DataFrame, tier: int) -> np.ndarray:
    """(rules, rows) int64 numerators over DEN: each coffee rule's exact points per row at `tier`."""
    n = len(frame)
    kind = frame["kind"].to_numpy()
    purchase = kind == PURCHASE
    amount = np.where(purchase, frame["amount"].to_numpy(), 0)
    unit = frame["unit"].to_numpy()
    first = np.ones(n, dtype=bool)
    first[1:] = unit[1:] != unit[:-1]
    day = frame["timestamp"].to_numpy().view(np.int64) // NS_PER_DAY
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    member = frame["member"].to_numpy()

    out = np.zeros((len(RULES), n), dtype=np.int64)
    out[0] = amount * 2  # base: 1 point per 1 CNY = 2/200 a fen
    if tier >= GOLD:
        out[1] = out[0] // 2  # gold_boost: 1.5x base is an extra half of it
    out[2] = np.where(_is(frame["category"], "pastry"), amount * 4, 0)
    student = _is(customers["segment"], "student")[member]
    out[3] = np.where(student & (weekday < 5), amount, 0)

    # Basket rules fire on the first row of a unit; a basket's total sums its lines.
    starts = np.flatnonzero(first)
    total = np.add.reduceat(frame["amount"].to_numpy(), starts) if n else np.zeros(0, np.int64)
    app = purchase[starts] & _is(frame["channel"], "app")[starts] & (total >= 3000)
    out[4, starts[app]] = 20 * DEN
    out[5] = np.where(purchase & (amount >= 5000) & (weekday >= 5) & (day >= NEW_YEAR[0]) & (day <= NEW_YEAR[1]), 100 * DEN, 0)
    birthday = customers["birthday"].to_numpy(dtype="datetime64[M]")
    born = np.where(np.isnat(birthday), -1, birthday.view(np.int64) % 12)[member]
    month = day.astype("datetime64[D]").astype("datetime64[M]").view(np.int64) % 12
    out[6] = np.where(first & purchase & (month == born), 300 * DEN, 0)
    event = frame["event"]
    on_event = first & (kind == EVENT)
    out[7] = np.where(on_event & _is(event, "enroll"), 200 * DEN, 0)
    out[8] = np.where(on_event & _is(event, "review"), 50 * DEN, 0)
    return out
