"""Loyalty-specific warnings about what a checked program means (W6xx codes).

Each check is a function in `CHECKS`; each finding can be silenced with a comment on its line or
the line before: `# loyalty: ignore[W601]`, `# loyalty: ignore[W601, W603]`, or `# loyalty: ignore`.
Every code is documented, with an example and the fix, in docs/invariants.md.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from fractions import Fraction

from rulelang import ast
from rulelang import builtins as B
from rulelang import values as V
from rulelang.conditions import Analyser
from rulelang.errors import Diagnostic, Source, diagnostic
from rulelang.model import Model, Rule, names_in

MAX_STACK = Fraction(3)  # a base rule multiplied past this is flagged unless an assert bounds it
MAX_SUBSETS = 10  # enumerate combinations of at most this many rules; past it, assume all combine
# Events that reward a relationship rather than a purchase, and are accepted practice.
RELATIONSHIP_EVENTS = frozenset({"enroll", "referral", "birthday", "anniversary", "signup", "register", "registration"})
# How many calendar periods a window of `days` consecutive days can touch, at most.
_TOUCHED = {
    "day": lambda d: d,
    "week": lambda d: (d - 1) // 7 + 2,
    "month": lambda d: min((d - 1) // 28 + 2, 13) if d <= 366 else (d - 1) // 28 + 2,
    "year": lambda d: (d - 1) // 365 + 2,
}
_IGNORE = re.compile(r"#\s*loyalty:\s*ignore\b(?:\[([^\]]*)\])?")


def lint(program: ast.Program, model: Model, source: Source) -> list[Diagnostic]:
    """Warnings about the program's economics and reachability, in source order."""
    ctx = _Context(program, model, source)
    found: list[Diagnostic] = []
    for check in CHECKS:
        found.extend(check(ctx))
    return sorted(suppressed(found, source), key=lambda d: (d.span.line, d.span.col, d.code))


def suppressed(found: list[Diagnostic], source: Source) -> list[Diagnostic]:
    """The findings not silenced by a `# loyalty: ignore[...]` comment on their line or the one before."""
    lines = source.text.split("\n")

    def ignored(line: int, code: str) -> bool:
        for n in (line, line - 1):
            if 1 <= n <= len(lines):
                for m in _IGNORE.finditer(lines[n - 1]):
                    codes = m.group(1)
                    if codes is None or code in {c.strip().upper() for c in codes.split(",")}:
                        return True
        return False

    return [d for d in found if not ignored(d.span.line, d.code)]


class _Context:
    """What every check needs: the tree, the model, condition analysis, and the earn statements."""

    def __init__(self, program: ast.Program, model: Model, source: Source):
        self.program, self.model, self.source = program, model, source
        self.an = Analyser(model)
        self.earns = {e.name.name: e for e in program.of(ast.Earn)}
        self.fires = {r.name: self.an.satisfiable(self.an.rule_terms(r)) for r in model.rules}

    def warn(self, code: str, message: str, span: ast.Span, hint: str | None = None, severity: str = "warning") -> Diagnostic:
        return diagnostic(self.source, severity, code, message, span, hint)

    def head(self, name: str) -> ast.Span:
        """The span of `earn NAME` for a rule."""
        e = self.earns[name]
        return ast.Span(e.span.line, e.span.col, e.name.span.end_line, e.name.span.end_col, e.span.start, e.name.span.end)

    def program_span(self) -> ast.Span:
        first = self.program.statements[0] if self.program.statements else None
        return first.span if first is not None else ast.Span(1, 1, 1, 2)


# --- W601: rules that can never fire ------------------------------------------------------------


def never_fires(ctx: _Context) -> list[Diagnostic]:
    out = []
    for r in ctx.model.rules:
        if ctx.fires[r.name]:
            continue
        own = ctx.an.rule_terms(r, with_target=False)
        if r.kind == "multiplier" and ctx.an.satisfiable(own):
            msg = f"rule `{r.name}` can never fire: its conditions never hold when `{r.target}` earns"
            why = _reason(ctx, ctx.an.rule_terms(r))
        else:
            why = _reason(ctx, own)
            msg = f"rule `{r.name}` can never fire: {why}"
            why = None
        out.append(ctx.warn("W601", msg + (f" ({why})" if why else ""), ctx.head(r.name), "fix the conditions, or delete the rule"))
    return out


def _reason(ctx: _Context, terms: list) -> str:
    key, atoms = ctx.an.conflict(terms[0])
    texts = list(dict.fromkeys(a.text for a in atoms))
    if key == "tier" and ctx.model.tiers and len(texts) == 1:
        names = ctx.model.tiers.names
        return f"`{texts[0]}` never holds: the tiers run from {names[0]} to {names[-1]}"
    if any(t.startswith("during ") for t in texts):
        window = next(t for t in texts if t.startswith("during "))
        others = [t for t in texts if not t.startswith("during ")]
        return f"the `{window}` window never meets " + " and ".join(f"`{t}`" for t in others)
    if len(texts) == 1:
        return f"`{texts[0]}` never holds"
    return " and ".join(f"`{t}`" for t in texts) + " cannot all hold"


# --- W602: multipliers stacking ---------------------------------------------------------------


def stack(ctx: _Context, base: Rule) -> tuple[Fraction, tuple[Rule, ...]]:
    """The largest total factor on a base rule's points, and the multipliers that reach it."""
    tree = []
    in_tree: set[str] = set()
    frontier = {base.name}
    while True:
        nxt = [r for r in ctx.model.rules if r.kind == "multiplier" and r.target in frontier and r.name not in in_tree and ctx.fires[r.name]]
        if not nxt:
            break
        tree.extend(nxt)
        frontier = {r.name for r in nxt}
        in_tree |= frontier
    best, best_set = Fraction(1), ()
    if len(tree) > MAX_SUBSETS:
        return _factor(base.name, tree), tuple(tree)
    base_terms = ctx.an.rule_terms(base)
    group_of = {i: g for g, group in enumerate(ctx.model.groups) for i in group}
    for k in range(len(tree), 0, -1):
        for subset in itertools.combinations(tree, k):
            names = {base.name} | {m.name for m in subset}
            if any(m.target not in names for m in subset):
                continue
            grouped = [group_of[m.index] for m in subset if m.index in group_of]
            if len(grouped) != len(set(grouped)):  # two of one `best of` never apply together
                continue
            f = _factor(base.name, subset)
            if f > best and _jointly(ctx, [base_terms] + [ctx.an.rule_terms(m, with_target=False) for m in subset]):
                best, best_set = f, subset
    return best, best_set


def _factor(name: str, multipliers) -> Fraction:
    # A multiplier adds (F - 1) times what its target earned; a multiplier of a multiplier scales
    # that extra part, so the total is a sum over the tree: summed leaves first, without recursion
    # (a chain of multipliers may be as deep as the checker allows).
    children: dict[str, list] = {}
    for m in multipliers:
        children.setdefault(m.target, []).append(m)
    order = [name]
    for node in order:  # breadth first; the checker has refused cycles
        order.extend(m.name for m in children.get(node, ()))
    total: dict[str, Fraction] = {}
    for node in reversed(order):
        total[node] = 1 + sum(((m.factor - 1) * total[m.name] for m in children.get(node, ())), Fraction(0))
    return total[name]


def _jointly(ctx: _Context, parts: list) -> bool:
    return ctx.an.jointly(parts)


def _bounded_by_assert(ctx: _Context, names: set[str]) -> bool:
    for a in ctx.model.asserts:
        for node in _compares(a):
            upper = node.left if node.op in ("<", "<=") else node.right if node.op in (">", ">=") else None
            if upper is not None and names_in(upper) & (names | {"points"}):
                return True
    return False


def _compares(expr):
    stack_ = [expr]
    while stack_:
        n = stack_.pop()
        if isinstance(n, ast.Compare):
            yield n
        elif isinstance(n, ast.BoolOp):
            stack_.extend(n.operands)
        elif isinstance(n, ast.Group):
            stack_.append(n.expr)


def stacking(ctx: _Context) -> list[Diagnostic]:
    out = []
    for base in ctx.model.rules:
        if base.kind == "multiplier":
            continue
        factor, used = stack(ctx, base)
        if factor <= MAX_STACK or _bounded_by_assert(ctx, {base.name} | {m.name for m in used}):
            continue
        parts = ", ".join(f"`{m.name}` ({_num(m.factor)}x)" for m in used)
        out.append(
            ctx.warn(
                "W602",
                f"`{base.name}` can earn {_num(factor)}x its points when {parts} stack, more than {_num(MAX_STACK)}x",
                ctx.head(used[-1].name),
                f"make the multipliers exclusive, or state the bound: `assert {base.name} + ... <= N * amount`",
            )
        )
    return out


# --- W603: no expiry -----------------------------------------------------------------------------


def no_expiry(ctx: _Context) -> list[Diagnostic]:
    if ctx.model.expiry.kind != "never":
        return []
    stmt = ctx.program.first(ast.Expire)
    span = stmt.span if stmt is not None else ctx.program_span()
    return [
        ctx.warn(
            "W603",
            "points never expire, so the liability for unredeemed points grows without bound",
            span,
            "add an expiry such as `expire after 24 months`, or silence this with `# loyalty: ignore[W603]` if it is intended",
        )
    ]


# --- W604: giveaways not tied to a purchase ------------------------------------------------------


def giveaways(ctx: _Context) -> list[Diagnostic]:
    out = []
    for r in ctx.model.rules:
        if r.event in (B.PURCHASE,) or r.event in RELATIONSHIP_EVENTS or r.kind == "multiplier" or not ctx.fires[r.name]:
            continue
        out.append(
            ctx.warn(
                "W604",
                f"rule `{r.name}` gives points on `{r.event}` rows, which are not purchases: a giveaway unrelated to buying",
                ctx.head(r.name),
                "tie it to a purchase (drop `on` and add a `when` condition), or check that such bonuses are allowed where you operate",
            )
        )
    return out


# --- W605: rewards nobody can afford -------------------------------------------------------------


def yearly_points(ctx: _Context) -> tuple[Fraction | None, str]:
    """An upper bound on points one member can hold from a year of earning (None: unbounded)."""
    m = ctx.model
    days = 365
    if m.expiry.kind == "after":
        days = min(days, m.expiry.n * {"days": 1, "months": 31, "years": 366}[m.expiry.unit])
    touched = dict(_TOUCHED)
    if m.expiry.kind == "end_of_year":
        touched["year"] = lambda d: 1
    caps = [(Fraction(n * touched[p](days)), f"`limit {n} points per {p}`") for n, p in m.limits]
    cap = min(caps, default=(None, ""), key=lambda c: c[0])
    total = Fraction(0)
    for r in m.rules:
        if r.kind == "multiplier" or not ctx.fires[r.name]:
            continue
        if r.kind in ("per_spend", "per_unit") or r.times is None:  # per spend or unit: no bound a firing
            total = None
            break
        firings = r.times if r.per is None else r.times * touched[r.per](days)
        total += r.points * firings * stack(ctx, r)[0]
    if total is None or (cap[0] is not None and cap[0] < total):
        return cap
    return total, "the frequency limits of the fixed bonuses"


def unaffordable(ctx: _Context) -> list[Diagnostic]:
    bound, why = yearly_points(ctx)
    if bound is None:
        return []
    out = []
    stmts = {r.name.name: r for r in ctx.program.of(ast.Reward)}
    for rw in ctx.model.rewards:
        if rw.points > bound:
            out.append(
                ctx.warn(
                    "W605",
                    f"no member can afford `{rw.name}` ({rw.points} points) within a year: at most {_num(bound)} points can be earned ({why})",
                    stmts[rw.name].span,
                    "lower its price, or raise the cap",
                )
            )
    return out


# --- W606: the effective earn rate ---------------------------------------------------------------


def earn_rate(ctx: _Context) -> list[Diagnostic]:
    m = ctx.model
    spend = [r for r in m.rules if r.kind == "per_spend" and r.event == B.PURCHASE and ctx.fires[r.name]]
    if not spend:
        return []
    low = sum((r.rate for r in spend if r.condition is None and r.during is None), Fraction(0))
    high = Fraction(0)
    factors = {r.name: stack(ctx, r)[0] for r in spend}
    if len(spend) > MAX_SUBSETS:
        high = sum((r.rate * factors[r.name] for r in spend), Fraction(0))
    else:
        for k in range(len(spend), 0, -1):
            for subset in itertools.combinations(spend, k):
                value = sum((r.rate * factors[r.name] for r in subset), Fraction(0))
                if value > high and _jointly(ctx, [ctx.an.rule_terms(r) for r in subset]):
                    high = value
    cur = m.currency
    msg = f"earn rate from spend: {_num(low)} to {_num(high)} points per 1 {cur}"
    if m.point_cost:
        msg += f", worth {_pct(low * m.point_cost)} to {_pct(high * m.point_cost)} of spend at point_cost {_num(m.point_cost)} {cur}"
    stmt = ctx.program.first(ast.PointCost)
    span = stmt.span if stmt is not None else ctx.head(spend[0].name)
    return [ctx.warn("W606", msg + " (before caps and fixed bonuses)", span, severity="note")]


# --- W607: points that fall as spend rises ----------------------------------------------------


def non_monotone(ctx: _Context) -> list[Diagnostic]:
    out = []
    for r in ctx.model.rules:
        if not ctx.fires[r.name]:
            continue
        atom = ctx.an.non_monotone(r)
        if atom is None:
            continue
        out.append(
            ctx.warn(
                "W607",
                f"rule `{r.name}` stops earning as the amount grows (`{atom.text}`), so spending more can earn fewer points",
                ctx.head(r.name),
                "use a lower bound only (`amount >= X`), or silence this with `# loyalty: ignore[W607]` if it is intended",
            )
        )
    return out


def non_monotone_rules(model: Model) -> list[str]:
    """Rules whose conditions make points fall as the amount rises (the W607 rules, ignored or not)."""
    an = Analyser(model)
    return [r.name for r in model.rules if an.non_monotone(r) is not None]


def _num(x: Fraction) -> str:
    if x.denominator == 1:
        return str(x.numerator)
    return f"{float(x):.4f}".rstrip("0").rstrip(".")


def _pct(x: Fraction) -> str:
    return _num(x * 100) + "%"


# --- W640: a deep discount stacked with a multiplier ---------------------------------------------

# A program states no margin (the simulator's scenario does), so the line is drawn here: a discount
# taking this share of the price or more leaves too little to also multiply the points on it.
DEEP_DISCOUNT = Fraction(1, 2)


def discount_with_multiplier(ctx: _Context) -> list[Diagnostic]:
    out = []
    for d in ctx.model.discounts:
        share = d.percent if d.kind == "percent" else Fraction(d.get, d.buy + d.get) if d.kind == "buy_get" else Fraction(0)
        if share < DEEP_DISCOUNT:
            continue
        terms = ctx.an.rule_terms(d, with_target=False)
        for m in ctx.model.rules:
            if m.kind != "multiplier" or not _jointly(ctx, [terms, ctx.an.rule_terms(m)]):
                continue
            head = next(s for s in ctx.program.of(ast.Discount) if s.name.name == d.name)
            span = ast.Span(head.span.line, head.span.col, head.name.span.end_line, head.name.span.end_col, head.span.start, head.name.span.end)
            out.append(ctx.warn(
                "W640",
                f"discount `{d.name}` takes {_num(share * 100)}% off on purchases where `{m.name}` multiplies points "
                f"({_num(m.factor)}x): together they give away more than half the price",
                span,
                f"keep `{m.name}` off the discounted purchases (a condition both cannot meet), or lower the discount below "
                f"{_num(DEEP_DISCOUNT * 100)}%",
            ))
            break
    return out


# --- W609: promotions in a `best of` that never compete --------------------------------------------


def never_compete(ctx: _Context) -> list[Diagnostic]:
    """A rule of a `best of` whose event no other rule of the group fires on: a purchase and an
    `on enroll` rule are never on one unit, so grouping them changes nothing."""
    out = []
    for group in ctx.model.groups:
        rules = [ctx.model.rules[i] for i in group]
        for r in rules:
            if not any(o.event == r.event for o in rules if o is not r):
                on = "purchases" if r.event == "purchase" else f"`{r.event}` rows"
                out.append(ctx.warn("W609", f"rule `{r.name}` fires on {on}, and no other rule of its `best of` does: it never competes with them",
                                    ctx.head(r.name), "group rules that fire on the same purchases, or take it out of the `best of`"))
    return out


# --- W608: benefits without a frequency limit -----------------------------------------------------


def unlimited_benefits(ctx: _Context) -> list[Diagnostic]:
    out = []
    for b in ctx.model.benefits:
        if b.times is not None:
            continue
        where = "every matching line of a purchase" if b.scope == "line" and b.event == B.PURCHASE else (
            "every matching purchase" if b.event == B.PURCHASE else f"every `{b.event}` row")
        stmt = next(s for s in ctx.program.of(ast.Benefit) if s.name.name == b.name)
        head = ast.Span(stmt.span.line, stmt.span.col, stmt.name.span.end_line, stmt.name.span.end_col, stmt.span.start, stmt.name.span.end)
        out.append(ctx.warn(
            "W608",
            f"benefit `{b.name}` has no frequency limit, so it is given (and costs {_num(b.cost)} {ctx.model.currency}) on {where}",
            head,
            "add a limit such as `once per year` or `at most 2 times per month`, or silence this with "
            "`# loyalty: ignore[W608]` if every one is meant",
        ))
    return out


# --- W680: a retention that calendar-year status already gives ----------------------------------


def redundant_keep(ctx: _Context) -> list[Diagnostic]:
    """Calendar-year status reached at a row is held to the end of the next year, at least 12 months
    after that row; a `keep` of 12 months or less never holds a level longer."""
    tiers = ctx.program.first(ast.Tiers)
    if tiers is None or tiers.window.n is not None or tiers.window.lifetime:
        return []
    out = []
    for lv, months in zip(tiers.levels, ctx.model.tiers.keep_months, strict=False):
        if lv.keep is not None and 0 < months <= 12:
            out.append(ctx.warn(
                "W680",
                f"`keep {months} months` on `{lv.name.name}` is redundant: calendar-year status is already held to the end of "
                "the next year, at least 12 months after it was reached",
                lv.keep.span,
                "delete the `keep`, or keep the level longer than 12 months",
            ))
    return out


# --- W650, W651: points that expire while still pending --------------------------------------------


def _expires_pending(model: Model, day: dt.date) -> bool:
    """Whether a lot earned on `day` expires before (or at) the start of the day it becomes available."""
    spec = model.expiry
    available = V.start_of(day + dt.timedelta(days=model.pending_days))
    if spec.kind in ("after", "inactive"):  # inactivity: the last purchase's own lot, if nothing follows it
        return V.start_of(V.add_span(day, spec.n, spec.unit)) <= available
    moment = V.lot_expiry(day, spec.kind, spec.n, spec.unit)
    return moment is not None and moment <= available


def pending_past_expiry(ctx: _Context) -> list[Diagnostic]:
    """A pending window (`points available after N days`) as long as the expiry, or reaching past
    a year-end expiry: some points expire before they can ever be spent."""
    model = ctx.model
    stmt = ctx.program.first(ast.Pending)
    if not model.pending_days or model.expiry.kind == "never" or stmt is None:
        return []
    # Every day of four years (a leap-year cycle): month lengths and year ends all occur.
    start = dt.date(2024, 1, 1)
    lost = [d for d in (start + dt.timedelta(days=i) for i in range(1461)) if _expires_pending(model, d)]
    if not lost:
        return []
    spec = model.expiry
    if spec.kind in ("end_of_year", "end_of_next_year"):
        last = sum(1 for d in lost if d.year == 2025)
        return [ctx.warn("W651", f"points become available {model.pending_days} days after they are earned, so those earned in the last "
                                 f"{last} days of a year expire at the year end before they can be spent", stmt.span,
                         "shorten the pending window, or let points expire at the end of the next year (`expire at end of next year`)")]
    return [ctx.warn("W650", f"points become available {model.pending_days} days after they are earned but expire {spec.n} {spec.unit} "
                             f"after {'the last purchase' if spec.kind == 'inactive' else 'they are earned'}, so some expire before they "
                             "can be spent", stmt.span,
                     "make the pending window shorter than the expiry (a return window is usually 14 to 30 days)")]


# --- W652: vouchers worth less a point than the catalog ---------------------------------------------


def cheap_vouchers(ctx: _Context) -> list[Diagnostic]:
    """An automatic voucher worth less a point than a catalog reward: every period's end turns the
    balance into vouchers, so members rarely keep points long enough for the better reward."""
    voucher = ctx.model.voucher
    if voucher is None:
        return []
    rate = voucher.cost / voucher.points
    better = [r for r in ctx.model.rewards if not r.issued_months and r.cost / r.points > rate]
    if not better:
        return []
    best = max(better, key=lambda r: (r.cost / r.points, -r.index))
    stmt = next(s for s in ctx.program.of(ast.Reward) if s.name.name == voucher.name)
    cur = ctx.model.currency
    return [ctx.warn("W652", f"`{voucher.name}` is worth {_num(rate)} {cur} a point, less than `{best.name}` ({_num(best.cost / best.points)} {cur} "
                             "a point): every period's end turns the balance into vouchers, so members rarely save up for the better reward",
                     stmt.span, "raise the voucher's value, or take the better reward out of the catalog")]


# --- W690: a lapse and visits inside it -----------------------------------------------------------

# The most days a span of N months can cover (docs/semantics.md, "Recency"): 31 per month.
_MOST_DAYS = {"days": 1, "months": 31}


def _lower_bound(e, name_test) -> tuple[object, int] | None:
    """(subject, least whole value) of a comparison `SUBJECT >= N` / `SUBJECT > N` (either way
    round) whose subject passes `name_test` and N is a whole number; None otherwise."""
    while isinstance(e, ast.Group):
        e = e.expr
    if not isinstance(e, ast.Compare):
        return None
    op, left, right = e.op, e.left, e.right
    if isinstance(left, ast.Number):
        op, left, right = {"<=": ">=", "<": ">"}.get(op), right, left
    if op not in (">=", ">") or not isinstance(right, ast.Number) or not name_test(left):
        return None
    least = Fraction(right.value)
    least = int(least) + 1 if op == ">" else -(-least.numerator // least.denominator)
    return left, least


def lapse_with_visits(ctx: _Context) -> list[Diagnostic]:
    """A condition asking for a lapse of A days (`days_since_last_purchase >= A`) and for a visit
    in a span no longer than A days (`visits_in(30 days) >= 1`): no purchase is inside the span."""
    out = []
    for r in (*ctx.model.firing, *ctx.model.discounts):
        if r.condition is None:
            continue
        parts = _top_and(r.condition)
        lapses = [b for p in parts if (b := _lower_bound(p, lambda n: isinstance(n, ast.Name) and n.name == "days_since_last_purchase"))]
        visits = [b for p in parts if (b := _lower_bound(p, lambda n: isinstance(n, ast.Call) and n.func.name == "visits_in"))]
        for (_, lapse), (call, least) in itertools.product(lapses, visits):
            n, unit = B.window_span(call)
            if least >= 1 and n * _MOST_DAYS[unit] <= lapse:
                span = f"{n} {unit}"
                stmt = next(s for s in ctx.program.statements if isinstance(s, (ast.Earn, ast.Discount, ast.Benefit)) and s.name.name == r.name)
                head = ast.Span(stmt.span.line, stmt.span.col, stmt.name.span.end_line, stmt.name.span.end_col, stmt.span.start, stmt.name.span.end)
                out.append(ctx.warn(
                    "W690",
                    f"`{r.name}` can never apply: a member whose last purchase was {lapse} days or more ago has no visit in the last {span}, "
                    f"so `visits_in({span}) >= {least}` is false whenever `days_since_last_purchase >= {lapse}` holds",
                    head,
                    f"count the visits over a span longer than the lapse: `visits_in(365 days) >= {least} and days_since_last_purchase >= {lapse}`",
                ))
                break
    return out


def _top_and(e) -> list:
    while isinstance(e, ast.Group):
        e = e.expr
    if isinstance(e, ast.BoolOp) and e.op == "and":
        return [c for o in e.operands for c in _top_and(o)]
    return [e]


# --- W660, W661: paying with points ---------------------------------------------------------------


def paying_with_points(ctx: _Context) -> list[Diagnostic]:
    """W660: a minimum balance below one step (it never stops a payment the step allows); W661:
    a point pays more at the till than the program's `point_cost` (what the liability and the
    reward cost value a point at), so both understate what points cost."""
    spec, stmt = ctx.model.pay_with_points, ctx.program.first(ast.PayWithPoints)
    if spec is None or stmt is None:
        return []
    out = []
    cur = ctx.model.currency
    if stmt.minimum is not None and spec.minimum < spec.points:
        out.append(ctx.warn(
            "W660", f"paying with points needs a balance of {spec.minimum} points, less than one step of {spec.points}: "
                    "a smaller balance pays nothing anyway, so the minimum changes nothing", stmt.minimum.span,
            f"raise the minimum to {spec.points} points or more (`from {max(spec.points, 500)} points`), or leave it out"))
    per_point = spec.value / spec.points
    if ctx.model.point_cost > 0 and per_point > ctx.model.point_cost:
        out.append(ctx.warn(
            "W661", f"at the till a point pays {_num(per_point)} {cur}, more than the `point_cost` of {_num(ctx.model.point_cost)} {cur}: "
                    "the liability, valued at point_cost, understates what points paid at the till cost", stmt.value.span,
            f"set `point_cost {_num(per_point)} {cur}` (what a point pays at the till), or pay less a step"))
    return out


CHECKS = (never_fires, stacking, no_expiry, giveaways, unaffordable, earn_rate, non_monotone, discount_with_multiplier,
          unlimited_benefits, never_compete, pending_past_expiry, cheap_vouchers, redundant_keep, lapse_with_visits, paying_with_points)
