"""Text to syntax tree. The only module that imports Lark.

`parse(text, path)` returns an `ast.Program` or raises `ProgramError` with exactly one diagnostic:
the parser stops at the first syntax error. Known mistakes get curated messages (see
`rulelang.mistakes`); anything else gets the expected tokens in planner words.
"""

from __future__ import annotations

import os
import stat
from contextvars import ContextVar
from decimal import Decimal
from functools import cache
from pathlib import Path

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from rulelang import ast, mistakes
from rulelang.errors import ProgramError, Source, diagnostic

_SINK: ContextVar[list | None] = ContextVar("comment_sink", default=None)
MAX_NESTING = 64  # brackets deeper than this are a mistake, not a program
MAX_PROGRAM_BYTES = 1_000_000  # the largest program file read (docs/language.md, "Limits")
# What a path that is not a regular file is, in the words of the message.
_NOT_REGULAR = {
    stat.S_IFDIR: "is a folder, not a program file",
    stat.S_IFIFO: "is a pipe (FIFO), not a program file; save the program to a file",
    stat.S_IFCHR: "is a device, not a program file",
    stat.S_IFBLK: "is a device, not a program file",
    stat.S_IFSOCK: "is a socket, not a program file",
}

# How each terminal is described to a planner when it is expected or found.
_WORDS = {
    "NUMBER": "a number, like `100`",
    "NAME": "a name, like `base` or `Gold`",
    "STRING": 'a quoted text, like `"pastry"`',
    "DATE": "a date, like `2026-12-31`",
    "MULT": "a multiplier, like `2x`",
    "POINT_WORD": "`points`",
    "_NL": "the end of the line",
    "$END": "the end of the file",
    "COMP_OP": "a comparison (`==`, `!=`, `<`, `<=`, `>`, `>=`)",
    "ADD_OP": "an operator (`+`, `-`, `*`, `/`)",
    "MUL_OP": "an operator (`+`, `-`, `*`, `/`)",
    "NEG": "a value",
    "LPAR": "`(`",
    "LBRACK": "a list, like `[sat, sun]`",
}
_CLAUSES = {"WHEN", "ON", "DURING", "ONCE", "AT", "FUNDED"}
_STATEMENTS = {"PROGRAM", "CURRENCY", "POINT_COST", "COLUMN", "TIERS", "EARN", "LIMIT", "EXPIRE", "ROUND", "REWARD", "ASSERT", "DISCOUNT",
               "BENEFIT", "LABEL"}


class _Brackets:
    """Post-lexer: newlines inside ( ) and [ ] do not end a statement; nesting is bounded."""

    always_accept = ("_NL",)

    def process(self, stream):
        depth = 0
        for tok in stream:
            if tok.type in ("LPAR", "LBRACK"):
                depth += 1
                if depth > MAX_NESTING:
                    raise _TooDeep(tok)
            elif tok.type in ("RPAR", "RSQB"):
                depth = max(depth - 1, 0)
            elif tok.type == "_NL" and depth:
                continue
            yield tok


class _TooDeep(Exception):
    def __init__(self, token):
        self.token = token


def _span(*parts) -> ast.Span:
    spans = []
    for p in parts:
        if p is None:
            continue
        if isinstance(p, Token):
            spans.append(ast.Span(p.line, p.column, p.end_line, p.end_column, p.start_pos, p.end_pos))
        elif isinstance(p, (list, tuple)):
            if p:
                spans.append(_span(*p))
        elif getattr(p, "span", None) is not None:
            spans.append(p.span)
    spans = [s for s in spans if s.line]
    if not spans:
        return ast.NO_SPAN
    out = spans[0]
    for s in spans[1:]:
        out = out.join(s)
    return out


def _ident(tok: Token) -> ast.Ident:
    return ast.Ident(str(tok), _span(tok))


def _num(tok: Token) -> ast.Number:
    return ast.Number(Decimal(str(tok)), _span(tok))


class _Build(Transformer):
    """Builds AST nodes from Lark's children. It only builds; every check lives in the checker."""

    def start(self, items):
        return ast.Program(tuple(items), span=_span(*items))

    def program_name(self, items):
        kw, s = items
        return ast.ProgramName(ast.String(str(s)[1:-1], _span(s)), _span(kw, s))

    def currency(self, items):
        kw, code = items
        return ast.Currency(_ident(code), _span(kw, code))

    def point_cost(self, items):
        kw, money = items
        return ast.PointCost(money, _span(kw, money))

    def column(self, items):
        kw, names, typ = items
        return ast.Column(names, _ident(typ), _span(kw, typ))

    def dotted_name(self, items):
        return tuple(_ident(t) for t in items)

    def tiers(self, items):
        kw, metric, window, counting, *levels = items
        return ast.Tiers(_ident(metric), window, tuple(levels), _span(kw, window, counting, *levels), counting=counting is not None)

    def tier_counting(self, items):
        return items[0]

    def window_span(self, items):
        n, unit = items
        return ast.Window(_num(n), _ident(unit), _span(n, unit))

    def window_calendar(self, items):
        return ast.Window(None, None, _span(*items))

    def window_lifetime(self, items):
        return ast.Window(None, None, _span(*items), lifetime=True)

    def tier_level(self, items):
        name, n, unit, *alternatives, keep = items
        return ast.TierLevel(_ident(name), _num(n), _ident(unit) if unit else None, _span(name, n, unit, *alternatives, keep),
                             tuple(alternatives), keep)

    def tier_downgrade(self, items):
        kw, one, level, at, a, time = items
        return ast.TierDowngrade(_span(*items), words=(str(one), str(level), str(a), str(time)))

    def tier_review(self, items):
        kw, _tiers, period = items
        return ast.TierReview(_ident(period), _span(kw, period))

    def tier_keep(self, items):
        kw, n, unit = items
        return ast.TierKeep(_num(n), _ident(unit), _span(kw, n, unit))

    def tier_alternative(self, items):
        kw, n, unit = items
        return ast.TierAlternative(_num(n), _ident(unit) if unit else None, _span(kw, n, unit))

    def earn(self, items):
        kw, name, award, *clauses = items
        return ast.Earn(_ident(name), award, tuple(clauses), _span(kw, award, *clauses))

    def benefit(self, items):
        kw, name, money, *clauses = items
        return ast.Benefit(_ident(name), money, tuple(clauses), _span(kw, money, *clauses))

    def label(self, items):
        kw, name, *texts = items
        return ast.Label(_ident(name), tuple(texts), _span(kw, *texts))

    def label_text(self, items):
        lang, text = items
        return ast.LabelText(_ident(lang), ast.String(str(text)[1:-1], _span(text)), _span(lang, text))

    def per_spend(self, items):
        n, word, money = items
        return ast.PerSpend(_num(n), money, _span(n, money))

    def per_unit(self, items):
        n, word, unit = items
        return ast.PerUnit(_num(n), _span(n, unit))

    def fixed(self, items):
        n, word = items
        return ast.Fixed(_num(n), _span(n, word))

    def multiplier(self, items):
        mult, target = items
        factor = ast.Number(Decimal(str(mult)[:-1]), _span(mult))
        return ast.Multiplier(factor, _ident(target), _span(mult, target))

    def when(self, items):
        kw, expr = items
        return ast.When(expr, _span(kw, expr))

    def on_event(self, items):
        kw, name = items
        return ast.OnEvent(_ident(name), _span(kw, name))

    def on_event_text(self, items):
        kw, text = items
        return ast.OnEvent(ast.Ident(str(text)[1:-1], _span(text)), _span(kw, text), quoted=True)

    def during(self, items):
        kw, a, b = items
        return ast.During(ast.DateLit(str(a), _span(a)), ast.DateLit(str(b), _span(b)), _span(kw, b))

    def during_from(self, items):
        kw, a = items
        return ast.During(ast.DateLit(str(a), _span(a)), None, _span(kw, a))

    def during_to(self, items):
        kw, b = items
        return ast.During(None, ast.DateLit(str(b), _span(b)), _span(kw, b))

    def once(self, items):
        kw, period = items
        return ast.Frequency(ast.Number(Decimal(1), _span(kw)), _ident(period) if period else None, True, _span(kw, period))

    def at_most(self, items):
        kw, n, period = items
        return ast.Frequency(_num(n), _ident(period) if period else None, False, _span(kw, n, period))

    def funded(self, items):
        kw, pct, by = items
        return ast.Funded(pct, _ident(by), _span(kw, by))

    def budget(self, items):
        kw, money = items
        points = money.currency.name in ("points", "point")
        return ast.Budget(ast.Number(money.amount, money.span), None if points else money.currency, _span(kw, money))

    def discount(self, items):
        kw, name, (value, cap, cheapest), *clauses = items
        return ast.Discount(_ident(name), value, tuple(clauses), _span(kw, value, cap, cheapest, *clauses), cap, cheapest is not None)

    def discount_percent(self, items):
        pct, cap, cheapest = items
        return pct, cap, cheapest

    def discount_money(self, items):
        return items[0], None, None

    def discount_buy_get(self, items):
        kw, n, m = items
        return ast.BuyGet(_num(n), _num(m), _span(kw, m)), None, None

    def up_to(self, items):
        up, money = items
        return money

    def cheapest(self, items):
        return items[0]  # the `on` token: its span

    def best_of(self, items):
        kw, *names = items
        return ast.BestOf(tuple(_ident(n) for n in names), _span(kw, *names))

    def pending(self, items):
        kw, n, unit = items
        return ast.Pending(_num(n), _ident(unit), _span(kw, unit))
    def pay_with_points(self, items):
        kw, _word, n, _unit, value, cap, minimum = items
        return ast.PayWithPoints(_num(n), value, _span(kw, value, cap, minimum), cap, minimum)

    def pay_cap(self, items):
        _up, pct = items
        return pct

    def pay_from(self, items):
        n, _word = items
        return _num(n)

    def limit(self, items):
        kw, n, word, period = items
        return ast.Limit(_num(n), _ident(period), _span(kw, period))

    def expire_after(self, items):
        kw, n, unit, without = items
        kind = "inactive" if without else "after"
        return ast.Expire(kind, _num(n), _ident(unit), _span(kw, unit, without))

    def expire_year_end(self, items):
        kw, at, nxt = items
        return ast.Expire("end_of_next_year" if nxt else "end_of_year", span=_span(kw, at, nxt))

    def expire_never(self, items):
        kw, never = items
        return ast.Expire("never", span=_span(kw, never))

    def round(self, items):
        kw, mode = items
        return ast.Round(_ident(mode), _span(kw, mode))

    def reward(self, items):
        kw, name, n, word, money, funded, issued = items
        return ast.Reward(_ident(name), _num(n), money, funded, _span(kw, money, funded, issued), issued=issued)

    def issued(self, items):
        kw, period = items
        return ast.Issued(_ident(period), _span(kw, period))

    def assertion(self, items):
        kw, expr = items
        return ast.Assert(expr, _span(kw, expr))

    def money(self, items):
        n, cur = items
        return ast.Money(Decimal(str(n)), _ident(cur), _span(n, cur))

    money_lit = money

    def percent(self, items):
        n, sign = items
        return ast.Percent(Decimal(str(n)), _span(n, sign))

    # expressions

    def _chain(self, op, items):
        return ast.BoolOp(op, tuple(items[::2]), _span(items[0], items[-1]))

    def or_expr(self, items):
        return self._chain("or", items)

    def and_expr(self, items):
        return self._chain("and", items)

    def not_(self, items):
        kw, operand = items
        return ast.Not(operand, _span(kw, operand))

    def compare(self, items):
        left, op, right = items
        return ast.Compare(str(op), left, right, _span(left, right))

    def in_(self, items):
        item, kw, options = items
        return ast.In(item, options, False, _span(item, options))

    def not_in(self, items):
        item, nkw, kw, options = items
        return ast.In(item, options, True, _span(item, options))

    def sum(self, items):
        rest = tuple((str(items[i]), items[i + 1]) for i in range(1, len(items), 2))
        return ast.Arith(items[0], rest, _span(items[0], items[-1]))

    product = sum

    def neg(self, items):
        sign, operand = items
        return ast.Neg(operand, _span(sign, operand))

    def number(self, items):
        return _num(items[0])

    def date(self, items):
        return ast.DateLit(str(items[0]), _span(items[0]))

    def string(self, items):
        return ast.String(str(items[0])[1:-1], _span(items[0]))

    def name(self, items):
        return ast.Name(str(items[0]), _span(items[0]))

    def attribute(self, items):
        obj, attr = items
        return ast.Attribute(_ident(obj), _ident(attr), _span(obj, attr))

    def basket_sum(self, items):
        obj, attr, lpar, cond, rpar = items
        return ast.BasketSum(_ident(obj), _ident(attr), cond, _span(obj, rpar))

    def call(self, items):
        func, lpar, *args, rpar = items
        args = tuple(a for a in args if a is not None)
        return ast.Call(_ident(func), args, _span(func, rpar))

    def group(self, items):
        lpar, expr, rpar = items
        return ast.Group(expr, _span(lpar, rpar))

    def list(self, items):
        lbrack, *elems, rsqb = items
        elems = tuple(e for e in elems if e is not None)
        return ast.ListLit(elems, _span(lbrack, rsqb))


_GRAMMAR = Path(__file__).with_name("grammar.lark")


@cache
def _lark() -> Lark:
    return Lark(
        _GRAMMAR.read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        postlex=_Brackets(),
        transformer=_Build(),
        maybe_placeholders=True,
        lexer_callbacks={"COMMENT": _collect_comment},
    )


def decode(data: bytes, path: str = "<program>") -> Source:
    """Bytes of a program file to a `Source`: UTF-8 (a BOM is dropped), line ends made `\\n`."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        good = data[: exc.start].decode("utf-8", errors="replace")
        line = good.count("\n") + 1
        col = len(good) - (good.rfind("\n") + 1) + 1
        src = Source(good.replace("\r\n", "\n"), path)
        span = ast.Span(line, col, line, col + 1)
        raise ProgramError([
            diagnostic(src, "error", "E001", f"this file is not UTF-8 text (byte 0x{data[exc.start]:02x} at byte {exc.start})", span,
                       "save the file as UTF-8; most editors offer it under 'Save as' or 'Encoding'")
        ]) from None
    return Source(text.replace("\r\n", "\n").replace("\r", "\n"), path)


def read_bytes(path: str | Path) -> bytes:
    """The bytes of a program file: only a regular file, of at most `MAX_PROGRAM_BYTES`.

    The file is opened without blocking and checked with `fstat` before any read, so a FIFO, a
    device (`/dev/zero`) or a folder is refused at once rather than hanging or filling memory.
    Problems raise `ProgramError` with one file-level E002 diagnostic (no line or column).
    """
    name = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise _unreadable(name, "no such file") from None
    except IsADirectoryError:
        raise _unreadable(name, _NOT_REGULAR[stat.S_IFDIR]) from None
    except OSError as exc:
        raise _unreadable(name, f"cannot read the file: {exc.strerror or exc}") from None
    try:
        kind = stat.S_IFMT(os.fstat(fd).st_mode)
        if kind != stat.S_IFREG:
            raise _unreadable(name, _NOT_REGULAR.get(kind, "is not a regular file"))
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(MAX_PROGRAM_BYTES + 1)  # one byte more tells a file that grew past the limit
    except OSError as exc:
        raise _unreadable(name, f"cannot read the file: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_PROGRAM_BYTES:
        raise _unreadable(name, f"the file is larger than {MAX_PROGRAM_BYTES:,} bytes, the most a program file may be "
                                "(is this the right path?)")
    return data


def _unreadable(path: str, message: str) -> ProgramError:
    return ProgramError([diagnostic(Source("", path), "error", "E002", message, ast.NO_SPAN)])


def read(path: str | Path) -> Source:
    """Read a program file (see `read_bytes`); unreadable files raise `ProgramError` naming the path."""
    return decode(read_bytes(path), str(path))


def parse(source: Source | str, path: str = "<program>") -> ast.Program:
    """Parse program text into an `ast.Program`; the first syntax error raises `ProgramError`."""
    src = source if isinstance(source, Source) else Source(source.replace("\r\n", "\n"), path)
    text = src.text if src.text.endswith("\n") else src.text + "\n"
    comments: list[Token] = []
    try:
        tree = _parse_with_comments(text, comments)
    except _TooDeep as exc:
        raise ProgramError([diagnostic(src, "error", "E103", f"brackets are nested more than {MAX_NESTING} deep", _span(exc.token),
                                       "split the condition into simpler parts")]) from None
    except UnexpectedInput as exc:
        raise ProgramError([_syntax_diagnostic(src, text, exc)]) from None
    except RecursionError:
        raise ProgramError([diagnostic(src, "error", "E103", "the program is nested too deeply to read", ast.Span(1, 1, 1, 2))]) from None
    notes = tuple(ast.Comment(str(c), _span(c)) for c in comments)
    return ast.Program(tree.statements, notes, src.path, tree.span)


def _parse_with_comments(text: str, comments: list) -> ast.Program:
    # The lexer hands comments to a callback; a context variable says where to put them, so
    # parsing stays re-entrant while the grammar is loaded once.
    token = _SINK.set(comments)
    try:
        return _lark().parse(text)
    finally:
        _SINK.reset(token)


def _collect_comment(tok: Token) -> Token:
    sink = _SINK.get()
    if sink is not None:
        sink.append(tok)
    return tok


# --- syntax errors ------------------------------------------------------------------------------


def _describe_expected(expected: set[str]) -> str:
    words: list[str] = []
    patterns = _terminal_patterns()
    clause_words = sorted(patterns[t] for t in expected & _CLAUSES)
    statement_words = expected & _STATEMENTS
    for name in sorted(expected - _CLAUSES - _STATEMENTS):
        word = _WORDS.get(name) or (f"`{patterns[name]}`" if name in patterns else None)
        if word and word not in words:
            words.append(word)
    if clause_words:
        words.append("a clause (" + ", ".join(f"`{w}`" for w in clause_words) + ")")
    if statement_words:
        words.append("a statement (`earn`, `reward`, `tiers`, `limit`, `expire`, ...)")
    if not words:
        return "something else"
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


@cache
def _terminal_patterns() -> dict[str, str]:
    out = {}
    for t in _lark().terminals:
        if t.pattern.type == "str":
            out[t.name] = t.pattern.value
    out["AT"] = "at most"
    return out


def _found(token) -> str:
    if token is None or token.type in ("$END",):
        return "the end of the file"
    if token.type == "_NL":
        return "the end of the line"
    return f"`{token}`"


def _syntax_diagnostic(src: Source, text: str, exc: UnexpectedInput):
    line, col = exc.line, exc.column
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        line = text.rstrip("\n").count("\n") + 1
        col = len(text.rstrip("\n").split("\n")[-1]) + 1
    token = getattr(exc, "token", None)
    if isinstance(token, Token) and token.type != "$END" and token.line is not None:
        span = _span(token)
        if token.type == "_NL":
            span = ast.Span(token.line, token.column, token.line, token.column + 1)
    else:
        span = ast.Span(line, col, line, col + 1)
    if not span.line:
        span = ast.Span(line or 1, col or 1, line or 1, (col or 1) + 1)

    mistake = _match_mistake(exc, text)
    if mistake is not None:
        return diagnostic(src, "error", mistake.code, mistake.message, span, mistake.hint)
    if isinstance(exc, UnexpectedCharacters):
        ch = text[exc.pos_in_stream] if exc.pos_in_stream < len(text) else ""
        return diagnostic(src, "error", "E101", f"unexpected character `{ch}`", span,
                          "names are letters, digits and `_`; texts go in double quotes")
    expected = set(getattr(exc, "accepts", None) or getattr(exc, "expected", None) or ())
    return diagnostic(src, "error", "E100", f"expected {_describe_expected(expected)}, found {_found(token)}", span)


def _match_mistake(exc: UnexpectedInput, text: str = ""):
    # Same parser state and same kind of token as one of the catalogue's examples.
    try:
        return mistakes.match(exc, _lark().parse, UnexpectedInput, text)
    except _TooDeep:
        return None
