"""The largest numbers a program may hold, in one table, and the checks of the program as a whole.

The compiled engine holds points and money as int64: exact points as integer numerators over one
common denominator (`compile.compile_model`), money in minor units. Its data check refuses sums
at 2**62 (`compile.LIMIT`), a head-room of 2 over int64. Each limit keeps one value, times the
largest scale the engine multiplies it by, below 10**18 (< 2**62 / 4), so a value at its limit
compiles and a history of many rows still sums without overflow; docs/language.md ("Limits")
states them to users. The checker reports a number past its limit at its place (E432, E433),
and a program whose awards together need more exactness than the engine holds (E434, E435).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction


@dataclass(frozen=True)
class Limit:
    """The largest value of one kind of number and how many digits it may have after the point."""

    most: Decimal
    decimals: int
    unit: str  # how the limit is named to a planner: "at most {most} {unit}" (money: the currency)


# By kind of number. Points: a billion a firing (times a denominator of at most 10**9 stays
# below 10**18). Money: a trillion units with 6 decimals (10**18 millionths). Durations: a
# century, so an expiry or window moment stays inside the engine's nanosecond calendar.
LIMITS: dict[str, Limit] = {
    "points": Limit(Decimal(10**9), 4, "points"),
    "count": Limit(Decimal(10**9), 0, "times"),
    "money": Limit(Decimal(10**12), 6, ""),
    "number": Limit(Decimal(10**12), 6, ""),
    "percent": Limit(Decimal(100), 4, "%"),
    "multiplier": Limit(Decimal(1000), 4, "x"),
    "days": Limit(Decimal(36_500), 0, "days"),
    "months": Limit(Decimal(1_200), 0, "months"),
    "years": Limit(Decimal(100), 0, "years"),
}
# The finest fraction of a point the awards together may need (the engine's common denominator).
MAX_DENOMINATOR = 10**9
# The most points one firing of a rule may award: a fixed award, or per one unit of the currency.
MAX_POINTS = 10**9
# Numerator and denominator of a point's funded cost in minor units (`compile` ps_num, ps_den).
MAX_FUNDED_COST_TERM = 2**31


def decimals(value: Decimal) -> int:
    """Digits after the decimal point, trailing zeros not counted (`1.50` has 1)."""
    exponent = value.normalize().as_tuple().exponent
    return max(-exponent, 0) if isinstance(exponent, int) else 0


@dataclass(frozen=True)
class Award:
    """What the exactness of one rule's points depends on (the same fields as `model.Rule`)."""

    name: str
    kind: str  # per_spend, fixed, per_unit or multiplier
    rate: Fraction = Fraction(0)  # per_spend: points per one unit of currency
    points: Fraction = Fraction(0)  # fixed: points a firing; per_unit: points a unit
    factor: Fraction = Fraction(1)
    target: str | None = None
    funded_share: Fraction = Fraction(0)


def targets_first(rules: Sequence) -> list:
    """The rules with every multiplier after the rule it multiplies (stable otherwise), found
    without recursion; a cycle (refused by the checker) is left where it stands."""
    by_name = {r.name: r for r in rules}
    depth: dict[str, int] = {}
    for rule in rules:
        path, seen, node = [], set(), rule
        while node.kind == "multiplier" and node.name not in depth and node.name not in seen and node.target in by_name:
            seen.add(node.name)
            path.append(node.name)
            node = by_name[node.target]
        below = depth.get(node.name, 0)
        for i, name in enumerate(reversed(path), start=1):
            depth[name] = below + i
    return sorted(rules, key=lambda r: depth.get(r.name, 0))


def award_steps(rules: Sequence, decimals: int) -> dict[str, Fraction]:
    """Per rule (`Award`s or `model.Rule`s), the fraction of a point that every firing's exact
    points are a whole multiple of; the engine's common denominator is the lcm of their
    denominators. `decimals` are the currency's: per-spend points are per minor unit."""
    scale = 10**decimals
    step: dict[str, Fraction] = {}
    for r in targets_first(rules):
        if r.kind == "per_spend":
            step[r.name] = r.rate / scale
        elif r.kind in ("fixed", "per_unit"):  # per unit: a whole number of units times the points
            step[r.name] = r.points
        elif r.target in step:
            step[r.name] = Fraction(1, step[r.target].denominator * (r.factor - 1).denominator)
    return step


@dataclass(frozen=True)
class Problem:
    """A program-wide limit that a rule goes past."""

    code: str
    rule: Award
    message: str
    hint: str
    at: str = "award"  # the part of the rule to point at: its `award` or its `funded` clause


def program_problems(awards: Sequence[Award], currency: str, decimals: int, point_cost: Fraction) -> list[Problem]:
    """What in a checked program the compiled engine could not hold exactly; [] when it fits."""
    out: list[Problem] = []
    den = 1
    gain: dict[str, Fraction] = {}  # most points a firing awards (per spend: per unit of currency)
    steps = award_steps(awards, decimals)
    rules = {r.name: r for r in awards}
    for name, step in steps.items():
        r = rules[name]
        if r.kind == "multiplier":
            gain[name] = gain[r.target] * (r.factor - 1)
        else:
            gain[name] = r.rate if r.kind == "per_spend" else r.points
        unit = {"per_spend": f" per 1 {currency}", "per_unit": " per unit"}.get(_base_kind(r, rules), " a firing")
        if gain[name] > MAX_POINTS:
            out.append(Problem("E435", r, f"rule `{name}` earns up to {_show(gain[name])} points{unit}; the most is {MAX_POINTS:,}",
                               "lower the award or the multipliers on it"))
        den = math.lcm(den, step.denominator)
        if den > MAX_DENOMINATOR and not any(p.code == "E434" for p in out):
            out.append(Problem("E434", r, f"with rule `{name}`, the awards need points exact to 1/{den:,} of a point; "
                                          f"the engine holds 1/{MAX_DENOMINATOR:,}",
                               "use rounder awards and multipliers (`1 point per 5 CNY`, `1.5x`), or fewer chained multipliers"))
    scale = 10**decimals
    for r in awards:
        funded = point_cost * r.funded_share * scale
        if max(funded.numerator, funded.denominator) > MAX_FUNDED_COST_TERM:
            out.append(Problem("E434", r, f"the point cost times rule `{r.name}`'s funded share needs more exactness than the engine holds",
                               "use a rounder `point_cost` or funded share (like `0.01 CNY`, `40%`)", at="funded"))
            break
    return out


def _base_kind(rule: Award, rules: dict[str, Award]) -> str:
    """The kind of the rule at the end of a chain of multipliers."""
    seen = set()
    while rule.kind == "multiplier" and rule.name not in seen:
        seen.add(rule.name)
        rule = rules[rule.target]
    return rule.kind


def _show(x: Fraction) -> str:
    return f"{math.floor(x):,}" if x.denominator != 1 else f"{x.numerator:,}"
