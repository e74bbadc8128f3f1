"""`loyalty trace`: why one member got the points they got, row by row.

Runs the reference interpreter on one member with an observer and prints, for every row: the
tier before and after, each rule's outcome with the values that made its condition true or false,
exact and rounded points, caps, expiries, redemptions and the balance after.
"""

from __future__ import annotations

import difflib

import pandas as pd

from rulelang import ast, interpret
from rulelang import values as V
from rulelang.data import prepare
from rulelang.errors import LoyaltyError


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
    return text[span.start : end]


def _comparison(node, left, right, result, text: str) -> str:
    if isinstance(node, ast.In):
        word = "not in" if node.negated else "in"
        shown = f"{V.show(left)} {word} {V.show(right)}"
    else:
        shown = f"{V.show(left)} {node.op} {V.show(right)}"
    return f"{_source(node, text)}  ->  {shown}  {str(result).lower()}"


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
    }[p.kind]
    lot = f" (lot {p.earned_on})" if p.earned_on else ""
    money = ""
    if p.cost:
        money += f", cost {V.show_number(V.Fraction(p.cost, 10**decimals))} {currency}"
    if p.partner_share:
        money += f", partner pays {V.show_number(V.Fraction(p.partner_share, 10**decimals))} {currency}"
    return what + lot + money


def _file_row(row, position: int | None = None) -> int:
    """The 1-based data row in the file: `_file_row` when the rows were sorted, else the position."""
    if position is not None:
        row = next(r for r in row if int(r["row"]) == position)
    return int(row["_file_row"]) if "_file_row" in row else int(row["row"]) + 1


def render(rec: interpret.UnitRecord, model, text: str, decimals: int) -> list[str]:
    """The lines of one unit's trace."""
    out: list[str] = []
    for p in rec.expired:
        out.append(f"{_time(p.timestamp)}  {_posting(p, model.currency, decimals)}")
    if not rec.rows:
        out.append(f"  balance {rec.balance}")
        return out
    first = rec.rows[0]
    amount = sum(V.Fraction(int(r["amount"]), 10**decimals) for r in rec.rows)
    rows = ", ".join(str(_file_row(r)) for r in rec.rows)
    what = first["reward"] if first["event"] == "redeem" else f"{V.show_number(amount)} {model.currency}"
    head = f"{_time(first['timestamp'])}  {first['event']}  {what}  (row {rows})"
    if rec.tier_before is not None:
        head += f"  tier {rec.tier_before} -> {rec.tier_after}"
    out.append(head)
    order = {r.name: r.index for r in model.rules}
    for check in sorted(rec.checks, key=lambda c: (c.row, order[c.rule])):
        scope = model.rule(check.rule).scope
        line = (" (basket)" if scope == "basket" else f" line {_file_row(rec.rows, check.row)}") if len(rec.rows) > 1 else ""
        points = f": {V.show_number(check.exact)} points" if check.outcome == "fired" else ""
        out.append(f"  {check.rule}{line}: {check.outcome}{points}")
        for node, left, right, result in check.comparisons:
            out.append(f"      {_comparison(node, left, right, result, text)}")
    if rec.exact:
        parts = ", ".join(f"{k} {V.show_number(v)}" for k, v in rec.exact.items() if v)
        out.append(f"  exact {V.show_number(rec.total_exact)}" + (f" ({parts})" if parts else "")
                   + f"; round {model.rounding} -> {rec.rounded}")
        if rec.rounded:
            out.append("  attributed: " + ", ".join(f"{k} {v}" for k, v in rec.shares.items() if v))
        if rec.room is not None:
            out.append(f"  caps: room {rec.room}, issued {sum(rec.issued.values())}, capped {sum(rec.capped.values())}")
    if rec.declined:
        out.append(f"  redemption of {first['reward']} declined: the balance cannot afford it")
    for p in rec.postings:
        out.append(f"  {_posting(p, model.currency, decimals)}")
    out.append(f"  balance {rec.balance}")
    return out


def trace(program, transactions: pd.DataFrame, customer_id: str, customers: pd.DataFrame | None = None, until=None) -> str:
    """The trace of one member as text."""
    model = program.model
    batch = prepare(transactions, model, customers, until)
    index = find_member(batch.customers["customer_id"].tolist(), str(customer_id))
    records: list[interpret.UnitRecord] = []
    interpret.run(model, batch, observer=records.append, members=[index])
    text = program.source.text
    out = [f"{model.name}: customer {batch.customers['customer_id'].iloc[index]}"]
    for rec in records:
        out += render(rec, model, text, batch.decimals)
    return "\n".join(out)


def read_table(path: str) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame; a clear error if it cannot be read."""
    try:
        if str(path).lower().endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype={"customer_id": str, "transaction_id": str})
    except (OSError, ValueError, ImportError) as exc:
        raise LoyaltyError(f"{path}: cannot read the table: {exc}") from None


def sort_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Sorted stably by customer_id then timestamp (basket lines stay together)."""
    if "customer_id" not in df.columns or "timestamp" not in df.columns:
        return df
    from rulelang.data import parse_datetimes

    key = parse_datetimes(df["timestamp"])
    return df.assign(_ts=key, _file_row=range(1, len(df) + 1)).sort_values(["customer_id", "_ts"], kind="stable").drop(columns="_ts").reset_index(drop=True)
