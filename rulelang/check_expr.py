"""The checker's half for expressions: resolve names and give every expression a type.

Each visitor returns the expression's type (a `builtins` type name) or None when it is unknown
because an error was already reported there; None silences follow-on errors.
"""

from __future__ import annotations

from rulelang import ast
from rulelang import builtins as B

# How a type is named in messages.
TYPE_WORDS = {
    B.POINTS: "points",
    B.MONEY: "money",
    B.NUMBER: "a number",
    B.PERCENT: "a percentage",
    B.DATE: "a date",
    B.WEEKDAY: "a weekday",
    B.STRING: "a text",
    B.BOOL: "true or false",
    B.TIER: "a tier",
}
# Hints for comparing two types that do not mix, by the pair of types.
_MIX_HINTS = {
    frozenset({B.TIER, B.STRING}): "tier names are written without quotes: `tier >= Gold`",
    frozenset({B.WEEKDAY, B.STRING}): "weekdays are written without quotes: `weekday == sat`",
    frozenset({B.WEEKDAY, B.NUMBER}): "weekdays are written by name: `weekday == sat` (or `weekday in [sat, sun]`)",
    frozenset({B.DATE, B.STRING}): "dates are written without quotes: `date >= 2026-01-01`",
    frozenset({B.DATE, B.NUMBER}): "compare a part of the date: `month(date) == 12`, `day(date)`, `year(date)`",
    frozenset({B.DATE, B.MONEY}): "a date compares with a date, an amount with an amount",
    frozenset({B.DATE, B.WEEKDAY}): "compare the weekday of the date: `weekday(date) == sat`",
    frozenset({B.TIER, B.NUMBER}): "compare with a tier name: `tier >= Gold`",
    frozenset({B.STRING, B.NUMBER}): "numbers are written without quotes; texts with them",
}
# Month names a planner may write for a month; the language counts months as numbers (`month(date) == 3`).
MONTHS = {name: i for i, names in enumerate(
    [("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"), ("may", "may"), ("jun", "june"),
     ("jul", "july"), ("aug", "august"), ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"), ("dec", "december")],
    start=1) for name in names}
# Expressions nested deeper than this (`not not ...`, `- - ...`, calls in calls) are refused (E430)
# as a whole: every later stage walks expressions recursively, and this keeps each far inside
# Python's recursion limit.
MAX_EXPR_DEPTH = 100


class _TooDeep(Exception):
    """Typing went past MAX_EXPR_DEPTH: the condition is refused as a whole."""


_ASSERT_ONLY_HINT = "`when` decides a rule from the purchase; points and balances are known only after it, in `assert`"
# Names with a hint of their own.
_ASSERT_ONLY_HINTS = {"paid": "what is paid is known only once the discounts are decided, after every `when`; "
                              "compare `amount`, the price before discounts"}


_RECENCY_WHEN_ONLY = "the member's history before the row decides a rule in `when`; an `assert` checks the points a row earned"
# Why a unit other than days or months is refused, by the span the planner meant.
_UNIT_HINTS = {"years": "a year is `12 months`", "week": "a week is `7 days`"}


def _words(t: str) -> str:
    return TYPE_WORDS.get(t, t)


def compatible(a: str, b: str) -> bool:
    """Whether two types may be compared with each other."""
    return a == b or (a in B.NUMERIC and b in B.NUMERIC)


class ExprChecker:
    """Types the expressions of one program; reports through the owning `Checker`."""

    def __init__(self, checker):
        self.c = checker
        self._visible: dict[str, list[str]] = {}
        self._level = 0  # how deep the expression being typed is nested
        self._table = {
            ast.Number: self.number,
            ast.Percent: self.percent,
            ast.Money: self.money,
            ast.DateLit: self.date,
            ast.String: self.string,
            ast.Name: self.name,
            ast.Attribute: self.attribute,
            ast.Call: self.call,
            ast.BasketSum: self.basket_sum,
            ast.ListLit: self.bare_list,
            ast.Arith: self.arith,
            ast.Neg: self.neg,
            ast.Compare: self.compare,
            ast.In: self.membership,
            ast.BoolOp: self.boolop,
            ast.Not: self.not_,
            ast.Group: self.group,
        }

    def condition(self, expr, ctx: str):
        """A `when` or `assert` expression: it must be true or false."""
        self._level = 0
        try:
            t = self.type(expr, ctx)
        except _TooDeep:
            self.c.emit("E430", f"this condition is nested more than {MAX_EXPR_DEPTH} deep", expr.span,
                        "split it into simpler parts (`not not x` is `x`; a long condition can be several rules)")
            return
        if t is not None and t != B.BOOL:
            self.c.emit("E304", f"a `{ctx}` needs a condition that is true or false, but this is {_words(t)}", expr.span,
                        "compare it with something: `amount >= 50`, `category == \"pastry\"`")

    def type(self, node, ctx: str, expect: str | None = None) -> str | None:
        # Counted on the way down, so a condition too deep is refused long before Python's recursion limit.
        self._level += 1
        if self._level > MAX_EXPR_DEPTH:
            raise _TooDeep
        try:
            return self._table[type(node)](node, ctx, expect)
        finally:
            self._level -= 1

    # --- literals ----------------------------------------------------------------------------

    def number(self, node, ctx, expect):
        self.c.within(node.value, node.span, "number", "a number")
        return B.NUMBER

    def percent(self, node, ctx, expect):
        self.c.percent(node)
        return B.PERCENT

    def money(self, node, ctx, expect):
        self.c.money(node)
        return B.MONEY

    def date(self, node, ctx, expect):
        self.c.date(node)
        return B.DATE

    def string(self, node, ctx, expect):
        return B.STRING

    def bare_list(self, node, ctx, expect):
        self.c.emit("E309", "a list can only follow `in`", node.span, "write `weekday in [sat, sun]`")
        for item in node.items:
            self.type(item, ctx)
        return None

    # --- names -------------------------------------------------------------------------------

    def visible(self, ctx: str) -> list[str]:
        """Every bare name usable in this context, for did-you-mean (computed once per context)."""
        if ctx not in self._visible:
            names = [n for n, v in B.VARIABLES.items() if ctx in v.contexts]
            names += list(self.c.columns) + list(B.COLUMNS) + list(self.c.tiers) + list(B.WEEKDAYS)
            if ctx == B.ASSERT:
                names += list(self.c.rules)
            self._visible[ctx] = list(dict.fromkeys(names))
        return self._visible[ctx]

    def lookup(self, name: str) -> str | None:
        """The type of a bare name by the documented precedence, ignoring context; None if unknown."""
        if name in B.VARIABLES:
            return B.VARIABLES[name].type
        if name in self.c.columns:
            return self.c.columns[name]
        if name in B.COLUMNS:
            return B.COLUMNS[name].type
        if name in self.c.tiers:
            return B.TIER
        if name in B.WEEKDAYS:
            return B.WEEKDAY
        if name in self.c.rules:
            return B.POINTS
        return None

    def name(self, node: ast.Name, ctx, expect):
        n = node.name
        t = self.lookup(n)
        if t is None:
            return self.unknown_name(node, ctx, expect)
        var = B.VARIABLES.get(n)
        if n in B.RECENCY and ctx != B.WHEN:
            self.c.emit("E232", f"`{n}` can only be used in `when`, not in `{ctx}`", node.span, _RECENCY_WHEN_ONLY)
        elif var is not None and ctx not in var.contexts:
            self.c.emit("E206", f"`{n}` can only be used in `assert`, not in `{ctx}`", node.span, _ASSERT_ONLY_HINTS.get(n, _ASSERT_ONLY_HINT))
        elif var is None and t == B.POINTS and ctx != B.ASSERT:
            self.c.emit("E206", f"the rule name `{n}` can only be used in `assert`, not in `{ctx}`", node.span, _ASSERT_ONLY_HINT)
        elif n == "tier" and not self.c.has_tiers:
            self.c.emit("E208", "`tier` is used but this program has no tiers", node.span,
                        "add a `tiers by spend over 365 days { ... }` block, or drop the tier condition")
        return t

    def unknown_name(self, node: ast.Name, ctx, expect):
        n = node.name
        suggestion = self.c.did_you_mean(n, "names:" + ctx, self.visible(ctx))
        if expect == B.TIER:
            # `tier >= Golden` is a misspelt tier; `teir >= Gold` a misspelt name on the other side.
            close_tier = self.c.did_you_mean(n, "tiers", list(self.c.tiers))
            if close_tier or not suggestion or suggestion.split("`")[1] in self.c.tiers:
                if self.c.has_tiers:
                    self.c.emit("E207", f"unknown tier `{n}`{close_tier}", node.span,
                                "this program's tiers are " + ", ".join(f"`{t}`" for t in self.c.tiers))
                return B.TIER
        hint = "names are builtins (`amount`, `date`, `weekday`, `tier`, ...), columns, tiers and weekdays; " \
               f"declare a data column with `column {n}: text`"
        fixed = self.constant_fix(n, suggestion)
        if fixed is not None:
            suggestion, hint = fixed
        elif n in B.FUNCTIONS:
            hint = f"`{n}` is a function: write `{n}(date)`"
        elif n in B.WINDOWS:
            hint = f"`{n}` is a function of a span of time: write `{n}(90 days)`"
        elif n in B.CUSTOMER or n in B.BASKET:
            owner = "customer" if n in B.CUSTOMER else "basket"
            suggestion = suggestion or f"; did you mean `{owner}.{n}`?"
        self.c.emit("E201", f"unknown name `{n}`{suggestion}", node.span, hint)
        return None

    def constant_fix(self, n: str, suggestion: str) -> tuple[str, str] | None:
        """(did-you-mean, hint) for a name that is a builtin written another way: a weekday or a
        builtin name in other capitals (`Tuesday`, `Amount`), or a month by name (`March`)."""
        low = n.lower()
        if low in B.WEEKDAYS:
            short = B.WEEKDAY_NAMES[B.WEEKDAYS[low]]
            full = max((w for w, i in B.WEEKDAYS.items() if i == B.WEEKDAYS[low]), key=len)
            return f"; did you mean `{short}`?", f"weekdays are written in small letters: `{short}` (or `{full}`)"
        if low in MONTHS:
            number = MONTHS[low]
            return (f"; did you mean the month number `{number}`?",
                    f"months are numbers: `month(date) == {number}`; a range of days is `during 2026-{number:02d}-01 to ...`")
        if suggestion and suggestion.split("`")[1].lower() == low:
            right = suggestion.split("`")[1]
            return suggestion, f"names are case-sensitive: write `{right}`"
        return None

    def attribute(self, node: ast.Attribute, ctx, expect):
        obj, attr = node.obj.name, node.attr.name
        tables = {"customer": self.c.customer, "basket": {k: v.type for k, v in B.BASKET.items()}}
        if obj not in tables:
            self.c.emit("E204", f"unknown `{obj}.`{self.c.did_you_mean(obj, 'objects', list(tables))}", node.obj.span,
                        "dotted names start with `customer.` or `basket.`")
            return None
        table = tables[obj]
        if attr not in table:
            code = "E202" if obj == "customer" else "E203"
            hint = f"`{obj}.` names are " + ", ".join(f"`{k}`" for k in table)
            if obj == "customer":
                hint += f"; declare others with `column customer.{attr}: text`"
            best = self.c.suggest(attr, "attr:" + obj, list(table))
            close = f"; did you mean `{obj}.{best}`?" if best else ""
            self.c.emit(code, f"unknown `{obj}.{attr}`{close}", node.attr.span, hint)
            return None
        return table[attr]

    def line_fields(self) -> list[str]:
        """The names that differ from line to line of a basket: what a basket sum's condition reads."""
        names = [n for n, v in B.VARIABLES.items() if v.line_level] + list(self.c.columns)
        return list(dict.fromkeys(names + [n for n, v in B.COLUMNS.items() if v.line_level]))

    def basket_sum(self, node: ast.BasketSum, ctx, expect):
        obj, attr = node.obj.name, node.attr.name
        if obj != "basket" or attr not in B.BASKET_SUMS:
            if attr in B.BASKET_SUMS:  # `customer.total(...)`: the right figure of the wrong object
                close = f"; did you mean `basket.{attr}`?"
            else:
                close = self.c.did_you_mean(f"{obj}.{attr}", "basket sums", [f"basket.{k}" for k in B.BASKET_SUMS])
            self.c.emit("E224", f"`{obj}.{attr}(...)` is not a sum over the basket's lines{close}", node.obj.span.join(node.attr.span),
                        "`basket.total(CONDITION)` adds up the amounts of the lines where the condition holds, `basket.quantity(CONDITION)` their quantities")
            self.type(node.condition, ctx)
            return None
        t = self.type(node.condition, ctx)
        if t is not None and t != B.BOOL:
            self.c.emit("E304", f"`basket.{attr}(...)` needs a condition that is true or false, but this is {_words(t)}", node.condition.span,
                        f'compare a field of the line: `basket.{attr}(category != "delivery")`')
        fields = self.line_fields()
        for name, span in _outside_line(node.condition, set(fields), set(self.c.tiers)):
            if "." not in name and self.lookup(name) is None and name not in B.WINDOWS:
                continue  # an unknown name, reported already
            self.c.emit("E225", f"`basket.{attr}(...)` sums the basket's lines, so its condition reads only the line's fields, not `{name}`"
                                f"{self.c.did_you_mean(name, 'line fields', fields)}", span,
                        "line fields are " + ", ".join(f"`{f}`" for f in fields) + "; put other conditions outside the sum: "
                        f'`basket.{attr}(category != "delivery") >= {100 if attr == "total" else 3} and tier >= Gold`')
        return B.BASKET_SUMS[attr]

    def call(self, node: ast.Call, ctx, expect):
        fname = node.func.name
        if fname in B.WINDOWS:
            return self.window(node, ctx)
        func = B.FUNCTIONS.get(fname)
        # A misspelt `visits_in(90 days)`: its span is not an amount in an unknown currency.
        types = [None if func is None and isinstance(a, ast.Money) and a.currency.name in B.WINDOW_UNITS else self.type(a, ctx)
                 for a in node.args]
        if func is None:
            known = list(B.FUNCTIONS) + list(B.WINDOWS)
            hint = "functions are " + ", ".join(f"`{f}`" for f in B.FUNCTIONS)
            if fname in B.VARIABLES:
                hint = f"`{fname}` is a name, not a function: write it without brackets"
            self.c.emit("E205", f"unknown function `{fname}`{self.c.did_you_mean(fname, 'functions', known)}", node.func.span, hint)
            return None
        wanted = len(func.args)
        if (len(types) < wanted) or (not func.variadic and len(types) != wanted):
            count = f"at least {wanted}" if func.variadic else str(wanted)
            self.c.emit("E305", f"`{fname}` takes {count} argument{'s' if wanted != 1 else ''}, not {len(types)}", node.span,
                        f"{fname}: {func.doc}")
            return self._result(func, types)
        for i, (arg, t) in enumerate(zip(node.args, types, strict=True)):
            want = func.args[min(i, wanted - 1)]
            if t is None:
                continue
            ok = t in B.NUMERIC if want == "numeric" else t == want
            if not ok:
                need = "a number or an amount" if want == "numeric" else _words(want)
                self.c.emit("E306", f"`{fname}` needs {need}, but this is {_words(t)}", arg.span, f"{fname}: {func.doc}")
        return self._result(func, types)

    def window(self, node: ast.Call, ctx) -> str:
        """`visits_in(N days|months)` / `spend_in(...)`: one span of time, N a whole number from 1
        to a century, the unit days or months. Its type is known even when the span is wrong."""
        from rulelang.check import number_text  # (check imports this module)

        fname = node.func.name
        func = B.WINDOWS[fname]
        if ctx != B.WHEN:
            self.c.emit("E232", f"`{fname}` can only be used in `when`, not in `{ctx}`", node.func.span, _RECENCY_WHEN_ONLY)
        example = f"`{fname}(90 days)` or `{fname}(12 months)`"
        arg = node.args[0] if len(node.args) == 1 else None
        while isinstance(arg, ast.Group):
            arg = arg.expr
        if isinstance(arg, ast.Neg) and isinstance(arg.operand, ast.Money):
            self.c.emit("E444", f"`{fname}` needs a span of 1 or more, not -{number_text(arg.operand.amount)} {arg.operand.currency.name}",
                        arg.span, f"the span counts back from the row's day: {example}")
            return func.result
        if not isinstance(arg, ast.Money):
            what = f"{len(node.args)} arguments" if len(node.args) != 1 else "a span without its unit" if isinstance(arg, ast.Number) else "this"
            self.c.emit("E231", f"`{fname}` takes one span of time, like `90 days`, not {what}", node.span, f"{fname}: {func.doc}; write {example}")
            return func.result
        unit = arg.currency.name
        if unit not in B.WINDOW_UNITS:
            close = self.c.did_you_mean(unit, "window units", list(B.WINDOW_UNITS))
            hint = _UNIT_HINTS.get(B.TIME_UNITS.get(unit) or B.PERIODS.get(unit, ""), "a span is counted in days or months")
            self.c.emit("E233", f"`{fname}` counts a span in days or months, not `{unit}`{close}", arg.currency.span, f"{hint}: {example}")
            return func.result
        n = arg.amount
        longest = B.MAX_WINDOW[B.WINDOW_UNITS[unit]]
        if n != int(n) or not 1 <= n <= longest:
            self.c.emit("E444", f"`{fname}` needs a whole number of {B.WINDOW_UNITS[unit]} from 1 to {longest}, not {number_text(n)}", arg.span,
                        f"the span counts back from the row's day: {example}")
        return func.result

    @staticmethod
    def _result(func, types):
        if func.result != "numeric":
            return func.result
        return next((t for t in types if t in B.NUMERIC and t != B.NUMBER), B.NUMBER)

    # --- operators ---------------------------------------------------------------------------

    def _numeric(self, node, t, what: str) -> bool:
        if t is None or t in B.NUMERIC:
            return True
        hint = "use `days_between(a, b)` for days between dates" if t == B.DATE else "arithmetic works on numbers, amounts and points"
        self.c.emit("E303", f"{what} needs a number, but this is {_words(t)}", node.span, hint)
        return False

    def arith(self, node: ast.Arith, ctx, expect):
        operands = [node.first] + [o for _, o in node.rest]
        types = [self.type(o, ctx) for o in operands]
        ok = True
        for op_node, t in zip(operands, types, strict=True):
            ok = self._numeric(op_node, t, "arithmetic") and ok
        if not ok or None in types:
            return None
        return next((t for t in types if t not in (B.NUMBER, B.PERCENT)), B.NUMBER)

    def neg(self, node: ast.Neg, ctx, expect):
        t = self.type(node.operand, ctx)
        return t if self._numeric(node.operand, t, "`-`") else None

    def _pair(self, left, right, ctx):
        # A bare name is typed after the other side, so `tier >= Golden` knows it wants a tier.
        if isinstance(left, ast.Name) and self.lookup(left.name) is None:
            rt = self.type(right, ctx)
            return self.type(left, ctx, rt), rt
        lt = self.type(left, ctx)
        return lt, self.type(right, ctx, lt)

    def compare(self, node: ast.Compare, ctx, expect):
        lt, rt = self._pair(node.left, node.right, ctx)
        if lt is None or rt is None:
            return B.BOOL
        if not compatible(lt, rt):
            self.c.emit("E301", f"cannot compare {_words(lt)} with {_words(rt)}", node.right.span,
                        _MIX_HINTS.get(frozenset({lt, rt}), "compare values of the same kind"))
        elif lt == B.BOOL and node.op not in ("==", "!="):
            self.c.emit("E308", f"`{node.op}` does not order true and false", node.span, "use `==` or `!=`")
        return B.BOOL

    def membership(self, node: ast.In, ctx, expect):
        it = self.type(node.item, ctx)
        if not node.options.items:
            self.c.warn("W505", "the list is empty, so this `in` is never true", node.options.span, "list the values to match")
        for opt in node.options.items:
            ot = self.type(opt, ctx, it)
            if it is None or ot is None:
                continue
            if not compatible(it, ot):
                self.c.emit("E302", f"this list holds {_words(ot)}, but it is matched against {_words(it)}", opt.span,
                            _MIX_HINTS.get(frozenset({it, ot}), "every item in the list must be the same kind as the value before `in`"))
        return B.BOOL

    def _bool(self, node, ctx, word: str):
        t = self.type(node, ctx)
        if t is not None and t != B.BOOL:
            self.c.emit("E307", f"`{word}` joins conditions, but this is {_words(t)}", node.span,
                        "write a comparison on each side: `amount >= 50 and weekday == sat`")

    def boolop(self, node: ast.BoolOp, ctx, expect):
        for operand in node.operands:
            self._bool(operand, ctx, node.op)
        return B.BOOL

    def not_(self, node: ast.Not, ctx, expect):
        self._bool(node.operand, ctx, "not")
        return B.BOOL

    def group(self, node: ast.Group, ctx, expect):
        return self.type(node.expr, ctx, expect)


def _outside_line(expr, fields: set[str], constants: set[str]) -> list[tuple[str, ast.Span]]:
    """(name, span) of each name in a basket sum's condition that is not a field of the line:
    bare names other than line fields, tier and weekday constants; every dotted name and nested sum."""
    out = []
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name):
            if node.name not in fields and node.name not in constants and node.name not in B.WEEKDAYS:
                out.append((node.name, node.span))
        elif isinstance(node, ast.Call) and node.func.name in B.WINDOWS:  # the member's history, not the line's
            out.append((node.func.name, node.span))
        elif isinstance(node, (ast.Attribute, ast.BasketSum)):
            out.append((f"{node.obj.name}.{node.attr.name}", node.span))
        else:
            stack.extend(ast.subexpressions(node))
    return sorted(out, key=lambda x: x[1].start)
