"""The checker: every error and warning of a parsed program, in one pass, in source order.

Statements and expressions are visited through tables (node type -> method); the vocabulary comes
from `rulelang.builtins`. Codes: E2xx names, E3xx types, E4xx values and structure, W5xx warnings.
Every code is listed, with an example and the fix, in docs/language.md.
"""

from __future__ import annotations

import datetime as dt
import difflib
import unicodedata
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from fractions import Fraction

from rulelang import ast
from rulelang import builtins as B
from rulelang.check_expr import ExprChecker
from rulelang.errors import Diagnostic, Source, diagnostic, visible
from rulelang.limits import LIMITS, Award, decimals, program_problems
from rulelang.model import event_of

# Statements that may appear once; the word names them in messages.
_SINGLE = {
    ast.ProgramName: "program",
    ast.Currency: "currency",
    ast.PointCost: "point_cost",
    ast.Round: "round",
    ast.Expire: "expire",
    ast.Tiers: "tiers",
    ast.TierDowngrade: "downgrade",
    ast.TierReview: "review tiers",
}
# `review tiers every PERIOD`: the periods, and the months between reviews.
REVIEW_MONTHS = {"month": 1, "quarter": 3, "year": 12}
# Clauses an earn rule may give once, and the keyword that starts each.
_CLAUSE_WORDS = {ast.When: "when", ast.OnEvent: "on", ast.During: "during", ast.Frequency: "once` / `at most", ast.Funded: "funded", ast.Budget: "budget"}
# Units a tier threshold may carry, by metric; `None` stands for the program currency.
_TIER_UNITS = {"spend": (None,), "points": ("points", "point"), "visits": ("visits", "visit")}
# The kind of number (limits.LIMITS) a tier threshold is, by metric.
_THRESHOLD_KINDS = {"spend": "money", "points": "points", "visits": "count"}
# Units `keep N months` may use.
_KEEP_UNITS = ("months", "month", "years", "year")
# Units a tiers window may use (a calendar year is written `over calendar year`).
_WINDOW_UNITS = {"day": "days", "days": "days", "month": "months", "months": "months"}
# Languages written by name rather than by code, for the did-you-mean of an unknown label language.
_LANGUAGE_NAMES = {"english": "en", "eng": "en", "英文": "en", "英语": "en", "chinese": "zh", "cn": "zh", "zho": "zh", "chs": "zh",
                   "中文": "zh", "汉语": "zh"}
# Automatic vouchers: the periods they are issued at the end of, in months.
ISSUE_MONTHS = {"month": 1, "quarter": 3, "year": 12}
# Pending points: the window's unit (a return window is counted in days) and its longest length.
_PENDING_UNITS = ("days", "day")
PENDING_MOST_DAYS = 3650
# Comparing this many names with difflib, in total, is enough for any real program; past it a
# pathological file (thousands of distinct typos) gets no suggestions rather than a slow check.
_SUGGEST_BUDGET = 400_000
# Multipliers of multipliers deeper than this are refused (E431): no real program needs more, and
# every later stage (lowering, lints, both engines) may then follow a chain without care for depth.
MAX_CHAIN = 100


class Lines:
    """A `Source` stand-in with O(1) `line()`: a big file may produce thousands of findings."""

    def __init__(self, source: Source):
        self.path = source.path
        self._lines = source.text.split("\n")

    def line(self, number: int) -> str:
        if 1 <= number <= len(self._lines):
            return self._lines[number - 1].rstrip("\r")
        return ""


def keyword_span(span: ast.Span, word: str) -> ast.Span:
    """The span of the keyword that starts a statement or clause."""
    return ast.Span(span.line, span.col, span.line, span.col + len(word), span.start, span.start + len(word))


def quoted(names) -> str:
    return ", ".join(f"`{n}`" for n in names)


def either(words) -> str:
    """`a`, `b` or `c`."""
    words = [f"`{w}`" for w in words]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def number_text(n: Decimal) -> str:
    text = format(n, "f")
    if "." in text and n == n.to_integral_value():  # `2.0` is shown `2` (no normalize(): it rounds past 28 digits)
        text = text.rstrip("0").rstrip(".")
    # A number thousands of digits long is shown by its start and its length, not in full.
    return text if len(text) <= 40 else f"{text[:20]}... ({len(text)} characters)"


def _award(e: ast.Earn) -> Award:
    """What `limits` needs of an earn rule (the part of `model.lower` that fixes exactness)."""
    funded = e.clause(ast.Funded)
    share = Fraction(funded.percent.value) / 100 if funded else Fraction(0)
    a = e.award
    if isinstance(a, ast.PerSpend):
        return Award(e.name.name, "per_spend", rate=Fraction(a.points.value) / Fraction(a.per.amount), funded_share=share)
    if isinstance(a, ast.Fixed):
        return Award(e.name.name, "fixed", points=Fraction(a.points.value), funded_share=share)
    if isinstance(a, ast.PerUnit):
        return Award(e.name.name, "per_unit", points=Fraction(a.points.value), funded_share=share)
    return Award(e.name.name, "multiplier", factor=Fraction(a.factor.value), target=a.target.name, funded_share=share)


def _round_to(value: Decimal, places: int, kind: str) -> Decimal:
    """`value` rounded to `places` decimals for a hint; up instead when the nearest would not be
    allowed (0, or a multiplier of 1x)."""
    step = Decimal(1).scaleb(-places)
    nearest = value.quantize(step, rounding=ROUND_HALF_UP)
    return value.quantize(step, rounding=ROUND_CEILING) if nearest == 0 or (kind == "multiplier" and nearest <= 1) else nearest


class Suggester:
    """did-you-mean over candidate lists, cached per (list, word) and bounded in total work."""

    def __init__(self):
        self._memo: dict = {}
        self._lower: dict = {}
        self.budget = _SUGGEST_BUDGET

    def __call__(self, word: str, key: str, candidates: list[str]) -> str | None:
        memo_key = (key, word)
        if memo_key in self._memo:
            return self._memo[memo_key]
        if key not in self._lower:
            self._lower[key] = {c.lower(): c for c in reversed(candidates)}
        best = self._lower[key].get(word.lower())
        if best is None and self.budget > 0:
            self.budget -= len(candidates)
            close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
            best = close[0] if close else None
        self._memo[memo_key] = best
        return best


class Checker:
    """One pass over one program; `run()` returns the findings in source order."""

    def __init__(self, program: ast.Program, source: Source):
        self.program = program
        self.src = Lines(source)
        self.found: list[tuple[int, int, int, Diagnostic]] = []
        self.suggest = Suggester()
        self.first_money: ast.Money | None = None
        cur = program.first(ast.Currency)
        self.currency = cur.code.name if cur and B.is_currency_code(cur.code.name) else None
        self.has_currency_line = cur is not None
        tiers = program.first(ast.Tiers)
        self.tiers = {}
        for lv in tiers.levels if tiers else ():
            self.tiers.setdefault(lv.name.name, lv)
        self.has_tiers = tiers is not None
        self.rules: dict[str, ast.Earn] = {}
        for e in program.of(ast.Earn):
            self.rules.setdefault(e.name.name, e)
        self.discounts: dict[str, ast.Discount] = {}
        for d in program.of(ast.Discount):
            self.discounts.setdefault(d.name.name, d)
        self.grouped: dict[str, ast.BestOf] = {}  # rule name -> the `best of` that lists it (filled in order)
        self.benefits: dict[str, ast.Benefit] = {}
        for b in program.of(ast.Benefit):
            self.benefits.setdefault(b.name.name, b)
        self.labels: dict[tuple[str, str], ast.LabelText] = {}  # (name, language) -> the first label given
        self.rewards: dict[str, ast.Reward] = {}
        for r in program.of(ast.Reward):
            self.rewards.setdefault(r.name.name, r)
        self.declared: dict[str, ast.Column] = {}
        self.columns: dict[str, str] = {}
        self.customer = {k: v.type for k, v in B.CUSTOMER.items()}
        for c in program.of(ast.Column):
            typ = B.COLUMN_TYPES.get(c.type.name)
            if typ is None:
                continue
            if len(c.name) == 1 and c.name[0].name not in B.VARIABLES:
                self.columns.setdefault(c.name[0].name, typ)
            elif len(c.name) == 2 and c.name[0].name == "customer":
                self.customer.setdefault(c.name[1].name, typ)
        self.expr = ExprChecker(self)

    # --- reporting -------------------------------------------------------------------------

    def emit(self, code: str, message: str, span: ast.Span, hint: str | None = None, severity: str = "error"):
        d = diagnostic(self.src, severity, code, message, span, hint)  # type: ignore[arg-type]
        self.found.append((span.line, span.col, len(self.found), d))

    def warn(self, code: str, message: str, span: ast.Span, hint: str | None = None):
        self.emit(code, message, span, hint, "warning")

    def did_you_mean(self, word: str, key: str, candidates: list[str]) -> str:
        best = self.suggest(word, key, candidates)
        return f"; did you mean `{best}`?" if best and best != word else ""

    # --- the pass -------------------------------------------------------------------------

    def run(self) -> list[Diagnostic]:
        seen_single: dict[type, ast.Span] = {}
        for stmt in self.program.statements:
            kind = type(stmt)
            if kind in _SINGLE:
                word = _SINGLE[kind]
                if kind in seen_single:
                    self.emit("E214", f"a second `{word}` statement; a program has one (the first is on line {seen_single[kind].line})",
                              keyword_span(stmt.span, word), f"keep one `{word}` line and delete the other")
                else:
                    seen_single[kind] = stmt.span
            try:
                getattr(self, _STATEMENTS[kind])(stmt)
            except RecursionError:
                self.emit("E430", "this statement is nested too deeply to check", keyword_span(stmt.span, "x"),
                          "split the condition into simpler parts")
        self.multiplier_chains()
        self.program_warnings()
        if not any(f[3].is_error for f in self.found):
            self.program_limits()
        self.found.sort(key=lambda f: f[:3])
        return [f[3] for f in self.found]

    def program_warnings(self):
        if self.first_money is not None and not self.has_currency_line:
            m = self.first_money
            self.emit("E405", f"this program uses money (`{m.currency.name}`) but has no `currency` line", m.currency.span,
                      f"add `currency {m.currency.name}` near the top: every amount is in the program's currency")
        start = ast.Span(1, 1, 1, 1)
        if not self.program.of(ast.Earn):
            self.warn("W501", "this program has no `earn` rules, so nobody earns points", start,
                      "add a rule such as `earn base: 1 point per 1 CNY`")
        if not self.program.of(ast.Reward):
            self.warn("W502", "this program has no rewards, so points cannot be spent", start,
                      "add a reward such as `reward coffee: 300 points cost 8 CNY`")

    # --- shared value checks ----------------------------------------------------------------

    def positive(self, num: ast.Number, what: str, whole: bool = False, kind: str | None = None):
        """A number that must be more than 0 (and whole, for counts and points), within the limit
        of its `kind` when given."""
        if num.value <= 0:
            self.emit("E407", f"{what} must be more than 0, not {number_text(num.value)}", num.span,
                      "use a positive number, or delete the line if it is not wanted")
        elif whole and num.value != num.value.to_integral_value():
            self.emit("E408", f"{what} must be a whole number, not {number_text(num.value)}", num.span,
                      f"use a whole number, like `{number_text(num.value.to_integral_value(ROUND_FLOOR))}`"
                      f" or `{number_text(num.value.to_integral_value(ROUND_CEILING))}`")
        elif kind is not None:
            self.within(num.value, num.span, kind, what)

    def within(self, value: Decimal, span: ast.Span, kind: str, what: str, unit: str | None = None):
        """A number the compiled engine can hold: at most the limit of its kind (limits.LIMITS),
        with at most that many digits after the point. `unit` names an amount's currency."""
        limit = LIMITS[kind]
        unit = unit if unit is not None else limit.unit
        most = f"{limit.most:,}" + ("" if not unit or unit in ("x", "%") else " ") + unit
        if abs(value) > limit.most:
            self.emit("E432", f"{number_text(value)} is more than a program may hold for {what}: the most is {most}", span,
                      f"use a number up to {most}; the limits are listed in docs/language.md")
        elif decimals(value) > limit.decimals:
            places = f"at most {limit.decimals} digit{'s' if limit.decimals > 1 else ''}" if limit.decimals else "no digits"
            self.emit("E433", f"{number_text(value)} has {decimals(value)} digits after the point; {what} may have {places} there", span,
                      f"round it, like `{number_text(_round_to(value, limit.decimals, kind))}`")

    def money(self, m: ast.Money, what: str = "an amount"):
        """A money literal: a well-formed currency code, the program's currency, within the limits."""
        self.within(m.amount, m.span, "money", what, m.currency.name)
        code = m.currency.name
        if self.first_money is None:
            self.first_money = m
        if not B.is_currency_code(code):
            upper = code.upper()
            fix = f"did you mean `{upper}`?" if B.is_currency_code(upper) else "currency codes are three capital letters, like `CNY` or `USD`"
            self.emit("E404", f"`{code}` is not a currency code", m.currency.span, fix)
        elif self.currency and code != self.currency:
            self.emit("E403", f"this amount is in {code}, but the program's currency is {self.currency}", m.currency.span,
                      f"write amounts in {self.currency}, or change the `currency` line")

    def percent(self, p: ast.Percent):
        if not Decimal(0) <= p.value <= Decimal(100):
            self.emit("E406", f"a percentage must be between 0% and 100%, not {number_text(p.value)}%", p.span,
                      "a share is written like `40%`")
        else:
            self.within(p.value, p.span, "percent", "a percentage")

    def date(self, lit: ast.DateLit) -> dt.date | None:
        try:
            y, m, d = (int(part) for part in lit.text.split("-"))
            return dt.date(y, m, d)
        except ValueError:
            self.emit("E401", f"{lit.text} is not a real date", lit.span, "write a day that exists, as YYYY-MM-DD")
            return None

    def period(self, name: ast.Ident):
        if name.name not in B.PERIODS:
            self.emit("E217", f"unknown period `{name.name}`{self.did_you_mean(name.name, 'periods', list(B.PERIODS))}", name.span,
                      "periods are " + either(dict.fromkeys(B.PERIODS.values())))

    def time_unit(self, name: ast.Ident, units: dict):
        if name.name not in units:
            self.emit("E221", f"unknown unit of time `{name.name}`{self.did_you_mean(name.name, 'units' + str(len(units)), list(units))}",
                      name.span, "write " + either(sorted(set(units.values()))))

    def funded(self, f: ast.Funded):
        self.percent(f.percent)

    # --- statements -----------------------------------------------------------------------

    def s_program(self, s: ast.ProgramName):
        if not s.name.value.strip():
            self.emit("E420", "the program name is empty", s.name.span, 'give it a name: `program "Bean Club"`')

    def s_currency(self, s: ast.Currency):
        code = s.code.name
        if not B.is_currency_code(code):
            upper = code.upper()
            fix = f"write `currency {upper}`" if B.is_currency_code(upper) else "currency codes are three capital letters, like `CNY` or `USD`"
            self.emit("E404", f"`{code}` is not a currency code", s.code.span, fix)

    def s_point_cost(self, s: ast.PointCost):
        self.money(s.cost, "the point cost")
        if s.cost.amount <= 0:
            self.emit("E407", f"the point cost must be more than 0, not {number_text(s.cost.amount)}", s.cost.span,
                      "write what one redeemed point costs the business, like `point_cost 0.01 CNY`")

    def s_column(self, s: ast.Column):
        full = ".".join(n.name for n in s.name)
        if full in self.declared:
            self.emit("E216", f"column `{full}` is declared twice (first on line {self.declared[full].span.line})", s.name[-1].span,
                      "declare each column once")
        self.declared.setdefault(full, s)
        if s.type.name not in B.COLUMN_TYPES:
            self.emit("E219", f"unknown column type `{s.type.name}`{self.did_you_mean(s.type.name, 'coltypes', list(B.COLUMN_TYPES))}",
                      s.type.span, "column types are " + quoted(B.COLUMN_TYPES))
        if len(s.name) == 2:
            obj, attr = s.name
            if obj.name != "customer":
                self.emit("E204", f"`{obj.name}.{attr.name}` cannot be declared; only `customer.NAME` columns have a dot", obj.span,
                          f"write `column customer.{attr.name}: ...` for a customer attribute, or `column {attr.name}: ...`")
            return
        (name,) = s.name
        if name.name in B.VARIABLES:
            self.emit("E222", f"`{name.name}` is a builtin name and cannot be declared as a column", name.span,
                      "give the column another name in the data and here")

    def s_tiers(self, s: ast.Tiers):
        if s.metric.name not in B.TIER_METRICS:
            self.emit("E220", f"unknown tier metric `{s.metric.name}`{self.did_you_mean(s.metric.name, 'metrics', list(B.TIER_METRICS))}",
                      s.metric.span, "tiers go by " + ", ".join(f"`{m}`" for m in B.TIER_METRICS))
        if s.window.n is not None:
            self.time_unit(s.window.unit, _WINDOW_UNITS)
            self.positive(s.window.n, "the tier window", whole=True, kind=_WINDOW_UNITS.get(s.window.unit.name))
        if not s.levels:
            self.emit("E414", "the tiers block has no tiers", keyword_span(s.span, "tiers"),
                      "list the levels inside the braces, lowest first: `Green from 0`")
            return
        names: dict[str, ast.Span] = {}
        previous = None
        for i, lv in enumerate(s.levels):
            if lv.name.name in names:
                self.emit("E213", f"tier `{lv.name.name}` is listed twice (first on line {names[lv.name.name].line})", lv.name.span,
                          "each tier has one line; rename or delete this one")
            else:
                names[lv.name.name] = lv.name.span
            value = lv.threshold.value
            if i == 0 and value != 0:
                self.emit("E410", f"the first tier must start from 0, not {number_text(value)}", lv.threshold.span,
                          f"every member starts in the first tier: `{lv.name.name} from 0`")
            elif previous is not None and value <= previous.threshold.value:
                self.emit("E411", f"tier `{lv.name.name}` starts from {number_text(value)}, which is not above "
                                  f"`{previous.name.name}` ({number_text(previous.threshold.value)})",
                          lv.threshold.span, "list tiers lowest first, each threshold higher than the one before")
            if s.metric.name in ("points", "visits") and value != value.to_integral_value():
                self.emit("E408", f"a {s.metric.name} threshold must be a whole number, not {number_text(value)}", lv.threshold.span)
            elif s.metric.name in _THRESHOLD_KINDS:
                self.within(value, lv.threshold.span, _THRESHOLD_KINDS[s.metric.name], f"the threshold of `{lv.name.name}`",
                            (self.currency or "") if s.metric.name == "spend" else None)
            if lv.unit is not None:
                self.tier_unit(s.metric.name, lv.unit)
            previous = lv
        if any(lv.alternatives for lv in s.levels):
            self.tier_alternatives(s)
        for i, lv in enumerate(s.levels):
            if lv.keep is not None:
                self.tier_keep(lv, first=i == 0)
        if s.counting:
            by_points = s.metric.name == "points" or any(a.unit is not None and B.alternative_metric(a.unit.name) == "points"
                                                         for lv in s.levels for a in lv.alternatives)
            if by_points:
                self.emit("E497", "`counting the current purchase` needs tiers by spend or visits: a purchase's points depend on its tier",
                          keyword_span(s.span, "tiers"), "count spend or visits, or drop `counting the current purchase` (and any points alternative)")

    def s_tier_status(self, s):
        """`downgrade one level at a time` and `review tiers every PERIOD` need tiers; a review names a known period."""
        word = "downgrade" if isinstance(s, ast.TierDowngrade) else "review tiers"
        if not self.has_tiers:
            self.emit("E496", f"`{word}` is used but this program has no tiers", keyword_span(s.span, word.split()[0]),
                      "add a `tiers by spend over 365 days { ... }` block, or delete this line")
        if isinstance(s, ast.TierDowngrade) and s.words != ("one", "level", "a", "time"):
            self.emit("E171", f"`downgrade {' '.join(s.words[:2])} at {' '.join(s.words[2:])}` is not a downgrade rule", s.span,
                      "write `downgrade one level at a time` (the only one: a member falls at most one level at each review)")
        if isinstance(s, ast.TierReview) and s.period.name not in REVIEW_MONTHS:
            self.emit("E292", f"tiers are reviewed every month, quarter or year, not `{s.period.name}`"
                              f"{self.did_you_mean(s.period.name, 'review periods', list(REVIEW_MONTHS))}", s.period.span,
                      "write `review tiers every month`, `every quarter` or `every year`")

    def tier_keep(self, lv: ast.TierLevel, first: bool):
        """`keep N months`: a whole number of months (or years), never on the first tier."""
        keep = lv.keep
        if first:
            self.emit("E495", f"the first tier `{lv.name.name}` is never lost, so `keep` does nothing", keep.span,
                      "delete the `keep`, or move it to a higher tier")
            return
        if keep.unit.name not in _KEEP_UNITS:
            self.emit("E291", f"`keep` counts months or years, not `{keep.unit.name}`{self.did_you_mean(keep.unit.name, 'keep units', list(_KEEP_UNITS))}",
                      keep.unit.span, f"write `keep {number_text(keep.n.value)} months`")
            return
        self.positive(keep.n, f"the retention of `{lv.name.name}`", whole=True, kind="months")

    def tier_alternatives(self, s: ast.Tiers):
        """`Gold from 5000 CNY or 24 visits`: each alternative names its metric by its unit, one per
        metric a level, none on the block's own metric or on the first tier; per metric, thresholds rise."""
        last: dict[str, tuple[ast.TierLevel, Decimal]] = {}  # per alternative metric, the level before that used it
        for i, lv in enumerate(s.levels):
            seen = {s.metric.name}
            for a in lv.alternatives:
                if i == 0:
                    self.emit("E490", f"the first tier `{lv.name.name}` cannot have an alternative: every member starts in it", a.span,
                              f"delete `or {number_text(a.threshold.value)}{' ' + a.unit.name if a.unit else ''}`, or move it to a higher tier")
                    continue
                if a.unit is None:
                    self.emit("E170", f"the alternative `or {number_text(a.threshold.value)}` of `{lv.name.name}` names no unit", a.threshold.span,
                              "name what it counts: `or 24 visits`, `or 900 points` or `or 5000 " + (self.currency or "CNY") + "`")
                    continue
                metric = B.alternative_metric(a.unit.name)
                if metric == "spend" and not B.is_currency_code(a.unit.name):
                    close = self.did_you_mean(a.unit.name, "tier units", ["visits", "points"] + ([self.currency] if self.currency else []))
                    self.emit("E290", f"unknown unit `{a.unit.name}` in an alternative of `{lv.name.name}`{close}", a.unit.span,
                              "an alternative counts `visits`, `points` or money in the program's currency")
                    continue
                if metric == "spend":
                    self.money(ast.Money(a.threshold.value, a.unit, a.span), f"the alternative of `{lv.name.name}`")
                if metric in seen:
                    again = "the block's own metric" if metric == s.metric.name else "another alternative"
                    self.emit("E491", f"`{lv.name.name}` counts {metric} twice: this alternative repeats {again}", a.span,
                              "a level has one threshold per metric; keep the lower one")
                    continue
                seen.add(metric)
                value = a.threshold.value
                if metric != "spend" and value != value.to_integral_value():
                    self.emit("E492", f"a {metric} threshold must be a whole number, not {number_text(value)}", a.threshold.span,
                              f"use a whole number, like `{number_text(value.to_integral_value(ROUND_CEILING))}`")
                elif value <= 0:
                    self.emit("E493", f"the alternative of `{lv.name.name}` must be more than 0, not {number_text(value)}", a.threshold.span,
                              "an alternative of 0 lets every member in; lower the tier's own threshold instead")
                    continue
                elif metric != "spend":
                    self.within(value, a.threshold.span, _THRESHOLD_KINDS[metric], f"the alternative of `{lv.name.name}`")
                before = last.get(metric)
                if before is not None and value <= before[1]:
                    self.emit("E494", f"`{lv.name.name}` is reached by {number_text(value)} {metric}, which is not above "
                                      f"`{before[0].name.name}` ({number_text(before[1])} {metric})", a.threshold.span,
                              "per metric, each higher tier needs more than the one before")
                last[metric] = (lv, value)

    def tier_unit(self, metric: str, unit: ast.Ident):
        allowed = _TIER_UNITS.get(metric)
        if allowed is None:
            return
        if allowed == (None,):
            self.money(ast.Money(Decimal(0), unit, unit.span))
        elif unit.name not in allowed:
            self.emit("E223", f"tiers by {metric} are counted in {allowed[0]}, not `{unit.name}`", unit.span,
                      f"write the threshold as a number of {allowed[0]}, or leave the unit out")

    def s_earn(self, s: ast.Earn):
        first = self.rules.get(s.name.name)
        if first is not s:
            self.emit("E211", f"there is already a rule named `{s.name.name}` (line {first.name.span.line})", s.name.span,
                      "rule names must be unique; rename one of them")
        getattr(self, _AWARDS[type(s.award)])(s.award)
        seen = self.clauses(s, "rule")
        self.budget_of(s, seen.get(ast.Budget))
        on = seen.get(ast.OnEvent)
        if on is not None and isinstance(s.award, ast.PerSpend):
            self.emit("E412", f"`on {on.event.name}` rows have no amount, so `per {s.award.per.currency.name}` earns nothing",
                      s.award.per.span, f"give a fixed award: `earn {s.name.name}: 100 points on {on.event.name}`")
        elif on is not None and isinstance(s.award, ast.PerUnit):
            self.emit("E412", f"`on {on.event.name}` rows have no quantity, so `per unit` earns nothing",
                      s.award.span, f"give a fixed award: `earn {s.name.name}: 100 points on {on.event.name}`")

    def clauses(self, s, what: str) -> dict:
        """Check the clauses of an earn rule, a benefit or a discount (each kind at most once): the first
        clause of each kind, by kind."""
        seen: dict[type, object] = {}
        for clause in s.clauses:
            kind = type(clause)
            if kind in seen:
                word = _CLAUSE_WORDS[kind].split("`")[0]
                self.emit("E215", f"{what} `{s.name.name}` gives `{_CLAUSE_WORDS[kind]}` twice", keyword_span(clause.span, word.strip()),
                          "combine them into one (conditions with `and`)")
            seen.setdefault(kind, clause)
            getattr(self, _CLAUSES[kind])(clause)
        return seen

    def s_label(self, s: ast.Label):
        name = s.name.name
        labelled = {**self.rules, **self.benefits, **self.discounts, **self.tiers, **self.rewards}
        if name not in labelled:
            self.emit("E227", f"there is no rule, tier, reward, discount or benefit named `{name}` to label"
                              f"{self.did_you_mean(name, 'labelled', list(labelled))}", s.name.span,
                      "a label gives a name of this program the words members read: `label gold_boost en \"Gold bonus\"`")
        for t in s.texts:
            lang = t.lang.name
            if lang not in B.LABEL_LANGUAGES:
                known = _LANGUAGE_NAMES.get(lang.lower())
                mean = f"; did you mean `{known}`?" if known else self.did_you_mean(lang, "languages", list(B.LABEL_LANGUAGES))
                self.emit("E228", f"`{lang}` is not a language labels are written in{mean}",
                          t.lang.span, "labels are in " + either(B.LABEL_LANGUAGES) + ", the languages `loyalty explain` writes")
                continue
            first = self.labels.setdefault((name, lang), t)
            if first is not t:
                self.emit("E229", f"`{name}` already has a label in `{lang}` (line {first.span.line})", t.span,
                          "give each name one label per language; delete or merge the other")
            if not t.text.value.strip():
                self.emit("E230", f"the `{lang}` label of `{name}` is empty", t.text.span,
                          "write the words members read, or delete the language from the label")

    def s_benefit(self, s: ast.Benefit):
        first = self.benefits[s.name.name]
        if first is not s or s.name.name in self.rules or s.name.name in self.discounts:
            other = self.rules.get(s.name.name) or self.discounts.get(s.name.name) or first
            what = "rule" if s.name.name in self.rules else "discount" if s.name.name in self.discounts else "benefit"
            self.emit("E226", f"there is already a {what} named `{s.name.name}` (line {other.name.span.line})", s.name.span,
                      "rules, discounts and benefits share one set of names (the ledger names any of them); rename one")
        self.money(s.cost, "the benefit's cost")
        if s.cost.amount <= 0:
            self.emit("E407", f"the benefit's cost must be more than 0, not {number_text(s.cost.amount)}", s.cost.span,
                      "write what giving the benefit once costs the business, like `cost 20 CNY`")
        budget = self.clauses(s, "benefit").get(ast.Budget)
        if budget is not None:
            self.emit("E480", f"benefit `{s.name.name}` has a budget; budgets are for earn rules (in points) and discounts (in money)",
                      keyword_span(budget.span, "budget"), "delete the `budget` clause, or give the benefit `at most N times` per member")

    def a_per_spend(self, a: ast.PerSpend):
        self.positive(a.points, "the points earned", kind="points")
        self.money(a.per, "the amount after `per`")
        if a.per.amount <= 0:
            self.emit("E407", f"the amount after `per` must be more than 0, not {number_text(a.per.amount)}", a.per.span,
                      "write how much spend earns the points, like `per 1 CNY`")

    def a_fixed(self, a: ast.Fixed):
        self.positive(a.points, "the points earned", kind="points")

    def a_per_unit(self, a: ast.PerUnit):
        self.positive(a.points, "the points earned per unit", kind="points")

    def a_multiplier(self, a: ast.Multiplier):
        if a.factor.value <= 1:
            self.emit("E409", f"a multiplier must be more than 1x, not {number_text(a.factor.value)}x", a.factor.span,
                      "a multiplier adds to another rule's points: `2x base` doubles them")
        else:
            self.within(a.factor.value, a.factor.span, "multiplier", "the multiplier")
        if a.target.name in self.benefits:
            self.emit("E209", f"`{a.target.name}` is a benefit: it costs money and earns no points, so there is nothing to multiply",
                      a.target.span, "a multiplier names an earn rule of this program: `earn gold: 2x base`")
        elif a.target.name not in self.rules:
            self.emit("E209", f"there is no rule named `{a.target.name}` to multiply"
                              f"{self.did_you_mean(a.target.name, 'rules', list(self.rules))}", a.target.span,
                      "a multiplier names an earn rule of this program: `earn gold: 2x base`")

    def c_when(self, c: ast.When):
        self.expr.condition(c.expr, B.WHEN)

    def c_on(self, c: ast.OnEvent):
        name = c.event.name
        if c.quoted:
            if not self.event_text(c):
                return
            name = event_of(c)
        if name == B.PURCHASE:
            self.warn("W503", "`on purchase` is not needed: rules without `on` already earn on purchases", c.event.span,
                      "delete `on purchase`")
        elif name in (B.REFUND, B.REDEEM):
            self.warn("W504", f"`on {name}` rules never fire: {name} rows do not earn points", c.event.span,
                      "use `on` with events such as `enroll` or `referral`")

    def event_text(self, c: ast.OnEvent) -> bool:
        """`on "TEXT"`: a name another system exports, printable, not blank, of bounded length."""
        text = c.event.name
        if visible(text) != text or any(unicodedata.category(ch) == "Cc" for ch in text):  # bidi marks, escapes, tabs
            shown = visible(text).replace("\t", "\\t")
            self.emit("E445", f"the event name \"{shown}\" holds control characters", c.event.span,
                      "write the name as the data's `event` column holds it, in printable characters")
            return False
        if len(text) > B.MAX_EVENT_NAME:
            self.emit("E446", f"the event name is {len(text)} characters long; at most {B.MAX_EVENT_NAME}", c.event.span,
                      "write the name as the data's `event` column holds it")
            return False
        if not text.strip():
            self.emit("E447", "an empty event name: a blank event in the data is a purchase", c.event.span,
                      "drop the `on` clause to earn on purchases, or name the event: `on \"newsletter.subscribed\"`")
            return False
        return True

    def c_during(self, c: ast.During):
        start = self.date(c.start) if c.start is not None else None
        end = self.date(c.end) if c.end is not None else None
        if start and end and end < start:
            self.emit("E402", f"the campaign ends ({c.end.text}) before it starts ({c.start.text})", c.end.span,
                      f"swap the dates: `during {c.end.text} to {c.start.text}`")

    def c_frequency(self, c: ast.Frequency):
        if not c.once:
            self.positive(c.times, "the number of times", whole=True, kind="count")
        if c.period is not None:
            self.period(c.period)

    def c_funded(self, c: ast.Funded):
        self.funded(c)

    def c_budget(self, c: ast.Budget):
        """The amount itself: more than 0, whole for points, within the limits (its unit is checked
        by `budget_of`, which knows whose budget it is)."""
        if c.currency is None:
            self.positive(c.amount, "a budget of points", whole=True, kind="number")

    def budget_of(self, s, budget: ast.Budget | None):
        """A budget's unit (points for an earn rule, money for a discount), and whether one award
        fits in it at all (docs/semantics.md, "Budgets")."""
        if budget is None:
            return
        name, discount = s.name.name, isinstance(s, ast.Discount)
        unit = budget.currency.name if budget.currency is not None else "points"
        if budget.currency is not None and not discount:
            guess = self.suggest(unit, "budget unit", ["points"])
            self.emit("E481", f"rule `{name}` gives points, so its budget is in points, not `{unit}`"
                      + (f"; did you mean `{guess}`?" if guess and not B.is_currency_code(unit) else ""), budget.currency.span,
                      f"write the most points it may give over every member, like `budget {number_text(budget.amount.value)} points`")
            return
        if budget.currency is None and discount:
            cur = self.currency or "CNY"
            self.emit("E481", f"discount `{name}` gives money off, so its budget is money, not points", keyword_span(budget.span, "budget"),
                      f"write the most money it may take off over every member, like `budget {number_text(budget.amount.value)} {cur}`")
            return
        if discount:
            self.money(ast.Money(budget.amount.value, budget.currency, budget.span), "a budget")
            if budget.amount.value <= 0:
                self.emit("E407", f"a budget must be more than 0, not {number_text(budget.amount.value)} {unit}", budget.span,
                          "write the most money the discount may take off over every member, or delete the clause")
                return
        one = s.value.amount if discount and isinstance(s.value, ast.Money) else s.award.points.value if isinstance(getattr(s, "award", None), ast.Fixed) else None
        if one is not None and 0 < budget.amount.value < one:
            self.emit("E482", f"the budget of {number_text(budget.amount.value)} {unit} is less than one award of `{name}` "
                              f"({number_text(one)} {unit}): each award is given whole or not at all, so it would never give anything",
                      budget.span, f"make the budget at least {number_text(one)} {unit}, or delete it")

    def s_discount(self, s: ast.Discount):
        # Rules and discounts share the ledger's `rule` column, so their names must differ.
        first = self.discounts[s.name.name]
        clash = self.rules.get(s.name.name)
        if first is not s or clash is not None:
            other = clash if clash is not None else first
            what = "rule" if clash is not None else "discount"
            self.emit("E240", f"there is already a {what} named `{s.name.name}` (line {other.name.span.line})", s.name.span,
                      "rule and discount names must be unique (the ledger names each posting by it); rename one of them")
        getattr(self, _DISCOUNT_VALUES[type(s.value)])(s.value)
        if s.cap is not None:
            self.money(s.cap, "the cap")
            if s.cap.amount <= 0:
                self.emit("E443", f"the cap after `up to` must be more than 0, not {number_text(s.cap.amount)} {s.cap.currency.name}",
                          s.cap.span, f"write the most the discount takes off one purchase, like `up to 30 {self.currency or s.cap.currency.name}`")
        self.budget_of(s, self.clauses(s, "discount").get(ast.Budget))

    def d_percent(self, p: ast.Percent):
        if not Decimal(0) < p.value <= Decimal(100):
            self.emit("E440", f"a discount must be more than 0% and at most 100%, not {number_text(p.value)}%", p.span,
                      "write the share taken off the price, more than 0% and at most 100%: `5%` takes 5% off (9.5折 is `5%`)")
        else:
            self.within(p.value, p.span, "percent", "a discount")

    def d_buy_get(self, b: ast.BuyGet):
        for n, word in ((b.buy, "buy"), (b.get, "get")):
            if n.value < 1 or n.value != n.value.to_integral_value():
                self.emit("E442", f"`{word}` must be a whole number of units, at least 1, not {number_text(n.value)}", n.span,
                          "write `buy N get M free` with N and M at least 1, like `buy 3 get 1 free`"
                          + (" (a free item for buying nothing is a gift: a `benefit` or a fixed discount)" if word == "buy" else ""))
            else:
                self.within(n.value, n.span, "count", f"`{word}`")

    def d_money(self, m: ast.Money):
        self.money(m, "the discount")
        if m.amount <= 0:
            self.emit("E441", f"a discount must be more than 0, not {number_text(m.amount)} {m.currency.name}", m.span,
                      f"write the amount taken off the basket, like `10 {self.currency or m.currency.name}`")

    def s_best_of(self, s: ast.BestOf):
        """`best of`: each name an earn rule, in one group only, two or more of them, and no
        multiplier whose award depends on another rule of a group (docs/semantics.md, "Best of")."""
        if len(s.rules) == 1:
            self.emit("E450", "a `best of` lists one rule: there is nothing to choose among", keyword_span(s.span, "best"),
                      "list two or more earn rules (`best of pastry_promo, tuesday_promo`), or delete the line")
            return
        grouped = self.grouped
        listed: list[str] = []
        for ident in s.rules:
            name = ident.name
            if name in self.discounts:
                self.emit("E251", f"`{name}` is a discount; `best of` chooses among earn rules", ident.span,
                          "of several discounts on one line only the largest applies already; list earn rules here")
                continue
            if name in self.benefits:
                self.emit("E251", f"`{name}` is a benefit; `best of` chooses among earn rules", ident.span,
                          "a benefit costs money and gives no points, so it has no award to compare; list earn rules here")
                continue
            if name not in self.rules:
                mean = self.did_you_mean(name, "rules", list(self.rules))
                self.emit("E250", f"there is no earn rule named `{name}` to choose among{mean}", ident.span,
                          "list earn rules declared with `earn NAME: ...`")
                continue
            if name in listed:
                self.emit("E252", f"`{name}` is listed twice in this `best of`", ident.span, "list each rule once")
                continue
            if name in grouped:
                self.emit("E252", f"`{name}` is already in the `best of` on line {grouped[name].span.line}; a rule is in one group only",
                          ident.span, "merge the two groups into one `best of` (every rule in it competes with every other)")
                continue
            listed.append(name)
            grouped[name] = s
        for name in listed:
            award = self.rules[name].award
            if isinstance(award, ast.Multiplier) and award.target.name in listed:
                self.emit("E451", f"`{name}` multiplies `{award.target.name}`, which is in the same `best of`",
                          s.rules[[i.name for i in s.rules].index(name)].span,
                          f"a multiplier adds to its base, it does not compete with it; list `{name}` with other promotions, "
                          f"or make it earn by itself (`earn {name}: 2 points per 1 {self.currency or 'CNY'}`)")
        for other, e in self.rules.items():
            award = e.award
            if isinstance(award, ast.Multiplier) and award.target.name in listed and other not in listed:
                self.emit("E452", f"`{other}` multiplies `{award.target.name}`, which is in a `best of` (line {s.span.line}): "
                                  "its award would depend on whether its base kept the unit",
                          award.target.span, f"multiply a rule outside the group, or list `{other}` in the same `best of` "
                                             "as a promotion of its own")

    def s_limit(self, s: ast.Limit):
        self.positive(s.points, "the limit", whole=True, kind="points")
        self.period(s.period)

    def s_expire(self, s: ast.Expire):
        if s.n is not None:
            self.positive(s.n, "the expiry length", whole=True, kind=B.TIME_UNITS.get(s.unit.name) if s.unit else None)
        if s.unit is not None:
            self.time_unit(s.unit, B.TIME_UNITS)

    def s_pending(self, s: ast.Pending):
        """`points available after N days` (docs/semantics.md, "Pending points"): once, a whole
        number of days from 1 to PENDING_MOST_DAYS."""
        first = self.program.first(ast.Pending)
        if first is not s:
            self.emit("E460", f"a second `points available after` statement; a program has one (the first is on line {first.span.line})",
                      s.span, "keep one `points available after N days` line and delete the other")
        value = s.n.value
        if value != value.to_integral_value() or not 1 <= value <= PENDING_MOST_DAYS:
            self.emit("E461", f"points become available after a whole number of days from 1 to {PENDING_MOST_DAYS:,}, not {number_text(value)}",
                      s.n.span, "write the return window, like `points available after 14 days` (points available at once: delete the line)")
        if s.unit.name not in _PENDING_UNITS:
            mean = self.did_you_mean(s.unit.name, "pending units", list(_PENDING_UNITS))
            self.emit("E260", f"unknown unit `{s.unit.name}` for pending points{mean}", s.unit.span,
                      "write the window in days, like `points available after 14 days` (a month is `30 days`)")

    def s_round(self, s: ast.Round):
        if s.mode.name not in B.ROUNDING:
            self.emit("E218", f"unknown rounding `{s.mode.name}`{self.did_you_mean(s.mode.name, 'rounding', list(B.ROUNDING))}",
                      s.mode.span, "write " + either([f"round {m}" for m in B.ROUNDING]))

    def s_reward(self, s: ast.Reward):
        first = self.rewards[s.name.name]
        if first is not s:
            self.emit("E212", f"there is already a reward named `{s.name.name}` (line {first.name.span.line})", s.name.span,
                      "reward names must be unique; rename one of them")
        self.positive(s.points, "the reward's points", whole=True, kind="points")
        self.money(s.cost, "the reward's cost")
        if s.cost.amount <= 0:
            self.emit("E407", f"the reward's cost must be more than 0, not {number_text(s.cost.amount)}", s.cost.span,
                      "write what the reward costs the business, like `cost 8 CNY`")
        if s.funded is not None:
            self.funded(s.funded)
        if s.issued is not None:
            self.issued(s)

    def issued(self, s: ast.Reward):
        """`issued every PERIOD` (docs/semantics.md, "Automatic vouchers"): a period vouchers are
        issued at the end of, and one automatic reward per program."""
        period = s.issued.period.name
        if period not in ISSUE_MONTHS:
            mean = self.did_you_mean(period, "issue periods", list(ISSUE_MONTHS))
            self.emit("E262", f"vouchers are issued every `month`, `quarter` or `year`, not `{period}`{mean}", s.issued.period.span,
                      "write `issued every quarter` (at the end of March, June, September and December)")
        first = next(r for r in self.program.of(ast.Reward) if r.issued is not None)
        if first is not s:
            self.emit("E462", f"a second automatic reward; a program turns points into one voucher (the first is `{first.name.name}`, "
                              f"line {first.span.line})", s.issued.span,
                      "keep `issued every ...` on one reward; the others stay in the catalog")

    def s_pay_with_points(self, s: ast.PayWithPoints):
        """`pay with points`: once per program; a step of whole points worth a positive amount in
        the program's currency, no finer than its minor unit; a cap over 0% and up to 100%; a
        whole minimum balance (docs/semantics.md, "Paying with points")."""
        first = self.program.first(ast.PayWithPoints)
        if first is not s:
            self.emit("E270", f"a second `pay with points`; a program has one (the first is on line {first.span.line})",
                      keyword_span(s.span, "pay with points"), "keep one `pay with points` line: one rate, cap and minimum for every purchase")
        cur = self.currency or s.value.currency.name
        if s.points.value <= 0:
            self.emit("E470", f"a step of {number_text(s.points.value)} points would pay with no points at all", s.points.span,
                      f"write how many points pay how much, both more than 0, like `100 points = 1 {cur}`")
        else:
            self.positive(s.points, "the points of a step", whole=True, kind="points")
        if s.value.amount <= 0:
            self.emit("E470", f"a step worth {number_text(s.value.amount)} {s.value.currency.name} pays nothing", s.value.span,
                      f"write how many points pay how much, both more than 0, like `100 points = 1 {cur}`")
        self.money(s.value, "the value of a step")
        places = B.currency_decimals(cur) if B.is_currency_code(cur) else 2
        if s.value.amount > 0 and decimals(s.value.amount) > places:
            k = Decimal(10) ** (decimals(s.value.amount) - places)
            self.emit("E471", f"{number_text(s.value.amount)} {s.value.currency.name} is finer than the currency's smallest unit",
                      s.value.span, f"make a step pay whole minor units: `{number_text(s.points.value * k)} points = "
                                    f"{number_text((s.value.amount * k).normalize())} {s.value.currency.name}`")
        if s.cap is not None and not (0 < s.cap.value <= 100):
            self.emit("E472", f"points can pay more than 0% and at most 100% of a basket, not {number_text(s.cap.value)}%", s.cap.span,
                      "write the largest share of the bill points may pay, like `up to 50% of basket`, or leave the cap out (up to all of it)")
        if s.minimum is not None:
            self.positive(s.minimum, "the balance needed to pay with points", whole=True, kind="points")
        clash = self.rewards.get("pay_with_points")
        if first is s and clash is not None:
            self.emit("E271", "a reward is named `pay_with_points`, the ledger's name for paying with points", clash.name.span,
                      "rename the reward: the ledger's `reward` column names a payment with points `pay_with_points`")

    def s_assert(self, s: ast.Assert):
        self.expr.condition(s.expr, B.ASSERT)

    # --- whole-program checks --------------------------------------------------------------

    def program_limits(self):
        """The awards together within what the compiled engine holds exactly (on a program
        without errors, so every name and number is known to be good)."""
        awards = [_award(e) for e in self.rules.values()]
        cost = self.program.first(ast.PointCost)
        currency = self.currency or "CNY"
        point_cost = Fraction(cost.cost.amount) if cost else Fraction(0)
        for problem in program_problems(awards, currency, B.currency_decimals(currency), point_cost):
            earn = self.rules[problem.rule.name]
            span = earn.clause(ast.Funded).span if problem.at == "funded" else earn.award.span
            self.emit(problem.code, problem.message, span, problem.hint)

    def multiplier_chains(self):
        """Each multiplier has one target, so the graph is functional: follow each chain once,
        without recursion, to find cycles and how deep each chain is."""
        target = {name: e.award.target.name for name, e in self.rules.items() if isinstance(e.award, ast.Multiplier)}
        state: dict[str, int] = {}  # 1 on the current walk, 2 finished
        depth: dict[str, int] = {}  # multipliers between a rule and the rule that earns by itself
        for start in target:
            if start in state:
                continue
            path: list[str] = []
            node = start
            while node in target and node not in state:
                state[node] = 1
                path.append(node)
                node = target[node]
            if state.get(node) == 1:
                cycle = path[path.index(node):]
                first = min(cycle, key=lambda n: self.rules[n].span.start)
                i = cycle.index(first)
                ring = cycle[i:] + cycle[:i] + [first]
                self.emit("E210", "multipliers form a cycle: " + " → ".join(ring), self.rules[first].award.target.span,
                          "a multiplier must lead to a rule that earns by itself (per spend or fixed points)")
            elif node not in target or node in depth:  # ends at a rule that earns by itself
                below = depth.get(node, 0)
                for i, n in enumerate(reversed(path), start=1):
                    depth[n] = below + i
            for n in path:
                state[n] = 2
        for name, d in depth.items():
            if d == MAX_CHAIN + 1:  # once a chain: at the first multiplier past the limit
                award = self.rules[name].award
                self.emit("E431", f"`{name}` multiplies a chain of {MAX_CHAIN} multipliers; a chain may be at most {MAX_CHAIN} deep",
                          award.target.span, f"multiply a rule that earns by itself (`{award.factor.value}x base`), "
                                             "or combine the factors into one multiplier")


_STATEMENTS = {
    ast.ProgramName: "s_program",
    ast.Currency: "s_currency",
    ast.PointCost: "s_point_cost",
    ast.Column: "s_column",
    ast.Tiers: "s_tiers",
    ast.TierDowngrade: "s_tier_status",
    ast.TierReview: "s_tier_status",
    ast.Earn: "s_earn",
    ast.Limit: "s_limit",
    ast.Expire: "s_expire",
    ast.Round: "s_round",
    ast.Reward: "s_reward",
    ast.Assert: "s_assert",
    ast.Discount: "s_discount",
    ast.BestOf: "s_best_of",
    ast.Benefit: "s_benefit",
    ast.Label: "s_label",
    ast.Pending: "s_pending",
    ast.PayWithPoints: "s_pay_with_points",
}
_DISCOUNT_VALUES = {ast.Percent: "d_percent", ast.Money: "d_money", ast.BuyGet: "d_buy_get"}
_AWARDS = {ast.PerSpend: "a_per_spend", ast.Fixed: "a_fixed", ast.PerUnit: "a_per_unit", ast.Multiplier: "a_multiplier"}
_CLAUSES = {ast.When: "c_when", ast.OnEvent: "c_on", ast.During: "c_during", ast.Frequency: "c_frequency", ast.Funded: "c_funded", ast.Budget: "c_budget"}


def check(program: ast.Program, source: Source) -> list[Diagnostic]:
    """All diagnostics for `program`, errors and warnings, in source order."""
    checker = Checker(program, source)
    try:
        return checker.run()
    except RecursionError:
        # The per-statement guard catches nesting; this is the backstop for anything else.
        d = diagnostic(source, "error", "E430", "the program is nested too deeply to check", ast.Span(1, 1, 1, 2),
                       "split long conditions into simpler parts")
        return [f[3] for f in checker.found] + [d]
