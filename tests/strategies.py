"""Hypothesis strategies shared by the test suite; each owner keeps to its own section."""

from __future__ import annotations

import dataclasses
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
    "reward assert and or not in points point calendar by over from per to most times cost end of year purchase".split()
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
    st.builds(ast.OnEvent, idents),
    st.builds(ast.During, date_lits, date_lits),
    st.one_of(
        st.builds(lambda p: ast.Frequency(ast.Number(Decimal(1)), p, True), st.none() | periods),
        st.builds(lambda n, p: ast.Frequency(n, p, False), numbers, st.none() | periods),
    ),
    _funded,
]
# Clauses in the formatter's canonical order (when, on, during, frequency, funded), each at most once.
clauses = st.tuples(*(st.none() | c for c in _clause_options)).map(lambda cs: tuple(c for c in cs if c is not None))
awards = st.one_of(
    st.builds(ast.PerSpend, numbers, money),
    st.builds(ast.Fixed, numbers),
    st.builds(ast.Multiplier, numbers, idents),
)
windows = st.one_of(st.just(ast.Window(None, None)), st.builds(ast.Window, numbers, st.sampled_from(["days", "months"]).map(ast.Ident)))
tier_levels = st.builds(ast.TierLevel, idents, numbers, st.none() | idents)
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
    st.builds(lambda m, w, lv: ast.Tiers(m, w, tuple(lv)), st.sampled_from(["spend", "points", "visits"]).map(ast.Ident),
              windows, st.lists(tier_levels, max_size=4)),
    st.builds(ast.Earn, idents, awards, clauses),
    st.builds(ast.Limit, numbers, periods),
    expires,
    st.builds(ast.Round, st.sampled_from(["down", "up", "nearest"]).map(ast.Ident)),
    st.builds(ast.Reward, idents, numbers, money, st.none() | _funded),
    st.builds(ast.Assert, expressions),
)
programs = st.lists(statements, max_size=8).map(lambda ss: ast.Program(tuple(ss)))


def canonical_tree(tree: ast.Program) -> ast.Program:
    """What formatting may change and no more: clause order, and trailing spaces of comments."""
    from rulelang.fmt import canonical_clauses

    stmts = tuple(dataclasses.replace(s, clauses=canonical_clauses(s.clauses)) if isinstance(s, ast.Earn) else s for s in tree.statements)
    notes = tuple(dataclasses.replace(c, text=c.text.rstrip()) for c in tree.comments)
    return dataclasses.replace(tree, statements=stmts, comments=notes)
