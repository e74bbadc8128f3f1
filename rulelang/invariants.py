"""Asserts and built-in invariants over one history: what `loyalty test` checks (docs/invariants.md).

A history runs through the reference interpreter with an observer, which gives, per unit (a
basket or a single row), the tier before it and each rule's exact points. Asserts are evaluated
after every purchase basket and event row; the built-in invariants are checked on the ledger
(balances, lots, caps, frequency limits) and by re-running changed histories (a full refund, a
larger purchase). Every check returns `Violation`s, the first of which `loyalty test` reports.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from fractions import Fraction

import pandas as pd

from rulelang import ast, interpret
from rulelang import builtins as B
from rulelang import values as V
from rulelang.engine import data
from rulelang.fmt import format_expr
from rulelang.lint import non_monotone_rules
from rulelang.model import PAY_WITH_POINTS, Model, names_in

PERIODS = ("day", "week", "month", "year")


@dataclass(frozen=True)
class Violation:
    """One broken invariant: which check, what happened, at which input row (0-based), whose fault."""

    check: str
    message: str
    row: int = -1
    rule: str | None = None
    span: ast.Span | None = None
    values: tuple = ()  # (name, shown value) pairs of what an assert read


@dataclass
class Observed:
    """A history's run: the validated batch, the ledger and the interpreter's unit records."""

    batch: data.Batch
    ledger: pd.DataFrame
    records: list = field(default_factory=list)


def observe(model: Model, transactions: pd.DataFrame, customers=None, until=None) -> Observed:
    """Run the reference interpreter over a history, keeping every unit record."""
    batch = data.prepare(transactions, model, customers, until)
    records: list = []
    ledger = interpret.run(model, batch, None, observer=records.append)
    return Observed(batch, ledger, records)


# --- asserts ------------------------------------------------------------------------------------


def _env(model: Model, obs: Observed, rec, enrolled: dict, without: str | None = None) -> V.Env:
    """What an assert reads on one unit (see the vocabulary in docs/invariants.md); `without`
    takes one rule's points away, to find the rule responsible for a failure."""
    first = rec.rows[0]
    less = rec.issued.get(without, 0) if without else 0
    day = first["timestamp"].date()
    scale = 10**obs.batch.decimals
    total = Fraction(sum(int(r["amount"]) for r in rec.rows), scale)
    tiers = {n: V.Tier(i, n) for i, n in enumerate(model.tiers.names)} if model.tiers else {}
    variables = {
        "amount": total,
        # What the member paid after the program's discounts (a unit no discount touched: its amount).
        "paid": Fraction(sum(int(rec.paid.get(int(r["row"]), r["amount"])) for r in rec.rows), scale),
        "date": day,
        "weekday": V.Weekday(day.weekday()),
        "tier": rec.tier_before if rec.tier_before is not None else V.MISSING,
        "event": first["event"],
        "point_cost": model.point_cost,
        "points": Fraction(sum(rec.issued.values()) - less),
        # The unit's own points are pending when the program has a pending window (earned today).
        "balance": Fraction(rec.balance - (0 if model.pending_days else less)),
        "pending": Fraction(rec.pending - (less if model.pending_days else 0)),
        **{f"points_this_{p}": Fraction(rec.period_points.get(p, 0) - less) for p in PERIODS},
    }
    customer = obs.batch.customers.iloc[rec.member].to_dict()

    def names(name: str):
        # Precedence as in rulelang.builtins: variables, declared columns, columns, tiers,
        # weekdays, then rule names. Line-level columns read the unit's first line.
        if name in variables:
            return variables[name]
        if name in model.columns:
            return V.CELL[model.columns[name]](first.get(name), obs.batch.decimals)
        if name in B.COLUMNS:
            return V.CELL[B.COLUMNS[name].type](first.get(name), obs.batch.decimals)
        if name in tiers:
            return tiers[name]
        if name in B.WEEKDAYS:
            return V.Weekday(B.WEEKDAYS[name])
        if name in rec.exact or any(r.name == name for r in model.rules):
            return Fraction(0) if name == without else rec.exact.get(name, Fraction(0))
        raise KeyError(name)

    def cust(attr: str):
        if attr == "enrolled":
            return enrolled[rec.member]
        if attr == "days_enrolled":
            return Fraction((day - enrolled[rec.member]).days)
        typ = model.customer_columns.get(attr) or B.CUSTOMER[attr].type
        return V.CELL[typ](customer.get(attr), obs.batch.decimals)

    basket = {"total": total, "lines": Fraction(len(rec.rows)), "quantity": _quantity(rec.rows)}
    return V.Env(names, cust, basket, basket_sum=interpret.basket_sum(model, rec.rows, obs.batch.decimals))


def _quantity(rows: list[dict]):
    if not any("quantity" in r for r in rows):
        return Fraction(len(rows))
    qs = [V.cell_number(r.get("quantity")) for r in rows]
    return V.MISSING if V.MISSING in qs else sum(qs, Fraction(0))


def _enrolled(model: Model, batch: data.Batch) -> dict:
    out = {}
    frame = batch.frame
    for member, rows in frame.groupby("member", sort=True):
        customer = batch.customers.iloc[member].to_dict()
        day = V.cell_date(customer.get("enrolled"))
        if day is V.MISSING:
            enroll = rows[rows["event"] == B.ENROLL]
            day = (enroll if len(enroll) else rows)["timestamp"].iloc[0].date()
        out[member] = day
    return out


def check_asserts(model: Model, obs: Observed, statements: tuple = ()) -> list[Violation]:
    """Every assert, after every purchase basket and event row, in processing order."""
    if not model.asserts:
        return []
    spans = [s.span for s in statements] or [None] * len(model.asserts)
    enrolled = _enrolled(model, obs.batch)
    out = []
    for rec in obs.records:
        if not rec.rows or int(rec.rows[0]["kind"]) not in (data.PURCHASE, data.EVENT):
            continue
        env = _env(model, obs, rec, enrolled)
        for expr, span in zip(model.asserts, spans, strict=False):
            if V.truth(expr, env):
                continue
            read = {n: _read(n, env) for n in sorted(names_in(expr, inside_sums=False))}
            read |= {format_expr(node): V.evaluate(node, env) for node in _basket_sums(expr)}
            rule = _blame(model, obs, rec, enrolled, expr)
            out.append(Violation("assert", "", int(rec.rows[0]["row"]), rule, span, tuple((n, V.show(v)) for n, v in read.items())))
    return out


def _basket_sums(expr) -> list:
    """The `basket.total(...)` / `basket.quantity(...)` of an expression, outermost first."""
    out, stack = [], [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.BasketSum):
            out.append(node)
        elif isinstance(node, tuple):  # operands, and an `Arith`'s (operator, operand) pairs
            stack.extend(reversed(node))
        elif dataclasses.is_dataclass(node) and not isinstance(node, ast.Span):
            stack.extend(getattr(node, f.name) for f in reversed(dataclasses.fields(node)))
    return out


def _read(name: str, env: V.Env):
    if "." in name:
        obj, attr = name.split(".", 1)
        return env.customer(attr) if obj == "customer" else env.basket.get(attr, V.MISSING)
    try:
        return env.names(name)
    except KeyError:
        return V.MISSING


def _blame(model: Model, obs: Observed, rec, enrolled: dict, expr) -> str | None:
    """The rule whose points alone make the difference: of the rules that earned on the unit and
    without whose points the assert would hold, the last declared (bonuses and multipliers are
    layered on the rules before them); else the rule that earned most."""
    earned = [r for r in model.rules if rec.exact.get(r.name, 0) > 0 or rec.issued.get(r.name, 0) > 0]
    fixes = [r for r in earned if V.truth(expr, _env(model, obs, rec, enrolled, without=r.name))]
    if not earned:
        return None
    if fixes:
        return fixes[-1].name
    return max(earned, key=lambda r: rec.exact.get(r.name, 0)).name


# --- built-in invariants on the ledger ---------------------------------------------------------


def check_ledger(model: Model, obs: Observed) -> list[Violation]:
    """Balances never negative, lots never overdrawn, redemptions at their price, clawbacks no more
    than was issued, caps and frequency limits held."""
    out: list[Violation] = []
    led = obs.ledger
    prices = {r.name: r.points for r in model.rewards}
    signed = (led["kind"].map(interpret.ledger.SIGN) * led["points"]).to_numpy()
    frame = obs.batch.frame
    refund_of = dict(zip(frame["row"], frame["refund_of"], strict=True))
    unit_row = frame.groupby("unit")["row"].first().to_dict()
    for _, posts in led.groupby("customer_id", sort=False):
        balance = 0
        lots: dict = {}
        issued: dict = {}
        clawed: dict = {}
        redeemed: dict = {}
        caps: dict = {}
        firings: dict = {}
        for pos, p in zip(posts.index, posts.itertuples(index=False), strict=True):
            row, pts, kind = int(p.row), int(p.points), p.kind
            if pts < 0:
                out.append(Violation("ledger", f"a `{kind}` posting has negative points ({pts})", row, p.rule or None))
            balance += int(signed[led.index.get_loc(pos)])
            if balance < 0:
                out.append(Violation("balance", f"the balance went negative ({balance}) on a `{kind}` posting", row, p.rule or None))
            if kind in ("earn", "clawback", "redeem", "expire"):
                lot = p.earned_on
                lots[lot] = lots.get(lot, 0) + (pts if kind == "earn" else -pts)
                if lots[lot] < 0:
                    out.append(Violation("ledger", f"a `{kind}` posting took more points from the lot of {_day(lot)} than it held", row, p.rule or None))
            if kind == "earn":
                issued[(row, p.rule)] = issued.get((row, p.rule), 0) + pts
                day = p.timestamp.date()
                for limit, period in model.limits:
                    key = (limit, period, V.period_key(day, period))
                    caps[key] = caps.get(key, 0) + pts
                    if caps[key] > limit:
                        out.append(Violation("cap", f"{caps[key]} points were issued this {period}, over `limit {limit} points per {period}`", row, p.rule))
            if kind in ("earn", "capped") and p.rule:
                r = model.rule(p.rule)
                if r.times is not None:
                    key = (r.name, V.period_key(p.timestamp.date(), r.per))
                    firings.setdefault(key, set()).add(row)
                    if len(firings[key]) > r.times:
                        per = f" per {r.per}" if r.per else ""
                        out.append(Violation("frequency", f"rule `{r.name}` fired {len(firings[key])} times, over its limit of {r.times}{per}", row, r.name))
            if kind in ("clawback", "shortfall"):
                basket = unit_row.get(int(refund_of.get(row, -1)), -1)
                key = (basket, p.rule)
                clawed[key] = clawed.get(key, 0) + pts
                if clawed[key] > issued.get(key, 0):
                    out.append(Violation("refund", f"refunds clawed back {clawed[key]} points of `{p.rule}`, but the basket was issued {issued.get(key, 0)}", row, p.rule))
            if kind == "redeem":
                # An automatic voucher (no row) is keyed by its moment: a period end issues several.
                key = (row, p.reward, p.timestamp if row < 0 else None)
                redeemed[key] = redeemed.get(key, 0) + pts
        automatic = {r.name for r in model.rewards if r.issued_months}
        for (row, reward, moment), pts in redeemed.items():
            if reward == PAY_WITH_POINTS:  # a payment at the till: as many points as it paid with (check_payments)
                continue
            if moment is not None and reward in automatic:
                if pts % prices[reward]:
                    out.append(Violation("ledger", f"the `{reward}` vouchers of {moment} took {pts} points, not a multiple of their "
                                                   f"{prices[reward]}", row))
            elif pts != prices[reward]:
                out.append(Violation("ledger", f"redeeming `{reward}` took {pts} points, but it costs {prices[reward]}", row))
    return out


def _day(v) -> str:
    return "(no lot)" if pd.isna(v) else str(pd.Timestamp(v).date())


# --- built-in invariants by re-running a changed history ---------------------------------------


def _units(batch: data.Batch) -> list[dict]:
    """The units of a batch in processing order: first input row, member, kind, total, input rows."""
    f = batch.frame
    out: list[dict] = []
    for unit, row, member, kind, amount in zip(f["unit"].tolist(), f["row"].tolist(), f["member"].tolist(), f["kind"].tolist(), f["amount"].tolist(), strict=True):
        if out and out[-1]["unit"] == unit:
            out[-1]["total"] += amount
            out[-1]["rows"].append(row)
        else:
            out.append({"unit": unit, "row": row, "member": member, "kind": kind, "total": amount, "rows": [row]})
    return out


def refund_neutral(model: Model) -> bool:
    """Whether removing a basket leaves every later row's earning unchanged (see docs/invariants.md)."""
    reads = set().union(*(r.names for r in model.rules)) if model.rules else set()
    return (
        model.tiers is None
        and not model.limits
        and all(r.times is None for r in model.rules)
        and model.expiry.kind != "inactive"
        and not reads & {"customer.enrolled", "customer.days_enrolled"}
    )


def check_discounts(model: Model, obs: Observed) -> list[Violation]:
    """Discounts never take a line below 0 or raise its price, the basket's `discount` postings add
    up to what its lines were taken off, and refunds never reverse more of a discount than it gave."""
    if not model.discounts:
        return []
    out: list[Violation] = []
    given: dict = {}  # (member, basket's unit, discount) -> cost left after reversals
    for rec in obs.records:
        if not rec.rows:
            continue
        first = int(rec.rows[0]["row"])
        if rec.paid:
            off = 0
            for r in rec.rows:
                amount, paid = int(r["amount"]), int(rec.paid.get(int(r["row"]), r["amount"]))
                if paid < min(amount, 0) or paid > amount:
                    out.append(Violation("discount", f"a line of {amount} minor units was charged {paid} after discounts", int(r["row"])))
                off += amount - paid
            posted = sum(p.cost for p in rec.postings if p.kind == "discount")
            if rec.payment is not None and rec.payment.outcome == "paid":  # what points paid is no discount (check_payments)
                off -= rec.payment.money
            if posted != off:
                out.append(Violation("discount", f"the basket's discount postings cost {posted} minor units, but its lines were taken {off} off", first))
        for p in rec.postings:
            if p.kind != "discount":
                continue
            unit = int(rec.rows[0]["unit"]) if p.cost > 0 else int(rec.rows[0]["refund_of"])  # the basket it was given on
            key = (rec.member, unit, p.rule)
            given[key] = given.get(key, 0) + p.cost
            if given[key] < 0:
                out.append(Violation("discount", f"refunds reversed more of `{p.rule}` than it gave", first, p.rule))
    return out


def check_refund(model: Model, transactions: pd.DataFrame, customers=None, base: Observed | None = None) -> list[Violation]:
    """A full refund right after a basket leaves the balance as if the basket never happened."""
    base = base or observe(model, transactions, customers)
    units = _units(base.batch)
    firsts = {u["member"]: u["unit"] for u in reversed(units)}
    lasts = {u["member"]: u["unit"] for u in units}
    buys = [u for u in units if u["kind"] == data.PURCHASE and u["total"] > 0]
    # The points a basket paid with are not given back by its refund (docs/semantics.md, "Paying
    # with points"): such a basket is not a candidate, and a recorded payment after the basket
    # could be declined without it, so then only a member's last basket is.
    paid = _points_paid(model, base)
    buys = [u for u in buys if not any(paid.get(int(r), 0) for r in u["rows"])]
    if refund_neutral(model) and not any(paid.values()):
        candidates = [u for u in buys if firsts[u["member"]] != u["unit"]]
    else:
        candidates = [u for u in buys if lasts[u["member"]] == u["unit"]]
    if not candidates:
        return []
    u = candidates[0]
    tx = transactions.reset_index(drop=True).copy()
    lines = [int(r) for r in u["rows"]]
    if "transaction_id" not in tx.columns:
        tx["transaction_id"] = ""
    tx["transaction_id"] = tx["transaction_id"].astype(object).where(tx["transaction_id"].notna(), "")
    txid = str(tx.at[lines[0], "transaction_id"]) or "__refund_check"
    tx.loc[lines, "transaction_id"] = txid
    refund = tx.loc[[lines[0]]].copy()
    refund["event"] = B.REFUND
    refund["amount"] = float(Fraction(int(u["total"]), 10**base.batch.decimals))
    if "reward" in refund.columns:
        refund["reward"] = ""
    at = lines[-1] + 1
    with_refund = pd.concat([tx.iloc[:at], refund, tx.iloc[at:]], ignore_index=True)
    without = tx.drop(index=lines).reset_index(drop=True)
    until = base.batch.until
    cid = base.batch.customers["customer_id"].iloc[int(u["member"])]
    got = _balance(observe(model, with_refund, customers, until).ledger, cid)
    want = _balance(observe(model, without, customers, until).ledger, cid) if len(without) else 0
    if got == want:
        return []
    return [Violation("refund", f"a full refund of the basket at row {lines[0] + 1} left the balance at {got}, "
                      f"but without that basket it would be {want}", lines[0], None)]


def _points_paid(model: Model, obs: Observed) -> dict:
    """Batch row -> the points the history records it paid with (none: empty)."""
    frame = obs.batch.frame
    if model.pay_with_points is None or data.POINTS_PAID not in frame.columns:
        return {}
    return dict(zip(frame["row"].tolist(), frame[data.POINTS_PAID].tolist(), strict=True))


def check_payments(model: Model, obs: Observed) -> list[Violation]:
    """Paying with points: a payment's postings spend exactly the points it paid with and carry the
    money they paid, and that money is taken off what the lines cost (`paid`) without taking a
    line below 0 (check_ledger holds the balance and the lots)."""
    if model.pay_with_points is None:
        return []
    out: list[Violation] = []
    for rec in obs.records:
        pay = rec.payment
        if not rec.rows or pay is None or pay.outcome != "paid":
            continue
        first = int(rec.rows[0]["row"])
        posts = [p for p in rec.postings if p.kind == "redeem" and p.reward == PAY_WITH_POINTS]
        if sum(p.points for p in posts) != pay.points or sum(p.cost for p in posts) != pay.money:
            out.append(Violation("payment", f"paying {pay.points} points for {pay.money} minor units posted "
                                 f"{sum(p.points for p in posts)} points and {sum(p.cost for p in posts)} minor units", first))
        left = sum(rec.paid.values())
        if left < 0 or any(v > int(r["amount"]) for r, v in zip(rec.rows, (rec.paid[int(r["row"])] for r in rec.rows), strict=True)):
            out.append(Violation("payment", f"after paying {pay.money} minor units with points a line cost more than its price, or the basket less than 0", first))
    return out


def _balance(ledger: pd.DataFrame, cid) -> int:
    b = interpret.ledger.balances(ledger)
    return int(b.get(cid, 0))


def check_monotone(model: Model, transactions: pd.DataFrame, customers=None, base: Observed | None = None) -> list[Violation]:
    """Spending more on one purchase line never earns that purchase fewer points."""
    if non_monotone_rules(model):
        return []  # the program says so itself, and `check` warns about it (W607)
    base = base or observe(model, transactions, customers)
    units = _units(base.batch)
    buys = [u for u in units if u["kind"] == data.PURCHASE]
    if not buys:
        return []
    u = buys[-1]
    line = int(u["rows"][0])
    tx = transactions.reset_index(drop=True).copy()
    old = Fraction(str(tx.at[line, "amount"]))
    new = old * 2 + 1
    tx["amount"] = tx["amount"].astype(float)
    tx.at[line, "amount"] = float(new)
    after = observe(model, tx, customers, base.batch.until)
    row = int(u["row"])
    before_by = _issued(base.ledger, row)
    after_by = _issued(after.ledger, row)
    if sum(after_by.values()) >= sum(before_by.values()):
        return []
    drop = max(before_by, key=lambda r: before_by[r] - after_by.get(r, 0))
    return [Violation("monotone", f"raising the amount at row {line + 1} from {V.show_number(old)} to {V.show_number(new)} "
                      f"lowered that purchase's points from {sum(before_by.values())} to {sum(after_by.values())}", row, drop)]


def _issued(ledger: pd.DataFrame, row: int) -> dict:
    e = ledger[(ledger["kind"] == "earn") & (ledger["row"] == row)]
    return e.groupby("rule")["points"].sum().to_dict()


# --- one history ------------------------------------------------------------------------------


def check_history(model: Model, transactions: pd.DataFrame, customers=None, statements: tuple = (), metamorphic: bool = True) -> tuple[Observed, list[Violation]]:
    """Run a history and check every assert and built-in invariant on it."""
    obs = observe(model, transactions, customers)
    found = check_asserts(model, obs, statements) + check_ledger(model, obs) + check_discounts(model, obs) + check_payments(model, obs)
    if metamorphic and not found:
        found = check_refund(model, transactions, customers, obs) or check_monotone(model, transactions, customers, obs)
    return obs, found



# --- the search -------------------------------------------------------------------------------

SHRINK_CALLS = 400  # past this many calls after the first failure, stop trying to shrink further


@dataclass
class Outcome:
    """What `search` found: how many histories it tried and, on failure, the smallest it found."""

    tried: int
    violation: Violation | None = None
    transactions: pd.DataFrame | None = None
    customers: pd.DataFrame | None = None
    ledger: pd.DataFrame | None = None


class _Found(Exception):
    pass


def search(model: Model, statements: tuple = (), examples: int = 100, seed: int = 0, progress=None) -> Outcome:
    """Generate program-shaped histories with Hypothesis; the shrunk first violation, if any.
    Deterministic for a given seed. `progress(n)`, if given, is told of each history tried
    (shrinking a failure is not counted); it changes nothing that is generated."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as with_seed

    from rulelang.strategies import history, shape

    state = {"tried": 0, "since_failure": None, "found": None}

    @with_seed(seed)
    @settings(database=None, max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck),
              verbosity=Verbosity.quiet, phases=(Phase.generate, Phase.shrink), print_blob=False, derandomize=False)
    @given(history(model, shape(model)))
    def probe(case):
        if state["since_failure"] is not None:
            state["since_failure"] += 1
            if state["since_failure"] > SHRINK_CALLS:
                return  # good enough: keep the smallest failure found so far
        else:
            state["tried"] += 1
            if progress is not None:
                progress(1)
        tx, cust = case
        try:
            obs, found = check_history(model, tx, cust, statements)
        except Exception as exc:  # an engine crash is a finding too, reported with its history
            obs, found = None, [Violation("crash", f"{type(exc).__name__}: {exc}")]
        if found:
            if state["since_failure"] is None:
                state["since_failure"] = 0
            state["found"] = Outcome(state["tried"], found[0], tx, cust, obs.ledger if obs else None)
            raise _Found

    try:
        probe()
    except Exception:
        # _Found after shrinking; or Hypothesis calling the replay flaky once shrinking stopped.
        if state["found"] is None:
            raise
        return _smaller_amounts(model, statements, state["found"])
    return Outcome(state["tried"])


def _smaller_amounts(model: Model, statements: tuple, found: Outcome) -> Outcome:
    """Lower each purchase amount as far as the same check still fails (a binary search): Hypothesis
    shrinks amounts drawn from the program's edge values only to the next edge."""
    best = found
    tx = found.transactions
    scale = 10**model.decimals
    for i in range(len(tx)):
        if tx.at[i, "event"] != B.PURCHASE:
            continue
        lo, hi = 0, round(float(best.transactions.at[i, "amount"]) * scale)
        while lo < hi:
            mid = (lo + hi) // 2
            trial = best.transactions.copy()
            trial.at[i, "amount"] = mid / scale
            try:
                obs, got = check_history(model, trial, best.customers, statements)
            except Exception:  # noqa: BLE001 - a crash is not the failure being minimised
                got = []
            if got and got[0].check == best.violation.check and got[0].rule == best.violation.rule:
                best, hi = Outcome(best.tried, got[0], trial, best.customers, obs.ledger), mid
            else:
                lo = mid + 1
    return best


# --- reporting --------------------------------------------------------------------------------

WHAT = {
    "assert": "assertion failed",
    "balance": "built-in invariant: balances never go negative",
    "ledger": "built-in invariant: the ledger identity",
    "cap": "built-in invariant: caps hold",
    "frequency": "built-in invariant: frequency limits hold",
    "refund": "built-in invariant: a full refund returns the balance",
    "discount": "built-in invariant: discounts stay within the price",
    "monotone": "built-in invariant: spending more never earns fewer points",
    "crash": "the evaluator failed",
}


def describe(v: Violation, model: Model, source_text: str) -> list[str]:
    """A violation as lines of text: what broke, where, the values read, the rule responsible."""
    out = []
    if v.check == "assert" and v.span is not None:
        text = source_text[v.span.start : v.span.end] if v.span.end > v.span.start else "assert ..."
        out.append(f"{WHAT['assert']}: {text}  (line {v.span.line})")
        where = f"row {v.row + 1}" if v.row >= 0 else "the end of the history"
        out.append(f"  at {where}: " + ", ".join(f"{n} = {val}" for n, val in v.values))
    else:
        out.append(f"{WHAT.get(v.check, v.check)}")
        out.append(f"  {'at row ' + str(v.row + 1) + ': ' if v.row >= 0 else ''}{v.message}")
    if v.rule:
        rule = next((r for r in model.rules if r.name == v.rule), None)
        line = f" (line {rule.span.line})" if rule is not None and rule.span.line else ""
        out.append(f"  rule responsible: {v.rule}{line}")
    return out


def transactions_table(tx: pd.DataFrame, decimals: int, customers: pd.DataFrame | None = None) -> str:
    """The history as a small table: 1-based rows, blank columns left out."""
    t = tx.reset_index(drop=True).copy()
    t.insert(0, "row", range(1, len(t) + 1))
    t["timestamp"] = pd.to_datetime(t["timestamp"]).dt.strftime("%Y-%m-%d %H:%M")
    t["amount"] = t["amount"].map(lambda a: f"{float(a):.{decimals}f}")
    keep = [c for c in t.columns if c != "customer_id" and not (t[c].astype(str).str.strip().isin(["", "nan", "None"])).all()]
    out = t[keep].to_string(index=False)
    if customers is not None and len(customers):
        c = customers.copy()
        for col in c.columns:
            if pd.api.types.is_datetime64_any_dtype(c[col]):
                c[col] = c[col].dt.strftime("%Y-%m-%d").fillna("(none)")
        out += "\n\ncustomer:\n" + c.to_string(index=False)
    return out


def ledger_table(ledger: pd.DataFrame) -> str:
    """The ledger as a small table (rows 1-based, `-` for expiry)."""
    if ledger is None or ledger.empty:
        return "(no postings)"
    t = ledger.copy()
    t["timestamp"] = t["timestamp"].dt.strftime("%Y-%m-%d %H:%M")
    t["earned_on"] = t["earned_on"].dt.strftime("%Y-%m-%d").fillna("")
    t["row"] = t["row"].map(lambda r: "-" if r < 0 else str(r + 1))
    cols = ["timestamp", "kind", "rule", "points", "earned_on", "reward", "row"]
    cols = [c for c in cols if c in ("timestamp", "kind", "points", "row") or (t[c].astype(str) != "").any()]
    return t[cols].to_string(index=False)
