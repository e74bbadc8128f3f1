"""Static reasoning about `when` conditions: which values of each variable can satisfy them.

A condition is put in disjunctive normal form (bounded; past the bound it is "unknown", treated as
satisfiable) and every conjunction is reduced to one constraint per variable: an interval for
numbers, days and ordered names (tiers, weekdays), allowed/excluded sets for text. The linter uses
this to find rules that can never fire and conditions that make points fall as spend rises;
`loyalty test` uses it to pick the edge values worth generating.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from fractions import Fraction

from rulelang import ast
from rulelang import builtins as B
from rulelang.fmt import format_expr
from rulelang.model import Model, Rule

MAX_TERMS = 64  # a DNF larger than this is not worth analysing: treat the condition as unknown
MAX_DAYS = 800  # date windows up to this long are enumerated day by day for month/weekday checks
NEGATE = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}
FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
# Keys computed from the row's day; checked jointly against the day window when it is short.
DAY_PARTS = {"month": lambda d: d.month, "day": lambda d: d.day, "year": lambda d: d.year, "weekday": lambda d: d.weekday()}
# Keys that always have a value on a purchase row (others may be missing, which falsifies atoms).
ALWAYS_PRESENT = {"amount", "date", "weekday", "month", "day", "year", "tier", "event", "basket.total", "basket.lines"}
MONEY_KEYS = ("amount", "basket.total")


@dataclass(frozen=True)
class Atom:
    """`key OP value`: a comparison of a variable with a constant; `text` for messages."""

    key: str
    op: str
    value: object
    text: str
    negated: bool = False


@dataclass
class Text:
    """The values a text key may take: one of `allowed` (if set), none of `excluded`."""

    allowed: frozenset | None = None
    excluded: set = field(default_factory=set)

    def add(self, op: str, v) -> None:
        if op == "==":
            self.allowed = frozenset({v}) if self.allowed is None else self.allowed & {v}
        elif op == "!=":
            self.excluded.add(v)
        elif op == "in":
            self.allowed = frozenset(v) if self.allowed is None else self.allowed & frozenset(v)
        elif op == "not in":
            self.excluded |= set(v)

    def empty(self) -> bool:
        return self.allowed is not None and self.allowed <= self.excluded


@dataclass
class Num(Text):
    """The values a numeric key may take: an interval, minus `excluded`, within `allowed` if set."""

    lo: Fraction | None = None
    lo_open: bool = False
    hi: Fraction | None = None
    hi_open: bool = False
    integer: bool = False

    def add(self, op: str, v) -> None:
        if op in (">", ">="):
            if self.lo is None or v > self.lo or (v == self.lo and op == ">"):
                self.lo, self.lo_open = v, op == ">"
        elif op in ("<", "<="):
            if self.hi is None or v < self.hi or (v == self.hi and op == "<"):
                self.hi, self.hi_open = v, op == "<"
        else:
            super().add(op, v)

    def contains(self, v) -> bool:
        if self.lo is not None and (v < self.lo or (self.lo_open and v == self.lo)):
            return False
        if self.hi is not None and (v > self.hi or (self.hi_open and v == self.hi)):
            return False
        if self.integer and v != int(v):
            return False
        return v not in self.excluded and (self.allowed is None or v in self.allowed)

    def empty(self) -> bool:
        if self.allowed is not None:
            return not any(self.contains(v) for v in self.allowed)
        if self.lo is not None and self.hi is not None:
            if self.lo > self.hi or (self.lo == self.hi and (self.lo_open or self.hi_open)):
                return True
            if self.integer:
                first = _ceil(self.lo) + (1 if self.lo_open and self.lo == int(self.lo) else 0)
                last = _floor(self.hi) - (1 if self.hi_open and self.hi == int(self.hi) else 0)
                if first > last:
                    return True
                if last - first < 1000:
                    return all(v in self.excluded for v in range(first, last + 1))
            elif self.lo == self.hi:
                return self.lo in self.excluded
        return False

    @property
    def bounded_above(self) -> bool:
        """Whether some value is allowed and a larger one is not: the set is not upward closed."""
        return self.hi is not None or self.allowed is not None or bool(self.excluded)




def _ceil(x) -> int:
    return -((-x.numerator) // x.denominator) if isinstance(x, Fraction) else int(x)


def _floor(x) -> int:
    return x.numerator // x.denominator if isinstance(x, Fraction) else int(x)


def _text(node) -> str:
    """A short rendering of an expression for messages."""
    if isinstance(node, ast.Name):
        return node.name
    if isinstance(node, ast.Attribute):
        return f"{node.obj.name}.{node.attr.name}"
    if isinstance(node, ast.Call):
        return f"{node.func.name}({', '.join(_text(a) for a in node.args)})"
    if isinstance(node, ast.BasketSum):
        return _sum_key(node)
    if isinstance(node, (ast.Number, ast.Percent)):
        return str(node.value) + ("%" if isinstance(node, ast.Percent) else "")
    if isinstance(node, ast.Money):
        return f"{node.amount} {node.currency.name}"
    if isinstance(node, ast.DateLit):
        return node.text
    if isinstance(node, ast.String):
        return f'"{node.value}"'
    if isinstance(node, ast.ListLit):
        return "[" + ", ".join(_text(i) for i in node.items) + "]"
    if isinstance(node, ast.Group):
        return f"({_text(node.expr)})"
    return "..."


def _sum_key(node: ast.BasketSum) -> str:
    return format_expr(node)


class Analyser:
    """Condition analysis for one program (tier and column names come from the model)."""

    def __init__(self, model: Model):
        self.model = model
        self.tiers = {n: i for i, n in enumerate(model.tiers.names)} if model.tiers else {}

    # --- leaves -------------------------------------------------------------------------------

    def key(self, node) -> str | None:
        """The variable a node names, if it is one we reason about."""
        while isinstance(node, ast.Group):
            node = node.expr
        if isinstance(node, ast.Name):
            n = node.name
            if n in B.VARIABLES or n in self.model.columns or n in B.COLUMNS:
                return n if n not in ("points", "balance", "pending") and not n.startswith("points_this") else None
            return None
        if isinstance(node, ast.Attribute):
            return f"{node.obj.name}.{node.attr.name}"
        if isinstance(node, ast.BasketSum):  # one variable per sum as written: nothing assumed of it
            return _sum_key(node)
        if isinstance(node, ast.Call) and node.func.name in DAY_PARTS and len(node.args) == 1:
            arg = node.args[0]
            if isinstance(arg, ast.Name) and arg.name == "date":
                return node.func.name
        return None

    def const(self, node):
        """The constant a node denotes (Fraction, day ordinal, tier level, weekday, str), or None."""
        while isinstance(node, ast.Group):
            node = node.expr
        if isinstance(node, ast.Number):
            return Fraction(node.value)
        if isinstance(node, ast.Percent):
            return Fraction(node.value) / 100
        if isinstance(node, ast.Money):
            return Fraction(node.amount)
        if isinstance(node, ast.Neg):
            inner = self.const(node.operand)
            return -inner if isinstance(inner, Fraction) else None
        if isinstance(node, ast.DateLit):
            try:
                return Fraction(dt.date.fromisoformat(_iso(node.text)).toordinal())
            except ValueError:
                return None
        if isinstance(node, ast.String):
            return node.value
        if isinstance(node, ast.Name):
            if node.name in self.tiers and node.name not in B.VARIABLES:
                return Fraction(self.tiers[node.name])
            if node.name in B.WEEKDAYS:
                return Fraction(B.WEEKDAYS[node.name])
        return None

    def atom(self, node, negated: bool):
        """An `Atom` for a comparison or membership test of a key with constants, else None."""
        if isinstance(node, ast.Compare):
            op = NEGATE[node.op] if negated else node.op
            k, c = self.key(node.left), self.const(node.right)
            if k is None or c is None:
                k, c, op = self.key(node.right), self.const(node.left), FLIP[op]
            if k is None or c is None:
                return None
            return Atom(k, op, c, ("not " if negated else "") + f"{_text(node.left)} {node.op} {_text(node.right)}", negated)
        if isinstance(node, ast.In):
            k = self.key(node.item)
            values = [self.const(i) for i in node.options.items]
            if k is None or any(v is None for v in values):
                return None
            neg = node.negated != negated
            word = "not in" if node.negated else "in"
            return Atom(k, "not in" if neg else "in", tuple(values), ("not " if negated else "") + f"{_text(node.item)} {word} {_text(node.options)}", negated)
        return None

    # --- normal form --------------------------------------------------------------------------

    def dnf(self, node, negated: bool = False) -> list[list] | None:
        """The condition as a list of conjunctions of atoms (None atoms are unknown); None if too big."""
        while isinstance(node, ast.Group):
            node = node.expr
        if node is None:
            return [[]]
        if isinstance(node, ast.Not):
            return self.dnf(node.operand, not negated)
        if isinstance(node, ast.BoolOp):
            parts = [self.dnf(o, negated) for o in node.operands]
            if any(p is None for p in parts):
                return None
            conjunctive = (node.op == "and") != negated
            if not conjunctive:
                out = [t for p in parts for t in p]
                return out if len(out) <= MAX_TERMS else None
            out = [[]]
            for p in parts:
                out = [a + b for a in out for b in p]
                if len(out) > MAX_TERMS:
                    return None
            return out
        return [[self.atom(node, negated)]]

    def rule_terms(self, rule: Rule, with_target: bool = True) -> list[list] | None:
        """The DNF of everything that must hold for the rule to earn: its condition, its window,
        its event, and (for a multiplier) its target's, since a multiplier needs its target to earn."""
        terms = self.dnf(rule.condition)
        if terms is None:
            return None
        extra: list = [Atom("event", "==", rule.event, f"on {rule.event}")]
        if rule.during:
            s, e = rule.during
            text = f"during from {s}" if e == dt.date.max else f"during to {e}" if s == dt.date.min else f"during {s} to {e}"
            extra += [
                Atom("date", ">=", Fraction(s.toordinal()), text),
                Atom("date", "<=", Fraction(e.toordinal()), text),
            ]
        terms = [t + extra for t in terms]
        if with_target and rule.kind == "multiplier":
            target = self.model.rule(rule.target)
            sub = self.rule_terms(target) if target.name != rule.name else [[]]
            if sub is None:
                return None
            terms = [a + b for a in terms for b in sub][:MAX_TERMS]
        return terms

    # --- satisfiability -----------------------------------------------------------------------

    def reduce(self, term: list, purchase: bool = True) -> tuple[dict, dict]:
        """Per-key constraints of a conjunction, and per key the atoms that constrained it."""
        cons: dict = {}
        why: dict = {}
        if purchase and not any(a is not None and a.key == "event" and a.value != B.PURCHASE for a in term):
            for k in MONEY_KEYS:
                cons[k] = Num(lo=Fraction(0))
        for a in term:
            if a is None:
                continue
            c = cons.get(a.key)
            if c is None:
                c = cons[a.key] = self._domain(a.key, a.value)
            c.add(a.op, a.value)
            why.setdefault(a.key, []).append(a)
        return cons, why

    def _domain(self, key: str, sample):
        value = sample[0] if isinstance(sample, tuple) and sample else sample
        if isinstance(value, str):
            return Text()
        if key == "tier":
            return Num(lo=Fraction(0), hi=Fraction(max(len(self.tiers) - 1, 0)), integer=True)
        bounds = {"month": (1, 12), "day": (1, 31), "weekday": (0, 6), "year": (1, 9999)}
        if key in bounds:
            lo, hi = bounds[key]
            return Num(lo=Fraction(lo), hi=Fraction(hi), integer=True)
        return Num(integer=key in ("date", "basket.lines"))

    def conflict(self, term: list) -> tuple[str, list] | None:
        """Why a conjunction cannot hold: (key, atoms involved), or None if it can."""
        cons, why = self.reduce(term)
        for k, c in cons.items():
            if c.empty():
                atoms = why.get(k, [])
                if k not in ALWAYS_PRESENT and all(a.negated for a in atoms):
                    continue  # a missing value satisfies negated comparisons
                return k, atoms
        return self._day_conflict(cons, why)

    def _day_conflict(self, cons: dict, why: dict):
        days = cons.get("date")
        parts = [k for k in DAY_PARTS if k in cons]
        if not parts or days is None or days.lo is None or days.hi is None or days.hi - days.lo > MAX_DAYS:
            return None
        first = _ceil(days.lo)
        for o in range(first, _floor(days.hi) + 1):
            if not days.contains(Fraction(o)):
                continue
            d = dt.date.fromordinal(o)
            if all(cons[k].contains(Fraction(DAY_PARTS[k](d))) for k in parts):
                return None
        return "date", why.get("date", []) + [a for k in parts for a in why.get(k, [])]

    def jointly(self, parts: list) -> bool:
        """Whether conditions (each a DNF as `rule_terms` gives it; None for one it cannot read,
        taken as satisfiable) can all hold at once."""
        if any(p is None for p in parts):
            return True
        terms = [[]]
        for p in parts:
            terms = [a + b for a in terms for b in p][:256]
        return self.satisfiable(terms)

    def satisfiable(self, terms: list | None) -> bool:
        """Whether some conjunction can hold (unknown conditions count as satisfiable)."""
        return terms is None or any(self.conflict(t) is None for t in terms)

    def non_monotone(self, rule: Rule) -> Atom | None:
        """An atom that lets the rule earn at some amount but not at a larger one, if any."""
        terms = self.dnf(rule.condition)
        if not terms:
            return None
        for t in terms:
            if self.conflict(t) is not None:
                continue
            cons, why = self.reduce(t)
            for k in MONEY_KEYS:
                c = cons.get(k)
                if c is not None and c.bounded_above and why.get(k):
                    return next((a for a in why[k] if a.op in ("<", "<=", "==", "!=", "in", "not in")), why[k][0])
        return None

    def edges(self) -> dict[str, set]:
        """Every constant each key is compared with across the program: the values worth testing."""
        out: dict[str, set] = {}
        exprs = [r.condition for r in (*self.model.firing, *self.model.discounts) if r.condition is not None]
        for e in exprs:
            for term in self.dnf(e) or []:
                for a in term:
                    if a is None:
                        continue
                    vals = a.value if isinstance(a.value, tuple) else (a.value,)
                    out.setdefault(a.key, set()).update(vals)
        return out


def _iso(text: str) -> str:
    y, m, d = text.split("-")
    return f"{int(y):04d}-{int(m):02d}-{int(d):02d}"

