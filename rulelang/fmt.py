"""The canonical layout of a program, printed from its syntax tree; comments are kept.

`format_program(tree)` is idempotent and `parse(format_program(t))` equals `t` up to the order of
an earn rule's or a benefit's clauses (printed `when on during frequency funded`) and trailing spaces in comments.

Layout: statements keep their order; a blank line separates groups (header, tiers, earn rules,
limits/expire/round, rewards, asserts, benefits, labels); within a group a blank line is kept only next to a comment
paragraph that had one, so section comments stay readable. Consecutive `earn` (and `reward`, `benefit`) lines
align their awards; tier names are aligned inside the block. A comment on a statement's first line
stays there; other comments go on their own lines before the next statement (or the tier level,
or the closing brace), or at the end of the file.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal

from rulelang import ast

INDENT = "  "
TRAILING_GAP = "  "  # between code and a trailing comment

# --- expressions --------------------------------------------------------------------------------

# Binding strength, loosest first, as in the grammar (or < and < not < comparison < sum < product
# < unary < atom). A child looser than its slot needs parentheses.
_OR, _AND, _NOT, _CMP, _SUM, _PRODUCT, _UNARY, _ATOM = range(1, 9)


def number(value: Decimal) -> str:
    """A number as written: fixed point, never exponent notation, no float round trip."""
    return format(value, "f")


def string(value: str) -> str:
    """A quoted text: double quotes unless the text holds one (the grammar has no escapes)."""
    return f"'{value}'" if '"' in value else f'"{value}"'


def money(m: ast.Money) -> str:
    return f"{number(m.amount)} {m.currency.name}"


def _prec(e) -> int:
    if isinstance(e, ast.BoolOp):
        return _OR if e.op == "or" else _AND
    if isinstance(e, ast.Not):
        return _NOT
    if isinstance(e, (ast.Compare, ast.In)):
        return _CMP
    if isinstance(e, ast.Arith):
        if not e.rest:
            return _prec(e.first)
        return _SUM if e.rest[0][0] in "+-" else _PRODUCT
    if isinstance(e, ast.Neg):
        return _UNARY
    return _ATOM


def _sub(e, slot: int) -> str:
    text = format_expr(e)
    return f"({text})" if _prec(e) < slot else text


def _boolop(e: ast.BoolOp) -> str:
    slot = _AND if e.op == "or" else _NOT
    return f" {e.op} ".join(_sub(x, slot) for x in e.operands)


def _arith(e: ast.Arith) -> str:
    slot = _UNARY if _prec(e) == _PRODUCT else _PRODUCT
    parts = [_sub(e.first, slot)]
    for op, operand in e.rest:
        parts.append(f"{op} {_sub(operand, slot)}")
    return " ".join(parts)


def _in(e: ast.In) -> str:
    word = "not in" if e.negated else "in"
    return f"{_sub(e.item, _SUM)} {word} {format_expr(e.options)}"


_EXPR = {
    ast.Number: lambda e: number(e.value),
    ast.Percent: lambda e: f"{number(e.value)}%",
    ast.Money: money,
    ast.DateLit: lambda e: e.text,
    ast.String: lambda e: string(e.value),
    ast.Name: lambda e: e.name,
    ast.Attribute: lambda e: f"{e.obj.name}.{e.attr.name}",
    ast.BasketSum: lambda e: f"{e.obj.name}.{e.attr.name}({format_expr(e.condition)})",
    ast.Call: lambda e: f"{e.func.name}({', '.join(format_expr(a) for a in e.args)})",
    ast.ListLit: lambda e: f"[{', '.join(format_expr(a) for a in e.items)}]",
    ast.Group: lambda e: f"({format_expr(e.expr)})",
    ast.Arith: _arith,
    ast.Neg: lambda e: f"-{_sub(e.operand, _UNARY)}",
    ast.Compare: lambda e: f"{_sub(e.left, _SUM)} {e.op} {_sub(e.right, _SUM)}",
    ast.In: _in,
    ast.BoolOp: _boolop,
    ast.Not: lambda e: f"not {_sub(e.operand, _NOT)}",
}


def format_expr(e) -> str:
    """An expression with the fewest parentheses that keep its tree (written ones are kept)."""
    return _EXPR[type(e)](e)


# --- statements ---------------------------------------------------------------------------------


def _points(n: ast.Number) -> str:
    return f"{number(n.value)} {'point' if n.value == 1 else 'points'}"


def _award(a) -> str:
    if isinstance(a, ast.PerSpend):
        return f"{_points(a.points)} per {money(a.per)}"
    if isinstance(a, ast.Fixed):
        return _points(a.points)
    if isinstance(a, ast.PerUnit):
        return f"{_points(a.points)} per unit"
    return f"{number(a.factor.value)}x {a.target.name}"


def _frequency(c: ast.Frequency) -> str:
    head = "once" if c.once else f"at most {number(c.times.value)} times"
    return f"{head} per {c.period.name}" if c.period else head


def _funded(c: ast.Funded) -> str:
    return f"funded {number(c.percent.value)}% by {c.by.name}"


_CLAUSES = {
    ast.When: lambda c: f"when {format_expr(c.expr)}",
    ast.OnEvent: lambda c: f"on {string(c.event.name)}" if c.quoted else f"on {c.event.name}",
    ast.During: lambda c: f"during from {c.start.text}" if c.end is None else f"during to {c.end.text}" if c.start is None
    else f"during {c.start.text} to {c.end.text}",
    ast.Frequency: _frequency,
    ast.Funded: _funded,
    ast.Budget: lambda c: f"budget {number(c.amount.value)} {c.currency.name if c.currency is not None else 'points'}",
}
CLAUSE_ORDER = {kind: i for i, kind in enumerate(_CLAUSES)}


def canonical_clauses(clauses: tuple) -> tuple:
    """An earn rule's clauses in the printed order (stable: repeated kinds keep their order)."""
    return tuple(sorted(clauses, key=lambda c: CLAUSE_ORDER[type(c)]))


def _discount_value(s: ast.Discount) -> str:
    if isinstance(s.value, ast.BuyGet):
        return f"buy {number(s.value.buy.value)} get {number(s.value.get.value)} free"
    text = format_expr(s.value)
    if s.cap is not None:
        text += f" up to {money(s.cap)}"
    return text + (" on the cheapest line" if s.cheapest else "")


def _pay_with_points(s: ast.PayWithPoints) -> str:
    parts = [f"pay with points: {_points(s.points)} = {money(s.value)}"]
    if s.cap is not None:
        parts.append(f"up to {format_expr(s.cap)} of basket")
    if s.minimum is not None:
        parts.append(f"from {_points(s.minimum)}")
    return ", ".join(parts)


def _expire(s: ast.Expire) -> str:
    if s.kind == "after":
        return f"expire after {number(s.n.value)} {s.unit.name}"
    if s.kind == "inactive":
        return f"expire after {number(s.n.value)} {s.unit.name} without purchase"
    return {"end_of_year": "expire at end of year", "end_of_next_year": "expire at end of next year", "never": "expire never"}[s.kind]


def _window(w: ast.Window) -> str:
    if w.lifetime:
        return "lifetime"
    return "calendar year" if w.n is None else f"{number(w.n.value)} {w.unit.name}"


def _reward_body(s: ast.Reward) -> str:
    tail = f" {_funded(s.funded)}" if s.funded else ""
    tail += f" issued every {s.issued.period.name}" if s.issued else ""
    return f"{_points(s.points)} cost {money(s.cost)}{tail}"


# Each statement as (head, body): aligned statements pad the head; others are head + body.
_STATEMENTS = {
    ast.ProgramName: lambda s: (f"program {string(s.name.value)}", ""),
    ast.Currency: lambda s: (f"currency {s.code.name}", ""),
    ast.PointCost: lambda s: (f"point_cost {money(s.cost)}", ""),
    ast.Column: lambda s: (f"column {'.'.join(i.name for i in s.name)}: {s.type.name}", ""),
    ast.Tiers: lambda s: (f"tiers by {s.metric.name} over {_window(s.window)}{' counting the current purchase' if s.counting else ''} {{", ""),
    ast.Earn: lambda s: (f"earn {s.name.name}:", " ".join([_award(s.award), *(_CLAUSES[type(c)](c) for c in canonical_clauses(s.clauses))])),
    ast.Discount: lambda s: (f"discount {s.name.name}:", " ".join([_discount_value(s), *(_CLAUSES[type(c)](c) for c in canonical_clauses(s.clauses))])),
    ast.BestOf: lambda s: ("best of " + ", ".join(i.name for i in s.rules), ""),
    ast.Limit: lambda s: (f"limit {_points(s.points)} per {s.period.name}", ""),
    ast.Expire: lambda s: (_expire(s), ""),
    ast.Round: lambda s: (f"round {s.mode.name}", ""),
    ast.Reward: lambda s: (f"reward {s.name.name}:", _reward_body(s)),
    ast.Assert: lambda s: (f"assert {format_expr(s.expr)}", ""),
    ast.Label: lambda s: (f"label {s.name.name}", " ".join(f"{t.lang.name} {string(t.text.value)}" for t in s.texts)),
    ast.TierDowngrade: lambda s: (f"downgrade {s.words[0]} {s.words[1]} at {s.words[2]} {s.words[3]}", ""),  # as written (E171 if not the rule)
    ast.TierReview: lambda s: (f"review tiers every {s.period.name}", ""),
    ast.Benefit: lambda s: (f"benefit {s.name.name}:", " ".join([f"cost {money(s.cost)}", *(_CLAUSES[type(c)](c) for c in canonical_clauses(s.clauses))])),
    ast.Pending: lambda s: (f"points available after {number(s.n.value)} {s.unit.name}", ""),
    ast.PayWithPoints: lambda s: (_pay_with_points(s), ""),
}
_GROUPS = {
    ast.ProgramName: 0, ast.Currency: 0, ast.PointCost: 0, ast.Column: 0,
    ast.Tiers: 1, ast.TierDowngrade: 1, ast.TierReview: 1, ast.Earn: 2, ast.Discount: 2, ast.BestOf: 2, ast.Limit: 3, ast.Expire: 3, ast.Round: 3, ast.Reward: 4, ast.Assert: 5,
    ast.Benefit: 6, ast.Label: 7, ast.Pending: 3,
    ast.PayWithPoints: 4,  # beside the rewards: both spend points
}
_ALIGNED = (ast.Earn, ast.Reward, ast.Discount, ast.Benefit, ast.Label)


def width(text: str) -> int:
    """Terminal columns: wide (CJK) characters take two, so Chinese names align too."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, to: int) -> str:
    return text + " " * (to - width(text))


# --- comments -----------------------------------------------------------------------------------


@dataclass
class _Slot:
    """Comments that belong to one printed line: own lines before it, and one at its end."""

    before: list = field(default_factory=list)  # comments kept as own lines, in source order
    inner: list = field(default_factory=list)  # comments from inside a multi-line statement
    trailing: ast.Comment | None = None


@dataclass
class _Item:
    """A statement with its comments; tiers also carry one slot per level and the closing brace."""

    stmt: object
    slot: _Slot = field(default_factory=_Slot)
    levels: list = field(default_factory=list)
    closing: list = field(default_factory=list)

    @property
    def last_line(self) -> int:
        """The statement's last source line (a tiers block's brace is taken to follow its content)."""
        if isinstance(self.stmt, ast.Tiers):
            lines = [self.stmt.span.line] + [lv.span.line for lv in self.stmt.levels] + [c.span.line for c in self.closing]
            return max(lines) + 1
        return self.stmt.span.end_line


def _attach(program: ast.Program) -> tuple[list[_Item], list]:
    """Give every comment a home; returns the items and the comments at the end of the file."""
    items = [_Item(s, levels=[_Slot() for _ in getattr(s, "levels", ())]) for s in program.statements]
    tail: list = []
    k = 0  # the first statement that starts on or after the comment's line
    for c in program.comments:
        line = c.span.line
        while k < len(items) and items[k].stmt.span.line < line:
            k += 1
        if k < len(items) and items[k].stmt.span.line == line:
            _add_trailing(items[k].slot, c)
        elif k and _inside(items[k - 1], c):
            _attach_inner(items[k - 1], c)
        elif k < len(items):
            items[k].slot.before.append(c)
        else:
            tail.append(c)
    return items, tail


def _inside(item: _Item, c: ast.Comment) -> bool:
    """Whether a comment after a statement's first line is part of it."""
    s, line = item.stmt, c.span.line
    if line <= s.span.line:
        return False
    if isinstance(s, ast.Tiers):
        # The brace has no span; an indented comment after the last level is inside the block.
        last = max([s.span.line] + [lv.span.line for lv in s.levels])
        return line <= last or c.span.col > 1
    return line <= s.span.end_line


def _attach_inner(item: _Item, c: ast.Comment) -> None:
    s, line = item.stmt, c.span.line
    if isinstance(s, ast.Tiers):
        for lv, slot in zip(s.levels, item.levels, strict=True):
            if lv.span.line == line:
                _add_trailing(slot, c)
                return
            if lv.span.line > line:
                slot.before.append(c)
                return
        item.closing.append(c)
        return
    item.slot.inner.append(c)


def _add_trailing(slot: _Slot, c: ast.Comment) -> None:
    if slot.trailing is None:
        slot.trailing = c
    else:  # a second comment on one line cannot happen from text; keep it rather than lose it
        slot.inner.append(c)



# --- layout -------------------------------------------------------------------------------------


class _Writer:
    """Collects output lines; blank lines are requested, and at most one is ever written."""

    def __init__(self):
        self.lines: list[str] = []
        self.blank = False

    def want_blank(self) -> None:
        self.blank = bool(self.lines)

    def emit(self, text: str) -> None:
        if self.blank:
            self.lines.append("")
            self.blank = False
        self.lines.append(text.rstrip())


def _comment(c: ast.Comment) -> str:
    return c.text.rstrip()


def _with_trailing(code: str, slot: _Slot) -> str:
    return code + TRAILING_GAP + _comment(slot.trailing) if slot.trailing else code


def _own_lines(out: _Writer, comments: list, prev_line: int, next_line: int, indent: str = "") -> None:
    """Comment lines, keeping a blank line where the source had one (around and between them)."""
    for c in comments:
        if c.span.line > prev_line + 1:
            out.want_blank()
        out.emit(indent + _comment(c))
        prev_line = c.span.line
    if comments and next_line > prev_line + 1:
        out.want_blank()


def _heads(items: list[_Item]) -> dict[int, int]:
    """For each aligned statement, the column its body starts at (runs of one statement kind)."""
    at: dict[int, int] = {}
    run: list[int] = []

    def close():
        if run:
            col = max(width(_STATEMENTS[type(items[i].stmt)](items[i].stmt)[0]) for i in run) + 1
            at.update((i, col) for i in run)
            run.clear()

    for i, item in enumerate(items):
        kind = type(item.stmt)
        breaks = not run or type(items[run[-1]].stmt) is not kind or _blank_before(items, i)
        if kind not in _ALIGNED or breaks:
            close()
        if kind in _ALIGNED:
            run.append(i)
    close()
    return at


def _blank_before(items: list[_Item], i: int) -> bool:
    """Whether a blank line is printed anywhere between statement i-1 and statement i."""
    if i == 0:
        return False
    prev, item = items[i - 1], items[i]
    if _GROUPS[type(prev.stmt)] != _GROUPS[type(item.stmt)]:
        return True
    own = item.slot.before
    if not own:
        return False
    lines = [prev.last_line] + [c.span.line for c in own]
    gaps = any(b > a + 1 for a, b in zip(lines, lines[1:], strict=False))
    return gaps or (not item.slot.inner and item.stmt.span.line > own[-1].span.line + 1)


def format_program(program: ast.Program) -> str:
    """The program in canonical layout, comments kept; `""` for an empty program."""
    items, tail = _attach(program)
    heads = _heads(items)
    out = _Writer()
    prev_line = 0
    prev_group = None
    for i, item in enumerate(items):
        s = item.stmt
        group = _GROUPS[type(s)]
        if prev_group is not None and group != prev_group:
            out.want_blank()
        before = item.slot.before
        inner = list(item.slot.inner)
        if inner:  # a multi-line statement prints on one line: all its comments go above it
            if item.slot.trailing:
                inner.insert(0, item.slot.trailing)
                item.slot.trailing = None
            inner.sort(key=lambda c: c.span.start)
            _own_lines(out, before, prev_line, before[-1].span.line + 1 if before else 0)
            for c in inner:
                out.emit(_comment(c))
        else:
            _own_lines(out, before, prev_line, s.span.line)
        head, body = _STATEMENTS[type(s)](s)
        code = (_pad(head, heads[i]) + body) if i in heads else head + (" " + body if body else "")
        out.emit(_with_trailing(code, item.slot))
        if isinstance(s, ast.Tiers):
            _tier_block(out, item)
        prev_line, prev_group = item.last_line, group
    _own_lines(out, tail, prev_line if items else 0, 0)
    return "\n".join(out.lines) + "\n" if out.lines else ""


def _tier_block(out: _Writer, item: _Item) -> None:
    levels = item.stmt.levels
    col = max((width(lv.name.name) for lv in levels), default=0) + 1
    for lv, slot in zip(levels, item.levels, strict=True):
        for c in slot.before:
            out.emit(INDENT + _comment(c))
        unit = f" {lv.unit.name}" if lv.unit else ""
        unit += "".join(f" or {number(a.threshold.value)}{' ' + a.unit.name if a.unit else ''}" for a in lv.alternatives)
        unit += f" keep {number(lv.keep.n.value)} {lv.keep.unit.name}" if lv.keep else ""
        out.emit(_with_trailing(f"{INDENT}{_pad(lv.name.name, col)}from {number(lv.threshold.value)}{unit}", slot))
    for c in item.closing:
        out.emit(INDENT + _comment(c))
    out.emit("}")
