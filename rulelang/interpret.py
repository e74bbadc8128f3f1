"""The reference interpreter: docs/semantics.md made executable.

Member by member, unit by unit (a unit is a basket, or any other single row), line by line, in
exact `Fraction` arithmetic and plain Python. It is the specification the compiled engine is
tested against, so it is written to be read, not to be fast.

Every posting carries the tier it was made at: a unit's postings the tier held before the unit,
an expiry the tier held at its moment. `evaluate_batch` also counts members by tier at given
moments and gives each row's tier, as the compiled engine does.

`run(model, batch, redemption, observer=None)`: `observer(record)` receives a `UnitRecord` after
every unit (the rows, tier, each rule's check, exact and rounded points, caps, postings, balance,
per-period totals); `loyalty trace` and the `assert` checker hook in there.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import pandas as pd

from rulelang import builtins as B
from rulelang import values as V
from rulelang.engine import budgets as global_step
from rulelang.engine import data, ledger
from rulelang.model import PAY_WITH_POINTS, Model, Rule

PERIODS = ("day", "week", "month", "year")


# --- records --------------------------------------------------------------------------------------


@dataclass
class Posting:
    """One ledger row, before it becomes a column value."""

    timestamp: pd.Timestamp
    kind: str
    rule: str = ""
    points: int = 0
    earned_on: dt.date | None = None
    reward: str = ""
    cost: int = 0
    partner_share: int = 0
    row: int = -1
    tier: str = ""  # the tier the posting was made at ("" without tiers)


@dataclass
class RuleCheck:
    """How one rule fared on one line (or basket): `outcome` says why it earned what it did."""

    rule: str
    row: int
    outcome: str  # fired | condition false | outside campaign | limit reached | target earned nothing | earned nothing
    # | no whole unit in the quantity (a per-unit rule) | lost to `RULE` (best of)
    exact: Fraction = Fraction(0)
    comparisons: list = field(default_factory=list)  # (node, left, right, result)


@dataclass
class DiscountCheck:
    """How one discount fared on one line (a percentage) or basket (a fixed amount): `outcome`
    says why it took off what it did (`amount`, minor units)."""

    discount: str
    row: int
    outcome: str  # applied | condition false | outside campaign | limit reached | a larger discount applied | nothing to take off
    amount: int = 0
    comparisons: list = field(default_factory=list)


@dataclass
class UnitRecord:
    """Everything that happened on one unit of one member; see the module docstring."""

    member: int
    customer_id: object
    rows: list
    tier_before: V.Tier | None
    tier_after: V.Tier | None = None
    expired: list = field(default_factory=list)  # expiry postings due before the unit
    checks: list = field(default_factory=list)
    exact: dict = field(default_factory=dict)  # rule -> exact points over the unit
    total_exact: Fraction = Fraction(0)
    rounded: int = 0
    shares: dict = field(default_factory=dict)  # rule -> rounded share (largest remainder)
    room: int | None = None  # points the caps still allowed, None without caps
    issued: dict = field(default_factory=dict)
    capped: dict = field(default_factory=dict)
    postings: list = field(default_factory=list)  # the unit's own postings (after `expired`)
    declined: bool = False
    balance: int = 0
    period_points: dict = field(default_factory=dict)  # day/week/month/year -> points issued so far
    discounts: list = field(default_factory=list)  # DiscountCheck per discount and line (or basket)
    paid: dict = field(default_factory=dict)  # row -> what the member paid for the line (minor units), after discounts
    tier_window: dict = field(default_factory=dict)  # metric -> its sum over the tier window after the unit (the block's, then alternatives')
    best_of: list = field(default_factory=list)  # per `best of` group that earned: (rule kept, its exact points, [(rule lost, its exact points)])
    benefits: dict = field(default_factory=dict)  # benefit -> times it fired on the unit
    pending: int = 0  # points not yet available after the unit (`points available after`): `balance` is the available rest
    payment: Payment | None = None  # `pay with points` on the unit: what was paid, or why not


@dataclass
class Payment:
    """A payment with points on one basket (docs/semantics.md, "Paying with points"): `points`
    spent and the `money` they paid (minor units); `recorded` when the history gave it (else
    drawn); `outcome` says what happened: paid | declined: ... | nothing to pay (why)."""

    points: int
    money: int
    recorded: bool
    outcome: str
    lots: list = field(default_factory=list)  # (lot day, points taken) per lot, oldest first


# --- member state -------------------------------------------------------------------------------


@dataclass
class Lot:
    day: dt.date
    points: int


@dataclass
class Basket:
    """What a refund needs to know about an earlier basket."""

    day: dt.date
    total: Fraction
    issued: dict  # rule index -> points issued
    refunded: Fraction = Fraction(0)
    clawed: dict = field(default_factory=dict)  # rule index -> points clawed back (incl. shortfall)
    discounts: dict = field(default_factory=dict)  # discount index -> (cost, partner share) given on the basket
    reversed: dict = field(default_factory=dict)  # discount index -> (cost, partner share) reversed by refunds


@dataclass
class Member:
    index: int
    customer_id: object
    customer: dict
    enrolled: dt.date
    first_day: dt.date
    lots: list = field(default_factory=list)
    history: list = field(default_factory=list)  # (timestamp, spend, points, visits) per unit
    issued_in: dict = field(default_factory=dict)  # (period, key) -> points issued
    firings: dict = field(default_factory=dict)  # (rule index, key) -> firings
    baskets: dict = field(default_factory=dict)  # unit -> Basket
    discount_uses: dict = field(default_factory=dict)  # (discount index, key) -> baskets it applied to
    last_purchase: dt.date | None = None
    # Status rules (`downgrade one level at a time`, `review tiers every ...`): the level held after
    # the last row, and that row's time (reviews after it are still to apply).
    held: int = 0
    last_point: pd.Timestamp | None = None
    next_voucher: pd.Timestamp | None = None  # the next period end vouchers are issued at (`issued every`)
    recent: list = field(default_factory=list)  # (day, spend, visits) per purchase and refund, for the recency builtins

    @property
    def balance(self) -> int:
        return sum(lot.points for lot in self.lots)

    def available(self, t: pd.Timestamp, pending_days: int) -> int:
        """The available balance at moment `t` (docs/semantics.md, "Pending points"): the points of
        the lots earned on or before the day `pending_days` days before t's. Lots are kept in the
        order earned, so the available lots come first, and spending oldest first spends only them."""
        if pending_days == 0:
            return self.balance
        last = t.date() - dt.timedelta(days=pending_days)
        return sum(lot.points for lot in self.lots if lot.day <= last)


@dataclass
class Context:
    model: Model
    decimals: int
    redemption: data.RedemptionPolicy | None
    observer: object
    postings: list = field(default_factory=list)  # (member, Posting)
    declined: int = 0
    unmatched: int = 0
    moments: list = field(default_factory=list)  # pd.Timestamp, rising: when to count members by tier
    tier_counts: np.ndarray | None = None  # (moments, levels)
    row_tiers: dict | None = None  # batch row number -> (tier level, tier metric) before its unit
    closed: dict = field(default_factory=dict)  # budgeted rule or discount -> global_step.Closing (docs/semantics.md, "Budgets")


def _spent(ctx: Context, rec: UnitRecord, name: str) -> bool:
    """Whether the budget of rule or discount `name` has closed it for this unit (for everyone)."""
    first = rec.rows[0]
    return global_step.is_closed(ctx.closed.get(name), first["timestamp"].value, rec.customer_id, int(first["row"]))


def _money(minor: int, decimals: int) -> Fraction:
    return Fraction(int(minor), 10**decimals)


# --- tiers --------------------------------------------------------------------------------------


def _level(model: Model, metric: Fraction) -> int:
    level = 0
    for i, threshold in enumerate(model.tiers.thresholds):
        if metric >= threshold:
            level = i
    return level


METRIC = {"spend": 1, "points": 2, "visits": 3}


def tier_and_metric(model: Model, m: Member, t: pd.Timestamp) -> tuple[int, Fraction]:
    """The tier level held before a row at `t`, from the rows already processed, and the metric
    it progresses by (over the window; this calendar year's, for calendar-year tiers)."""
    spec = model.tiers
    col = METRIC[spec.metric]
    if spec.window == "calendar_year":
        this = [h for h in m.history if h[0].year == t.year]
        level, metric = _qualified(model, m.history, t), sum((h[col] for h in this), Fraction(0))
    else:
        level = _qualified(model, m.history, t)
        metric = sum((h[col] for h in _in_window(model, m.history, t)), Fraction(0))
    return max(level, _retained(model, m, t)), metric


def _in_window(model: Model, rows: list, t: pd.Timestamp) -> list:
    """The rows a rolling or lifetime window ending at `t` counts."""
    spec = model.tiers
    if spec.window == "lifetime":
        return rows
    start = V.window_start(t, spec.n, spec.window)
    return [h for h in rows if h[0] > start]


def _qualified(model: Model, rows: list, t: pd.Timestamp) -> int:
    """The level `rows` (all at or before `t`) qualify for at `t`, retention aside: over the window,
    or the better of this calendar year's and last year's."""
    if model.tiers.window == "calendar_year":
        return max(_reached(model, [h for h in rows if h[0].year == t.year]), _reached(model, [h for h in rows if h[0].year == t.year - 1]))
    return _reached(model, _in_window(model, rows, t))


def _retained(model: Model, m: Member, t: pd.Timestamp) -> int:
    """The highest level held at `t` by `keep N months`: a row after which the member qualified for
    it (reached or re-qualified) less than N months before `t` (docs/semantics.md)."""
    keep = model.tiers.keep_months
    level = 0
    for k, h in enumerate(m.history if keep else ()):
        reached = _qualified(model, m.history[: k + 1], h[0])
        for q in range(level + 1, reached + 1):
            if keep[q] and t < V.window_start(h[0], -keep[q], "months"):  # N months after the row, at its time of day
                level = q
    return level


def window_values(model: Model, m: Member, t: pd.Timestamp) -> dict:
    """Each metric the tiers count (the block's, then its alternatives') summed over the window
    that ends at `t` (this calendar year's, for calendar-year tiers): what `trace` shows."""
    spec = model.tiers
    if spec is None:
        return {}
    if spec.window == "calendar_year":
        counted = [h for h in m.history if h[0].year == t.year and h[0] < t]
    elif spec.window == "lifetime":
        counted = [h for h in m.history if h[0] < t]
    else:
        start = V.window_start(t, spec.n, spec.window)
        counted = [h for h in m.history if start < h[0] < t]
    metrics = dict.fromkeys([spec.metric, *(metric for level in spec.alternatives for metric, _ in level)])
    return {metric: sum((h[METRIC[metric]] for h in counted), Fraction(0)) for metric in metrics}


def _reached(model: Model, rows: list) -> int:
    """The highest level the rows reach by the block's metric or by any level's alternative
    (`Gold from 5000 CNY or 24 visits`): each metric summed over the same rows."""
    spec = model.tiers
    level = _level(model, sum((h[METRIC[spec.metric]] for h in rows), Fraction(0)))
    for i, alternatives in enumerate(spec.alternatives):
        for metric, threshold in alternatives:
            if i > level and sum((h[METRIC[metric]] for h in rows), Fraction(0)) >= threshold:
                level = i
    return level


def _has_status(model: Model) -> bool:
    return model.tiers is not None and (model.tiers.one_level or model.tiers.review_months > 0)


def _reviews(last: pd.Timestamp, until: pd.Timestamp, months: int) -> list[pd.Timestamp]:
    """The review moments after `last` up to `until`: 00:00 on the first day of each month whose
    number (January 0) is a multiple of `months`."""
    out = []
    index = last.year * 12 + last.month - 1 + 1
    while True:
        while index % months:
            index += 1
        moment = pd.Timestamp(index // 12, index % 12 + 1, 1)
        if moment > until:
            return out
        out.append(moment)
        index += 1


def _fall(model: Model, held: int, qualified: int) -> int:
    return max(qualified, held - 1) if model.tiers.one_level else qualified


def status_at(model: Model, m: Member, t: pd.Timestamp) -> int:
    """The level held at `t` under the status rules, from the level held after the member's last
    row: each review since then applies a fall (at most one level with `downgrade one level at a
    time`), then at `t` a rise applies at once and, without reviews, a fall too (docs/semantics.md)."""
    held = m.held
    months = model.tiers.review_months
    for r in _reviews(m.last_point, t, months) if months and m.last_point is not None else ():
        q = tier_and_metric(model, m, r)[0]
        held = q if q > held else (_fall(model, held, q) if q < held else held)
    q = tier_and_metric(model, m, t)[0]
    if q > held:
        return q
    return _fall(model, held, q) if q < held and not months else held


def tier_at(model: Model, m: Member, t: pd.Timestamp) -> V.Tier | None:
    """The tier held before a row at `t`, from the rows already processed."""
    if model.tiers is None:
        return None
    level = status_at(model, m, t) if _has_status(model) else tier_and_metric(model, m, t)[0]
    return V.Tier(level, model.tiers.names[level])


def _tier_name(model: Model, m: Member, t: pd.Timestamp) -> str:
    tier = tier_at(model, m, t)
    return tier.name if tier else ""


# --- expressions over a row ---------------------------------------------------------------------


def _env(ctx: Context, m: Member, line: dict, basket: dict, tier, observe=None, extra=None) -> V.Env:
    model = ctx.model
    tiers = {name: V.Tier(i, name) for i, name in enumerate(model.tiers.names)} if model.tiers else {}
    day = line["timestamp"].date()
    variables = {
        "amount": lambda: _money(line["amount"], ctx.decimals),
        "date": lambda: day,
        "weekday": lambda: V.Weekday(day.weekday()),
        "tier": lambda: tier,
        "event": lambda: line["event"],
        "point_cost": lambda: model.point_cost,
        "days_since_last_purchase": lambda: V.MISSING if m.last_purchase is None else Fraction((day - m.last_purchase).days),
    }

    def names(name: str):
        # Precedence as in rulelang.builtins: variables, declared columns, columns, tiers, weekdays.
        if extra and name in extra and name in B.VARIABLES:
            return extra[name]
        if name in variables:
            return variables[name]()
        if name in model.columns:
            return V.CELL[model.columns[name]](line.get(name), ctx.decimals)
        if name in B.COLUMNS:
            return V.CELL[B.COLUMNS[name].type](line.get(name), ctx.decimals)
        if name in tiers:
            return tiers[name]
        if name in B.WEEKDAYS:
            return V.Weekday(B.WEEKDAYS[name])
        if extra and name in extra:  # rule names, in asserts
            return extra[name]
        raise KeyError(name)

    def customer(attr: str):
        if attr == "enrolled":
            return m.enrolled
        if attr == "days_enrolled":
            return Fraction((day - m.enrolled).days)
        typ = model.customer_columns.get(attr) or B.CUSTOMER[attr].type
        return V.CELL[typ](m.customer.get(attr), ctx.decimals)

    return V.Env(names, customer, basket, observe, basket.get(_SUM), lambda name, n, unit: recency(m, day, name, n, unit))


def recency(m: Member, day: dt.date, name: str, n: int, unit: str) -> Fraction:
    """`visits_in(N unit)` / `spend_in(N unit)` on a row of `day`: over the member's purchases and
    refunds before the row (`m.recent`) on the N days (or N months, clamped) that end with `day`:
    purchases counted once per basket; spend the amounts before discounts, refunds taking theirs off."""
    start = day - dt.timedelta(days=n) if unit == "days" else V.add_months(day, -n)
    inside = [r for r in m.recent if r[0] > start]
    if name == "visits_in":
        return Fraction(sum(r[2] for r in inside))
    return sum((r[1] for r in inside), Fraction(0))


def line_env(model: Model, line: dict, decimals: int) -> V.Env:
    """What a basket sum's condition reads on one line: the line's fields, tier and weekday names."""
    tiers = {name: V.Tier(i, name) for i, name in enumerate(model.tiers.names)} if model.tiers else {}

    def names(name: str):
        if name == "amount":
            return _money(line["amount"], decimals)
        if name in model.columns:
            return V.CELL[model.columns[name]](line.get(name), decimals)
        if name in B.COLUMNS:
            return V.CELL[B.COLUMNS[name].type](line.get(name), decimals)
        if name in tiers:
            return tiers[name]
        if name in B.WEEKDAYS:
            return V.Weekday(B.WEEKDAYS[name])
        raise KeyError(name)

    return V.Env(names, lambda attr: V.MISSING, {})


def basket_sum(model: Model, lines: list[dict], decimals: int):
    """`basket.total(CONDITION)` and `basket.quantity(CONDITION)` over one basket's lines: the
    figure of `_basket_figures` over the lines for which the condition holds (a line where it reads
    a missing value is left out; a chosen line with a missing quantity makes the quantity missing)."""

    def total(attr: str, condition):
        chosen = [line for line in lines if V.truth(condition, line_env(model, line, decimals))]
        if attr == "quantity" and any("quantity" in line for line in lines) and chosen:
            qs = [V.cell_number(line.get("quantity")) for line in chosen]
            return V.MISSING if V.MISSING in qs else sum(qs, Fraction(0))
        return _basket_figures(chosen, decimals)[attr] if chosen else Fraction(0)

    return total


def units(line: dict) -> int:
    """The whole units of a line for `N points per unit`: its quantity rounded down; 0 (no points)
    when the cell is missing, not a number or negative (the data must have the column)."""
    q = V.cell_number(line.get("quantity"))
    return 0 if q is V.MISSING or q < 0 else math.floor(q)


# The basket's figures carry its sums under this key, which no `basket.NAME` can spell.
_SUM = "basket sum"


def _basket_figures(lines: list[dict], decimals: int) -> dict:
    quantity = Fraction(len(lines))
    if any("quantity" in line for line in lines):
        qs = [V.cell_number(line.get("quantity")) for line in lines]
        quantity = V.MISSING if V.MISSING in qs else sum(qs, Fraction(0))
    return {
        "total": sum((_money(line["amount"], decimals) for line in lines), Fraction(0)),
        "lines": Fraction(len(lines)),
        "quantity": quantity,
    }


# --- lots ---------------------------------------------------------------------------------------


def _add_lot(m: Member, day: dt.date, points: int) -> None:
    if m.lots and m.lots[-1].day == day:
        m.lots[-1].points += points
    else:
        m.lots.append(Lot(day, points))


def _take(lots: list[Lot], points: int) -> list[tuple[Lot, int]]:
    """Take up to `points` from the lots in the given order: (lot, taken) per lot touched."""
    out = []
    for lot in lots:
        if points == 0:
            break
        n = min(lot.points, points)
        if n > 0:
            lot.points -= n
            points -= n
            out.append((lot, n))
    return out


# --- expiry -------------------------------------------------------------------------------------


def _due_expiries(model: Model, m: Member, until: pd.Timestamp) -> list[tuple[pd.Timestamp, int, Lot]]:
    """(moment, lot order, lot) of every non-empty lot whose expiry moment is <= `until`."""
    spec = model.expiry
    due = []
    if spec.kind == "inactive":
        last = m.last_purchase or m.first_day
        moment = V.start_of(V.add_span(last, spec.n, spec.unit))
        if moment <= until:
            # The balance at the moment expires: every lot earned before that day.
            due = [(moment, i, lot) for i, lot in enumerate(m.lots) if lot.points > 0 and lot.day < moment.date()]
    elif spec.kind != "never":
        for i, lot in enumerate(m.lots):
            if lot.points > 0:
                moment = V.lot_expiry(lot.day, spec.kind, spec.n, spec.unit)
                if moment <= until:
                    due.append((moment, i, lot))
    return sorted(due, key=lambda d: (d[0], d[1]))


def _expire(ctx: Context, m: Member, until: pd.Timestamp) -> list[Posting]:
    out = []
    for moment, _, lot in _due_expiries(ctx.model, m, until):
        out.append(Posting(moment, "expire", points=lot.points, earned_on=lot.day, tier=_tier_name(ctx.model, m, moment)))
        lot.points = 0
    return out


# --- earning ------------------------------------------------------------------------------------


def _award(rule: Rule, line: dict, line_amount: Fraction, target_points: Fraction) -> Fraction:
    if rule.kind == "per_spend":
        return max(rule.rate * line_amount, Fraction(0))
    if rule.kind == "fixed":
        return rule.points
    if rule.kind == "per_unit":
        return rule.points * units(line)
    if rule.kind == "benefit":  # a benefit's "award" is the firing itself; its cost is posted by `_benefits`
        return Fraction(1)
    return (rule.factor - 1) * target_points


def _fire(ctx, m: Member, rec: UnitRecord, rule: Rule, line: dict, basket: dict, tier, target_points) -> Fraction:
    """The exact points `rule` earns on one line (or basket), counting the firing if it earns."""
    comparisons: list = []
    observe = (lambda node, a, b, r: comparisons.append((node, a, b, r))) if ctx.observer else None
    day = line["timestamp"].date()
    check = RuleCheck(rule.name, int(line["row"]), "fired", comparisons=comparisons)
    points = Fraction(0)
    if rule.during is not None and not (rule.during[0] <= day <= rule.during[1]):
        check.outcome = "outside campaign"
    elif rule.budget is not None and _spent(ctx, rec, rule.name):
        check.outcome = "budget spent"
    elif rule.kind == "multiplier" and target_points <= 0:
        check.outcome = "target earned nothing"
    elif not V.truth(rule.condition, _env(ctx, m, line, basket, tier, observe)):
        check.outcome = "condition false"
    else:
        paid = rec.paid.get(int(line["row"]), line["amount"])  # per-spend earning counts what was paid
        points = _award(rule, line, _money(paid, ctx.decimals), target_points)
        key = (rule.index, V.period_key(day, rule.per))
        if points <= 0:
            # A per-unit rule on a line without a whole unit (its quantity missing, below 1 or negative).
            check.outcome = "no whole unit in the quantity" if rule.kind == "per_unit" else "earned nothing"
            points = Fraction(0)
        elif rule.times is not None and m.firings.get(key, 0) >= rule.times:
            check.outcome, points = "limit reached", Fraction(0)
        else:
            m.firings[key] = m.firings.get(key, 0) + 1
    check.exact = points
    if ctx.observer:
        rec.checks.append(check)
    return points


def _exact_points(ctx: Context, m: Member, rec: UnitRecord, rules: list[Rule], lines: list[dict], tier) -> dict:
    """Exact points per rule index over the unit: line-scope rules line by line, basket-scope once."""
    basket = _basket_figures(lines, ctx.decimals)
    basket[_SUM] = basket_sum(ctx.model, lines, ctx.decimals)
    ordered = [r for r in rules if r.kind != "multiplier"]
    ordered += [r for r in ctx.model.multiplier_order() if r in rules]
    exact = {r.index: Fraction(0) for r in rules}
    for scope, scope_lines in (("basket", lines[:1]), ("line", lines)):
        for line in scope_lines:
            earned: dict[str, Fraction] = {}
            for rule in ordered:
                if rule.scope != scope:
                    continue
                # A multiplier has its target's scope, so the target has run on this line already.
                target = earned.get(rule.target, Fraction(0)) if rule.kind == "multiplier" else Fraction(0)
                earned[rule.name] = _fire(ctx, m, rec, rule, line, basket, tier, target)
                exact[rule.index] += earned[rule.name]
    return exact


def _best_of(ctx: Context, m: Member, rec: UnitRecord, exact: dict, before: dict) -> None:
    """`best of` (docs/semantics.md, "Best of"): in each group, of the rules that earned on the unit
    only the one with the largest exact award keeps it (ties: the first listed); the others' exact
    points become 0, and their firings on the unit are taken back from the frequency counters
    (`before`: the counters before the unit), so a promotion that lost has not been used."""
    names = {r.index: r.name for r in ctx.model.rules}
    for group in ctx.model.groups:
        kept = None
        for i in group:  # in the order listed: a later rule must earn strictly more to win
            if exact.get(i, 0) > 0 and (kept is None or exact[i] > exact[kept]):
                kept = i
        if kept is None:
            continue
        lost = [i for i in group if i != kept and exact.get(i, 0) > 0]
        rec.best_of.append((names[kept], exact[kept], [(names[i], exact[i]) for i in lost]))
        for i in lost:
            exact[i] = Fraction(0)
            for key in [k for k in m.firings if k[0] == i]:
                if key in before:
                    m.firings[key] = before[key]
                else:
                    del m.firings[key]
        for check in rec.checks:
            if check.rule in (names[i] for i in lost) and check.outcome == "fired":
                check.outcome = f"lost to `{names[kept]}` (best of)"


def _benefits(ctx: Context, rec: UnitRecord, benefits: list[Rule], firings: dict, first: dict) -> list[Posting]:
    """One `benefit` posting per benefit that fired on the unit: its cost times the firings (each
    firing's cost in minor units, half up), the partner's share of that, half up. No points."""
    out = []
    for b in benefits:  # declaration order
        n = int(firings[b.index])
        if n:
            cost = n * V.to_minor(b.cost, ctx.decimals)
            share = V.to_minor(Fraction(cost, 10**ctx.decimals) * b.funded_share, ctx.decimals) if b.funded_share else 0
            out.append(Posting(first["timestamp"], "benefit", b.name, 0, cost=cost, partner_share=share, row=int(first["row"])))
    rec.benefits = {b.name: int(firings[b.index]) for b in benefits}
    return out


def _earn(ctx: Context, m: Member, rec: UnitRecord, rules: list[Rule], lines: list[dict], tier) -> list[Posting]:
    """The unit's points (and, when `rules` holds benefits, after them the benefits' postings)."""
    model = ctx.model
    first = lines[0]
    t, day = first["timestamp"], first["timestamp"].date()
    before = dict(m.firings) if model.groups else None
    exact = _exact_points(ctx, m, rec, rules, lines, tier)
    benefits = [r for r in rules if r.kind == "benefit"]
    firings = {b.index: exact.pop(b.index) for b in benefits}
    rules = [r for r in rules if r.kind != "benefit"]
    if model.groups:
        _best_of(ctx, m, rec, exact, before)
    decl = sorted(rules, key=lambda r: r.index)
    total = sum(exact.values(), Fraction(0))
    rounded = V.ROUND[model.rounding](total)
    shares = dict(zip((r.index for r in decl), V.largest_remainder([exact[r.index] for r in decl], rounded), strict=True))
    room = None
    for limit, period in model.limits:
        left = max(limit - m.issued_in.get((period, V.period_key(day, period)), 0), 0)
        room = left if room is None else min(room, left)
    available = rounded if room is None else min(rounded, room)
    issued, capped = {}, {}
    for r in decl:
        issued[r.index] = min(shares[r.index], available)
        capped[r.index] = shares[r.index] - issued[r.index]
        available -= issued[r.index]
    out = []
    for r in decl:
        if issued[r.index] > 0:
            share = V.to_minor(issued[r.index] * model.point_cost * r.funded_share, ctx.decimals) if r.funded_share else 0
            out.append(Posting(t, "earn", r.name, issued[r.index], day, partner_share=share, row=int(first["row"])))
    for r in decl:
        if capped[r.index] > 0:
            out.append(Posting(t, "capped", r.name, capped[r.index], row=int(first["row"])))
    got = sum(issued.values())
    if got:
        _add_lot(m, day, got)
        for period in PERIODS:
            key = (period, V.period_key(day, period))
            m.issued_in[key] = m.issued_in.get(key, 0) + got
    names = {r.index: r.name for r in decl}
    rec.exact = {names[i]: x for i, x in exact.items()}
    rec.total_exact, rec.rounded, rec.room = total, rounded, room
    rec.shares = {names[i]: x for i, x in shares.items()}
    rec.issued = {names[i]: x for i, x in issued.items()}
    rec.capped = {names[i]: x for i, x in capped.items()}
    paid = sum((_money(rec.paid.get(int(x["row"]), x["amount"]), ctx.decimals) for x in lines), Fraction(0))
    m.baskets[int(first["unit"])] = Basket(day, paid, dict(issued))
    return out + (_benefits(ctx, rec, benefits, firings, first) if benefits else [])


# --- discounts ----------------------------------------------------------------------------------


def _discount_holds(ctx: Context, m: Member, d, line: dict, basket: dict, tier) -> tuple[str | None, list]:
    """(None, comparisons) when discount `d`'s campaign and condition hold on a line, else (why not, ...)."""
    comparisons: list = []
    observe = (lambda node, a, b, r: comparisons.append((node, a, b, r))) if ctx.observer else None
    day = line["timestamp"].date()
    if d.during is not None and not (d.during[0] <= day <= d.during[1]):
        return "outside campaign", comparisons
    if not V.truth(d.condition, _env(ctx, m, line, basket, tier, observe)):
        return "condition false", comparisons
    return None, comparisons


def _discount(ctx: Context, m: Member, rec: UnitRecord, lines: list[dict], tier) -> dict:
    """The program's discounts on one basket (docs/semantics.md, "Discounts"): per line, the
    largest percentage that holds; then each fixed amount in declaration order, shared across its
    matching lines in proportion to what they still cost (largest remainder), never more than that.
    Sets `rec.paid` (row -> minor units paid) and counts each discount that took something off
    toward its frequency limit. Returns discount index -> money taken off the basket."""
    model = ctx.model
    amounts = [int(line["amount"]) for line in lines]
    off = [0] * len(lines)
    rec.paid = {int(line["row"]): a for line, a in zip(lines, amounts, strict=True)}
    if not model.discounts:
        return {}
    basket = _basket_figures(lines, ctx.decimals)
    basket[_SUM] = basket_sum(model, lines, ctx.decimals)
    day = lines[0]["timestamp"].date()
    keys = {d.index: (d.index, V.period_key(day, d.per)) for d in model.discounts}
    available = {d.index: d.times is None or m.discount_uses.get(keys[d.index], 0) < d.times for d in model.discounts}
    spent = {d.index for d in model.discounts if d.budget is not None and _spent(ctx, rec, d.name)}
    given = dict.fromkeys((d.index for d in model.discounts), 0)
    per_line = [d for d in model.discounts if d.kind != "fixed"]
    # Each line discount's money off each line, or why none (before choosing among them).
    found = {d.index: [_discount_holds(ctx, m, d, line, basket, tier) for line in lines] for d in per_line}
    offer = {d.index: _line_offer(d, lines, amounts, [o is None for o, _ in found[d.index]]) for d in per_line}
    winner = [None] * len(lines)
    for i, line in enumerate(lines):
        checks, best = [], None
        for d in per_line:
            outcome, comparisons = found[d.index][i]
            if outcome is None and d.index in spent:
                outcome = "budget spent"
            elif outcome is None and not available[d.index]:
                outcome = "limit reached"
            amount, why_none = offer[d.index][i] if outcome is None else (0, None)
            if outcome is None and amount <= 0:
                outcome = why_none or "nothing to take off"
            checks.append(DiscountCheck(d.name, int(line["row"]), outcome or "", amount, comparisons))
            if outcome is None and (best is None or amount > checks[best].amount):  # ties: the first declared
                best = len(checks) - 1
        for k, check in enumerate(checks):
            if not check.outcome:
                check.outcome = "applied" if k == best else "a larger discount applied"
        if best is not None:
            off[i] = checks[best].amount
            winner[i] = per_line[best]
            given[per_line[best].index] += off[i]
        rec.discounts += checks
    for d in per_line:  # `up to`: a discount's money off the basket is at most its cap, shared back by largest remainder
        cap = V.to_minor(d.cap, ctx.decimals) if d.cap is not None else None
        if cap is None or given[d.index] <= cap:
            continue
        won = [i for i in range(len(lines)) if winner[i] is d]
        shares = V.largest_remainder([Fraction(cap * off[i], given[d.index]) for i in won], cap)
        for i, share in zip(won, shares, strict=True):
            off[i] = share
        given[d.index] = cap
        position = {int(line["row"]): i for i, line in enumerate(lines)}
        for check in rec.discounts:
            if check.discount == d.name and check.outcome == "applied":
                check.amount = off[position[check.row]]
                check.outcome = f"applied, up to {V.show_number(d.cap)} {model.currency} reached"
    for d in (d for d in model.discounts if d.kind == "fixed"):
        found = [_discount_holds(ctx, m, d, line, basket, tier) for line in lines]
        matching = [i for i, (outcome, _) in enumerate(found) if outcome is None]
        check = DiscountCheck(d.name, int(lines[0]["row"]), "", 0, [c for _, cs in found for c in cs])
        if not matching:
            check.outcome = found[0][0]
        elif d.index in spent:
            check.outcome = "budget spent"
        elif not available[d.index]:
            check.outcome = "limit reached"
        else:
            left = [max(amounts[i] - off[i], 0) for i in matching]
            whole = sum(left)
            amount = min(V.to_minor(d.amount, ctx.decimals), whole)
            if amount <= 0:
                check.outcome = "nothing to take off"
            else:
                shares = V.largest_remainder([Fraction(amount * x, whole) for x in left], amount)
                for i, share in zip(matching, shares, strict=True):
                    off[i] += share
                given[d.index] = amount
                check.outcome, check.amount = "applied", amount
        rec.discounts.append(check)
    for d in model.discounts:
        if given[d.index] > 0:
            m.discount_uses[keys[d.index]] = m.discount_uses.get(keys[d.index], 0) + 1
    rec.paid = {int(line["row"]): a - o for line, a, o in zip(lines, amounts, off, strict=True)}
    return {i: x for i, x in given.items() if x > 0}


def _line_offer(d, lines: list[dict], amounts: list[int], holds: list[bool]) -> list[tuple[int, str | None]]:
    """(money off, why none) per line for a line discount on the lines where it holds: a percentage
    of the line (half up), of the cheapest line only with `on the cheapest line`; for `buy N get M
    free` the free units' share of their lines."""
    out: list[tuple[int, str | None]] = [(0, None)] * len(lines)
    if d.kind == "percent":
        where = [i for i in range(len(lines)) if holds[i] and amounts[i] > 0]
        if d.cheapest and where:
            cheapest = min(where, key=lambda i: (amounts[i], i))
            for i in where:
                out[i] = (0, "not the cheapest line") if i != cheapest else (V.half_up(amounts[i] * d.percent), None)
            return out
        for i in where:
            out[i] = (V.half_up(amounts[i] * d.percent), None)
        return out
    # buy N get M free: every matching unit at its line's unit price, dearest first (ties: line
    # order), cut into groups of N + M; in each full group the last M (its cheapest) are free.
    # A line's units are positions p0 .. p0 + u of that row; the free ones among them are counted
    # (not listed: a quantity may be large).
    counted = [i for i in range(len(lines)) if holds[i] and amounts[i] > 0 and units(lines[i]) > 0]
    order = sorted(counted, key=lambda i: (-Fraction(amounts[i], units(lines[i])), i))
    group = d.buy + d.get
    full = sum(units(lines[i]) for i in counted) // group * group  # units in full groups

    def free_before(p: int) -> int:  # free positions among the first p
        p = min(p, full)
        return p // group * d.get + max(p % group - d.buy, 0)

    free, start = {}, 0
    for i in order:
        free[i] = free_before(start + units(lines[i])) - free_before(start)
        start += units(lines[i])
    for i in counted:
        out[i] = (V.half_up(Fraction(free[i] * amounts[i], units(lines[i]))), None if free[i] else "no free unit on this line")
    return out


def _discount_postings(ctx: Context, m: Member, given: dict, lines: list[dict]) -> list[Posting]:
    """One `discount` posting per discount that took money off the basket: its cost, and the
    partner's share of it (half up)."""
    first = lines[0]
    out = []
    for d in ctx.model.discounts:
        if d.index in given:
            cost = given[d.index]
            out.append(Posting(first["timestamp"], "discount", d.name, cost=cost, partner_share=V.half_up(cost * d.funded_share),
                               row=int(first["row"])))
    return out


def _reverse_discounts(ctx: Context, basket: Basket, share: Fraction, t, row: int) -> list[Posting]:
    """A refund of `share` of a basket reverses that share of each discount given on it (half up,
    less what earlier refunds reversed): `discount` postings with negative cost and partner share."""
    out = []
    for d in ctx.model.discounts:
        if d.index not in basket.discounts:
            continue
        cost, partner = basket.discounts[d.index]
        done_cost, done_partner = basket.reversed.get(d.index, (0, 0))
        due_cost = V.half_up(cost * share) - done_cost
        due_partner = V.half_up(partner * share) - done_partner
        if due_cost <= 0 and due_partner <= 0:
            continue
        basket.reversed[d.index] = (done_cost + due_cost, done_partner + due_partner)
        out.append(Posting(t, "discount", d.name, cost=-due_cost, partner_share=-due_partner, row=row))
    return out


# --- redemption ---------------------------------------------------------------------------------


def _redeem(ctx: Context, m: Member, reward, t: pd.Timestamp, row: int) -> list[Posting]:
    out = []
    for lot, n in _take(m.lots, reward.points):
        first = not out
        cost = V.to_minor(reward.cost, ctx.decimals) if first else 0
        share = V.to_minor(reward.cost * reward.funded_share, ctx.decimals) if first else 0
        out.append(Posting(t, "redeem", points=n, earned_on=lot.day, reward=reward.name, cost=cost, partner_share=share, row=row))
    return out


def voucher_moment(t: pd.Timestamp, months: int) -> pd.Timestamp:
    """The last moment of the period `months` long (calendar months from January: 1, 3 or 12)
    that holds `t`: when automatic vouchers are issued (docs/semantics.md, "Automatic vouchers")."""
    after = ((t.year * 12 + t.month - 1) // months + 1) * months  # the month number the next period starts
    return pd.Timestamp(dt.datetime(after // 12, after % 12 + 1, 1)) - pd.Timedelta(1, "ns")


def _vouchers(ctx: Context, m: Member, until: pd.Timestamp, inclusive: bool) -> list[Posting]:
    """The automatic voucher at every period end before `until` (or at it, when `inclusive`: the
    member's last moment), each after the expiries due by then: the available balance turned into
    as many vouchers as it affords, n of them, posted as one redemption of n times the reward's
    points, oldest lots first (a posting per lot), the first posting carrying n times its cost
    and n times its partner's share (each voucher's rounded to the minor unit), at the tier held
    then. One redemption, not n: a member's postings stay bounded by the lots, whatever n is."""
    out: list[Posting] = []
    voucher = ctx.model.voucher
    cost = V.to_minor(voucher.cost, ctx.decimals)
    share = V.to_minor(voucher.cost * voucher.funded_share, ctx.decimals)
    while m.next_voucher is not None and (m.next_voucher < until or (inclusive and m.next_voucher <= until)):
        moment = m.next_voucher
        out += _expire(ctx, m, moment)
        tier = _tier_name(ctx.model, m, moment)
        n = m.available(moment, ctx.model.pending_days) // voucher.points
        issued: list[Posting] = []
        for lot, k in _take(m.lots, n * voucher.points):
            first = not issued
            issued.append(Posting(moment, "redeem", points=k, earned_on=lot.day, reward=voucher.name, cost=n * cost if first else 0,
                                  partner_share=n * share if first else 0, row=-1, tier=tier))
        out += issued
        m.next_voucher = voucher_moment(moment + pd.Timedelta(1, "ns"), voucher.issued_months)
    return out


def _choose(rewards: list, choice: str, u2: float):
    """The reward a member picks among the affordable ones (declaration order)."""
    if choice == "cheapest":
        return min(rewards, key=lambda r: (r.points, r.index))
    if choice == "dearest":
        return min(rewards, key=lambda r: (-r.points, r.index))
    return rewards[min(int(np.floor(u2 * len(rewards))), len(rewards) - 1)]


def _policy(ctx: Context, m: Member, first: dict) -> list[Posting]:
    pol = ctx.redemption
    if pol is None:
        return []
    u = float(first[pol.draw])
    affordable = [r for r in ctx.model.rewards if r.points <= m.available(first["timestamp"], ctx.model.pending_days) and not r.issued_months]
    if not (u < pol.probability) or not affordable:
        return []
    reward = _choose(affordable, pol.choice, float(first[pol.choice_draw]))
    return _redeem(ctx, m, reward, first["timestamp"], int(first["row"]))


# --- paying with points -------------------------------------------------------------------------


def _pay_with_points(ctx: Context, m: Member, rec: UnitRecord, lines: list[dict]) -> list[Posting]:
    """`pay with points` on one basket, after its discounts (docs/semantics.md, "Paying with
    points"): the points the history records on the basket's rows when it has a `points_paid`
    column, else, when the member's draw says they pay with points, as many whole steps as the
    available balance, the cap and the minimum allow. The points come from the oldest lots
    (`redeem` postings of `pay_with_points`, the money paid as the first one's cost); the money
    they pay is shared across the lines by what each still costs (largest remainder) and taken
    off `rec.paid`, so it earns nothing and is no tier spend. A recorded payment the balance (or
    the basket) cannot cover is declined, counted with the declined redemptions; the purchase stands."""
    spec = ctx.model.pay_with_points
    first = lines[0]
    t = first["timestamp"]
    step_money = V.to_minor(spec.value, ctx.decimals)
    rows = [int(x["row"]) for x in lines]
    owed = [max(rec.paid[r], 0) for r in rows]
    basket = sum(owed)
    balance = m.available(t, ctx.model.pending_days)  # pending points are not spent at the till
    recorded = data.POINTS_PAID in first
    if recorded:
        points = sum(int(x[data.POINTS_PAID]) for x in lines)
        if points == 0:
            return []
        money = V.half_up(Fraction(points * step_money, spec.points))
        if points > balance or money > basket:
            ctx.declined += 1
            why = "the balance cannot cover it" if points > balance else "it is more than the basket costs"
            rec.payment = Payment(points, money, True, f"declined: {why}")
            return []
    else:
        pol = ctx.redemption
        if pol is None or pol.pay_probability <= 0 or not (float(first[pol.pay_draw]) < pol.pay_probability):
            return []
        if balance < spec.minimum:
            rec.payment = Payment(0, 0, False, f"nothing to pay: the balance is below {spec.minimum} points")
            return []
        steps = min(balance // spec.points, math.floor(basket * spec.cap) // step_money)
        if steps <= 0:
            rec.payment = Payment(0, 0, False, "nothing to pay: not one step of points fits the balance and the cap")
            return []
        points, money = steps * spec.points, steps * step_money
    shares = V.largest_remainder([Fraction(money * x, basket) for x in owed], money) if basket else [0] * len(rows)
    for r, share in zip(rows, shares, strict=True):
        rec.paid[r] -= share
    out = []
    taken = _take(m.lots, points)
    for lot, n in taken:
        out.append(Posting(t, "redeem", points=n, earned_on=lot.day, reward=PAY_WITH_POINTS, cost=money if not out else 0, row=int(first["row"])))
    rec.payment = Payment(points, money, recorded, "paid", [(lot.day, n) for lot, n in taken])
    return out


# --- units by kind ------------------------------------------------------------------------------


def _purchase(ctx: Context, m: Member, rec: UnitRecord, lines: list[dict], tier):
    rules = [r for r in ctx.model.firing if r.event == B.PURCHASE]
    given = _discount(ctx, m, rec, lines, tier)
    paying = _pay_with_points(ctx, m, rec, lines) if ctx.model.pay_with_points else []
    out = _discount_postings(ctx, m, given, lines) + paying + _earn(ctx, m, rec, rules, lines, tier)
    if paying:  # a refund's share is of what the basket cost, points and money together
        m.baskets[int(lines[0]["unit"])].total += _money(rec.payment.money, ctx.decimals)
    if given:  # what a refund of this basket reverses
        share = {d.index: d.funded_share for d in ctx.model.discounts}
        m.baskets[int(lines[0]["unit"])].discounts = {i: (c, V.half_up(c * share[i])) for i, c in given.items()}
    first = lines[0]
    m.last_purchase = first["timestamp"].date()
    spend = sum((_money(rec.paid.get(int(x["row"]), x["amount"]), ctx.decimals) for x in lines), Fraction(0))  # tier spend counts what was paid
    points = sum(p.points for p in out if p.kind == "earn")
    m.history.append((first["timestamp"], spend, Fraction(points), Fraction(1)))
    m.recent.append((first["timestamp"].date(), sum((_money(x["amount"], ctx.decimals) for x in lines), Fraction(0)), 1))
    return out + _policy(ctx, m, first)


def _event(ctx: Context, m: Member, rec: UnitRecord, lines: list[dict], tier):
    rules = [r for r in ctx.model.firing if r.event == lines[0]["event"]]
    out = _earn(ctx, m, rec, rules, lines, tier) if rules else []
    points = sum(p.points for p in out if p.kind == "earn")
    m.history.append((lines[0]["timestamp"], Fraction(0), Fraction(points), Fraction(0)))
    return out


def _refund(ctx: Context, m: Member, rec: UnitRecord, lines: list[dict], tier):
    row = lines[0]
    t, amount = row["timestamp"], _money(row["amount"], ctx.decimals)
    out = []
    basket = m.baskets.get(int(row["refund_of"])) if row["refund_of"] >= 0 else None
    if basket is None:
        ctx.unmatched += 1
    else:
        basket.refunded += abs(amount)
        share = min(Fraction(1), basket.refunded / basket.total) if basket.total > 0 else Fraction(1)
        out += _reverse_discounts(ctx, basket, share, t, int(row["row"]))
        for r in ctx.model.rules:  # declaration order
            issued = basket.issued.get(r.index, 0)
            due = V.ROUND[ctx.model.rounding](issued * share) - basket.clawed.get(r.index, 0)
            if due <= 0:
                continue
            basket.clawed[r.index] = basket.clawed.get(r.index, 0) + due
            own = [lot for lot in m.lots if lot.day == basket.day]
            taken = _take(own + [lot for lot in m.lots if lot.day != basket.day], due)
            out += [Posting(t, "clawback", r.name, n, lot.day, row=int(row["row"])) for lot, n in taken]
            short = due - sum(n for _, n in taken)
            if short:
                out.append(Posting(t, "shortfall", r.name, short, row=int(row["row"])))
    clawed = sum(p.points for p in out if p.kind == "clawback")
    m.history.append((t, amount, Fraction(-clawed), Fraction(0)))
    m.recent.append((t.date(), amount, 0))
    return out


def _redeem_row(ctx: Context, m: Member, rec: UnitRecord, lines: list[dict], tier):
    row = lines[0]
    reward = next(r for r in ctx.model.rewards if r.name == row["reward"])
    if m.available(row["timestamp"], ctx.model.pending_days) < reward.points:
        ctx.declined += 1
        rec.declined = True
        return []
    return _redeem(ctx, m, reward, row["timestamp"], int(row["row"]))


UNITS = {data.PURCHASE: _purchase, data.EVENT: _event, data.REFUND: _refund, data.REDEEM: _redeem_row}


# --- members ------------------------------------------------------------------------------------


def _enrolled(customer: dict, rows: list[dict]) -> dt.date:
    day = V.cell_date(customer.get("enrolled"))
    if day is not V.MISSING:
        return day
    enroll = next((r for r in rows if r["event"] == B.ENROLL), rows[0])
    return enroll["timestamp"].date()


def _units(rows: list[dict]) -> list[list[dict]]:
    units: list[list[dict]] = []
    for row in rows:
        if units and units[-1][0]["unit"] == row["unit"]:
            units[-1].append(row)
        else:
            units.append([row])
    return units


def _period_points(m: Member, day: dt.date) -> dict:
    return {p: m.issued_in.get((p, V.period_key(day, p)), 0) for p in PERIODS}


def run_member(ctx: Context, index: int, customer: dict, rows: list[dict], until: pd.Timestamp) -> None:
    """Process one member's rows (one member's slice of `Batch.frame`, as records) and post."""
    m = Member(index, customer["customer_id"], customer, _enrolled(customer, rows), rows[0]["timestamp"].date())
    if ctx.model.voucher is not None:
        m.next_voucher = voucher_moment(rows[0]["timestamp"], ctx.model.voucher.issued_months)
    levels = []  # the member's tier level at each moment from their first row on
    joined = sum(1 for moment in ctx.moments if moment < rows[0]["timestamp"])
    for lines in _units(rows):
        t = lines[0]["timestamp"]
        while joined + len(levels) < len(ctx.moments) and ctx.moments[joined + len(levels)] < t:
            levels.append(_level_at(ctx.model, m, ctx.moments[joined + len(levels)]))
        expired = (_vouchers(ctx, m, t, False) if m.next_voucher is not None else []) + _expire(ctx, m, t)
        tier = tier_at(ctx.model, m, t)
        if _has_status(ctx.model):  # the level the row sees is now held; the row may then raise it
            m.held, m.last_point = tier.level, t
        if tier is not None and ctx.model.tiers.counting and int(lines[0]["kind"]) == data.PURCHASE:
            tier = _counting(ctx, m, t, lines, tier)
        if ctx.row_tiers is not None:
            ctx.row_tiers.update(dict.fromkeys((int(line["row"]) for line in lines), _row_tier(ctx, m, t, tier)))
        rec = UnitRecord(index, m.customer_id, lines, tier, expired=expired)
        rec.postings = UNITS[int(lines[0]["kind"])](ctx, m, rec, lines, tier)
        if _has_status(ctx.model):  # a rise the row causes takes effect at once
            m.held = max(m.held, tier_and_metric(ctx.model, m, t)[0])
        for p in rec.postings:
            p.tier = tier.name if tier else ""
        ctx.postings += [(index, p) for p in expired + rec.postings]
        if ctx.observer:
            rec.tier_after = tier_at(ctx.model, m, t + pd.Timedelta(1, "ns"))
            rec.tier_window = window_values(ctx.model, m, t + pd.Timedelta(1, "ns"))
            rec.balance = m.available(t, ctx.model.pending_days)
            rec.pending = m.balance - rec.balance
            rec.period_points = _period_points(m, t.date())
            ctx.observer(rec)
    levels += [_level_at(ctx.model, m, moment) for moment in ctx.moments[joined + len(levels) :]]
    for j, level in enumerate(levels, start=joined):
        ctx.tier_counts[j, level] += 1
    tail = (_vouchers(ctx, m, until, True) if m.next_voucher is not None else []) + _expire(ctx, m, until)
    ctx.postings += [(index, p) for p in tail]
    if ctx.observer and tail:
        available = m.available(until, ctx.model.pending_days)
        ctx.observer(UnitRecord(index, m.customer_id, [], None, expired=tail, balance=available, pending=m.balance - available))


def _counting(ctx: Context, m: Member, t: pd.Timestamp, lines: list[dict], tier: V.Tier) -> V.Tier:
    """`counting the current purchase`: the purchase earns at the higher of the tier held before it
    and the level qualified for with its own amount (before discounts, which may depend on the
    tier) and its visit counted (docs/semantics.md)."""
    gross = sum((_money(x["amount"], ctx.decimals) for x in lines), Fraction(0))
    level = max(tier.level, _qualified(ctx.model, [*m.history, (t, gross, Fraction(0), Fraction(1))], t))
    return V.Tier(level, ctx.model.tiers.names[level])


def _row_tier(ctx: Context, m: Member, t: pd.Timestamp, tier: V.Tier | None = None) -> tuple[int, int]:
    """(tier level, tier metric) before a unit at `t`; the metric whole (spend in minor units)."""
    spec = ctx.model.tiers
    if spec is None:
        return 0, 0
    level, metric = tier_and_metric(ctx.model, m, t)
    if _has_status(ctx.model):
        level = status_at(ctx.model, m, t)
    if tier is not None:
        level = tier.level
    return level, int(metric * (10**ctx.decimals if spec.metric == "spend" else 1))


def _level_at(model: Model, m: Member, moment: pd.Timestamp) -> int:
    """The tier level held at `moment`, counting every unit at or before it (all processed)."""
    if _has_status(model):
        return status_at(model, m, moment)
    return tier_and_metric(model, m, moment)[0] if model.tiers else 0


def _ledger(model: Model, customer_ids, postings: list) -> pd.DataFrame:
    rules = tuple(r.name for r in model.firing) + tuple(d.name for d in model.discounts)
    rewards = model.ledger_rewards
    tiers = tuple(model.tiers.names) if model.tiers else ()
    nat = np.datetime64("NaT", "ns")
    ps = [p for _, p in postings]
    return ledger.frame(
        customer_ids,
        np.array([i for i, _ in postings], dtype=np.int64),
        np.array([np.datetime64(p.timestamp.to_datetime64(), "ns") for p in ps], dtype="datetime64[ns]"),
        np.array([ledger.KINDS.index(p.kind) for p in ps], dtype=np.int64),
        np.array([rules.index(p.rule) if p.rule else -1 for p in ps], dtype=np.int64),
        np.array([p.points for p in ps], dtype=np.int64),
        np.array([np.datetime64(p.earned_on, "ns") if p.earned_on else nat for p in ps], dtype="datetime64[ns]"),
        np.array([rewards.index(p.reward) if p.reward else -1 for p in ps], dtype=np.int64),
        np.array([p.cost for p in ps], dtype=np.int64),
        np.array([p.partner_share for p in ps], dtype=np.int64),
        np.array([p.row for p in ps], dtype=np.int64),
        rules,
        rewards,
        np.array([tiers.index(p.tier) if p.tier else -1 for p in ps], dtype=np.int64),
        tiers,
    )


def run(model: Model, batch: data.Batch, redemption: data.RedemptionPolicy | None = None, observer=None, members=None, closed: dict | None = None) -> pd.DataFrame:
    """The ledger for a validated batch (see docs/semantics.md); `members` limits it to some members.
    Budgets: the closings over every member (`global_step.settle`) are found here from the whole batch,
    unless given in `closed`; an observer sees only the last pass."""
    if closed is None and global_step.budgeted(model):
        closed, _ = global_step.settle(model, lambda c: [_run(Context(model, batch.decimals, redemption, None, closed=c), batch, None)])
    return _run(Context(model, batch.decimals, redemption, observer, closed=closed or {}), batch, members)


def evaluate_batch(model: Model, batch: data.Batch, redemption: data.RedemptionPolicy | None = None, moments=None, row_tiers: bool = False,
                   closed: dict | None = None) -> ledger.Evaluation:
    """The ledger for a validated batch, the members per tier at each of `moments` (rising) and,
    when `row_tiers`, each row's tier and tier metric before its unit (`ledger.Evaluation`).
    `closed`: as `run`'s."""
    if closed is None and global_step.budgeted(model):
        closed, _ = global_step.settle(model, lambda c: [_run(Context(model, batch.decimals, redemption, None, closed=c), batch, None)])
    at = [pd.Timestamp(t) for t in np.asarray([] if moments is None else moments, dtype="datetime64[ns]")]
    levels = len(model.tiers.names) if model.tiers else 1
    ctx = Context(model, batch.decimals, redemption, None, moments=at, tier_counts=np.zeros((len(at), levels), dtype=np.int64), closed=closed or {})
    ctx.row_tiers = {} if row_tiers else None
    out = _run(ctx, batch, None)
    if not row_tiers:
        return ledger.Evaluation(out, ctx.tier_counts)
    numbers = np.array(sorted(ctx.row_tiers), dtype=np.int64)
    tier = np.array([ctx.row_tiers[r][0] for r in numbers], dtype=np.int8 if levels < 2**7 else np.int16)
    metric = np.array([ctx.row_tiers[r][1] for r in numbers], dtype=np.int64)
    return ledger.Evaluation(out, ctx.tier_counts, *ledger.by_row(numbers, tier, metric))


def _run(ctx: Context, batch: data.Batch, members) -> pd.DataFrame:
    frame = batch.frame
    data.check_pay_draws(ctx.model, frame, ctx.redemption)
    customers = batch.customers.to_dict("records")
    bounds = np.searchsorted(frame["member"].to_numpy(), np.arange(batch.members + 1))
    for i in range(batch.members) if members is None else members:
        rows = frame.iloc[bounds[i] : bounds[i + 1]].to_dict("records")
        if rows:
            run_member(ctx, i, customers[i], rows, batch.until)
    out = _ledger(ctx.model, batch.customers["customer_id"].to_numpy(dtype=object), ctx.postings)
    out.attrs["declined_redemptions"] = int(ctx.declined)
    out.attrs["unmatched_refunds"] = int(ctx.unmatched)
    return out
