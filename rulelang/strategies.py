"""Hypothesis strategies for `loyalty test`: one member's history, shaped by the program.

The values worth trying come from the program itself: the categories, SKUs, channels and events
it mentions, the amounts its conditions compare with (and one minor unit either side), tier
thresholds, the spend that reaches a cap or a reward, and the days where campaigns and calendar
periods begin and end. Every draw shrinks toward a plain purchase of a small amount, so a
counterexample comes out as few, simple rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction

import pandas as pd
from hypothesis import strategies as st

from rulelang import ast
from rulelang import builtins as B
from rulelang.conditions import DAY_PARTS, MAX_DAYS, Analyser
from rulelang.model import Model, names_in

DEFAULT_START = dt.date(2026, 1, 1)
MAX_ROWS = 10
NEUTRAL = "other"  # a text value no condition mentions
# Gaps between rows, in days: small steps, and the jumps that cross weeks, months, years, expiries.
GAPS = (0, 1, 2, 6, 7, 27, 30, 31, 90, 180, 364, 365, 366)
KINDS = ("purchase", "refund", "redeem", "event")
MAX_COMBOS = 300  # pairs of rule conditions searched for a day on which both can fire


@dataclass(frozen=True)
class Shape:
    """What a program makes worth generating: edge values per key, anchors in time, names."""

    scale: int
    amounts: tuple[int, ...]  # minor units
    texts: dict  # text column -> values
    numbers: dict  # number column -> values
    anchors: tuple[dt.date, ...]
    events: tuple[str, ...]
    rewards: tuple[str, ...]
    customer_texts: dict
    customer_dates: tuple[str, ...]
    columns: tuple[str, ...]
    climbs: tuple[int, ...] = ()  # purchase amounts (minor units) that reach each tier above the first
    gaps: tuple[int, ...] = ()  # days between rows besides GAPS: the recency builtins' edges, a pending window's edge


def shape(model: Model) -> Shape:
    """The edge values of a program, for generating histories that reach its rules."""
    an = Analyser(model)
    edges = an.edges()
    scale = 10**model.decimals
    money: set[Fraction] = set()
    for key in ("amount", "basket.total", *(k for k in edges if k.startswith("basket.total("))):
        money |= {v for v in edges.get(key, ()) if isinstance(v, Fraction)}
    if model.tiers is not None and model.tiers.metric == "spend":
        money |= set(model.tiers.thresholds)
    top_rate = sum((r.rate for r in model.rules if r.kind == "per_spend"), Fraction(0))
    if top_rate:
        money |= {Fraction(n) / top_rate for n, _ in model.limits}
        money |= {Fraction(rw.points) / top_rate for rw in model.rewards}
    money |= _best_of_ties(model)
    amounts: set[int] = set()
    for m in money:
        minor = int(m * scale)
        amounts |= {max(minor + d, 0) for d in (-1, 0, 1)}
    used = set()
    for r in (*model.firing, *model.discounts):  # a benefit's and a discount's condition read the data as a rule's does
        used |= r.names
    for a in model.asserts:
        used |= names_in(a)
    per_unit = any(r.kind == "per_unit" for r in model.rules) or any(d.kind == "buy_get" for d in model.discounts)
    if per_unit:
        used.add("quantity")  # per-unit points and buy-get discounts read it
    texts, numbers = {}, {}
    for name in sorted(used):
        if "." in name or name in B.VARIABLES:
            continue
        typ = model.columns.get(name) or (B.COLUMNS[name].type if name in B.COLUMNS else None)
        if typ is None or name == "transaction_id":
            continue
        vals = sorted(v for v in edges.get(name, ()) if not isinstance(v, Fraction) or typ != B.STRING)
        if typ == B.STRING:
            texts[name] = (NEUTRAL, *sorted({str(v) for v in vals}))
        elif typ in (B.NUMBER, B.MONEY):
            base = {Fraction(1), Fraction(0)} | {v + d for v in vals if isinstance(v, Fraction) for d in (-1, 0, 1)}
            if name == "quantity" and per_unit:
                base |= {Fraction(3), Fraction(5, 2)}  # several units, and a part of one (counted down)
            numbers[name] = tuple(sorted(base))
    anchors = {DEFAULT_START}
    for r in (*model.firing, *model.discounts):
        if r.during:
            s, e = r.during
            # (an open end is the calendar's first or last day: no anchor there)
            anchors |= {d for d in (s, e, s - dt.timedelta(days=1) if s > dt.date.min else s, e + dt.timedelta(days=1) if e < dt.date.max else e)
                        if dt.date.min < d < dt.date.max}
    for v in edges.get("date", ()):
        if isinstance(v, Fraction):
            anchors.add(dt.date.fromordinal(int(v)))
    for m in edges.get("month", ()):
        if isinstance(m, Fraction) and 1 <= m <= 12:
            anchors.add(dt.date(2026, int(m), 1))
    anchors |= {dt.date(2026, 12, 31), dt.date(2026, 1, 31)}
    anchors |= _calendar_days(an, model)
    if model.voucher is not None:  # the last day of each voucher period of 2026 (and the day after)
        months = model.voucher.issued_months
        ends = [dt.date(2026 + m // 12, m % 12 + 1, 1) for m in range(months, 13, months)]
        anchors |= {d - dt.timedelta(days=1) for d in ends} | set(ends)
    # Rows the day before, on and after the day points become available (beside GAPS).
    pending_gaps = {model.pending_days - 1, model.pending_days, model.pending_days + 1} if model.pending_days else set()
    cust_texts = {}
    for name in sorted(used):
        if name.startswith("customer.") and name.split(".", 1)[1] not in ("birthday", "enrolled", "days_enrolled"):
            attr = name.split(".", 1)[1]
            cust_texts[attr] = (NEUTRAL, *sorted({str(v) for v in edges.get(name, ()) if isinstance(v, str)}))
    cust_dates = tuple(n.split(".", 1)[1] for n in sorted(used) if n in ("customer.birthday",) or (
        n.startswith("customer.") and model.customer_columns.get(n.split(".", 1)[1]) == B.DATE))
    events = tuple(sorted(model.event_names | {B.ENROLL}))
    climbs: tuple[int, ...] = ()
    if model.tiers is not None and model.tiers.metric in ("spend", "points"):
        per = Fraction(1) if model.tiers.metric == "spend" else top_rate
        if per:
            climbs = tuple(sorted({_ceil(t / per * scale) for t in model.tiers.thresholds[1:]}))
    if model.tiers is not None:  # a spend alternative (`or 5000 CNY`) is reached by one purchase too
        spend = {_ceil(t * scale) for level in model.tiers.alternatives for metric, t in level if metric == "spend"}
        climbs = tuple(sorted(set(climbs) | spend))
    gaps = _recency_gaps(model, edges, used) if used & B.RECENCY else ()
    gaps = tuple(sorted(set(gaps) | pending_gaps)) if pending_gaps else gaps
    return Shape(
        scale=scale,
        amounts=tuple(sorted(amounts)),
        texts=texts,
        numbers=numbers,
        anchors=tuple(sorted(anchors)),
        events=events,
        rewards=tuple(rw.name for rw in model.rewards),
        customer_texts=cust_texts,
        customer_dates=cust_dates,
        columns=tuple(sorted(set(texts) | set(numbers))),
        climbs=climbs,
        gaps=gaps,
    )


def _recency_gaps(model: Model, edges: dict, used: set) -> tuple[int, ...]:
    """Gaps in days either side of each `days_since_last_purchase` threshold and each span of
    `visits_in` / `spend_in` (months as 28 to 31 days), so a history steps over their edges."""
    days = {int(v) for v in edges.get("days_since_last_purchase", ()) if isinstance(v, Fraction) and 0 <= v <= 40_000}
    for r in (*model.firing, *model.discounts):
        stack = [r.condition]
        while stack:
            node = stack.pop()
            if isinstance(node, ast.Call) and node.func.name in B.WINDOWS:
                n, unit = B.window_span(node)
                days |= {n} if unit == "days" else {28 * n, 30 * n, 31 * n}
            elif node is not None:
                stack.extend(ast.subexpressions(node))
    return tuple(sorted({max(d + step, 1) for d in days for step in (-1, 0, 1)} - set(GAPS)))


def _spend_rate(model: Model, rule) -> Fraction:
    """Points per currency unit a rule earns on a line's amount (0 when not by spend): a
    multiplier's extra part of its target's rate, down a chain the checker has bounded."""
    factor = Fraction(1)
    while rule.kind == "multiplier":
        factor *= rule.factor - 1
        rule = model.rule(rule.target)
    return factor * rule.rate if rule.kind == "per_spend" else Fraction(0)


def _best_of_ties(model: Model) -> set[Fraction]:
    """The amounts at which a by-spend rule of a `best of` earns as much as a fixed one: where
    the choice (and its tie rule, the first listed) flips."""
    out: set[Fraction] = set()
    for group in model.groups:
        rules = [model.rules[i] for i in group]
        rates = [x for x in (_spend_rate(model, r) for r in rules) if x > 0]
        fixed = [r.points for r in rules if r.kind == "fixed"]
        out |= {f / rate for f in fixed for rate in rates}
    return out


def _ceil(x: Fraction) -> int:
    return -((-x.numerator) // x.denominator)


def _calendar_days(an: Analyser, model: Model) -> set[dt.date]:
    """The first day on which each rule, and each pair of rules, can fire by the calendar
    (month, day, weekday, year and campaign windows together), so that stacked bonuses are tried."""
    terms = [t for r in model.firing for t in (an.rule_terms(r) or [])[:4]]
    combos = terms + [a + b for i, a in enumerate(terms) for b in terms[i + 1 :]][:MAX_COMBOS]
    out = set()
    for term in combos:
        cons, _ = an.reduce(term)
        parts = [k for k in DAY_PARTS if k in cons]
        days = cons.get("date")
        if not parts and days is None:
            continue
        first = DEFAULT_START.toordinal() if days is None or days.lo is None else int(days.lo)
        for o in range(first, first + MAX_DAYS):
            d = dt.date.fromordinal(o)
            if (days is None or days.contains(Fraction(o))) and all(cons[k].contains(Fraction(DAY_PARTS[k](d))) for k in parts):
                out.add(d)
                break
    return out


def _amount(s: Shape):
    # Small amounts first: a counterexample shrinks toward them.
    small = st.integers(0, 20 * s.scale)
    edges = st.sampled_from(s.amounts) if s.amounts else small
    return st.one_of(small, edges, st.integers(0, 300 * s.scale), st.integers(0, 20_000 * s.scale))


def _line(s: Shape):
    fields = {"amount": _amount(s)}
    for name, vals in s.texts.items():
        fields[name] = st.sampled_from(vals)
    for name, vals in s.numbers.items():
        fields[name] = st.sampled_from(vals)
    return st.fixed_dictionaries(fields)


@st.composite
def history(draw, model: Model, s: Shape | None = None) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """One member's history: transactions (and a customers table when the program reads one)."""
    s = s or shape(model)
    day = draw(st.sampled_from(s.anchors))
    n = draw(st.integers(1, MAX_ROWS))
    rows: list[dict] = []
    baskets: list[tuple[str, int]] = []  # transaction_id, total minor units
    hour = 12
    # Often start with the purchase that reaches a tier, so tier rules are reached in few rows.
    climb = draw(st.sampled_from((None, *s.climbs))) if s.climbs else None
    for i in range(n):
        gap = draw(st.one_of(st.just(0), st.sampled_from(GAPS), *([st.sampled_from(s.gaps)] if s.gaps else []))) if i else 0
        day = day + dt.timedelta(days=gap)
        hour = hour + 1 if gap == 0 and i else 12
        ts = dt.datetime.combine(day, dt.time(min(hour, 23), 0))
        kind = draw(st.sampled_from(KINDS))
        if kind == "refund" and not baskets:
            kind = "purchase"
        if kind == "redeem" and not s.rewards:
            kind = "purchase"
        base = {"timestamp": ts, "event": kind, "transaction_id": "", "reward": ""}
        if kind == "purchase":
            tx = f"T{i + 1}"
            lines = draw(st.lists(_line(s), min_size=1, max_size=3))
            if climb is not None and i == 0:
                lines[0] = {**lines[0], "amount": climb}
            for line in lines:
                rows.append({**base, **line, "transaction_id": tx})
            baskets.append((tx, sum(line["amount"] for line in lines)))
        elif kind == "refund":
            tx, total = baskets[draw(st.integers(0, len(baskets) - 1))]
            part = draw(st.sampled_from((1, 2)))
            rows.append({**base, "amount": total // part, "transaction_id": tx})
        elif kind == "redeem":
            rows.append({**base, "amount": 0, "reward": draw(st.sampled_from(s.rewards))})
        else:
            rows.append({**base, "amount": 0, "event": draw(st.sampled_from(s.events))})
    frame = to_frame(rows, s)
    if model.pay_with_points is not None:
        # Payments at the till, as a history records them: none, whole steps, an odd number of
        # points, or more than any balance (declined), on a basket's first line.
        step = model.pay_with_points.points
        choices = st.sampled_from((step, 7, 0, step, 3 * step, 10 * step + 1, 10**7))
        firsts = [i == 0 or r.get("transaction_id") != rows[i - 1].get("transaction_id") or r["event"] != "purchase" for i, r in enumerate(rows)]
        frame["points_paid"] = [draw(choices) if r["event"] == "purchase" and f else None for r, f in zip(rows, firsts, strict=True)]
    customers = None
    if s.customer_texts or s.customer_dates:
        cust = {"customer_id": "M1"}
        for attr, vals in s.customer_texts.items():
            cust[attr] = draw(st.sampled_from(vals))
        for attr in s.customer_dates:
            birthday = draw(st.one_of(st.none(), st.sampled_from(s.anchors), st.dates(dt.date(1960, 1, 1), dt.date(2010, 12, 31))))
            cust[attr] = pd.NaT if birthday is None else pd.Timestamp(birthday)
        customers = pd.DataFrame([cust])
    return frame, customers


def to_frame(rows: list[dict], s: Shape) -> pd.DataFrame:
    """Generated rows as a transactions table in the data contract's columns (amounts in units)."""
    cols = ["customer_id", "timestamp", "event", "amount", "transaction_id", "reward", *s.columns]
    out = []
    for r in rows:
        rec = {c: r.get(c, NEUTRAL if c in s.texts else (0 if c in s.numbers else "")) for c in cols}
        rec["customer_id"] = "M1"
        rec["amount"] = r["amount"] / s.scale
        for c in s.numbers:
            rec[c] = float(rec[c])
        out.append(rec)
    frame = pd.DataFrame(out, columns=cols)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    return frame
