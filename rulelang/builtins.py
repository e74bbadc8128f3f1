"""The language's vocabulary as tables: types, variables, columns, functions, constants, units.

The checker, both evaluators, the formatter and `explain` all read these tables; adding a
function or a column means adding a row here (and its implementation in the evaluators' tables).
"""

from __future__ import annotations

from dataclasses import dataclass

# --- types --------------------------------------------------------------------------------------

POINTS, MONEY, NUMBER, PERCENT = "points", "money", "number", "percent"
DATE, WEEKDAY, STRING, BOOL, TIER = "date", "weekday", "string", "bool", "tier"
NUMERIC = frozenset({POINTS, MONEY, NUMBER, PERCENT})  # comparable with one another

# --- where a name may be used -------------------------------------------------------------------

WHEN, ASSERT = "when", "assert"
ANYWHERE = frozenset({WHEN, ASSERT})


@dataclass(frozen=True)
class Var:
    """A builtin variable: its type, where it may be used, whether it varies per basket line."""

    type: str
    contexts: frozenset = ANYWHERE
    line_level: bool = False
    doc: str = ""


# Bare names with a fixed meaning. Precedence when resolving a bare name: VARIABLES, then declared
# columns, then COLUMNS, then tier names, then WEEKDAYS, then rule names (assert only).
VARIABLES: dict[str, Var] = {
    "amount": Var(MONEY, line_level=True, doc="the purchase line's amount, in the program currency"),
    "paid": Var(MONEY, frozenset({ASSERT}), doc="what the member paid for the unit after the program's discounts"),
    "date": Var(DATE, doc="the day of the row"),
    "weekday": Var(WEEKDAY, doc="the weekday of the row (mon..sun)"),
    "tier": Var(TIER, doc="the member's tier before this row"),
    "event": Var(STRING, doc="the row's event: purchase, enroll, referral, ..."),
    "point_cost": Var(MONEY, doc="the program's cost per redeemed point"),
    "points": Var(POINTS, frozenset({ASSERT}), doc="points issued for the current row (all rules)"),
    "balance": Var(POINTS, frozenset({ASSERT}), doc="the member's balance after the posting: the points they can spend (`pending` names the rest)"),
    "pending": Var(POINTS, frozenset({ASSERT}), doc="the member's points not yet available after the posting (`points available after`)"),
    "points_this_day": Var(POINTS, frozenset({ASSERT}), doc="points issued to the member so far this day"),
    "points_this_week": Var(POINTS, frozenset({ASSERT}), doc="points issued so far this week (weeks start Monday)"),
    "points_this_month": Var(POINTS, frozenset({ASSERT}), doc="points issued so far this calendar month"),
    "points_this_year": Var(POINTS, frozenset({ASSERT}), doc="points issued so far this calendar year"),
}

# Transaction columns a program may name without declaring them. Anything else is declared with
# `column NAME: text|number|money|date`.
COLUMNS: dict[str, Var] = {
    "category": Var(STRING, line_level=True),
    "sku": Var(STRING, line_level=True),
    "product": Var(STRING, line_level=True),
    "brand": Var(STRING, line_level=True),
    "quantity": Var(NUMBER, line_level=True),
    "store": Var(STRING),
    "channel": Var(STRING),
    "payment": Var(STRING),
    "region": Var(STRING),
    "transaction_id": Var(STRING),
}

# `customer.NAME`: attributes from the customers table, plus two derived ones.
CUSTOMER: dict[str, Var] = {
    "birthday": Var(DATE, doc="the member's birthday"),
    "segment": Var(STRING, doc="a segment label from the customers file"),
    "city": Var(STRING),
    "gender": Var(STRING),
    "enrolled": Var(DATE, doc="the day the member joined (enroll event or customers file)"),
    "days_enrolled": Var(NUMBER, doc="whole days from enrolment to this row"),
}

# `basket.NAME`: figures over the lines that share a transaction_id.
BASKET: dict[str, Var] = {
    "total": Var(MONEY, doc="the sum of the basket's line amounts"),
    "lines": Var(NUMBER, doc="how many lines the basket has"),
    "quantity": Var(NUMBER, doc="the sum of the quantity column over the basket (lines if absent)"),
}

# `basket.NAME(CONDITION)`: the same figures summed over the lines for which a condition on the
# line's fields holds, by the type of the sum.
BASKET_SUMS: dict[str, str] = {"total": MONEY, "quantity": NUMBER}

# Types a `column` declaration may give, to the language type.
COLUMN_TYPES: dict[str, str] = {"text": STRING, "number": NUMBER, "money": MONEY, "date": DATE}


@dataclass(frozen=True)
class Func:
    """A builtin function: argument types (NUMERIC means any numeric), result type."""

    args: tuple
    result: str
    variadic: bool = False
    doc: str = ""


FUNCTIONS: dict[str, Func] = {
    "month": Func((DATE,), NUMBER, doc="the month of a date, 1-12"),
    "day": Func((DATE,), NUMBER, doc="the day of the month, 1-31"),
    "year": Func((DATE,), NUMBER, doc="the year of a date"),
    "weekday": Func((DATE,), WEEKDAY, doc="the weekday of a date"),
    "days_between": Func((DATE, DATE), NUMBER, doc="whole days from the first date to the second"),
    "min": Func(("numeric", "numeric"), "numeric", variadic=True, doc="the smallest of its arguments"),
    "max": Func(("numeric", "numeric"), "numeric", variadic=True, doc="the largest of its arguments"),
    "abs": Func(("numeric",), "numeric", doc="the absolute value"),
}

# Weekday constants, Monday = 0 (Python's and NumPy's convention).
WEEKDAYS: dict[str, int] = {}
for _i, (_short, _long) in enumerate(
    [("mon", "monday"), ("tue", "tuesday"), ("wed", "wednesday"), ("thu", "thursday"), ("fri", "friday"), ("sat", "saturday"), ("sun", "sunday")]
):
    WEEKDAYS[_short] = _i
    WEEKDAYS[_long] = _i
WEEKDAY_NAMES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]

# Calendar periods for caps and frequency limits (plural forms accepted).
PERIODS: dict[str, str] = {"day": "day", "days": "day", "week": "week", "weeks": "week", "month": "month", "months": "month", "year": "year", "years": "year"}

# Units of a span of time: tier windows and expiry.
TIME_UNITS: dict[str, str] = {"day": "days", "days": "days", "month": "months", "months": "months", "year": "years", "years": "years"}

ROUNDING = ("down", "up", "nearest")
# The languages a `label` may be in: those `explain` words a program in (rulelang.explain.TEXT).
LABEL_LANGUAGES = ("en", "zh")
TIER_METRICS = ("spend", "points", "visits")

# Events with a fixed meaning in the data; any other event name may be used with `on`.
PURCHASE, REFUND, REDEEM, ENROLL = "purchase", "refund", "redeem", "enroll"

# Digits after the decimal point of each currency's minor unit; unlisted currencies use 2.
CURRENCY_DECIMALS: dict[str, int] = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3}


def currency_decimals(code: str) -> int:
    """How many decimals the currency's minor unit has."""
    return CURRENCY_DECIMALS.get(code.upper(), 2)


def is_currency_code(text: str) -> bool:
    """ISO 4217 style: three capital letters."""
    return len(text) == 3 and text.isascii() and text.isalpha() and text.isupper()

# The metric a tier alternative (`Gold from 5000 CNY or 24 visits`) counts, named by its unit;
# any other unit is money, counted as spend.
ALTERNATIVE_UNITS = {"visits": "visits", "visit": "visits", "points": "points", "point": "points"}


def alternative_metric(unit: str) -> str:
    return ALTERNATIVE_UNITS.get(unit, "spend")

# --- recency: the member's own history before the row (docs/semantics.md, "Recency") -----------

# `days_since_last_purchase` is a variable (above, in VARIABLES); these take a span of time:
# `visits_in(90 days)`, `spend_in(12 months)`, by the type of the figure.
WINDOWS: dict[str, Func] = {
    "visits_in": Func(("span",), NUMBER, doc="the member's purchases (baskets) in the span before the row"),
    "spend_in": Func(("span",), MONEY, doc="the member's spend (amounts before discounts, less refunds) in the span before the row"),
}
WINDOW_UNITS: dict[str, str] = {"day": "days", "days": "days", "month": "months", "months": "months"}
MAX_WINDOW = {"days": 36_500, "months": 1_200}  # a century (rulelang.limits): longer spans are a mistake, not a program
# `on "TEXT"`: the longest event name a program may give (event names are identifiers of other systems).
MAX_EVENT_NAME = 200
RECENCY = frozenset({"days_since_last_purchase", *WINDOWS})
VARIABLES["days_since_last_purchase"] = Var(NUMBER, frozenset({WHEN}), doc="whole days since the member's last purchase before the row (missing before the first)")


def window_span(call) -> tuple[int, str]:
    """(N, `days`|`months`) of a checked `visits_in(N days)` / `spend_in(N months)` call: its one
    argument parses as an amount whose currency is the unit."""
    arg = call.args[0]
    return int(arg.amount), WINDOW_UNITS[arg.currency.name]
