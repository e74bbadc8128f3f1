"""Runtime values shared by both engines: calendar periods, month arithmetic, rounding, expiry
moments, cell conversion, and the reference expression evaluator (exact, one row at a time).

Everything here follows docs/semantics.md; the compiled engine reuses the scalar helpers
(periods, rounding, expiry moments) so both engines agree on the calendar.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

import pandas as pd

from rulelang import ast
from rulelang import builtins as B

# --- value types --------------------------------------------------------------------------------


class _Missing:
    """The missing value: it spreads through arithmetic and functions; comparisons with it are false."""

    def __repr__(self) -> str:
        return "missing"


MISSING = _Missing()


@dataclass(frozen=True, order=True)
class Weekday:
    """A weekday, Monday = 0; compares by position."""

    index: int

    def __str__(self) -> str:
        return B.WEEKDAY_NAMES[self.index]


@dataclass(frozen=True, order=True)
class Tier:
    """A tier level (0 = the first, lowest tier); compares by level. `name` is for display."""

    level: int
    name: str = ""

    def __eq__(self, other) -> bool:
        return isinstance(other, Tier) and self.level == other.level

    def __hash__(self) -> int:
        return hash(self.level)

    def __str__(self) -> str:
        return self.name or str(self.level)


# --- calendar -----------------------------------------------------------------------------------


def add_months(day: dt.date, n: int) -> dt.date:
    """The same day of the month n months later, clamped to the month's last day."""
    months = day.year * 12 + day.month - 1 + n
    year, month = divmod(months, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def add_span(day: dt.date, n: int, unit: str) -> dt.date:
    """`day` plus n `days|months|years` (years are 12 months)."""
    if unit == "days":
        return day + dt.timedelta(days=n)
    return add_months(day, n * 12 if unit == "years" else n)


def period_key(day: dt.date, period: str | None) -> tuple:
    """The calendar period (`day`, `week` from Monday, `month`, `year`) holding `day`; None = forever."""
    if period is None:
        return ()
    if period == "day":
        return (day,)
    if period == "week":
        return (day - dt.timedelta(days=day.weekday()),)
    if period == "month":
        return (day.year, day.month)
    return (day.year,)


def start_of(day: dt.date) -> pd.Timestamp:
    """Midnight at the start of a day."""
    return pd.Timestamp(day)


def end_of_year(year: int) -> pd.Timestamp:
    """The last representable moment of 31 December: `YYYY-12-31 23:59:59.999999999`."""
    return pd.Timestamp(f"{year}-12-31 23:59:59.999999999")


def lot_expiry(earned_on: dt.date, kind: str, n: int | None, unit: str | None) -> pd.Timestamp | None:
    """When a lot earned on `earned_on` expires under `after` / `end_of_year` / `end_of_next_year`."""
    if kind == "after":
        return start_of(add_span(earned_on, n, unit))
    if kind == "end_of_year":
        return end_of_year(earned_on.year)
    if kind == "end_of_next_year":
        return end_of_year(earned_on.year + 1)
    return None


def window_start(t: pd.Timestamp, n: int, unit: str) -> pd.Timestamp:
    """`t - N days` (or clamped months): rows strictly after this moment are inside the window."""
    if unit == "days":
        return t - pd.Timedelta(days=n)
    back = add_span(t.date(), -n, unit)
    return pd.Timestamp(dt.datetime.combine(back, dt.time())) + (t - pd.Timestamp(t.date()))


# --- rounding -----------------------------------------------------------------------------------


def half_up(x: Fraction) -> int:
    """Round half up (towards +infinity on a tie)."""
    return math.floor(x + Fraction(1, 2))


ROUND = {"down": math.floor, "up": math.ceil, "nearest": half_up}


def largest_remainder(exact: list[Fraction], total: int) -> list[int]:
    """Split `total` over parts: each its floor, the rest one each by largest fraction (ties: first)."""
    floors = [math.floor(x) for x in exact]
    rest = total - sum(floors)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[: max(rest, 0)]:
        floors[i] += 1
    return floors


def to_minor(x: Fraction, decimals: int) -> int:
    """Money as integer minor units, rounded half up."""
    return half_up(x * 10**decimals)


# --- cells --------------------------------------------------------------------------------------


def is_blank(v) -> bool:
    """Whether a cell holds no value (None, NaN, NaT, pandas NA)."""
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, float) and math.isnan(v)


def cell_text(v) -> str:
    """A text cell: missing is ""; a whole float (12.0 read from CSV) is written as an integer."""
    if is_blank(v):
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def cell_number(v):
    """A numeric cell as an exact Fraction (floats by their shortest decimal form), or MISSING."""
    if is_blank(v):
        return MISSING
    if isinstance(v, str):
        v = v.strip()
        if not v:
            return MISSING
    try:
        return Fraction(Decimal(repr(v) if isinstance(v, float) else str(v)))
    except (ValueError, ArithmeticError):
        return MISSING


def cell_money(v, decimals: int):
    """A money cell rounded half-even to the minor unit, like `amount`; MISSING if blank."""
    x = cell_number(v)
    if x is MISSING:
        return x
    q = Decimal(x.numerator) / Decimal(x.denominator)
    return Fraction(q.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN))


def cell_date(v):
    """A date cell as a `datetime.date`, or MISSING."""
    if is_blank(v):
        return MISSING
    try:
        return pd.Timestamp(v).date()
    except (ValueError, TypeError):
        return MISSING


CELL = {
    B.STRING: lambda v, d: cell_text(v),
    B.NUMBER: lambda v, d: cell_number(v),
    B.MONEY: cell_money,
    B.DATE: lambda v, d: cell_date(v),
}


# --- expressions --------------------------------------------------------------------------------


@dataclass
class Env:
    """What a condition can read: `names` resolves bare names, `customer`/`basket` the dotted ones.

    `observe(node, left, right, result)` is called on every comparison (for `loyalty trace`).
    """

    names: object  # callable name -> value (KeyError if unknown)
    customer: object  # callable attr -> value
    basket: dict
    observe: object = None
    basket_sum: object = None  # callable (attr, condition) -> the sum over the lines where it holds
    window: object = None  # callable (function, N, unit) -> `visits_in` / `spend_in` over the member's history


def _missing(*xs) -> bool:
    return any(x is MISSING for x in xs)


def _compare_values(op: str, a, b) -> bool:
    if _missing(a, b):
        return False
    return COMPARE[op](a, b)


COMPARE = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _div(a, b):
    return MISSING if b == 0 else a / b


ARITH = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": _div}


def _ev_arith(node: ast.Arith, env: Env):
    acc = evaluate(node.first, env)
    for op, operand in node.rest:
        right = evaluate(operand, env)
        acc = MISSING if _missing(acc, right) else ARITH[op](acc, right)
    return acc


def _ev_neg(node: ast.Neg, env: Env):
    v = evaluate(node.operand, env)
    return v if v is MISSING else -v


def _ev_compare(node: ast.Compare, env: Env):
    left, right = evaluate(node.left, env), evaluate(node.right, env)
    result = _compare_values(node.op, left, right)
    if env.observe is not None:
        env.observe(node, left, right, result)
    return result


def _ev_in(node: ast.In, env: Env):
    item = evaluate(node.item, env)
    options = [evaluate(o, env) for o in node.options.items]
    found = any(_compare_values("==", item, o) for o in options)
    result = (not found) if node.negated else found
    if env.observe is not None:
        env.observe(node, item, options, result)
    return result


def _ev_boolop(node: ast.BoolOp, env: Env):
    # Every operand is evaluated (no short cut) so a trace shows every comparison's values.
    values = [bool(evaluate(o, env)) for o in node.operands]
    return all(values) if node.op == "and" else any(values)


def _ev_call(node: ast.Call, env: Env):
    if node.func.name in B.WINDOWS:
        return env.window(node.func.name, *B.window_span(node))
    args = [evaluate(a, env) for a in node.args]
    if _missing(*args):
        return MISSING
    return FUNCTIONS[node.func.name](*args)


def _ev_name(node: ast.Name, env: Env):
    return env.names(node.name)


def _ev_attribute(node: ast.Attribute, env: Env):
    if node.obj.name == "customer":
        return env.customer(node.attr.name)
    return env.basket[node.attr.name]


def _ev_basket_sum(node: ast.BasketSum, env: Env):
    return env.basket_sum(node.attr.name, node.condition)


EVALUATORS = {
    ast.Number: lambda n, env: Fraction(n.value),
    ast.Percent: lambda n, env: Fraction(n.value) / 100,
    ast.Money: lambda n, env: Fraction(n.amount),
    ast.DateLit: lambda n, env: dt.date.fromisoformat(n.text),
    ast.String: lambda n, env: n.value,
    ast.Name: _ev_name,
    ast.Attribute: _ev_attribute,
    ast.BasketSum: _ev_basket_sum,
    ast.Call: _ev_call,
    ast.Arith: _ev_arith,
    ast.Neg: _ev_neg,
    ast.Compare: _ev_compare,
    ast.In: _ev_in,
    ast.BoolOp: _ev_boolop,
    ast.Not: lambda n, env: not bool(evaluate(n.operand, env)),
    ast.Group: lambda n, env: evaluate(n.expr, env),
}

FUNCTIONS = {
    "month": lambda d: Fraction(d.month),
    "day": lambda d: Fraction(d.day),
    "year": lambda d: Fraction(d.year),
    "weekday": lambda d: Weekday(d.weekday()),
    "days_between": lambda a, b: Fraction((b - a).days),
    "min": lambda *xs: min(xs),
    "max": lambda *xs: max(xs),
    "abs": abs,
}
assert set(FUNCTIONS) == set(B.FUNCTIONS), "every builtin function needs an implementation"


def evaluate(node, env: Env):
    """The value of an expression; a condition's value is a bool (a missing comparison is false)."""
    return EVALUATORS[type(node)](node, env)


def truth(node, env: Env) -> bool:
    """Whether a condition holds; no condition always holds."""
    return True if node is None else bool(evaluate(node, env))


def show(v) -> str:
    """A value as a trace prints it: strings quoted, exact numbers in decimal when they end."""
    if v is MISSING:
        return "missing"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, Fraction):
        return show_number(v)
    if isinstance(v, list):
        return "[" + ", ".join(show(x) for x in v) + "]"
    return str(v)


def show_number(x: Fraction) -> str:
    """An exact number: an integer, a terminating decimal, or `p/q`."""
    if x.denominator == 1:
        return str(x.numerator)
    d = x.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d == 1:
        return format(Decimal(x.numerator) / Decimal(x.denominator), "f")
    return f"{x.numerator}/{x.denominator}"
