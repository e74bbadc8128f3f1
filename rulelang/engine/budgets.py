"""Budgets: the global step that makes a per-member engine exact for rules shared by every member.

A budgeted earn rule (`budget N points`) or discount (`budget AMOUNT CUR`) gives its awards first
come, first served in time order, ties broken by customer id and then by the member's own order
of rows; each award (one unit's posting of that rule) is given whole or not at all, and the first
award that does not fit in what is left closes the rule for everyone from that award on
(docs/semantics.md, "Budgets").

The engines run member by member, so the moment a budget runs out is found first, over every
member (`settle`):

1. a pass with every budgeted rule open lists each budgeted rule's awards (moment, customer, row,
   amount) from the ledgers;
2. sorted in the global order, a running sum finds, for each rule, the first award that does not
   fit; the earliest of those (ties: program order) closes its rule from that award on (`Closing`);
3. the pass is run again with that rule closed, and so on: closing a rule can change other rules'
   awards after its moment (a per-member `limit` gives its room to another rule), never before it,
   since a member's postings depend only on the rows before them. So each pass fixes one more
   closing, in time order; with k budgeted rules at most k + 1 passes, and the last one's ledgers
   are the result.

The engines then check a closing with one comparison a unit (the kernel's `_budget_closed`, the
interpreter's `closed`). The result depends only on the global order, never on how the members
were cut into parts, threads, processes or machines: every part is run with the same closings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

OPEN = np.iinfo(np.int64).max  # a closing moment no row reaches


@dataclass(frozen=True)
class Closing:
    """A budgeted rule is closed for the unit at (`ts`, `customer`, `row`) and every unit after it
    in the global order; `row` orders one customer's units at one moment (the ledger's `row` of
    the pass that found it)."""

    ts: int  # ns
    customer: object
    row: int


@dataclass(frozen=True)
class Figure:
    """What one budgeted rule gave over every member: `used` (points, or minor units of money)
    and the moment it ran out (None: it did not)."""

    rule: str
    budget: int  # points, or minor units
    used: int
    ran_out: int | None  # ns


def budgeted(model) -> tuple[tuple[str, int, str], ...]:
    """(name, budget, kind) of each budgeted rule in program order, earn rules then discounts:
    the budget in points (kind `earn`) or in minor units of money (kind `discount`)."""
    scale = 10**model.decimals
    out = [(r.name, int(r.budget), "earn") for r in model.rules if r.budget is not None]
    out += [(d.name, int(d.budget * scale), "discount") for d in model.discounts if d.budget is not None]
    return tuple(out)


def awards(model, ledgers: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Every budgeted rule's awards in the ledgers: columns rule, ts (ns), customer, row, amount,
    one row per posting that gave points (`earn`) or money off (`discount`). Postings are picked by
    their categorical codes: only the budgeted rules' own rows are turned into values."""
    parts = []
    for led in ledgers:
        if led is None or not len(led):
            continue
        rule, kind = led["rule"], led["kind"]
        mine = np.zeros(len(led), dtype=bool)
        for name, _, want in budgeted(model):
            mine |= _is(rule, name) & _is(kind, want)
        if not mine.any():
            continue
        at = np.flatnonzero(mine)
        earn = _is(kind, "earn")[at]
        parts.append(pd.DataFrame({
            "rule": _values_at(rule, at),
            "ts": led["timestamp"].to_numpy()[at].astype("datetime64[ns]").view(np.int64),
            "customer": _values_at(led["customer_id"], at),
            "row": led["row"].to_numpy()[at].astype(np.int64),
            "amount": np.where(earn, led["points"].to_numpy()[at], led["cost"].to_numpy()[at]).astype(np.int64),
        }))
    if not parts:
        return pd.DataFrame({"rule": [], "ts": np.zeros(0, np.int64), "customer": [], "row": np.zeros(0, np.int64), "amount": np.zeros(0, np.int64)})
    return pd.concat(parts, ignore_index=True)


def _values_at(column: pd.Series, at: np.ndarray) -> np.ndarray:
    """A column's values at positions `at` as Python objects (a categorical's from its codes there,
    not the whole column's)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return np.asarray(column.cat.categories.take(column.cat.codes.to_numpy()[at]), dtype=object)
    return column.to_numpy()[at].astype(object)


def _is(column: pd.Series, value: str) -> np.ndarray:
    """Where a ledger column (categorical, or plain) holds `value`, by code when categorical."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        code = column.cat.categories.get_indexer([value])[0]
        return column.cat.codes.to_numpy() == code if code >= 0 else np.zeros(len(column), dtype=bool)
    return column.to_numpy() == value


def _in_order(found: pd.DataFrame) -> pd.DataFrame:
    """The awards in the global order: moment, customer id, row."""
    return found.sort_values(["ts", "customer", "row"], kind="stable", ignore_index=True)


def first_overrun(model, found: pd.DataFrame, closed: dict) -> tuple[str, Closing] | None:
    """The earliest award, among the rules not closed yet, that does not fit in what is left of
    its budget (ties: program order), or None."""
    best = None
    for rank, (name, budget, _) in enumerate(budgeted(model)):
        if name in closed:
            continue
        mine = _in_order(found[found["rule"] == name])
        spent = np.cumsum(mine["amount"].to_numpy(dtype=np.int64))
        over = np.flatnonzero(spent > budget)
        if not len(over):
            continue
        at = mine.iloc[int(over[0])]
        key = (int(at["ts"]), at["customer"], int(at["row"]), rank)
        if best is None or key < best[0]:
            best = (key, name, Closing(int(at["ts"]), at["customer"], int(at["row"])))
    return None if best is None else (best[1], best[2])


def settle(model, run: Callable[[dict], list]) -> tuple[dict, list]:
    """The closings of the budgeted rules over every member, and the last pass's results.

    `run(closed)` runs every member with the rules in `closed` (name -> Closing) closed and
    returns one result per part: a ledger, or anything with a `.ledger` (an engine's Evaluation)."""
    closed: dict[str, Closing] = {}
    for _ in range(len(budgeted(model)) + 1):
        results = run(dict(closed))
        found = awards(model, [getattr(r, "ledger", r) for r in results])
        nxt = first_overrun(model, found, closed)
        if nxt is None:
            return closed, results
        closed[nxt[0]] = nxt[1]
    raise AssertionError("each pass closes one more budgeted rule")  # (k rules close in at most k passes)


def figures(model, found: pd.DataFrame, closed: dict) -> list[Figure]:
    """Each budgeted rule's budget, what it gave and when it ran out, from the last pass's awards."""
    out = []
    for name, budget, _ in budgeted(model):
        used = int(found.loc[found["rule"] == name, "amount"].sum())
        c = closed.get(name)
        out.append(Figure(name, budget, used, c.ts if c is not None else None))
    return out


def batch_closings(model, closed: dict, customer_ids, n_rules: int, n_discounts: int) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's view of the closings for one batch (`kernel.Rows`' `rule_close` and
    `discount_close`): per rule and per discount (moment, first member closed at that moment,
    first row of that member closed), members being the batch's codes in id order. A closing
    customer the batch does not have closes, at that moment, every member whose id follows it."""
    rule_close = np.zeros((n_rules, 3), dtype=np.int64)
    discount_close = np.zeros((n_discounts, 3), dtype=np.int64)
    rule_close[:, 0] = OPEN
    discount_close[:, 0] = OPEN
    if not closed:
        return rule_close, discount_close
    ids = pd.Index(customer_ids)
    names = {r.name: (rule_close, r.index) for r in model.rules} | {d.name: (discount_close, d.index) for d in model.discounts}
    for name, c in closed.items():
        table, k = names[name]
        at = int(ids.searchsorted(c.customer, side="left"))
        table[k] = (c.ts, at, c.row if at < len(ids) and ids[at] == c.customer else np.iinfo(np.int64).min)
    return rule_close, discount_close


def is_closed(c: Closing | None, ts: int, customer, row: int) -> bool:
    """Whether the unit at (ts, customer, row) comes at or after the closing `c` (None: open)."""
    return c is not None and (ts, customer, row) >= (c.ts, c.customer, c.row)
