"""The syntax tree of a loyalty program: one frozen dataclass per node, each with its source span.

Nodes are plain values. The parser builds them, the checker reads them, the formatter prints them
back; no stage mutates them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class Span:
    """A region of the source: 1-based lines and columns, end exclusive; offsets into the text."""

    line: int
    col: int
    end_line: int
    end_col: int
    start: int = 0
    end: int = 0

    def join(self, other: Span) -> Span:
        """The smallest span covering both."""
        first, last = (self, other) if self.start <= other.start else (other, self)
        end = last if last.end >= first.end else first
        return Span(first.line, first.col, end.end_line, end.end_col, first.start, end.end)


NO_SPAN = Span(0, 0, 0, 0)


@dataclass(frozen=True)
class Ident:
    """A name written in the program (a rule, tier, reward, unit, event or partner)."""

    name: str
    span: Span = field(default=NO_SPAN, compare=False)


# --- expressions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    """A number literal, kept exact."""

    value: Decimal
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Percent:
    """A percentage literal such as `40%`; `value` is the number before the sign."""

    value: Decimal
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Money:
    """An amount of money such as `8 CNY`."""

    amount: Decimal
    currency: Ident
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class DateLit:
    """A calendar date `YYYY-MM-DD`, kept as written; the checker decides whether it exists."""

    text: str
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class String:
    """A quoted string."""

    value: str
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Name:
    """A bare name: a column, a builtin variable, a tier, a weekday or a rule."""

    name: str
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Attribute:
    """A dotted name such as `customer.birthday` or `basket.total`."""

    obj: Ident
    attr: Ident
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class BasketSum:
    """`basket.total(CONDITION)` or `basket.quantity(CONDITION)`: a sum over the basket's lines
    for which the condition (over line fields only) holds."""

    obj: Ident
    attr: Ident
    condition: object
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Call:
    """A function call such as `month(date)`."""

    func: Ident
    args: tuple
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class ListLit:
    """A bracketed list such as `[sat, sun]`."""

    items: tuple
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Arith:
    """A chain `a + b - c` or `a * b / c`: `first` then `(op, operand)` pairs, left to right."""

    first: object
    rest: tuple
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Neg:
    """Unary minus."""

    operand: object
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Compare:
    """A comparison `left OP right` with OP one of == != < <= > >=."""

    op: str
    left: object
    right: object
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class In:
    """Membership `item in [..]`, or `item not in [..]` when negated."""

    item: object
    options: ListLit
    negated: bool = False
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class BoolOp:
    """An `and` or `or` chain of two or more operands."""

    op: str
    operands: tuple
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Not:
    """Logical negation."""

    operand: object
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Group:
    """A parenthesised expression; kept so the formatter can print the parentheses back."""

    expr: object
    span: Span = field(default=NO_SPAN, compare=False)


# Each composite expression's sub-expressions, in source order (a table, so a walker over
# expressions is one loop). A basket sum's condition is not among them: it reads the basket's
# lines, not the row, and each walker decides whether to look inside it.
_SUBEXPRESSIONS = {
    Call: lambda n: n.args,
    Arith: lambda n: (n.first, *(operand for _, operand in n.rest)),
    Neg: lambda n: (n.operand,),
    Not: lambda n: (n.operand,),
    Group: lambda n: (n.expr,),
    Compare: lambda n: (n.left, n.right),
    In: lambda n: (n.item, *n.options.items),
    BoolOp: lambda n: tuple(n.operands),
    ListLit: lambda n: tuple(n.items),
}


def subexpressions(node) -> tuple:
    """The expressions directly inside `node` (none for a leaf: a name, a literal, ...)."""
    part = _SUBEXPRESSIONS.get(type(node))
    return tuple(part(node)) if part is not None else ()


# --- earn rules ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PerSpend:
    """`N points per M CUR`: points in proportion to the amount spent."""

    points: Number
    per: Money
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Fixed:
    """`N points`: a fixed number of points each time the rule fires."""

    points: Number
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class PerUnit:
    """`N points per unit`: points for each unit of the line's quantity."""

    points: Number
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Multiplier:
    """`Nx RULE`: scales the points another rule earns on the same purchase."""

    factor: Number
    target: Ident
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class When:
    """`when EXPR`: the condition under which the rule fires."""

    expr: object
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class OnEvent:
    """`on EVENT`: the rule fires on rows of that event instead of purchases. `on "TEXT"` names
    an event by any text (`quoted`), as other systems export them: `on "newsletter.subscribed"`."""

    event: Ident
    span: Span = field(default=NO_SPAN, compare=False)
    quoted: bool = False


@dataclass(frozen=True)
class During:
    """`during D to D`: a campaign window, both days included; `during from D` has no end (`end`
    None) and `during to D` no start (`start` None)."""

    start: DateLit | None
    end: DateLit | None
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Frequency:
    """`once [per P]` or `at most N times [per P]`; `period` None means over the membership."""

    times: Number
    period: Ident | None
    once: bool
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Funded:
    """`funded P% by NAME`: a partner or supplier pays that share."""

    percent: Percent
    by: Ident
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Budget:
    """`budget N points` (an earn rule) or `budget AMOUNT CUR` (a discount): the most the rule
    gives over every member together, first come first served (docs/semantics.md, "Budgets")."""

    amount: Number
    currency: Ident | None  # None: points
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Earn:
    """`earn NAME: AWARD CLAUSES`: an earning rule."""

    name: Ident
    award: object
    clauses: tuple
    span: Span = field(default=NO_SPAN, compare=False)

    def clause(self, kind: type):
        """The first clause of the given type, or None."""
        return next((c for c in self.clauses if isinstance(c, kind)), None)


@dataclass(frozen=True)
class BuyGet:
    """`buy N get M free`: of each N + M matching units in a basket, the cheapest M are free."""

    buy: Number
    get: Number
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Discount:
    """`discount NAME: VALUE CLAUSES`: `value` is a `Percent` (off each matching line), a `Money`
    (off the basket, shared across its matching lines) or a `BuyGet`; a percentage may be capped
    per basket (`up to AMOUNT`: `cap`) and limited to the cheapest matching line (`cheapest`).
    Clauses as an earn rule's, without `on`."""

    name: Ident
    value: object
    clauses: tuple
    span: Span = field(default=NO_SPAN, compare=False)
    cap: Money | None = None
    cheapest: bool = False

    def clause(self, kind: type):
        """The first clause of the given type, or None."""
        return next((c for c in self.clauses if isinstance(c, kind)), None)


@dataclass(frozen=True)
class BestOf:
    """`best of RULE, RULE, ...`: of these earn rules, only the one with the largest award on a
    unit keeps it (ties: the first listed); the others post nothing there."""

    rules: tuple  # Ident per listed rule, in the order written
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Benefit:
    """`benefit NAME: cost AMOUNT CUR CLAUSES`: a money cost to the business each time it fires
    (free alterations, a birthday gift); no points. Its clauses are an earn rule's."""

    name: Ident
    cost: Money
    clauses: tuple
    span: Span = field(default=NO_SPAN, compare=False)

    def clause(self, kind: type):
        """The first clause of the given type, or None."""
        return next((c for c in self.clauses if isinstance(c, kind)), None)


@dataclass(frozen=True)
class LabelText:
    """`LANG "TEXT"` inside a `label` statement."""

    lang: Ident
    text: String
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Label:
    """`label NAME LANG "TEXT" ...`: what members read for a rule, tier, reward or benefit, per language."""

    name: Ident
    texts: tuple
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class PayWithPoints:
    """`pay with points: N points = AMOUNT CUR, up to P% of basket, from M points`: members may pay
    part of a purchase with points, in whole steps of `points` worth `value` each; `cap` (a
    Percent of the basket after discounts) and `minimum` (the balance needed) are optional."""

    points: Number
    value: Money
    span: Span = field(default=NO_SPAN, compare=False)
    cap: Percent | None = None
    minimum: Number | None = None


# --- other statements ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgramName:
    """`program "NAME"`."""

    name: String
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Currency:
    """`currency CODE`: the currency every amount is in."""

    code: Ident
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class PointCost:
    """`point_cost AMOUNT CUR`: what one redeemed point costs the business."""

    cost: Money
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Column:
    """`column NAME: TYPE`: declares a transaction column (or `customer.NAME`) that rules use."""

    name: tuple
    type: Ident
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Window:
    """The qualification window of tiers: `N days|months`, or the calendar year when `n` is None."""

    n: Number | None
    unit: Ident | None
    span: Span = field(default=NO_SPAN, compare=False)
    lifetime: bool = False  # `over lifetime`: n and unit are None, and it is not the calendar year


@dataclass(frozen=True)
class TierLevel:
    """`NAME from N`: a tier and the threshold that reaches it."""

    name: Ident
    threshold: Number
    unit: Ident | None = None
    span: Span = field(default=NO_SPAN, compare=False)
    alternatives: tuple = ()  # TierAlternative: `or 24 visits`, each its own metric
    keep: TierKeep | None = None  # `keep 24 months`


@dataclass(frozen=True)
class Tiers:
    """`tiers by METRIC over WINDOW { ... }`: the ordered status levels."""

    metric: Ident
    window: Window
    levels: tuple
    span: Span = field(default=NO_SPAN, compare=False)
    counting: bool = False  # `counting the current purchase`


@dataclass(frozen=True)
class Limit:
    """`limit N points per PERIOD`: a cap on points issued per member per calendar period."""

    points: Number
    period: Ident
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Expire:
    """`expire ...`: kind is `after`, `inactive`, `end_of_year`, `end_of_next_year` or `never`."""

    kind: str
    n: Number | None = None
    unit: Ident | None = None
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Round:
    """`round down|up|nearest`."""

    mode: Ident
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Reward:
    """`reward NAME: N points cost AMOUNT CUR [funded P% by NAME]`."""

    name: Ident
    points: Number
    cost: Money
    funded: Funded | None = None
    span: Span = field(default=NO_SPAN, compare=False)
    issued: Issued | None = None  # `issued every PERIOD`: an automatic voucher (docs/semantics.md, "Automatic vouchers")


@dataclass(frozen=True)
class Assert:
    """`assert EXPR`: an invariant that must hold at every posting."""

    expr: object
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Comment:
    """A `#` comment, kept so the formatter can put it back."""

    text: str
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Program:
    """A whole program file: its statements in order, and its comments."""

    statements: tuple
    comments: tuple = ()
    path: str = field(default="<program>", compare=False)
    span: Span = field(default=NO_SPAN, compare=False)

    def of(self, kind: type) -> list:
        """The statements of one type, in order."""
        return [s for s in self.statements if isinstance(s, kind)]

    def first(self, kind: type):
        """The first statement of one type, or None."""
        return next((s for s in self.statements if isinstance(s, kind)), None)


@dataclass(frozen=True)
class TierAlternative:
    """`or N UNIT` after a tier's threshold: another metric (named by its unit) that also reaches the tier."""

    threshold: Number
    unit: Ident | None
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class TierKeep:
    """`keep N months` after a tier's thresholds: once reached, the level is held at least that long."""

    n: Number
    unit: Ident
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class TierDowngrade:
    """`downgrade one level at a time`: a member falls at most one level at each review."""

    span: Span = field(default=NO_SPAN, compare=False)
    words: tuple = ("one", "level", "a", "time")  # as written (the checker holds them to these)


@dataclass(frozen=True)
class TierReview:
    """`review tiers every month|quarter|year`: falls take effect at the start of each such period."""

    period: Ident
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Pending:
    """`points available after N days`: points earned on a day become available N days later
    (docs/semantics.md, "Pending points")."""

    n: Number
    unit: Ident
    span: Span = field(default=NO_SPAN, compare=False)


@dataclass(frozen=True)
class Issued:
    """`issued every month|quarter|year` on a reward: an automatic voucher."""

    period: Ident
    span: Span = field(default=NO_SPAN, compare=False)
