"""Hypothesis strategies shared by the test suite; each owner keeps to its own section."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal

from hypothesis import strategies as st

from rulelang import ast

# =================================================================================================
# --- program ASTs (rulelang/fmt round trip, fuzz) --------------------------------------------------
# Random syntax trees of the shape the parser builds: chains are flat, and a child looser than its
# slot sits in an `ast.Group` (written parentheses). So `parse(format_program(p)) == p` must hold.
# Trees are syntactically valid, not checked: names need not resolve, types need not agree.
# =================================================================================================

# Words the lexer may read as keywords somewhere; names avoid them all.
KEYWORDS = frozenset(
    "program currency point_cost column tiers earn when on during once at funded limit expire without next never round "
    "reward assert and or not in points point calendar by over from per to most times cost end of year purchase best".split()
)
_ASCII_START = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
_CJK = "积分消费金卡银卡钻石会员生日礼推荐春节双倍现金券丝巾新品"

_ascii_names = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from(_ASCII_START),
    st.text(alphabet=_ASCII_START + "0123456789", max_size=8),
)
_cjk_names = st.builds(lambda head, tail: head + tail, st.text(alphabet=_CJK, min_size=1, max_size=4), st.sampled_from(["", "", "1", "100", "_x"]))
names = st.one_of(_ascii_names, _cjk_names).filter(lambda n: n not in KEYWORDS)
idents = names.map(ast.Ident)
currency_codes = st.sampled_from(["CNY", "GBP", "USD", "EUR", "JPY", "KWD"])

_decimal_text = st.builds(
    lambda whole, frac: whole + (f".{frac}" if frac else ""),
    st.integers(0, 10**6).map(str),
    st.one_of(st.just(""), st.text(alphabet="0123456789", min_size=1, max_size=3)),
)
decimals = _decimal_text.map(Decimal)
numbers = decimals.map(ast.Number)
money = st.builds(ast.Money, decimals, currency_codes.map(ast.Ident))
percents = decimals.map(ast.Percent)
dates = st.builds(
    lambda y, m, d, pad: f"{y:04d}-{m:02d}-{d:02d}" if pad else f"{y}-{m}-{d}",
    st.integers(1000, 9999), st.integers(1, 12), st.integers(1, 31), st.booleans(),
)
date_lits = dates.map(ast.DateLit)
# A string holds no newline and not both kinds of quote (the grammar has no escapes).
strings = st.text(alphabet=st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)), max_size=12).filter(
    lambda s: not ('"' in s and "'" in s)
).map(ast.String)

# Binding strength, loosest first, as in rulelang/grammar.lark (independent of rulelang/fmt.py).
OR, AND, NOT, CMP, SUM, PRODUCT, UNARY, ATOM = range(1, 9)


def strength(e) -> int:
    """How tightly an expression binds."""
    if isinstance(e, ast.BoolOp):
        return OR if e.op == "or" else AND
    if isinstance(e, ast.Not):
        return NOT
    if isinstance(e, (ast.Compare, ast.In)):
        return CMP
    if isinstance(e, ast.Arith):
        return SUM if e.rest[0][0] in "+-" else PRODUCT
    if isinstance(e, ast.Neg):
        return UNARY
    return ATOM


def fit(e, slot: int):
    """The expression as the parser would give it back in a slot of that strength."""
    return ast.Group(e) if strength(e) < slot else e


_atoms = st.one_of(
    numbers, percents, money, date_lits, strings, names.map(ast.Name),
    st.builds(ast.Attribute, idents, idents),
)


def _compound(children):
    lists = st.lists(children, max_size=3).map(lambda xs: ast.ListLit(tuple(xs)))
    return st.one_of(
        st.builds(ast.Group, children),
        lists,
        st.builds(lambda f, args: ast.Call(f, tuple(args)), idents, st.lists(children, max_size=3)),
        st.builds(ast.BasketSum, idents, idents, children),
        children.map(lambda x: ast.Neg(fit(x, UNARY))),
        st.builds(
            lambda first, rest: ast.Arith(fit(first, UNARY), tuple((op, fit(x, UNARY)) for op, x in rest)),
            children, st.lists(st.tuples(st.sampled_from("*/"), children), min_size=1, max_size=3),
        ),
        st.builds(
            lambda first, rest: ast.Arith(fit(first, PRODUCT), tuple((op, fit(x, PRODUCT)) for op, x in rest)),
            children, st.lists(st.tuples(st.sampled_from("+-"), children), min_size=1, max_size=3),
        ),
        st.builds(lambda op, a, b: ast.Compare(op, fit(a, SUM), fit(b, SUM)),
                  st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), children, children),
        st.builds(lambda x, opts, neg: ast.In(fit(x, SUM), opts, neg), children, lists, st.booleans()),
        children.map(lambda x: ast.Not(fit(x, NOT))),
        st.builds(lambda xs: ast.BoolOp("and", tuple(fit(x, NOT) for x in xs)), st.lists(children, min_size=2, max_size=3)),
        st.builds(lambda xs: ast.BoolOp("or", tuple(fit(x, AND) for x in xs)), st.lists(children, min_size=2, max_size=3)),
    )


expressions = st.recursive(_atoms, _compound, max_leaves=12)

periods = st.sampled_from(["day", "week", "month", "year", "days", "weeks"]).map(ast.Ident)
_funded = st.builds(ast.Funded, percents, idents)
_clause_options = [
    st.builds(ast.When, expressions),
    st.builds(ast.OnEvent, idents) | st.sampled_from(["newsletter.subscribed", "app:install/v2", 'say "hi"', "订阅", " Mixed Case "]).map(
        lambda t: ast.OnEvent(ast.Ident(t), quoted=True)),
    st.builds(ast.During, date_lits, date_lits) | st.builds(ast.During, date_lits, st.none()) | st.builds(ast.During, st.none(), date_lits),
    st.one_of(
        st.builds(lambda p: ast.Frequency(ast.Number(Decimal(1)), p, True), st.none() | periods),
        st.builds(lambda n, p: ast.Frequency(n, p, False), numbers, st.none() | periods),
    ),
    _funded,
    st.builds(ast.Budget, numbers, st.none() | currency_codes.map(ast.Ident)),
]
# Clauses in the formatter's canonical order (when, on, during, frequency, funded, budget), each at most once.
clauses = st.tuples(*(st.none() | c for c in _clause_options)).map(lambda cs: tuple(c for c in cs if c is not None))
awards = st.one_of(
    st.builds(ast.PerSpend, numbers, money),
    st.builds(ast.Fixed, numbers),
    st.builds(ast.PerUnit, numbers),
    st.builds(ast.Multiplier, numbers, idents),
)
windows = st.one_of(st.just(ast.Window(None, None)), st.just(ast.Window(None, None, lifetime=True)), st.builds(ast.Window, numbers, st.sampled_from(["days", "months"]).map(ast.Ident)))
tier_levels = st.builds(ast.TierLevel, idents, numbers, st.none() | idents,
                        alternatives=st.lists(st.builds(ast.TierAlternative, numbers, st.none() | idents), max_size=2).map(tuple),
                        keep=st.none() | st.builds(ast.TierKeep, numbers, st.sampled_from(["months", "years"]).map(ast.Ident)))
expires = st.one_of(
    st.builds(lambda n, u: ast.Expire("after", n, u), numbers, st.sampled_from(["days", "months", "years"]).map(ast.Ident)),
    st.builds(lambda n, u: ast.Expire("inactive", n, u), numbers, st.sampled_from(["days", "months"]).map(ast.Ident)),
    st.sampled_from([ast.Expire("end_of_year"), ast.Expire("end_of_next_year"), ast.Expire("never")]),
)
statements = st.one_of(
    st.builds(ast.ProgramName, strings),
    st.builds(ast.Currency, currency_codes.map(ast.Ident)),
    st.builds(ast.PointCost, money),
    st.builds(ast.Column, st.one_of(idents.map(lambda i: (i,)), idents.map(lambda i: (ast.Ident("customer"), i))),
              st.sampled_from(["text", "number", "money", "date"]).map(ast.Ident)),
    st.builds(lambda m, w, lv, c: ast.Tiers(m, w, tuple(lv), counting=c), st.sampled_from(["spend", "points", "visits"]).map(ast.Ident),
              windows, st.lists(tier_levels, max_size=4), st.booleans()),
    st.just(ast.TierDowngrade()),
    st.builds(ast.TierReview, st.sampled_from(["month", "quarter", "year", "fortnight"]).map(ast.Ident)),
    st.builds(ast.Earn, idents, awards, clauses),
    st.builds(ast.Limit, numbers, periods),
    st.builds(lambda names: ast.BestOf(tuple(names)), st.lists(idents, min_size=1, max_size=4)),
    expires,
    st.builds(ast.Round, st.sampled_from(["down", "up", "nearest"]).map(ast.Ident)),
    st.builds(ast.Reward, idents, numbers, money, st.none() | _funded),
    st.builds(lambda n, p, c, period: ast.Reward(n, p, c, issued=ast.Issued(period)), idents, numbers, money,
              st.sampled_from(["month", "quarter", "year"]).map(ast.Ident)),
    st.builds(ast.Assert, expressions),
    st.builds(ast.Discount, idents, st.one_of(percents, money, st.builds(ast.BuyGet, numbers, numbers)),
              clauses.map(lambda cs: tuple(c for c in cs if not isinstance(c, ast.OnEvent)))),
    st.builds(lambda n, v, cs, cap, cheapest: ast.Discount(n, v, cs, cap=cap, cheapest=cheapest), idents, percents,
              clauses.map(lambda cs: tuple(c for c in cs if not isinstance(c, ast.OnEvent))), st.none() | money, st.booleans()),
    st.builds(ast.Benefit, idents, money, clauses),
    st.builds(ast.Label, idents, st.lists(st.builds(ast.LabelText, idents, strings), min_size=1, max_size=3).map(tuple)),
    st.builds(ast.Pending, numbers, st.sampled_from(["days", "day"]).map(ast.Ident)),
    st.builds(lambda n, v, cap, least: ast.PayWithPoints(n, v, cap=cap, minimum=least), numbers, money, st.none() | percents, st.none() | numbers),
)
programs = st.lists(statements, max_size=8).map(lambda ss: ast.Program(tuple(ss)))


def canonical_tree(tree: ast.Program) -> ast.Program:
    """What formatting may change and no more: clause order, and trailing spaces of comments."""
    from rulelang.fmt import canonical_clauses

    stmts = tuple(dataclasses.replace(s, clauses=canonical_clauses(s.clauses)) if isinstance(s, (ast.Earn, ast.Benefit)) else s
                  for s in tree.statements)
    notes = tuple(dataclasses.replace(c, text=c.text.rstrip()) for c in tree.comments)
    return dataclasses.replace(tree, statements=stmts, comments=notes)


# =================================================================================================
# --- random programs and member histories (compiled vs reference differential test) -------------
# Program TEXT covering every construct (loaded through the real parser and checker), and small
# member histories around the edges that matter: same-timestamp purchases, multi-line baskets,
# partial/full/unmatched refunds, redeem rows, events, month and year ends, 29 February, campaign
# edges, caps, and draws for a redemption policy.

import pandas as _pd  # noqa: E402

DIFF_DAYS = ("2027-12-30", "2027-12-31", "2028-01-01", "2028-01-02", "2028-02-28", "2028-02-29", "2028-03-01",
             "2028-03-31", "2028-04-30", "2028-12-31", "2029-01-01", "2029-02-28", "2029-03-01")
DIFF_TIMES = ("00:00:00", "09:30:00", "23:59:59")
DIFF_CATEGORIES = ("pastry", "coffee", "Tea", "")
DIFF_EVENTS = ("enroll", "referral", "review", "newsletter.subscribed")
# Quantities of a purchase line: whole, fractional (per-unit points count 2 of 2.5), missing, negative.
DIFF_QUANTITIES = (1, 2, 3, 1, 2, 2.5, None, -1)
_TIERS = ("Green", "Gold", "Black")


def _money_text(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}" if cents % 100 else str(cents // 100)


def _on(event: str, quoted: bool) -> str:
    """`on EVENT`: a name that is not one is written as text, one that is as either."""
    return f'on "{event}"' if quoted or not event.isidentifier() else f"on {event}"


@st.composite
def diff_atom(draw, tiers: bool) -> str:
    """One comparison a `when` can make."""
    options = [
        st.sampled_from(["amount >= 50", "amount < 10 CNY", "amount > 9.99", "amount == 0", "amount * 2 > basket.total / 3",
                         "basket.total >= 80", "basket.lines >= 2", "basket.quantity > 2", "quantity >= 2", "-amount < -5",
                         "min(amount, 20) >= 20", "max(amount, basket.total) > 100", "abs(amount - 50) <= 10"]),
        st.sampled_from(['basket.total(category == "pastry") >= 20', 'basket.quantity(category != "coffee") >= 2',
                         'basket.total(amount >= 10 and category in ["pastry", "Tea"]) > 5 CNY', "basket.quantity(quantity >= 2) == 0",
                         'basket.total(not (category == "")) * 2 < basket.total + amount', "basket.quantity(amount > 9.99) >= basket.lines"]),
        st.sampled_from(['category == "pastry"', 'category != "coffee"', 'category in ["pastry", "Tea"]',
                         'category not in ["coffee"]', 'category < "d"', 'category >= "Tea"', 'category == ""']),
        st.sampled_from(["weekday in [sat, sun]", "weekday == mon", "weekday >= fri", "weekday(date) != tue"]),
        st.sampled_from(["month(date) == month(customer.birthday)", "day(date) == 29", "year(date) >= 2028",
                         "date >= 2028-02-29", "days_between(customer.birthday, date) > 10000", "month(date) in [1, 12]"]),
        st.sampled_from(['customer.segment == "student"', 'customer.segment != "vip"', "customer.days_enrolled >= 30",
                         "customer.enrolled < 2028-01-01", "customer.days_enrolled / 7 < 10"]),
        st.sampled_from(['event == "purchase"', "point_cost * 100 >= 1", "40% * amount > 5"]),
    ]
    # The member's history before the row: window edges on month ends and leap days, same-day rows.
    options.append(st.sampled_from(["visits_in(1 days) >= 1", "visits_in(2 days) == 0", "visits_in(31 days) >= 2", "visits_in(1 months) >= 1",
                                    "visits_in(2 months) > basket.lines", "spend_in(1 days) > 0", "spend_in(2 months) >= 100", "spend_in(366 days) < 50 CNY",
                                    "spend_in(12 months) + amount >= 150", "days_since_last_purchase >= 30", "days_since_last_purchase == 0",
                                    "days_since_last_purchase < 1", "not (days_since_last_purchase >= 60)", "days_since_last_purchase <= 2"]))
    if tiers:
        options.append(st.sampled_from(["tier >= Gold", "tier == Green", "tier < Black", "tier != Gold"]))
    return draw(st.one_of(options))


@st.composite
def diff_condition(draw, tiers: bool, depth: int = 2) -> str:
    """A condition: atoms joined by and/or/not, with parentheses."""
    if depth == 0 or draw(st.booleans()):
        return draw(diff_atom(tiers))
    op = draw(st.sampled_from(["and", "or", "not"]))
    if op == "not":
        return f"not ({draw(diff_condition(tiers, depth - 1))})"
    return f"({draw(diff_condition(tiers, depth - 1))}) {op} ({draw(diff_condition(tiers, depth - 1))})"


@st.composite
def diff_rule(draw, i: int, tiers: bool, earlier: list[str]) -> str:
    """`earn rI: ...` with a random award and clauses."""
    kinds = ["per_spend", "fixed", "per_unit"] + (["multiplier"] if earlier else [])
    kind = draw(st.sampled_from(kinds))
    clauses = []
    if kind == "per_spend":
        award = f"{draw(st.sampled_from(['1', '2', '0.5', '3', '1.5']))} points per {draw(st.sampled_from(['1', '2', '3', '10', '0.5', '7']))} CNY"
    elif kind == "fixed":
        award = f"{draw(st.sampled_from(['1', '5', '10', '0.5', '2.5', '100']))} points"
        if draw(st.integers(0, 3)) == 0:
            clauses.append(_on(draw(st.sampled_from(DIFF_EVENTS)), draw(st.booleans())))
    elif kind == "per_unit":
        award = f"{draw(st.sampled_from(['1', '10', '0.5', '2.5']))} points per unit"
    else:
        award = f"{draw(st.sampled_from(['1.5', '2', '3', '1.25', '1.1']))}x {draw(st.sampled_from(earlier))}"
    if draw(st.booleans()):
        clauses.append("when " + draw(diff_condition(tiers)))
    if draw(st.integers(0, 3)) == 0:
        a, b = sorted(draw(st.lists(st.sampled_from(DIFF_DAYS), min_size=2, max_size=2)))
        clauses.append(draw(st.sampled_from([f"during {a} to {b}", f"during {a} to {b}", f"during from {a}", f"during to {b}"])))
    freq = draw(st.sampled_from([None, "once", "once per day", "once per week", "at most 2 times per month",
                                 "at most 1 times per year", "at most 3 times"]))
    if freq:
        clauses.append(freq)
    if draw(st.integers(0, 4)) == 0:
        clauses.append(f"funded {draw(st.sampled_from(['50', '100', '33']))}% by partner")
    if draw(st.integers(0, 3)) == 0:  # a budget shared by every member: at least the largest fixed award (E482)
        clauses.append(f"budget {draw(st.sampled_from(['100', '150', '400', '2000']))} points")
    return f"earn r{i}: {award} " + " ".join(clauses)


@st.composite
def diff_best_of(draw, rules: list[str]) -> list[str]:
    """Up to two `best of` lines over rules no multiplier multiplies (the checker's E451/E452),
    each of two or more rules, no rule in both; often none."""
    targets = {m.group(1) for line in rules if (m := re.search(r"x (r\d+)", line))}
    free = [line.split(":")[0].split()[1] for line in rules]
    free = [name for name in free if name not in targets]
    if len(free) < 2 or draw(st.integers(0, 2)) == 0:
        return []
    chosen = draw(st.permutations(free))
    cut = draw(st.integers(2, len(chosen)))
    groups = [chosen[:cut]]
    if len(chosen) - cut >= 2 and draw(st.booleans()):
        groups.append(chosen[cut:])
    return ["best of " + ", ".join(g) for g in groups]


@st.composite
def diff_discount(draw, i: int, tiers: bool) -> str:
    """`discount dI: ...`: a percentage or a fixed amount, with random clauses (no `on`)."""
    percent = st.builds(lambda p, cap, cheapest: p + cap + cheapest, st.sampled_from(["5%", "10%", "12.5%", "33%", "50%", "100%", "0.5%"]),
                        st.sampled_from(["", "", " up to 1 CNY", " up to 7.5 CNY", " up to 0.01 CNY", " up to 30 CNY"]),
                        st.sampled_from(["", "", " on the cheapest line"]))
    value = draw(st.one_of(percent, st.sampled_from(["1 CNY", "2.5 CNY", "10 CNY", "0.01 CNY", "100 CNY"]),
                           st.sampled_from(["buy 1 get 1 free", "buy 2 get 1 free", "buy 3 get 1 free", "buy 1 get 2 free", "buy 4 get 3 free"])))
    clauses = draw(_money_clauses(tiers, events=False, every="once per day", shares=("50", "100", "33"), funder="supplier"))
    if draw(st.integers(0, 3)) == 0:  # a budget shared by every member: at least a fixed amount off (E482)
        clauses.append(f"budget {draw(st.sampled_from(['100', '120.5', '500']))} CNY")
    return f"discount d{i}: {value} " + " ".join(clauses)


@st.composite
def diff_benefit(draw, j: int, tiers: bool) -> str:
    """`benefit bJ: cost ...` with random clauses, as an earn rule's (a cost that is not a whole
    number of fen is rounded half up, as a reward's)."""
    clauses = draw(_money_clauses(tiers, events=True, every="once per year", shares=("50", "100", "33", "12.5"), funder="partner"))
    cost = draw(st.sampled_from(["20", "50", "0.01", "2.5", "0.335", "7.77"]))
    return f"benefit b{j}: cost {cost} CNY " + " ".join(clauses)


@st.composite
def _money_clauses(draw, tiers: bool, events: bool, every: str, shares: tuple[str, ...], funder: str) -> list[str]:
    """The clauses a discount or a benefit takes as an earn rule does: when, on (`events`), during,
    a frequency (`every`: the one by period besides the month's), funded N% by `funder`; in
    that order, each drawn or not."""
    clauses = []
    if draw(st.booleans()):
        clauses.append("when " + draw(diff_condition(tiers)))
    if events and draw(st.integers(0, 4)) == 0:
        clauses.append(_on(draw(st.sampled_from(DIFF_EVENTS)), draw(st.booleans())))
    if draw(st.integers(0, 3)) == 0:
        a, b = sorted(draw(st.lists(st.sampled_from(DIFF_DAYS), min_size=2, max_size=2)))
        clauses.append(draw(st.sampled_from([f"during {a} to {b}", f"during {a} to {b}", f"during from {a}", f"during to {b}"])))
    freq = draw(st.sampled_from([None, None, "once", every, "once per month", "at most 2 times per week", "at most 3 times"]))
    if freq:
        clauses.append(freq)
    if draw(st.integers(0, 2)) == 0:
        clauses.append(f"funded {draw(st.sampled_from(list(shares)))}% by {funder}")
    return clauses


@st.composite
def diff_program(draw) -> str:
    """The text of a random valid program."""
    lines = ['program "diff"', "currency CNY", f"point_cost {draw(st.sampled_from(['0.01', '0.02', '0.015']))} CNY"]
    tiers = draw(st.booleans())
    if tiers:
        metric, window, steps = draw(st.sampled_from([
            ("spend", "30 days", (50, 200)), ("spend", "2 months", (100, 300)), ("spend", "calendar year", (60, 250)),
            ("points", "60 days", (20, 100)), ("visits", "10 days", (2, 4)), ("visits", "calendar year", (2, 5)),
            ("points", "calendar year", (30, 120)), ("spend", "1 month", (20, 90)),
            ("spend", "lifetime", (150, 600)), ("visits", "lifetime", (3, 6)),
        ]))
        # Alternatives (`or 2 visits`): another metric over the same window, on one or both upper levels.
        alternative = draw(st.sampled_from([None, None, "visits", "points", "spend"]))
        ways = {"visits": ("2 visits", "5 visits"), "points": ("25 points", "110 points"), "spend": ("70 CNY", "260 CNY")}
        extra = ["", ""] if alternative in (None, metric) else [f" or {w}" if draw(st.booleans()) else "" for w in ways[alternative]]
        # Retention (`keep 2 months`) on either upper level, now and then.
        keeps = [draw(st.sampled_from(["", "", "", " keep 1 months", " keep 2 months", " keep 13 months"])) for _ in range(2)]
        # `counting the current purchase` (not with points: a purchase's points depend on its tier).
        counting = metric != "points" and alternative != "points" and draw(st.integers(0, 3)) == 0
        lines.append(f"tiers by {metric} over {window}{' counting the current purchase' if counting else ''} {{")
        lines += [f"  {_TIERS[0]} from 0", f"  {_TIERS[1]} from {steps[0]}{extra[0]}{keeps[0]}", f"  {_TIERS[2]} from {steps[1]}{extra[1]}{keeps[1]}",
                  "}"]
        # Status rules: one-level falls, and falls only at calendar reviews.
        if draw(st.integers(0, 2)) == 0:
            lines.append("downgrade one level at a time")
        review = draw(st.sampled_from([None, None, "month", "quarter", "year"]))
        if review:
            lines.append(f"review tiers every {review}")
    names: list[str] = []
    for i in range(draw(st.integers(1, 5))):
        lines.append(draw(diff_rule(i, tiers, list(names))))
        names.append(f"r{i}")
    lines += draw(diff_best_of(lines[-len(names):]))
    for i in range(draw(st.integers(0, 3))):
        lines.append(draw(diff_discount(i, tiers)))
    for j in range(draw(st.integers(0, 2))):
        lines.append(draw(diff_benefit(j, tiers)))
    for period in draw(st.lists(st.sampled_from(["day", "week", "month", "year"]), max_size=2, unique=True)):
        lines.append(f"limit {draw(st.sampled_from([20, 50, 150, 1000]))} points per {period}")
    expiry = draw(st.sampled_from([None, "expire never", "expire after 30 days", "expire after 1 months", "expire after 12 months",
                                   "expire after 1 year", "expire after 40 days without purchase",
                                   "expire after 2 months without purchase", "expire at end of year", "expire at end of next year"]))
    if expiry:
        lines.append(expiry)
    rounding = draw(st.sampled_from([None, "down", "up", "nearest"]))
    if rounding:
        lines.append(f"round {rounding}")
    for j in range(3):  # diff_history redeems w0..w2
        funded = draw(st.sampled_from(["", " funded 40% by partner", " funded 100% by partner"]))
        lines.append(f"reward w{j}: {draw(st.sampled_from([5, 10, 30, 100]))} points cost {draw(st.sampled_from(['1', '2.5', '0.33']))} CNY{funded}")
    # Pending points, drawn last so the draws before are as they were: windows shorter and longer
    # than the history's gaps, and one as long as the shortest expiry.
    pending = draw(st.sampled_from([None, None, 1, 3, 14, 30, 400]))
    if pending:
        lines.append(f"points available after {pending} days")
    # An automatic voucher, drawn after the rest for the same reason: the last reward, issued at
    # the end of every month, quarter or year.
    issued = draw(st.sampled_from([None, None, "month", "quarter", "year"]))
    if issued:
        at = next(i for i, line in enumerate(lines) if line.startswith("reward w2:"))
        lines[at] += f" issued every {issued}"
    lines += draw(diff_pay_with_points())
    return "\n".join(lines) + "\n"


@st.composite
def diff_pay_with_points(draw) -> list[str]:
    """No line, or one `pay with points` line: steps that pay a fen a point or less than one, a cap
    (a share that rounds, all of the basket, or none) and a minimum balance (below, at or above a step)."""
    if not draw(st.booleans()):
        return []
    points, value = draw(st.sampled_from([(1, "0.01"), (2, "0.01"), (5, "0.05"), (7, "0.05"), (3, "2"), (100, "1"), (50, "0.33")]))
    cap = draw(st.sampled_from(["", ", up to 50% of basket", ", up to 100% of basket", ", up to 33.3% of basket", ", up to 1% of basket"]))
    minimum = draw(st.sampled_from(["", "", ", from 1 point", ", from 20 points", ", from 150 points"]))
    return [f"pay with points: {points} {'point' if points == 1 else 'points'} = {value} CNY{cap}{minimum}"]


@st.composite
def diff_history(draw, rewards: int = 3):
    """(transactions, customers, redemption policy or None) for 1-3 members."""
    rows = []
    members = draw(st.integers(1, 3))
    for m in range(members):
        cid = f"c{m}"
        moments = sorted(draw(st.lists(st.tuples(st.sampled_from(DIFF_DAYS), st.sampled_from(DIFF_TIMES)), min_size=1, max_size=7)))
        baskets: list[tuple[str, int]] = []
        for k, (day, time) in enumerate(moments):
            ts = f"{day} {time}"
            what = draw(st.sampled_from(["purchase"] * 4 + ["refund", "redeem", "event"]))
            if what == "purchase":
                tx = f"{cid}-t{k}"
                amounts = draw(st.lists(st.sampled_from([0, 1, 999, 1000, 2500, 5000, 12345, 8000]), min_size=1, max_size=3))
                for a in amounts:
                    rows.append(dict(customer_id=cid, timestamp=ts, amount=a / 100, event="purchase", transaction_id=tx,
                                     category=draw(st.sampled_from(DIFF_CATEGORIES)), quantity=draw(st.sampled_from(DIFF_QUANTITIES)), reward=""))
                baskets.append((tx, sum(amounts)))
            elif what == "refund":
                if baskets and draw(st.integers(0, 3)):
                    tx, total = draw(st.sampled_from(baskets))
                    # Never 0: a `purchase` row of -0 would be a purchase, not a refund.
                    amount = max(draw(st.sampled_from([total, total // 2, total // 3, 1])), 1)
                else:
                    tx, amount = draw(st.sampled_from(["", "nope"])), 500
                rows.append(dict(customer_id=cid, timestamp=ts, amount=-amount / 100, event=draw(st.sampled_from(["refund", "purchase"])),
                                 transaction_id=tx, category="", quantity=1, reward=""))
            elif what == "redeem":
                rows.append(dict(customer_id=cid, timestamp=ts, amount=0.0, event="redeem", transaction_id="", category="",
                                 quantity=1, reward=f"w{draw(st.integers(0, rewards - 1))}"))
            else:
                rows.append(dict(customer_id=cid, timestamp=ts, amount=0.0, event=draw(st.sampled_from(DIFF_EVENTS)), transaction_id="",
                                 category="", quantity=1, reward=""))
    frame = _pd.DataFrame(rows)
    n = len(frame)
    frame["_u_redeem"] = draw(st.lists(st.sampled_from([0.0, 0.3, 0.7, 0.99]), min_size=n, max_size=n))
    frame["_u_choice"] = draw(st.lists(st.sampled_from([0.0, 0.4, 0.99]), min_size=n, max_size=n))
    cust = []
    for m in range(members):
        if draw(st.integers(0, 4)):
            cust.append(dict(customer_id=f"c{m}", segment=draw(st.sampled_from(["student", "vip", None])),
                             birthday=draw(st.sampled_from(["1992-02-29", "1985-12-31", "2000-01-01", None])),
                             enrolled=draw(st.sampled_from([None, "2027-06-01", "2028-01-01"]))))
    customers = _pd.DataFrame(cust, columns=["customer_id", "segment", "birthday", "enrolled"])
    policy = None
    if draw(st.booleans()):
        from rulelang.engine.data import RedemptionPolicy

        policy = RedemptionPolicy(draw(st.sampled_from([0.0, 0.5, 1.0])), draw(st.sampled_from(["cheapest", "dearest", "random"])))
    # Paying with points: drawn (each basket's draw against the policy's probability), or, at
    # times, recorded on the purchase rows (a `points_paid` column, blank or points per row).
    frame["_u_pay"] = draw(st.lists(st.sampled_from([0.0, 0.5, 0.99]), min_size=n, max_size=n))
    if policy is not None:
        policy = dataclasses.replace(policy, pay_probability=draw(st.sampled_from([0.0, 0.5, 1.0, 1.0])))
    if n and draw(st.integers(0, 3)) == 0:
        purchase = ((frame["event"] == "purchase") & (frame["amount"] >= 0)).to_list()
        frame["points_paid"] = [draw(st.sampled_from([None, 0, 1, 3, 7, 20, 100, 5000])) if p else None for p in purchase]
    return frame, customers, policy


# =================================================================================================
# --- scenario YAML texts (simulator/scenario.py fuzz) -------------------------------------------
# Near-valid scenarios: the real keys (and misspellings, odd keys) with plausible and hostile values,
# block and flow style, anchors and aliases, object tags, deep nesting, then a few raw edits with
# characters YAML gives meaning to (or forbids), so the scanner, composer, constructor and the
# scenario's own checks are all reached.
# =================================================================================================

SCENARIO_KEYS = ("program", "transactions", "customers", "columns", "period", "enrollment", "redemption", "response",
                 "margin", "runs", "seed", "horizon", "acquisition", "per_month", "share", "pick", "probability", "choice", "spend_uplift", "visit_uplift",
                 "goal_gradient", "within", "uplift", "customer_id", "member_no", "timestamp", "amount", "Gold",
                 "rnus", "custmer_id", "<<", "1", "01", "true", "~", "[a]", "{a: 1}", "=", '"k\\x07"', "? x")  # fmt: skip
SCENARIO_SCALARS = (
    "0", "1", "-3", "0.35", "1.3", "2.0", "1e400", "1.0e+400", "-1.0e+400", ".nan", ".inf", "-.inf", "9223372036854775807",
    "9223372036854775808", "9" * 70, "0x" + "f" * 70, "0o17", "1_000", "true", "yes", "off", "~", "null", "''",
    "2026-01-01", "2026-13-45", "0000-01-01", "2020-01-01 10:00:00+99:00", "2026-01-01 to 2026-12-31",
    "1600-01-01 to 2026-12-31", "0001-01-01 to 9999-12-31", "1677-09-22 to 2262-04-10", "2026-12-31 to 2026-01-01",
    "random", "top_spenders", "cheapest", "dearest", "member_no", "customer_id", "missing.loyalty", '"a\\0b"',
    '"\\x1b[31mred\\u202e"', '"\\t\\r\\x85"', "'" + "long " * 40 + "'", "!!python/object/apply:os.system ['true']",
    "!!python/name:os.system", "!!int x", "!!float y", "!!bool maybe", "!!timestamp z", "!!binary '@@'", "!!set {a, b}",
    "!!omap [a: 1]", "!!map [1]", "!!str {a: 1}", "!foo bar", "! 3", "*a", "&a 3", "&b [1, 2]", "|\n  text", ">-\n  folded",
)  # fmt: skip
SCENARIO_EDITS = ("\x00", "\x07", "\x1b", "\x7f", "\x85", "\u2028", "\ufeff", "\ud800", "\t", "\r", "\n", " ", "  ", ":", ": ",
                  "- ", "? ", "&a ", "*a", "!", "!!", "[", "]", "{", "}", ",", "'", '"', "|", ">", "%YAML 1.1\n", "---\n", "...\n",
                  "#", "@", "`", "\\", "0", "x", "积分")  # fmt: skip

_scenario_scalar = st.one_of(
    st.sampled_from(SCENARIO_SCALARS),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12).map(lambda t: '"' + t.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
_scenario_tree = st.recursive(
    st.tuples(st.just("scalar"), _scenario_scalar),
    lambda inner: st.one_of(
        st.tuples(st.just("map"), st.lists(st.tuples(st.sampled_from(SCENARIO_KEYS), inner), max_size=5), st.booleans()),
        st.tuples(st.just("seq"), st.lists(inner, max_size=4), st.booleans()),
    ),
    max_leaves=25,
)


def _flow(node) -> str:
    kind, body = node[0], node[1]
    if kind == "scalar":
        return body
    if kind == "map":
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in body) + "}"
    return "[" + ", ".join(_flow(v) for v in body) + "]"


def _block(node, indent: int) -> str:
    """A collection in block style (flow where it asks for it); each entry on its own line."""
    pad = " " * indent
    kind, body, flow = node
    if flow or not body:
        return pad + _flow(node) + "\n"
    lines = []
    for key, value in body if kind == "map" else (("-", v) for v in body):
        head = f"{pad}{key}:" if kind == "map" else f"{pad}-"
        if value[0] == "scalar" or value[2] or not value[1]:
            lines.append(f"{head} {_flow(value)}\n")
        else:
            lines.append(head + "\n" + _block(value, indent + 2))
    return "".join(lines)


# A scenario's own shape: each key with values of the kind it takes, and its section's keys.
_SCENARIO_SHAPE = {
    "program": ("bean_club.loyalty", "missing.loyalty"), "transactions": ("tx.csv",), "customers": ("customers.csv",),
    "period": ("2026-01-01 to 2026-12-31", "1677-09-22 to 2262-04-10", "2026-1-1 to 2026-02-01", "1600-01-01 to 2026-12-31"),
    "margin": ("0.62", "0", "1", "1.5"), "runs": ("1", "200", "1000000", "1000001"), "seed": ("0", "42", "9223372036854775807"),
    "horizon": ("24 months", "2 years", "1 month", "0 months", "1201 months", "24 weeks", "soon", "24"),
    "columns": {"customer_id": ("member_no",), "timestamp": ("paid_at",), "amount": ("total", "member_no"), "member_no": ("customer_id",),
                "custmer_id": ("x",), "segment": ("seg",)},
    "enrollment": {"share": ("0.4", "1", "-0.1"), "pick": ("random", "top_spenders", "best")},
    "acquisition": {"per_month": ("40", "0", "2.5", "-1", "many", "1000001")},
    "redemption": {"probability": ("0.35", "0", "1.3"), "choice": ("cheapest", "dearest", "random", "cheap")},
    "response": {"spend_uplift": ("0.03", "{Gold: 0.03, Black: 0.06}", "{Gold: 3}", "-1", "{normal: {mean: 0.04, sd: 0.02}}", "{normal: {mean: 0.04}}"),
                 "visit_uplift": ("0.02", "1", "{normal: {mean: 0.03, sd: 0.05}}", "{normal: {mean: 0.03, sd: -1}}", "{normal: 0.1}"),
                 "goal_gradient": ("{within: 0.2, uplift: 0.05}", "{within: 0.2}", "{within: 2, uplift: x}")},
}  # fmt: skip


@st.composite
def _scenario_shaped(draw):
    """A scenario written as the documents show it, some values out of range or misspelt, some odd."""
    entries = []
    for key in draw(st.lists(st.sampled_from(list(_SCENARIO_SHAPE)), max_size=8)):
        shape = _SCENARIO_SHAPE[key]
        if isinstance(shape, dict):
            subkeys = draw(st.lists(st.sampled_from(list(shape)), max_size=4))
            body = [(k, ("scalar", draw(st.one_of(st.sampled_from(shape[k]), _scenario_scalar) if draw(st.integers(0, 4)) == 0 else st.sampled_from(shape[k])))) for k in subkeys]
            entries.append((key, ("map", body, draw(st.booleans()))))
        else:
            entries.append((key, ("scalar", draw(st.sampled_from(shape) if draw(st.integers(0, 4)) else _scenario_scalar))))
    return ("map", entries, False)


@st.composite
def scenario_yaml_texts(draw) -> str:
    """YAML text for `loads_scenario`: mostly shaped like a scenario, sometimes anything."""
    free = st.tuples(st.just("map"), st.lists(st.tuples(st.sampled_from(SCENARIO_KEYS), _scenario_tree), max_size=8), st.booleans())
    top = draw(st.one_of(_scenario_shaped(), free, _scenario_tree))
    text = _block(top, 0) if top[0] != "scalar" else _flow(top) + "\n"
    if top[0] == "map" and not top[2] and top[1] and draw(st.integers(0, 5)) == 0:  # deep nesting, around the limit
        depth = draw(st.integers(1, 40))
        text += "runs: " + ("[" * depth + "]" * depth if draw(st.booleans()) else "\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(depth)))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2, 3]))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(SCENARIO_EDITS)) + text[at + draw(st.integers(0, 2)):]
    return text


# --- data files (simulator/io fuzz and round trip) -----------------------------------------------
# Small tables of transactions or customers with hostile cells: numbers beyond what the engine
# holds, NaN/inf, dates outside datetime64[ns] or in no agreed layout, time zone offsets, blanks,
# control characters and unicode, with headers that repeat, miss or map columns. `data_table`
# gives (column names, rows of cells as text or None); the tests write it as CSV, Parquet (typed
# columns too) or a DataFrame.
# =================================================================================================

import datetime as _dt  # noqa: E402

import pyarrow as _pa  # noqa: E402

DATA_HOSTILE = (
    "", " ", "nan", "NaN", "inf", "-inf", "1e308", "-1e308", "9.3e16", "99999999999999999999", "10000000000000.00", "1e-320",
    "0", "-0", "12.50", "-3", "1,234.50", "¥12", "0001-01-01", "9999-12-31", "2262-04-12", "1677-09-21", "now", "today",
    "2026-02-30", "2026-03-01", "2026-03-01 14:30", "2026-03-01T14:30:00.5Z", "2026-03-01 14:30+08:00", "03/04/2026",
    "13/04/2026", "2026", "007", "C1", "purchase", "refund", "redeem", "Redeem", "enroll", "coffee", "GBP", "CNY", "cny",
    "=1+1", "+1", "-", "@x", "\t", "\x00", "\x1b[31m", "[/]", "\u202e", "é", "日本", "😀", '"', "a,b", "a\nb", "x" * 300, None,
)  # fmt: skip
DATA_COLUMNS = ("customer_id", "timestamp", "amount", "event", "transaction_id", "reward", "quantity", "currency",
                "member_no", "paid_at", "total", "category", "birthday", "enrolled", "segment", "", "日付")  # fmt: skip
DATA_PLAIN = {"customer_id": ("C1", "007", "c2"), "member_no": ("C1", "007"), "timestamp": ("2026-03-01 10:00", "2026-03-02"),
              "paid_at": ("2026-03-01",), "amount": ("12.50", "3", "-2"), "total": ("4",), "event": ("", "purchase", "refund"),
              "birthday": ("1990-05-17", ""), "enrolled": ("2026-01-01", ""), "segment": ("vip", "")}  # fmt: skip
TX_COLUMNS = ("customer_id", "timestamp", "amount")
CUSTOMER_COLUMNS = ("customer_id", "birthday", "enrolled", "segment")


@st.composite
def data_table(draw, base: tuple[str, ...] = TX_COLUMNS, max_rows: int = 6):
    """(column names, rows): usually the `base` columns (some may be missing) and a few others,
    names may repeat; cells are hostile text or None."""
    names = [c for c in base if draw(st.integers(0, 9))]  # a required column is sometimes missing
    names += draw(st.lists(st.sampled_from(DATA_COLUMNS), max_size=3))
    names = draw(st.permutations(names))
    cell = st.one_of(st.sampled_from(DATA_HOSTILE), st.text(max_size=8))
    hostile = st.lists(cell, min_size=len(names), max_size=len(names))
    # Some rows are plain, so that what follows loading (the simulation) is reached too.
    plain = st.tuples(*(st.sampled_from(DATA_PLAIN.get(n, ("", "x"))) for n in names)).map(list)
    rows = draw(st.lists(st.one_of(hostile, plain), max_size=max_rows))
    return list(names), rows


# Typed Parquet columns a file may hold instead of text: (Arrow type, values drawn from).
DATA_TYPED = {
    "int64": (_pa.int64(), (0, 7, -3, 2**62, -(2**63), 2**63 - 1, None)),
    "float64": (_pa.float64(), (0.0, 12.5, float("nan"), float("inf"), 1e300, -9.3e16, None)),
    "timestamp": (_pa.timestamp("us"), (_dt.datetime(2026, 3, 1, 14, 30), _dt.datetime(1, 1, 1), _dt.datetime(9999, 12, 31), None)),
    "date": (_pa.date32(), (_dt.date(2026, 3, 1), _dt.date(1, 1, 1), _dt.date(9999, 12, 31), None)),
    "bool": (_pa.bool_(), (True, False, None)),
    "struct": (_pa.struct([("x", _pa.int64())]), ({"x": 1}, None)),
    "list": (_pa.list_(_pa.float64()), ([1.0], [], None)),
    "null": (_pa.null(), (None,)),
}


@st.composite
def data_valid_rows(draw, max_rows: int = 12):
    """Rows every check accepts: (customer id, ISO date-time text, amount in cents) with ids of
    text that numbers would change (leading zeros), several rows per customer and equal times."""
    ids = st.sampled_from(["007", "7", "C1", "c1", "Z", "é", "0.10"])
    moments = st.builds(lambda d, s: (_dt.datetime(2026, 1, 1) + _dt.timedelta(days=d, seconds=s)), st.integers(0, 400), st.sampled_from([0, 1, 3600, 86399]))
    cents = st.integers(-(10**9), 10**9)
    return draw(st.lists(st.tuples(ids, moments, cents), min_size=1, max_size=max_rows))


# =================================================================================================
# --- canonical transactions (the data contract: rulelang.engine.prepare vs simulator.history) ----
# Valid transaction frames, members' rows interleaved but each member's in time order, written
# the ways the contract must read alike: event names in any case with edge spaces or blank,
# refunds as `refund` rows (amount of either sign) or as negative purchases, baskets of several
# lines sharing an id, single lines with a blank id at one time, the same id at other members.
# With each frame, what every row is, from how it was drawn (in input order): the independent
# oracle for `event`, `refund` (and its negative amount in cents) and `start` (a basket's first line).
# =================================================================================================

CONTRACT_SPELLINGS = {"purchase": ["purchase", "Purchase", " PURCHASE ", "", None], "refund": ["refund", "Refund ", "REFUND"],
                      "redeem": ["redeem", " Redeem"], "enroll": ["enroll", "ENROLL"], "stamp": ["stamp", " Stamp\t"]}


@st.composite
def contract_frame(draw):
    """(transactions frame, oracle frame with columns event, refund, cents, start)."""
    per_member = []
    for m in range(draw(st.integers(1, 4))):
        cid, rows, t, basket = f"m{draw(st.sampled_from(['0', '1', '2', '3']))}{m}", [], 0, 0
        for _ in range(draw(st.integers(1, 6))):
            t += draw(st.sampled_from([0, 0, 60, 86400]))  # equal times are common: baskets must not merge
            ts = f"2026-03-{1 + t // 86400:02d} 10:{(t % 86400) // 60:02d}"
            what = draw(st.sampled_from(["basket", "basket", "line", "refund", "negative", "redeem", "enroll", "stamp"]))
            if what in ("basket", "line"):
                tx = f"T{basket}" if what == "basket" else draw(st.sampled_from(["", None]))
                basket += what == "basket"
                for k in range(draw(st.integers(1, 3)) if what == "basket" else 1):
                    cents = draw(st.integers(0, 5000))
                    rows.append((cid, ts, cents / 100, draw(st.sampled_from(CONTRACT_SPELLINGS["purchase"])), tx, "", "purchase", False, cents, k == 0))
            elif what in ("refund", "negative"):
                cents = draw(st.integers(1, 5000))
                tx = draw(st.sampled_from([f"T{max(basket - 1, 0)}", "", "other"]))
                spelling = draw(st.sampled_from(CONTRACT_SPELLINGS["refund"])) if what == "refund" else "purchase"
                amount = (cents if what == "refund" and draw(st.booleans()) else -cents) / 100
                rows.append((cid, ts, amount, spelling, tx, "", "refund" if what == "refund" else "purchase", True, -cents, False))
            else:
                reward = "coffee" if what == "redeem" else ""
                rows.append((cid, ts, 0.0, draw(st.sampled_from(CONTRACT_SPELLINGS[what])), "", reward, what, False, 0, False))
        per_member.append(rows)
    # Interleave the members' rows, each member's kept in order.
    out = []
    while any(per_member):
        out.append(draw(st.sampled_from([r for r in per_member if r])).pop(0))
    cols = ["customer_id", "timestamp", "amount", "event", "transaction_id", "reward", "_event", "_refund", "_cents", "_start"]
    frame = _pd.DataFrame(out, columns=cols)
    return frame[cols[:6]], frame[cols[6:]].set_axis(["event", "refund", "cents", "start"], axis=1)


# =================================================================================================
# --- monthly flows of a points program (simulator/finance/accounting roll-forwards) -----------------
# Sales, points earned, redeemed and expired month by month, never spending more points than were
# earned so far, and an estimate of the redemption rate per month in (0, 1] as an exact decimal.
# =================================================================================================


@st.composite
def monthly_point_flows(draw, max_months: int = 24) -> dict:
    n = draw(st.integers(min_value=1, max_value=max_months))
    sales = draw(st.lists(st.integers(min_value=0, max_value=10**9), min_size=n, max_size=n))
    earned = draw(st.lists(st.integers(min_value=0, max_value=10**7), min_size=n, max_size=n))
    redeemed, expired, outstanding = [], [], 0
    for t in range(n):
        outstanding += earned[t]
        r = draw(st.integers(min_value=0, max_value=outstanding))
        e = draw(st.integers(min_value=0, max_value=outstanding - r))
        outstanding -= r + e
        redeemed.append(r)
        expired.append(e)
    rates = draw(st.lists(st.integers(min_value=1, max_value=10_000).map(lambda bp: Decimal(bp) / 10_000), min_size=n, max_size=n))
    return {
        "sales": sales,
        "earned": earned,
        "redeemed": redeemed,
        "expired": expired,
        "rates": rates,
        "value_per_point": draw(st.sampled_from(["0.01", "0.005", "1", "0.95", "0.0333"])),
        "decimals": draw(st.sampled_from([0, 2, 3])),
    }
