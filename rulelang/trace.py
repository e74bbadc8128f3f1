"""`loyalty trace`: why one member got the points they got, row by row.

Runs the reference interpreter on one member with an observer and prints, for every row: the
tier before and after, each rule's outcome with the values that made its condition true or false,
exact and rounded points, caps, expiries, redemptions and the balance after.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re

import numpy as np
import pandas as pd

from rulelang import ast, interpret
from rulelang import builtins as B
from rulelang import values as V
from rulelang.engine import budgets
from rulelang.engine.data import parse_datetimes, prepare
from rulelang.errors import LoyaltyError, visible


def find_member(customer_ids, wanted: str) -> int:
    """The member index of a customer id given as text; a clear error with did-you-mean if none."""
    texts = [str(c) for c in customer_ids]
    if wanted in texts:
        return texts.index(wanted)
    close = difflib.get_close_matches(wanted, texts, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(f'`{c}`' for c in close)}?" if close else ""
    sample = ", ".join(texts[:5]) + (" ..." if len(texts) > 5 else "")
    raise LoyaltyError(f"customer `{wanted}` has no rows in the transactions{hint} (customers: {sample or 'none'})")


def _source(node, text: str) -> str:
    span = getattr(node, "span", ast.NO_SPAN)
    if not (span.end > span.start and text):
        return "?"
    end = span.end
    # A comparison whose right side is a call or list can end before its closing bracket.
    for opening, closing in ("()", "[]"):
        while text.count(opening, span.start, end) > text.count(closing, span.start, end) and text[end : end + 1] == closing:
            end += 1
    # A condition written over several lines is shown on one.
    return re.sub(r"\s*\n\s*", " ", text[span.start : end])


def _comparison(node, left, right, result, text: str) -> str:
    if isinstance(node, ast.In):
        word = "not in" if node.negated else "in"
        shown = f"{V.show(left)} {word} {V.show(right)}"
    else:
        shown = f"{V.show(left)} {node.op} {V.show(right)}"
    return f"{_source(node, text)}  ->  {shown}  {str(result).lower()}"


def _window_days(node, day) -> list[str]:
    """The days each `visits_in` / `spend_in` in a comparison counted, on a row of `day`
    (docs/semantics.md, "Recency")."""
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Call) and n.func.name in B.WINDOWS:
            count, unit = B.window_span(n)
            start = day - dt.timedelta(days=count) if unit == "days" else V.add_months(day, -count)
            out.append(f"{n.func.name}({count} {unit}): {start + dt.timedelta(days=1)} to {day}, before this row")
        else:
            stack.extend(reversed(ast.subexpressions(n)))
    return out


def _time(t) -> str:
    t = pd.Timestamp(t)
    return str(t) if t.nanosecond or t.microsecond else t.strftime("%Y-%m-%d %H:%M:%S" if t.second else "%Y-%m-%d %H:%M")


def _posting(p: interpret.Posting, currency: str, decimals: int) -> str:
    what = {
        "earn": f"earn {p.rule}: +{p.points}",
        "capped": f"capped {p.rule}: {p.points} not issued (limit)",
        "clawback": f"clawback {p.rule}: -{p.points}",
        "shortfall": f"shortfall {p.rule}: {p.points} could not be clawed back",
        "redeem": f"redeem {p.reward}: -{p.points}",
        "expire": f"expire: -{p.points}",
        "discount": f"discount {p.rule}" + (" reversed" if p.cost < 0 else ""),
        "benefit": f"benefit {p.rule}",
    }[p.kind]
    lot = f" (lot {p.earned_on})" if p.earned_on else ""
    money = ""
    if p.cost:
        money += f", cost {V.show_number(V.Fraction(p.cost, 10**decimals))} {currency}"
    if p.partner_share:
        money += f", partner pays {V.show_number(V.Fraction(p.partner_share, 10**decimals))} {currency}"
    return what + lot + money


def _file_row(row, position: int | None = None) -> int:
    """The 1-based data row in the file: the loader's `source_row` (simulator.io numbers data rows
    from 1, as `simulate --rejects` and its load report do), else the row's input position."""
    if position is not None:
        row = next(r for r in row if int(r["row"]) == position)
    return int(row["source_row"]) if "source_row" in row else int(row["row"]) + 1


def render(rec: interpret.UnitRecord, model, text: str, decimals: int) -> list[str]:
    """The lines of one unit's trace."""
    out: list[str] = []
    for p in rec.expired:
        out.append(f"{_time(p.timestamp)}  {_posting(p, model.currency, decimals)}")
    if not rec.rows:
        out.append(_balance_line(rec, model))
        return out
    first = rec.rows[0]
    amount = sum(V.Fraction(int(r["amount"]), 10**decimals) for r in rec.rows)
    rows = ", ".join(str(_file_row(r)) for r in rec.rows)
    what = first["reward"] if first["event"] == "redeem" else f"{V.show_number(amount)} {model.currency}"
    head = f"{_time(first['timestamp'])}  {first['event']}  {what}  (row {rows})"
    if rec.tier_before is not None:
        head += f"  tier {rec.tier_before} -> {rec.tier_after}"
    out.append(head)
    if rec.tier_window:  # what the tier after the unit was decided by
        window = "this calendar year" if model.tiers.window == "calendar_year" else (
            "the member's lifetime" if model.tiers.window == "lifetime" else f"the last {model.tiers.n} {model.tiers.window}")
        shown = ", ".join(f"{metric} {V.show_number(v)}" + (f" {model.currency}" if metric == "spend" else "") for metric, v in rec.tier_window.items())
        out.append(f"  tier window ({window}): {shown}")
    out += _discounts(rec, model, text, decimals)
    out += _payment(rec, model, decimals)
    order = {r.name: r.index for r in model.firing}
    for check in sorted(rec.checks, key=lambda c: (c.row, order[c.rule])):
        scope = model.rule(check.rule).scope
        line = (" (basket)" if scope == "basket" else f" line {_file_row(rec.rows, check.row)}") if len(rec.rows) > 1 else ""
        rule = model.rule(check.rule)
        shown = check.outcome == "fired" or check.outcome.endswith("(best of)")  # what it earned, or would have
        points = f": {V.show_number(check.exact)} points" if shown and rule.kind != "benefit" else ""
        if rule.kind == "per_unit" and check.outcome == "fired":  # what the line's quantity counted for
            points += f" ({V.show_number(check.exact / rule.points)} units x {V.show_number(rule.points)})"
        out.append(f"  {check.rule}{line}: {check.outcome}{points}")
        for node, left, right, result in check.comparisons:
            out.append(f"      {_comparison(node, left, right, result, text)}")
            out += [f"        {w}" for w in _window_days(node, first["timestamp"].date())]
    for kept, points, lost in rec.best_of:
        others = ", ".join(f"{name} {V.show_number(x)}" for name, x in lost)
        out.append(f"  best of: {kept} keeps the unit with {V.show_number(points)} points" + (f"; lost: {others}" if others else ""))
    if rec.exact:
        parts = ", ".join(f"{k} {V.show_number(v)}" for k, v in rec.exact.items() if v)
        out.append(f"  exact {V.show_number(rec.total_exact)}" + (f" ({parts})" if parts else "")
                   + f"; round {model.rounding} -> {rec.rounded}")
        if rec.rounded:
            out.append("  attributed: " + ", ".join(f"{k} {v}" for k, v in rec.shares.items() if v))
        if rec.room is not None:
            out.append(f"  caps: room {rec.room}, issued {sum(rec.issued.values())}, capped {sum(rec.capped.values())}")
    given = ", ".join(f"{name} x{n}" for name, n in rec.benefits.items() if n)
    if given:  # what the benefits cost is on their postings below
        out.append(f"  benefits given: {given}")
    if rec.declined:
        out.append(f"  redemption of {first['reward']} declined: the {'available ' if model.pending_days else ''}balance cannot afford it")
    for p in rec.postings:
        out.append(f"  {_posting(p, model.currency, decimals)}")
    out.append(_balance_line(rec, model))
    return out


def _balance_line(rec: interpret.UnitRecord, model) -> str:
    """The balance after a unit; with pending points (`points available after`), what could be
    spent and what was still pending apart."""
    if not model.pending_days:
        return f"  balance {rec.balance}"
    return f"  balance {rec.balance} available, {rec.pending} pending (available {model.pending_days} days after the day earned)"


def _discounts(rec: interpret.UnitRecord, model, text: str, decimals: int) -> list[str]:
    """Each discount on the unit: on which line (a percentage) or the basket (a fixed amount), applied
    with the money it took off, or why not (condition false with its comparisons, outside its
    campaign, limit reached, a larger discount applied); then what the member paid."""
    out: list[str] = []
    kinds = {d.name: d.kind for d in model.discounts}
    for check in rec.discounts:
        where = ""
        if len(rec.rows) > 1:
            where = " (basket)" if kinds[check.discount] == "fixed" else f" line {_file_row(rec.rows, check.row)}"
        money = f": {V.show_number(V.Fraction(check.amount, 10**decimals))} {model.currency} off" if check.outcome.startswith("applied") else ""
        out.append(f"  discount {check.discount}{where}: {check.outcome}{money}")
        # A fixed discount's basket-wide comparisons are the same on every line: shown once.
        for shown in dict.fromkeys(_comparison(node, left, right, result, text) for node, left, right, result in check.comparisons):
            out.append(f"      {shown}")
    if rec.discounts:
        paid = sum(rec.paid.values())
        out.append(f"  paid {V.show_number(V.Fraction(paid, 10**decimals))} {model.currency} (per-spend points and tier spend count this)")
    return out


def _payment(rec: interpret.UnitRecord, model, decimals: int) -> list[str]:
    """A payment with points on the unit: the points, the money they paid and the lots they came
    from (oldest first), and what was left to pay in money; or why it was declined or paid nothing."""
    pay = rec.payment
    if pay is None:
        return []
    source = "recorded" if pay.recorded else "drawn"
    if pay.outcome != "paid":
        what = f"{pay.points} points ({source}) {pay.outcome}, the purchase stands" if pay.recorded else pay.outcome
        return [f"  pay with points: {what}"]
    lots = ", ".join(f"{n} of the lot of {day}" for day, n in pay.lots)
    left = sum(rec.paid.values())
    return [f"  pay with points ({source}): {pay.points} points pay {V.show_number(V.Fraction(pay.money, 10**decimals))} {model.currency}, "
            f"from {lots}",
            f"  paid in money {V.show_number(V.Fraction(left, 10**decimals))} {model.currency} (per-spend points and tier spend count this)"]


# Said at the top and again at the end of every trace: a trace replays recorded history only.
NOT_SIMULATED = (
    "redemptions are those in the data; the scenario's redemption policy (simulated redemptions) "
    "is not applied in a trace, nor its enrolment or response"
)

def member_rows(transactions: pd.DataFrame, customer_id: str) -> pd.DataFrame:
    """The rows of one customer (by the id's text), with a did-you-mean error if there are none;
    each keeps its place in `transactions` (1-based) as `source_row` unless it has one already."""
    codes, ids = pd.factorize(transactions["customer_id"], sort=True)
    index = find_member([str(c) for c in ids], str(customer_id))
    if "source_row" not in transactions.columns:
        transactions = transactions.assign(source_row=np.arange(1, len(transactions) + 1))
    return transactions[codes == index]


def summary(records: list[interpret.UnitRecord]) -> list[str]:
    """The closing lines: rows traced, points by kind, the balance and tier at the end."""
    points = {kind: 0 for kind in ("earn", "clawback", "redeem", "expire")}
    for rec in records:
        for p in rec.expired + rec.postings:
            if p.kind in points:
                points[p.kind] += int(p.points)
    rows = sum(len(rec.rows) for rec in records)
    tiers = [rec.tier_after for rec in records if rec.tier_after is not None]
    balance = records[-1].balance if records else 0
    line = (f"summary: {rows} row(s) traced; points earned {points['earn']}, clawed back {points['clawback']}, "
            f"redeemed {points['redeem']}, expired {points['expire']}; balance at the end {balance}")
    if records and records[-1].pending:
        line += f" available, {records[-1].pending} pending"
    given = sum(n for rec in records for n in rec.benefits.values())
    if given:
        line += f"; benefits given {given}"
    if tiers:
        line += f"; tier at the end {tiers[-1]}"
    return [line, f"  ({NOT_SIMULATED})"]


def _budgets(model, transactions: pd.DataFrame, customers, until, batch, positions: np.ndarray) -> tuple[dict, list[str]]:
    """A program with budgets: where they ran out over every member of `transactions` (the global
    step, rulelang.engine.budgets, on the compiled engine), as the member's batch numbers its rows,
    and a line per budget saying its state. Without budgets: nothing."""
    if not budgets.budgeted(model):
        return {}, []
    from rulelang.engine.compile import compile_model

    whole = prepare(transactions, model, customers, until)
    cp = compile_model(model)
    closed, done = budgets.settle(model, lambda c: [cp.evaluate(whole, threads=1, closed=c)])
    found = budgets.awards(model, [done[0].ledger])
    lines = []
    unit = {name: "points" if kind == "earn" else model.currency for name, _, kind in budgets.budgeted(model)}
    scale = {name: 1 if kind == "earn" else 10**model.decimals for name, _, kind in budgets.budgeted(model)}
    for f in budgets.figures(model, found, closed):
        amount = lambda x, f=f: f"{V.show_number(V.Fraction(x, scale[f.rule]))} {unit[f.rule]}"  # noqa: E731
        c = closed.get(f.rule)
        where = (f"ran out at {_time(pd.Timestamp(c.ts))}, at customer {c.customer}" if c is not None else "not reached in this history")
        lines.append(f"budget {f.rule}: {amount(f.budget)} for every member together; {amount(f.used)} given; {where}")
    mine = batch.customers["customer_id"].iloc[0] if len(batch.customers) else None
    # The member's own closing row, numbered as their batch numbers its rows (its rows before it).
    local = {name: budgets.Closing(c.ts, c.customer, int(np.searchsorted(positions, c.row)) if c.customer == mine else c.row)
             for name, c in closed.items()}
    return local, lines


def trace(program, transactions: pd.DataFrame, customer_id: str, customers: pd.DataFrame | None = None, until=None) -> str:
    """The trace of one member as text, ending with a summary; control characters escaped.

    Only the member's own rows are validated and replayed (members never affect one another), so
    other customers' rows cannot stop a trace; but a program with budgets reads every member's rows
    first, for where its budgets ran out (members share a budget); `until` (None: the last date-time of all
    `transactions`, as a whole replay ends) is when the last expiries are taken.
    """
    model = program.model
    if until is None and len(transactions):
        until = parse_datetimes(transactions["timestamp"]).max()
        until = None if pd.isna(until) else until
    rows = member_rows(transactions.assign(_position=np.arange(len(transactions))), customer_id)
    batch = prepare(rows.drop(columns="_position"), model, customers, until)
    closed, state = _budgets(model, transactions, customers, until, batch, rows["_position"].to_numpy())
    records: list[interpret.UnitRecord] = []
    interpret.run(model, batch, observer=records.append, members=[0], closed=closed)
    text = program.source.text
    out = [f"{model.name}: customer {batch.customers['customer_id'].iloc[0]}", f"  ({NOT_SIMULATED})", *state]
    for rec in records:
        out += render(rec, model, text, batch.decimals)
    out += summary(records)
    return visible("\n".join(out))
