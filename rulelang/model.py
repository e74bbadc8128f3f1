"""The checked program as plain values: what both evaluators, `explain` and the simulator read.

`lower(program)` turns a syntax tree that has passed the checker into a `Model`. It trusts the
checker: it does not report errors, and on an unchecked tree its behaviour is undefined.
Conditions stay as syntax trees; `scope` and `names` say what each rule's condition needs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from fractions import Fraction

from rulelang import ast
from rulelang import builtins as B


@dataclass(frozen=True)
class Rule:
    """One earn rule, normalised.

    kind: `per_spend` (points = rate * amount), `fixed` (points per firing), `per_unit` (points
    per whole unit of the line's quantity) or `multiplier`
    (points = (factor - 1) * the target rule's points on the same line or basket); or `benefit`
    (no points: `cost` in currency units each time it fires; `Model.benefits`).
    scope: `line` (evaluated per basket line, amounts summed) or `basket` (once per basket).
    event: `purchase` for purchase rules, else the event name of `on EVENT`.
    """

    index: int
    name: str
    kind: str
    rate: Fraction = Fraction(0)  # per_spend: points per one unit of currency
    points: Fraction = Fraction(0)  # fixed: points per firing; per_unit: points per unit
    factor: Fraction = Fraction(1)  # multiplier
    target: str | None = None
    condition: object | None = None  # an ast expression, or None for always
    event: str = B.PURCHASE
    during: tuple[dt.date, dt.date] | None = None
    times: int | None = None  # frequency limit: at most `times` firings ...
    per: str | None = None  # ... per calendar `day|week|month|year`, or over the membership if None
    funded_share: Fraction = Fraction(0)
    funded_by: str | None = None
    cost: Fraction = Fraction(0)  # benefit: its cost each time it fires, in currency units
    scope: str = "line"
    names: frozenset = frozenset()  # every bare/dotted name its condition reads
    span: ast.Span = field(default=ast.NO_SPAN, compare=False)
    budget: int | None = None  # `budget N points`: the most it issues over every member (docs/semantics.md, "Budgets")


@dataclass(frozen=True)
class DiscountSpec:
    """One discount, normalised (docs/semantics.md, "Discounts").

    kind: `percent` (`percent` of each matching line's amount off, rounded half up to the minor
    unit; with `cheapest`, of the cheapest matching line only), `buy_get` (of each `buy` + `get`
    matching units the cheapest `get` free) or `fixed` (`amount` off the basket, shared across its
    matching lines in proportion to what they still cost). Of several percentages and buy-get
    offers on one line only the largest applies; `cap` limits a percentage's money off a basket.
    The fields a rule's
    masks read (`event`, `during`, `condition`, `names`, `span`, `name`) mean what they mean for a
    `Rule`, so discounts are evaluated column-at-a-time by the same code.
    """

    index: int
    name: str
    kind: str
    percent: Fraction = Fraction(0)  # percent: the share of the line off (5% -> 1/20)
    amount: Fraction = Fraction(0)  # fixed: the money off the basket, in currency units
    cap: Fraction | None = None  # percent: the most it takes off one basket (`up to`), currency units
    cheapest: bool = False  # percent: only on the cheapest matching line
    buy: int = 0  # buy_get: of each buy + get units ...
    get: int = 0  # ... the cheapest get are free
    condition: object | None = None
    event: str = B.PURCHASE
    during: tuple[dt.date, dt.date] | None = None
    times: int | None = None
    per: str | None = None
    funded_share: Fraction = Fraction(0)
    funded_by: str | None = None
    names: frozenset = frozenset()
    span: ast.Span = field(default=ast.NO_SPAN, compare=False)
    budget: Fraction | None = None  # `budget AMOUNT CUR`: the most money off over every member, currency units


@dataclass(frozen=True)
class TierSpec:
    """Tiers: metric `spend|points|visits`, window `days|months` of length n, or `calendar_year`."""

    metric: str
    window: str
    n: int | None
    names: tuple[str, ...]
    thresholds: tuple[Fraction, ...]
    # Per level, its other ways in (`or 24 visits`): (metric, threshold) pairs over the same window.
    alternatives: tuple[tuple[tuple[str, Fraction], ...], ...] = ()
    # Per level, the months it is held once reached (`keep 24 months`; 0: no retention); () when none has one.
    keep_months: tuple[int, ...] = ()
    one_level: bool = False  # `downgrade one level at a time`
    review_months: int = 0  # `review tiers every month|quarter|year`: 1, 3 or 12 (0: falls at every row, as without)
    counting: bool = False  # `counting the current purchase`: a purchase earns at the level it reaches

    def level_of(self, name: str) -> int:
        return self.names.index(name)


@dataclass(frozen=True)
class RewardSpec:
    """A catalog reward: its price in points, its cost, and the share a partner pays."""

    index: int
    name: str
    points: int
    cost: Fraction
    funded_share: Fraction = Fraction(0)
    funded_by: str | None = None
    # An automatic voucher (`issued every PERIOD`): issued at the end of every period this many
    # months long (1, 3 or 12); 0: a catalog reward members choose.
    issued_months: int = 0


@dataclass(frozen=True)
class ExpirySpec:
    """Expiry: kind `after` (n units after earning), `inactive` (n units after the last purchase),
    `end_of_year`, `end_of_next_year` or `never`; unit `days|months|years`."""

    kind: str = "never"
    n: int | None = None
    unit: str | None = None


# The ledger's reward for a payment with points at the till (a `redeem` posting; docs/semantics.md).
PAY_WITH_POINTS = "pay_with_points"


@dataclass(frozen=True)
class PaymentSpec:
    """`pay with points` (docs/semantics.md, "Paying with points"): whole steps of `points` each
    pay `value` (currency units); at most `cap` (a share, 1/2 for 50%) of the basket after the
    program's discounts; only from a balance of `minimum` points."""

    points: int
    value: Fraction
    cap: Fraction = Fraction(1)
    minimum: int = 0


@dataclass(frozen=True)
class Model:
    """A checked program, ready to evaluate."""

    name: str
    currency: str
    decimals: int
    point_cost: Fraction
    rules: tuple[Rule, ...]
    tiers: TierSpec | None
    limits: tuple[tuple[int, str], ...]  # (points, period)
    expiry: ExpirySpec
    rounding: str
    rewards: tuple[RewardSpec, ...]
    asserts: tuple[object, ...]
    columns: dict = field(default_factory=dict)  # declared transaction columns: name -> type
    customer_columns: dict = field(default_factory=dict)  # declared customer attributes
    path: str = "<program>"
    discounts: tuple[DiscountSpec, ...] = ()
    # `best of` groups: each a tuple of rule indices in the order listed (docs/semantics.md, "Best of").
    groups: tuple[tuple[int, ...], ...] = ()
    # Benefits: rules of kind `benefit`, numbered after the earn rules (index len(rules) + j), so
    # a ledger's `rule` names either.
    benefits: tuple[Rule, ...] = ()
    # Member-facing names: a rule's, tier's, reward's or benefit's name -> {language: label}.
    labels: dict = field(default_factory=dict)
    # Pending points (`points available after N days`): a lot earned on day d can be spent from
    # day d + pending_days on; 0: at once (docs/semantics.md, "Pending points").
    pending_days: int = 0

    @property
    def voucher(self) -> RewardSpec | None:
        """The automatic voucher (`issued every PERIOD`), if the program has one (at most one)."""
        return next((r for r in self.rewards if r.issued_months), None)

    @property
    def vouchers(self) -> tuple[RewardSpec, ...]:
        """The automatic rewards, as a tuple (empty without): what the simulator's cost tables read."""
        return tuple(r for r in self.rewards if r.issued_months)
    pay_with_points: PaymentSpec | None = None

    @property
    def firing(self) -> tuple[Rule, ...]:
        """Everything that fires on a row by its clauses: the earn rules, then the benefits."""
        return self.rules + self.benefits

    def rule(self, name: str) -> Rule:
        return next(r for r in self.firing if r.name == name)

    @property
    def ledger_rewards(self) -> tuple[str, ...]:
        """The ledger's reward names: the catalog's, then `pay_with_points` (the reward code of a
        payment with points) when the program has it."""
        return tuple(r.name for r in self.rewards) + ((PAY_WITH_POINTS,) if self.pay_with_points else ())

    @property
    def event_names(self) -> frozenset:
        return frozenset(r.event for r in self.firing if r.event != B.PURCHASE)

    def multiplier_order(self) -> list[Rule]:
        """Multipliers with every target before the rules that multiply it."""
        done: list[Rule] = []
        seen: set[str] = set()
        pending = [r for r in self.rules if r.kind == "multiplier"]
        while pending:
            progress = False
            for r in list(pending):
                target = self.rule(r.target)
                if target.kind != "multiplier" or target.name in seen:
                    done.append(r)
                    seen.add(r.name)
                    pending.remove(r)
                    progress = True
            if not progress:  # a cycle; the checker reports it before we get here
                break
        return done


def names_in(expr, inside_sums: bool = True) -> set[str]:
    """Every name an expression reads: bare names, and `obj.attr` for dotted ones. A basket sum
    (`basket.total(CONDITION)`) reads `basket.total` and, unless `inside_sums` is false, the line
    fields its condition reads (a rule's scope looks past them: the sum is one value per basket)."""
    out: set[str] = set()
    stack = [expr]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        if isinstance(node, ast.Name):
            out.add(node.name)
        elif isinstance(node, ast.Attribute):
            out.add(f"{node.obj.name}.{node.attr.name}")
        elif isinstance(node, ast.BasketSum):
            out.add(f"{node.obj.name}.{node.attr.name}")
            if inside_sums:
                stack.append(node.condition)
        elif isinstance(node, ast.Call) and node.func.name in B.WINDOWS:
            out.add(node.func.name)  # reads the member's history: never one row's copy (engine.masks)
        else:
            stack.extend(ast.subexpressions(node))
    return out


def is_line_level(name: str, columns: dict) -> bool:
    """Whether a name can differ between the lines of one basket."""
    if name in B.VARIABLES:
        return B.VARIABLES[name].line_level
    if name in columns:
        return True
    if name in B.COLUMNS:
        return B.COLUMNS[name].line_level
    return False


def event_of(on: ast.OnEvent) -> str:
    """The event an `on` clause names, as the data's event column is read (engine.data.event_names):
    a quoted name with its edge spaces stripped and lower-cased; a bare name as written."""
    return on.event.name.strip().lower() if on.quoted else on.event.name


def _window(during: ast.During | None) -> tuple[dt.date, dt.date] | None:
    """A `during` clause's first and last day; an open end (`during from D`, `during to D`) is the
    calendar's first or last day, so every stage compares days as it does for a closed window."""
    if during is None:
        return None
    start = _date(during.start) if during.start is not None else dt.date.min
    return start, _date(during.end) if during.end is not None else dt.date.max


def _date(lit: ast.DateLit) -> dt.date:
    y, m, d = (int(p) for p in lit.text.split("-"))
    return dt.date(y, m, d)


def _frac(d) -> Fraction:
    return Fraction(d)


def lower(program: ast.Program) -> Model:
    """The checked syntax tree as a `Model`."""
    name_stmt = program.first(ast.ProgramName)
    cur_stmt = program.first(ast.Currency)
    currency = cur_stmt.code.name if cur_stmt else "CNY"
    pc = program.first(ast.PointCost)
    columns: dict[str, str] = {}
    customer_columns: dict[str, str] = {}
    for c in program.of(ast.Column):
        typ = B.COLUMN_TYPES[c.type.name]
        if len(c.name) == 2:
            customer_columns[c.name[1].name] = typ
        else:
            columns[c.name[0].name] = typ

    rules = []
    earns = program.of(ast.Earn)
    by_name = {e.name.name: e for e in earns}
    by_index = {e.name.name: i for i, e in enumerate(earns)}
    for i, e in enumerate(earns):
        rules.append(_lower_rule(i, e, by_name, columns))

    tiers = None
    t = program.first(ast.Tiers)
    if t is not None:
        if t.window.lifetime:
            window, n = "lifetime", None
        elif t.window.n is None:
            window, n = "calendar_year", None
        else:
            window, n = B.TIME_UNITS[t.window.unit.name], int(t.window.n.value)
        tiers = TierSpec(
            t.metric.name,
            window,
            n,
            tuple(lv.name.name for lv in t.levels),
            tuple(_frac(lv.threshold.value) for lv in t.levels),
            tuple(tuple((B.alternative_metric(a.unit.name), _frac(a.threshold.value)) for a in lv.alternatives) for lv in t.levels)
            if any(lv.alternatives for lv in t.levels) else (),
            tuple(int(lv.keep.n.value) * (12 if lv.keep.unit.name in ("year", "years") else 1) if lv.keep else 0 for lv in t.levels)
            if any(lv.keep for lv in t.levels) else (),
            program.first(ast.TierDowngrade) is not None,
            {"month": 1, "quarter": 3, "year": 12}.get(review.period.name, 0) if (review := program.first(ast.TierReview)) else 0,
            t.counting,
        )

    limits = tuple((int(lim.points.value), B.PERIODS[lim.period.name]) for lim in program.of(ast.Limit))
    ex = program.first(ast.Expire)
    if ex is None or ex.kind == "never":
        expiry = ExpirySpec()
    elif ex.kind in ("after", "inactive"):
        expiry = ExpirySpec(ex.kind, int(ex.n.value), B.TIME_UNITS[ex.unit.name])
    else:
        expiry = ExpirySpec(ex.kind)
    rnd = program.first(ast.Round)
    rewards = tuple(
        RewardSpec(
            i,
            r.name.name,
            int(r.points.value),
            _frac(r.cost.amount),
            _frac(r.funded.percent.value) / 100 if r.funded else Fraction(0),
            r.funded.by.name if r.funded else None,
            {"month": 1, "quarter": 3, "year": 12}[r.issued.period.name] if r.issued else 0,
        )
        for i, r in enumerate(program.of(ast.Reward))
    )
    benefits = tuple(_lower_benefit(len(rules) + j, b, columns) for j, b in enumerate(program.of(ast.Benefit)))
    return Model(
        name=name_stmt.name.value if name_stmt else program.path,
        currency=currency,
        decimals=B.currency_decimals(currency),
        point_cost=_frac(pc.cost.amount) if pc else Fraction(0),
        rules=tuple(rules),
        tiers=tiers,
        limits=limits,
        expiry=expiry,
        rounding=rnd.mode.name if rnd else "down",
        rewards=rewards,
        asserts=tuple(a.expr for a in program.of(ast.Assert)),
        columns=columns,
        customer_columns=customer_columns,
        path=program.path,
        benefits=benefits,
        labels=_labels(program),
        discounts=tuple(_lower_discount(i, d) for i, d in enumerate(program.of(ast.Discount))),
        groups=tuple(tuple(by_index[n.name] for n in g.rules) for g in program.of(ast.BestOf)),
        pending_days=int(program.first(ast.Pending).n.value) if program.first(ast.Pending) else 0,
        pay_with_points=_lower_payment(program.first(ast.PayWithPoints)),
    )


def _lower_payment(s: ast.PayWithPoints | None) -> PaymentSpec | None:
    if s is None:
        return None
    return PaymentSpec(int(s.points.value), _frac(s.value.amount), _frac(s.cap.value) / 100 if s.cap else Fraction(1),
                       int(s.minimum.value) if s.minimum else 0)


def _lower_discount(i: int, d: ast.Discount) -> DiscountSpec:
    when = d.clause(ast.When)
    during = d.clause(ast.During)
    freq = d.clause(ast.Frequency)
    funded = d.clause(ast.Funded)
    percent = isinstance(d.value, ast.Percent)
    buy_get = isinstance(d.value, ast.BuyGet)
    return DiscountSpec(
        index=i,
        name=d.name.name,
        kind="percent" if percent else "buy_get" if buy_get else "fixed",
        percent=_frac(d.value.value) / 100 if percent else Fraction(0),
        amount=_frac(d.value.amount) if isinstance(d.value, ast.Money) else Fraction(0),
        cap=_frac(d.cap.amount) if d.cap is not None else None,
        cheapest=d.cheapest,
        buy=int(d.value.buy.value) if buy_get else 0,
        get=int(d.value.get.value) if buy_get else 0,
        condition=when.expr if when else None,
        during=_window(during),
        times=int(freq.times.value) if freq else None,
        per=B.PERIODS[freq.period.name] if freq and freq.period else None,
        funded_share=_frac(funded.percent.value) / 100 if funded else Fraction(0),
        funded_by=funded.by.name if funded else None,
        names=frozenset(names_in(when.expr)) if when else frozenset(),
        span=d.span,
        budget=_frac(d.clause(ast.Budget).amount.value) if d.clause(ast.Budget) else None,
    )


def _labels(program: ast.Program) -> dict:
    out: dict[str, dict[str, str]] = {}
    for s in program.of(ast.Label):
        for t in s.texts:
            out.setdefault(s.name.name, {}).setdefault(t.lang.name, t.text.value)
    return out


def _scope(e: ast.Earn | ast.Benefit, by_name: dict, columns: dict, seen: frozenset = frozenset()) -> str:
    award = getattr(e, "award", None)  # a benefit has none: its scope is its condition's
    if isinstance(award, (ast.PerSpend, ast.PerUnit)):
        return "line"
    if isinstance(award, ast.Multiplier):
        target = by_name.get(award.target.name)
        if target is None or target.name.name in seen:
            return "line"
        return _scope(target, by_name, columns, seen | {e.name.name})
    when = e.clause(ast.When)
    names = names_in(when.expr, inside_sums=False) if when else set()
    return "line" if any(is_line_level(n, columns) for n in names) else "basket"


def _lower_benefit(i: int, b: ast.Benefit, columns: dict) -> Rule:
    return Rule(kind="benefit", cost=_frac(b.cost.amount), **_clause_fields(i, b, {}, columns))


def _lower_rule(i: int, e: ast.Earn, by_name: dict, columns: dict) -> Rule:
    common = _clause_fields(i, e, by_name, columns)
    a = e.award
    if isinstance(a, ast.PerSpend):
        return Rule(kind="per_spend", rate=_frac(a.points.value) / _frac(a.per.amount), **common)
    if isinstance(a, ast.Fixed):
        return Rule(kind="fixed", points=_frac(a.points.value), **common)
    if isinstance(a, ast.PerUnit):
        return Rule(kind="per_unit", points=_frac(a.points.value), **common)
    return Rule(kind="multiplier", factor=_frac(a.factor.value), target=a.target.name, **common)


def _clause_fields(i: int, e: ast.Earn | ast.Benefit, by_name: dict, columns: dict) -> dict:
    """What an earn rule's or a benefit's clauses say, as `Rule` fields."""
    when = e.clause(ast.When)
    on = e.clause(ast.OnEvent)
    during = e.clause(ast.During)
    freq = e.clause(ast.Frequency)
    funded = e.clause(ast.Funded)
    common = dict(
        index=i,
        name=e.name.name,
        condition=when.expr if when else None,
        event=event_of(on) if on else B.PURCHASE,
        during=_window(during),
        times=int(freq.times.value) if freq else None,
        per=B.PERIODS[freq.period.name] if freq and freq.period else None,
        funded_share=_frac(funded.percent.value) / 100 if funded else Fraction(0),
        funded_by=funded.by.name if funded else None,
        scope=_scope(e, by_name, columns),
        names=frozenset(names_in(when.expr)) if when else frozenset(),
        span=e.span,
    )
    budget = e.clause(ast.Budget)
    if budget is not None and isinstance(e, ast.Earn):  # (the checker refuses one on a benefit)
        common["budget"] = int(budget.amount.value)
    return common
