"""The vectorised expression compiler: a `when` condition -> a boolean mask over a Batch's rows.

Table-driven by AST node type (and by `builtins.FUNCTIONS` for calls). Values are whole columns:
numbers are exact rationals held as int64 numerator/denominator arrays with a validity mask
(missing values are invalid, and a comparison with an invalid side is false); dates are int64 day
numbers; weekdays and tiers are int64 positions; text is dictionary-encoded (codes into sorted
uniques, so code order is code-point order). Conditions that read `tier` are evaluated once per
tier level with `tier` a constant.
"""

from __future__ import annotations

import datetime as dt
import weakref
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd
from numba import njit

from rulelang import ast
from rulelang import builtins as B
from rulelang import values as V
from rulelang.engine.calendar import NS_PER_DAY, civil_from_days
from rulelang.engine.data import PURCHASE as K_PURCHASE
from rulelang.engine.data import REFUND as K_REFUND
from rulelang.errors import LoyaltyError
from rulelang.model import Model

_EPOCH = dt.date(1970, 1, 1)
# int64 products beyond this are refused rather than risk a silent wrap-around.
SAFE = float(2**62)


class CompileError(LoyaltyError):
    """A construct the compiled evaluator cannot handle; the message names the rule and place."""


@dataclass
class Num:
    """Exact rationals num/den (den > 0), `ok` False where missing."""

    num: np.ndarray
    den: np.ndarray
    ok: np.ndarray


@dataclass
class Ordinal:
    """Dates (day numbers), weekdays and tiers (positions): int64 values, `ok` False where missing."""

    kind: str
    values: np.ndarray
    ok: np.ndarray


@dataclass
class Text:
    """Dictionary-encoded text: `uniques` sorted, `codes` index them. Missing text is ""."""

    codes: np.ndarray
    uniques: np.ndarray


def _full(n: int, value, dtype=np.int64) -> np.ndarray:
    # A read-only broadcast of one value: constants cost no memory and no pass over the rows.
    return np.broadcast_to(np.asarray(value, dtype=dtype), (n,))


def _with(mask: np.ndarray, *oks: np.ndarray) -> np.ndarray:
    """`mask & ok & ...`, skipping validity masks that are a broadcast true (nothing missing)."""
    for ok in oks:
        if not (ok.strides == (0,) and ok.size and ok[0]):
            mask = mask & ok
    return mask


def _same_constant(a: np.ndarray, b: np.ndarray) -> bool:
    """Both are broadcasts (`_full`) of one value."""
    return a.strides == (0,) and b.strides == (0,) and a.size > 0 and b.size > 0 and a[0] == b[0]


def _times(num: np.ndarray, den: np.ndarray):
    """num x den, one side of a comparison of fractions: `num` itself when `den` is a broadcast 1,
    and one exact Python int when both are broadcasts (a literal), not an array of it."""
    if den.strides == (0,) and den.size and den[0] == 1:
        return num
    if num.strides == (0,) and den.strides == (0,) and num.size and den.size:
        return int(num[0]) * int(den[0])
    return _product(num, den)


def _peak(a: np.ndarray) -> float:
    if a.size == 0:
        return 0.0
    if a.strides == (0,):
        return abs(float(a[0]))
    return float(max(abs(float(a.max())), abs(float(a.min()))))


def _check(*arrays) -> None:
    for a in arrays:
        if a.size and _peak(a) >= SAFE:
            raise LoyaltyError("numbers in a condition are too large to compute exactly (over 2**62); use smaller amounts")


def _product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if _peak(a) * _peak(b) < SAFE:  # the product of the largest magnitudes bounds every product
        return a * b
    est = np.abs(a.astype(np.float64)) * np.abs(b.astype(np.float64))
    if est.size and float(est.max(initial=0)) >= SAFE:
        raise LoyaltyError("numbers in a condition are too large to compute exactly (over 2**62); use smaller amounts")
    return a * b


def _reduce(num: np.ndarray, den: np.ndarray, ok: np.ndarray) -> Num:
    g = np.gcd(num, den)
    g[g == 0] = 1
    return Num(num // g, den // g, ok)


def cells(values, typ: str, decimals: int):
    """A column converted exactly as the reference does (`values.CELL`), one distinct value at a time."""
    if isinstance(getattr(values, "dtype", None), pd.CategoricalDtype):
        # Already dictionary-encoded (missing is -1, as factorize gives it): each category converted
        # once, no hash of every row. Unused categories are converted too, and never looked up.
        cat = pd.Series(values).array
        codes, uniques = cat.codes, cat.categories.to_numpy(dtype=object)
    else:
        codes, uniques = pd.factorize(pd.Series(values).reset_index(drop=True), use_na_sentinel=True)
    conv = [V.CELL[typ](u, decimals) for u in list(uniques)]
    blank = V.CELL[typ](None, decimals)
    return codes.astype(np.int64), conv, blank


def text_column(values, decimals: int = 2) -> Text:
    """Dictionary-encode text values (missing is ""); uniques sorted so code order is code-point order."""
    codes, conv, blank = cells(values, B.STRING, decimals)
    strings = np.array(conv + [blank], dtype=object)
    uniq, inv = np.unique(strings, return_inverse=True)
    return Text(inv[codes].astype(np.int64, copy=False), uniq.astype(object))


def number_column(values, typ: str, decimals: int) -> Num:
    """Exact rationals from a number or money column; missing cells are not ok."""
    codes, conv, _ = cells(values, typ, decimals)
    ok_u = np.array([c is not V.MISSING for c in conv] + [False], dtype=bool)
    nums = np.array([int(c.numerator) if c is not V.MISSING else 0 for c in conv] + [0], dtype=np.int64)
    dens = np.array([int(c.denominator) if c is not V.MISSING else 1 for c in conv] + [1], dtype=np.int64)
    return Num(nums[codes], dens[codes], ok_u[codes])


def date_column(values, decimals: int = 2) -> Ordinal:
    """Day numbers (days since 1970-01-01) of a date column; missing cells are not ok."""
    if pd.api.types.is_datetime64_dtype(getattr(values, "dtype", None)):
        # Naive date-times: the calendar day is the floor to whole days, as `values.cell_date` reads it.
        d = np.asarray(values, dtype="datetime64[ns]").astype("datetime64[D]")
        ok = ~np.isnat(d)
        return Ordinal(B.DATE, np.where(ok, d.astype(np.int64), 0), ok)
    codes, conv, _ = cells(values, B.DATE, decimals)
    ok_u = np.array([c is not V.MISSING for c in conv] + [False], dtype=bool)
    days = np.array([(c - _EPOCH).days if c is not V.MISSING else 0 for c in conv] + [0], dtype=np.int64)
    return Ordinal(B.DATE, days[codes], ok_u[codes])


_TYPED = {B.STRING: text_column, B.DATE: date_column}


_PARTS = {"year": 0, "month": 1, "day": 2}


def date_part(days: np.ndarray, part: str) -> np.ndarray:
    """The year, month (1-12) or day of month of day numbers (proleptic Gregorian, as NumPy's
    datetime64 counts them)."""
    return _date_parts(np.ascontiguousarray(days, dtype=np.int64), _PARTS[part])


@njit(cache=True, nogil=True)
def _date_parts(days, part):
    # Few distinct days (a year of history, a century of birthdays over many rows): the calendar
    # worked out once per day of their range, then looked up per row; otherwise per row.
    n = days.shape[0]
    out = np.empty(n, dtype=np.int64)
    if n == 0:
        return out
    lo = days[0]
    hi = days[0]
    for i in range(n):
        lo = min(lo, days[i])
        hi = max(hi, days[i])
    if hi - lo < n // 2:
        table = np.empty(hi - lo + 1, dtype=np.int64)
        for o in range(table.shape[0]):
            table[o] = civil_from_days(lo + o)[part]
        for i in range(n):
            out[i] = table[days[i] - lo]
    else:
        for i in range(n):
            out[i] = civil_from_days(days[i])[part]
    return out


@njit(cache=True, nogil=True)
def _unit_sums(unit, values):
    # One pass per run of equal units: its sum, written to each of its rows.
    n = unit.shape[0]
    out = np.empty(n, dtype=np.int64)
    i = 0
    while i < n:
        j = i
        total = 0
        while j < n and unit[j] == unit[i]:
            total += values[j]
            j += 1
        out[i:j] = total
        i = j
    return out


# Customer attributes converted once per customers table, not once per batch: a path's batch, the
# base, the base's spans and their moved rows all share one table (100k customers' birthdays took
# 1-3 ms to convert for each, for a few moved rows as for a quarter of the history). Keyed by the
# table's id and checked by a weak reference; an entry goes when its table does.
_TABLES: dict[int, tuple[weakref.ref, dict]] = {}


def _per_table(table: pd.DataFrame) -> dict:
    entry = _TABLES.get(id(table))
    if entry is None or entry[0]() is not table:
        entry = (weakref.ref(table), {})
        _TABLES[id(table)] = entry
        weakref.finalize(table, _forget_table, id(table), entry[0])
    return entry[1]


def _forget_table(key: int, ref: weakref.ref) -> None:
    entry = _TABLES.get(key)
    if entry is not None and entry[0] is ref:  # (not a newer table that was given the same id)
        del _TABLES[key]


class Env:
    """The columns of one Batch, computed lazily and cached, for evaluating conditions."""

    def __init__(self, model: Model, batch):
        self.model = model
        self.batch = batch
        self.frame = batch.frame
        self.n = len(batch.frame)
        self.cache: dict = {}
        self.tier = 0
        self.tier_names = model.tiers.names if model.tiers else ()

    def memo(self, key, make):
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    # --- row basics ------------------------------------------------------------------------

    def ts(self) -> np.ndarray:
        return self.memo("ts", lambda: self.frame["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64))

    def day(self) -> np.ndarray:
        return self.memo("day", lambda: self.ts() // NS_PER_DAY)

    def ones(self) -> np.ndarray:
        return self.memo("ones", lambda: _full(self.n, True, bool))

    def unit(self) -> np.ndarray:
        return self.memo("unit", lambda: self.frame["unit"].to_numpy())

    def unit_starts(self) -> np.ndarray:
        """Positions of the first row of each unit."""

        def make():
            u = self.unit()
            return np.flatnonzero(np.r_[True, u[1:] != u[:-1]]) if self.n else np.zeros(0, np.int64)

        return self.memo("unit_starts", make)

    def is_first(self) -> np.ndarray:
        """Whether each row is the first row of its unit."""

        def make():
            out = np.zeros(self.n, dtype=bool)
            out[self.unit_starts()] = True
            return out

        return self.memo("is_first", make)

    def kind(self) -> np.ndarray:
        return self.memo("kind", lambda: self.frame["kind"].to_numpy())

    def event_is(self, name: str) -> np.ndarray:
        """Rows whose (normalised) event is `name`, compared on the column's codes."""

        def make():
            ev = self.frame["event"]
            if isinstance(ev.dtype, pd.CategoricalDtype):
                cats = ev.cat.categories
                where = np.flatnonzero(np.asarray(cats, dtype=object) == name)
                codes = ev.cat.codes.to_numpy()
                return codes == where[0] if len(where) else np.zeros(self.n, dtype=bool)
            return ev.to_numpy(dtype=object) == name

        return self.memo(("event", name), make)

    def member(self) -> np.ndarray:
        return self.memo("member", lambda: self.frame["member"].to_numpy())

    def per_unit_sum(self, values: np.ndarray) -> np.ndarray:
        """Each row gets the sum of `values` over its unit (units are runs of consecutive rows)."""
        return _unit_sums(np.ascontiguousarray(self.unit()), np.ascontiguousarray(values, dtype=np.int64))

    # --- names -----------------------------------------------------------------------------

    def amount(self) -> Num:
        return self.memo("amount", lambda: Num(self.frame["amount"].to_numpy(dtype=np.int64), _full(self.n, 10**self.model.decimals), self.ones()))

    def weekday(self) -> Ordinal:
        return self.memo("weekday", lambda: Ordinal(B.WEEKDAY, (self.day() + 3) % 7, self.ones()))

    def date(self) -> Ordinal:
        return Ordinal(B.DATE, self.day(), self.ones())

    def text(self, col: str) -> Text:
        return self.typed(("col", col), self.frame[col], B.STRING)

    def column(self, name: str, typ: str):
        if name not in self.frame.columns:
            raise LoyaltyError(f"the program reads the column `{name}`, which the transactions do not have")
        return self.typed(("col", name), self.frame[name], typ)

    def typed(self, key, values, typ: str, gather: np.ndarray | None = None):
        """A column of one language type, converted exactly; `gather` picks rows: `values` is then a
        column of the batch's customers table (a customer attribute), converted once per table."""

        def make():
            dec = self.model.decimals

            def convert():
                return _TYPED[typ](values, dec) if typ in _TYPED else number_column(values, typ, dec)

            if gather is None:
                return convert()
            per_table = _per_table(self.batch.customers)
            v = per_table.get((key, typ, dec))
            if v is None:
                v = per_table.setdefault((key, typ, dec), convert())
            if isinstance(v, Text):
                return Text(v.codes[gather], v.uniques)
            if isinstance(v, Ordinal):
                return Ordinal(v.kind, v.values[gather], v.ok[gather])
            return Num(v.num[gather], v.den[gather], v.ok[gather])

        # Encodings depend only on the batch and the program's decimals: kept on the batch, so
        # every Env over it (each tier level, each earn_columns call) encodes a column once.
        shared = self.batch.encodings
        full = (key, typ, self.model.decimals)
        if full not in shared:
            shared[full] = make()
        return shared[full]

    def customer(self, attr: str):
        member = self.member()
        if attr in ("enrolled", "days_enrolled"):
            enrolled = self.enrolled()
            if attr == "enrolled":
                return Ordinal(B.DATE, enrolled, self.ones())
            return Num(self.day() - enrolled, _full(self.n, 1), self.ones())
        cust = self.batch.customers
        typ = self.model.customer_columns.get(attr) or B.CUSTOMER[attr].type
        values = cust[attr] if attr in cust.columns else pd.Series([None] * len(cust), dtype=object)
        return self.typed(("cust", attr), values, typ, gather=member)

    def enrolled(self) -> np.ndarray:
        """Per row: the member's enrolment day (customers file, else first enroll row, else first row)."""

        def make():
            member, day = self.member(), self.day()
            m = self.batch.members
            first = np.full(m, np.iinfo(np.int64).max, dtype=np.int64)
            np.minimum.at(first, member, day)
            enroll = self.event_is(B.ENROLL)
            if enroll.any():
                fe = np.full(m, np.iinfo(np.int64).max, dtype=np.int64)
                np.minimum.at(fe, member[enroll], day[enroll])
                first = np.where(fe != np.iinfo(np.int64).max, fe, first)
            cust = self.batch.customers
            if "enrolled" in cust.columns:
                d = date_column(cust["enrolled"])
                first = np.where(d.ok, d.values, first)
            return first[member]

        return self.memo("enrolled", make)

    def basket(self, attr: str) -> Num:
        def make():
            if attr == "total":
                a = self.amount()
                return Num(self.per_unit_sum(a.num), a.den, self.ones())
            if attr == "lines":
                return Num(self.per_unit_sum(np.ones(self.n, np.int64)), _full(self.n, 1), self.ones())
            if "quantity" in self.frame.columns:
                q = self.typed(("col", "quantity"), self.frame["quantity"], B.NUMBER)
                common = int(np.lcm.reduce(np.unique(q.den))) if self.n else 1
                scaled = _product(np.where(q.ok, q.num, 0), common // q.den)
                missing = self.per_unit_sum((~q.ok).astype(np.int64)) > 0
                return _reduce(self.per_unit_sum(scaled), _full(self.n, common), ~missing)
            return Num(self.per_unit_sum(np.ones(self.n, np.int64)), _full(self.n, 1), self.ones())

        return self.memo(("basket", attr), make)

    def basket_sum(self, attr: str, condition) -> Num:
        """`basket.total(CONDITION)` / `basket.quantity(CONDITION)` on each row: the figure of
        `basket` over the rows of its unit where the condition (on the line's fields) holds."""

        def make():
            chosen = condition_mask(condition, self)
            if attr == "total":
                a = self.amount()
                return Num(self.per_unit_sum(np.where(chosen, a.num, 0)), a.den, self.ones())
            if "quantity" in self.frame.columns:
                q = self.typed(("col", "quantity"), self.frame["quantity"], B.NUMBER)
                common = int(np.lcm.reduce(np.unique(q.den))) if self.n else 1
                scaled = _product(np.where(q.ok & chosen, q.num, 0), common // q.den)
                missing = self.per_unit_sum((~q.ok & chosen).astype(np.int64)) > 0
                return _reduce(self.per_unit_sum(scaled), _full(self.n, common), ~missing)
            return Num(self.per_unit_sum(chosen.astype(np.int64)), _full(self.n, 1), self.ones())

        return self.memo(("basket_sum", attr, id(condition)), make)

    # --- recency: the member's own history before the row -------------------------------------

    def unit_first(self) -> np.ndarray:
        """Per row: the position of its unit's first row (what came before the unit came before it)."""
        return self.memo("unit_first", lambda: self.unit_starts()[np.cumsum(self.is_first()) - 1])

    def history_units(self):
        """The purchases and refunds in row order (rows are grouped by member in time order), each
        as its unit's first row: (position, member, day, cumulative spend, cumulative visits), the
        cumulative sums with a leading 0 so `c[hi] - c[lo]` is the sum over units lo..hi-1."""

        def make():
            starts = self.unit_starts()
            kind = self.kind()[starts]
            pick = (kind == K_PURCHASE) | (kind == K_REFUND)
            amount = self.frame["amount"].to_numpy(dtype=np.int64)
            totals = np.add.reduceat(amount, starts) if self.n else np.zeros(0, np.int64)  # a basket's lines, before discounts
            pos = starts[pick]
            spend = np.concatenate(([0], np.cumsum(totals[pick])))
            visits = np.concatenate(([0], np.cumsum(kind[pick] == K_PURCHASE)))
            return pos, self.member()[pos].astype(np.int64), self.day()[pos], spend, visits

        return self.memo("history_units", make)

    def days_since_last_purchase(self) -> Num:
        """Whole days from the member's last purchase before the row's unit to the row's day;
        missing (not ok) before the member's first purchase."""

        def make():
            starts = self.unit_starts()
            purchases = starts[self.kind()[starts] == K_PURCHASE]
            last = np.searchsorted(purchases, self.unit_first(), side="left") - 1
            at = purchases[np.maximum(last, 0)] if len(purchases) else np.zeros(self.n, np.int64)
            member = self.member()
            ok = (last >= 0) & (member[at] == member) if len(purchases) else np.zeros(self.n, bool)
            return Num(np.where(ok, self.day() - self.day()[at], 0), _full(self.n, 1), ok)

        return self.memo("days_since_last_purchase", make)

    def window(self, name: str, n: int, unit: str) -> Num:
        """`visits_in(N unit)` / `spend_in(N unit)` per row: over the member's purchases and refunds
        before the row's unit on the days after `start` (the row's day N days, or N months clamped,
        back): a difference of cumulative sums between two bounds that one sweep moves forward."""

        def make():
            pos, member, day, spend, visits = self.history_units()
            row_day = self.day()
            if unit == "days":
                start = row_day - n
            elif self.n:  # the calendar worked out once per day of the rows' range, then looked up
                lo_day = int(row_day.min())
                start = months_back(np.arange(lo_day, int(row_day.max()) + 1), n)[row_day - lo_day]
            else:
                start = row_day
            figure = visits if name == "visits_in" else spend
            sums = _window_sums(np.ascontiguousarray(self.unit_first(), dtype=np.int64), np.ascontiguousarray(self.member(), dtype=np.int64),
                                np.ascontiguousarray(start, dtype=np.int64), pos, member, day, figure)
            den = _full(self.n, 1 if name == "visits_in" else 10**self.model.decimals)
            return Num(sums, den, self.ones())

        return self.memo(("window", name, n, unit), make)

    def units(self) -> np.ndarray:
        """Each row's whole units for `N points per unit`: its quantity rounded down, 0 where the
        quantity is missing, not a number or negative (the same as `interpret.units`)."""

        def make():
            q = self.column("quantity", B.NUMBER)
            return np.where(q.ok & (q.num >= 0), q.num // np.where(q.ok, q.den, 1), 0).astype(np.int64)

        return self.memo("units", make)


# --- expression evaluation ------------------------------------------------------------------------


def _const_num(value: Fraction, n: int) -> Num:
    return Num(_full(n, value.numerator), _full(n, value.denominator), _full(n, True, bool))


def _name(node: ast.Name, env: Env):
    n = node.name
    model = env.model
    if n in B.VARIABLES:
        return _VARIABLES[n](env)
    if n in model.columns:
        return env.column(n, model.columns[n])
    if n in B.COLUMNS:
        if n == "transaction_id":
            return env.text("transaction_id")
        return env.column(n, B.COLUMNS[n].type)
    if n in env.tier_names:
        return Ordinal(B.TIER, _full(env.n, env.tier_names.index(n)), env.ones())
    if n in B.WEEKDAYS:
        return Ordinal(B.WEEKDAY, _full(env.n, B.WEEKDAYS[n]), env.ones())
    raise CompileError(f"the name `{n}` cannot be used in a `when` condition")


_VARIABLES = {
    "amount": lambda env: env.amount(),
    "date": lambda env: env.date(),
    "weekday": lambda env: env.weekday(),
    "tier": lambda env: Ordinal(B.TIER, _full(env.n, env.tier), env.ones()),
    "event": lambda env: env.text("event"),
    "point_cost": lambda env: _const_num(env.model.point_cost, env.n),
    "days_since_last_purchase": lambda env: env.days_since_last_purchase(),
}


def _attribute(node: ast.Attribute, env: Env):
    if node.obj.name == "customer":
        return env.customer(node.attr.name)
    return env.basket(node.attr.name)


@njit(cache=True, nogil=True)
def _window_sums(first, member, start, ev_pos, ev_member, ev_day, cum):
    # Per row: cum[hi] - cum[lo] over the events (units) before the row's unit (ev_pos < first)
    # and after `start` (ev_day > start) of the row's member. Rows come by member in time order,
    # so both bounds only move forward: one sweep, two pointers.
    n = first.shape[0]
    m = ev_pos.shape[0]
    out = np.empty(n, dtype=np.int64)
    hi = 0
    lo = 0
    for i in range(n):
        while hi < m and ev_pos[hi] < first[i]:
            hi += 1
        while lo < hi and (ev_member[lo] < member[i] or (ev_member[lo] == member[i] and ev_day[lo] <= start[i])):
            lo += 1
        out[i] = cum[hi] - cum[lo]
    return out


def months_back(days: np.ndarray, n: int) -> np.ndarray:
    """Day numbers of the same day of the month n months earlier, clamped to that month's last
    day (`values.add_months(day, -n)`)."""
    d = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    month = d.astype("datetime64[M]")
    day_of_month = (d - month.astype("datetime64[D]")).astype(np.int64)
    back = month - np.timedelta64(n, "M")
    length = ((back + np.timedelta64(1, "M")).astype("datetime64[D]") - back.astype("datetime64[D]")).astype(np.int64)
    return (back.astype("datetime64[D]") + np.minimum(day_of_month, length - 1)).astype(np.int64)


def _basket_sum(node: ast.BasketSum, env: Env):
    return env.basket_sum(node.attr.name, node.condition)


def _date_part(part: str):
    def f(args, env):
        d = args[0]
        if part == "weekday":
            return Ordinal(B.WEEKDAY, (d.values + 3) % 7, d.ok)
        return Num(date_part(d.values, part), _full(env.n, 1), d.ok)

    return f


def _days_between(args, env):
    a, b = args
    return Num(b.values - a.values, _full(env.n, 1), a.ok & b.ok)


def _as_num(v) -> Num:
    if not isinstance(v, Num):
        raise CompileError("expected a number")
    return v


def _minmax(pick_left):
    def f(args, env):
        out = _as_num(args[0])
        for other in args[1:]:
            other = _as_num(other)
            left = _product(out.num, other.den)
            right = _product(other.num, out.den)
            take = pick_left(left, right)
            out = Num(np.where(take, out.num, other.num), np.where(take, out.den, other.den), out.ok & other.ok)
        return out

    return f


def _abs(args, env):
    a = _as_num(args[0])
    return Num(np.abs(a.num), a.den, a.ok)


FUNCTIONS = {
    "month": _date_part("month"),
    "day": _date_part("day"),
    "year": _date_part("year"),
    "weekday": _date_part("weekday"),
    "days_between": _days_between,
    "min": _minmax(lambda a, b: a <= b),
    "max": _minmax(lambda a, b: a >= b),
    "abs": _abs,
}


def _call(node: ast.Call, env: Env):
    if node.func.name in B.WINDOWS:
        return env.window(node.func.name, *B.window_span(node))
    f = FUNCTIONS.get(node.func.name)
    if f is None:
        raise CompileError(f"the function `{node.func.name}` has no compiled implementation")
    return f([value(a, env) for a in node.args], env)


def _arith(node: ast.Arith, env: Env):
    acc = _as_num(value(node.first, env))
    for op, operand in node.rest:
        b = _as_num(value(operand, env))
        ok = acc.ok & b.ok
        if op in "+-":
            num_a, num_b = _product(acc.num, b.den), _product(b.num, acc.den)
            num = num_a + num_b if op == "+" else num_a - num_b
            den = _product(acc.den, b.den)
        elif op == "*":
            num, den = _product(acc.num, b.num), _product(acc.den, b.den)
        else:
            ok = ok & (b.num != 0)
            num, den = _product(acc.num, b.den), _product(acc.den, np.where(b.num == 0, 1, b.num))
            sign = np.where(den < 0, -1, 1)
            num, den = num * sign, den * sign
        _check(num)
        acc = _reduce(num, den, ok)
    return acc


def _neg(node: ast.Neg, env: Env):
    a = _as_num(value(node.operand, env))
    return Num(-a.num, a.den, a.ok)


def _literal_number(node, env: Env):
    return _const_num(Fraction(node.value), env.n)


def _literal_percent(node, env: Env):
    return _const_num(Fraction(node.value) / 100, env.n)


def _literal_money(node, env: Env):
    return _const_num(Fraction(node.amount), env.n)


def _literal_date(node, env: Env):
    y, m, d = (int(p) for p in node.text.split("-"))
    return Ordinal(B.DATE, _full(env.n, (dt.date(y, m, d) - _EPOCH).days), env.ones())


def _literal_string(node, env: Env):
    return node.value  # a Python str: compared against a Text by searching its uniques


_CMP = {
    "==": np.equal,
    "!=": np.not_equal,
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def _position(t: Text, s: str) -> tuple[int, bool]:
    """Where `s` is, or would go, among the sorted uniques, and whether it is there."""
    lo = int(np.searchsorted(t.uniques, s, side="left")) if len(t.uniques) else 0
    return lo, lo < len(t.uniques) and t.uniques[lo] == s


def _text_vs_const(t: Text, op: str, s: str) -> np.ndarray:
    lo, found = _position(t, s)
    c = t.codes
    if op == "==":
        return c == lo if found else np.zeros(len(c), bool)
    if op == "!=":
        return c != lo if found else np.ones(len(c), bool)
    hi = lo + 1 if found else lo
    return {"<": c < lo, "<=": c < hi, ">": c >= hi, ">=": c >= lo}[op]


def compare_values(op: str, a, b, n: int) -> np.ndarray:
    """`a OP b` as a mask; false where either side is missing."""
    if isinstance(a, str) and isinstance(b, str):
        return np.full(n, bool(_CMP[op](a, b)))
    if isinstance(a, str):
        a, b, op = b, a, _FLIP[op]
    if isinstance(a, Text):
        if isinstance(b, str):
            return _text_vs_const(a, op, b)
        return _CMP[op](a.uniques[a.codes].astype(str), b.uniques[b.codes].astype(str))
    if isinstance(a, Num):
        b = _as_num(b)
        if _same_constant(a.den, b.den):  # whole numbers, say: no cross-multiplying
            return _with(_CMP[op](a.num, b.num), a.ok, b.ok)
        left, right = _times(a.num, b.den), _times(b.num, a.den)
        if isinstance(left, int) and isinstance(right, int):
            return _with(np.full(n, bool(_CMP[op](left, right))), a.ok, b.ok)
        return _with(_CMP[op](left, right), a.ok, b.ok)
    if isinstance(a, Ordinal):
        return _with(_CMP[op](a.values, b.values), a.ok, b.ok)
    return _CMP[op](a, b)  # two conditions: == and != only (the checker refuses ordering)


def _compare(node: ast.Compare, env: Env):
    return compare_values(node.op, value(node.left, env), value(node.right, env), env.n)


def _in(node: ast.In, env: Env):
    item = value(node.item, env)
    options = [value(opt, env) for opt in node.options.items]
    out = _in_table(item, options)
    if out is None:
        out = np.zeros(env.n, dtype=bool)
        for opt in options:
            out |= compare_values("==", item, opt, env.n)
    return ~out if node.negated else out


def _in_table(item, options) -> np.ndarray | None:
    """`item in options` as one lookup per row, when the options are constants of a small domain
    (texts, by their codes; weekdays); None otherwise. The same as comparing with each in turn."""
    if isinstance(item, Text) and all(isinstance(o, str) for o in options):
        hit = np.zeros(len(item.uniques), dtype=bool)
        for o in options:
            at, found = _position(item, o)
            if found:
                hit[at] = True
        return hit[item.codes]
    if isinstance(item, Ordinal) and item.kind == B.WEEKDAY and all(isinstance(o, Ordinal) and o.values.strides == (0,) and o.ok.strides == (0,) for o in options):
        hit = np.zeros(7, dtype=bool)
        for o in options:
            if o.values.size and o.ok[0]:
                hit[int(o.values[0])] = True
        return _with(hit[item.values], item.ok)
    return None


def _boolop(node: ast.BoolOp, env: Env):
    masks = [condition_mask(o, env) for o in node.operands]
    out = masks[0].copy()
    for m in masks[1:]:
        if node.op == "and":
            out &= m
        else:
            out |= m
    return out


def _not(node: ast.Not, env: Env):
    return ~condition_mask(node.operand, env)


_NODES = {
    ast.Number: _literal_number,
    ast.Percent: _literal_percent,
    ast.Money: _literal_money,
    ast.DateLit: _literal_date,
    ast.String: _literal_string,
    ast.Name: _name,
    ast.Attribute: _attribute,
    ast.BasketSum: _basket_sum,
    ast.Call: _call,
    ast.Arith: _arith,
    ast.Neg: _neg,
    ast.Compare: _compare,
    ast.In: _in,
    ast.BoolOp: _boolop,
    ast.Not: _not,
    ast.Group: lambda node, env: value(node.expr, env),
}


def value(node, env: Env):
    """The column value of an expression node."""
    f = _NODES.get(type(node))
    if f is None:
        raise CompileError(f"`{type(node).__name__}` expressions cannot be compiled")
    return f(node, env)


def condition_mask(node, env: Env) -> np.ndarray:
    """A condition as a boolean mask over the rows."""
    v = value(node, env)
    if not isinstance(v, np.ndarray) or v.dtype != bool:
        raise CompileError("a condition must be true or false")
    return v
