"""The data contract: transactions and customers are validated once, here, into a `Batch`.

Both evaluators read a `Batch` and nothing else; they never see raw input. Every problem raises
`DataError` naming the column, the rule, and the first failing rows (1-based data rows, header
excluded) with their count. Everything here is column-at-a-time.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rulelang import builtins as B
from rulelang.errors import DataError
from rulelang.model import Model

# Event codes carried in `Batch.frame["kind"]`.
PURCHASE, REFUND, REDEEM, EVENT = 0, 1, 2, 3

REQUIRED = ("customer_id", "timestamp", "amount")


@dataclass(frozen=True)
class RedemptionPolicy:
    """The simulator's redemption behaviour: after each purchase basket, redeem one reward with
    `probability` when affordable, chosen by `cheapest|dearest|random`, using the float draw
    columns `draw` and `choice_draw` of the transactions (values in [0, 1))."""

    probability: float
    choice: str = "cheapest"
    draw: str = "_u_redeem"
    choice_draw: str = "_u_choice"


@dataclass(frozen=True)
class Batch:
    """Validated input, rows grouped by member (members sorted by id), input order kept within.

    frame columns: `row` (0-based input position), `member` (int, 0..members-1, in id order),
    `customer_id`, `timestamp` (datetime64[ns]), `amount` (int64 minor units), `event` (str),
    `kind` (PURCHASE/REFUND/REDEEM/EVENT), `transaction_id` (str, "" if none), `reward` (str),
    `unit` (int: rows of one basket share it; every other row is its own unit), `refund_of`
    (the unit a refund refers to, or -1), and every other input column, unchanged.
    customers: one row per member in `member` order, with `customer_id` and attributes
    (`birthday`, `enrolled` as datetime64[ns] when present).
    """

    frame: pd.DataFrame
    customers: pd.DataFrame
    decimals: int
    until: pd.Timestamp
    members: int


def _rows(mask: np.ndarray, positions: np.ndarray | None = None) -> str:
    idx = np.flatnonzero(mask)
    if positions is not None:
        idx = np.sort(positions[idx])
    shown = ", ".join(str(i + 1) for i in idx[:10])
    more = f" (and {len(idx) - 10} more; {len(idx)} in all)" if len(idx) > 10 else f" ({len(idx)} in all)"
    return f"rows {shown}{more}"


def _suggest(name: str, available) -> str:
    close = difflib.get_close_matches(name, [str(a) for a in available], n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""


def needed_columns(model: Model) -> tuple[set[str], set[str]]:
    """Transaction columns and customer attributes the program's rules read."""
    cols: set[str] = set()
    cust: set[str] = set()
    exprs = [r.condition for r in model.rules if r.condition is not None] + list(model.asserts)
    from rulelang.model import names_in

    for e in exprs:
        for n in names_in(e):
            if n.startswith("customer."):
                attr = n.split(".", 1)[1]
                if attr not in ("enrolled", "days_enrolled"):
                    cust.add(attr)
            elif "." in n:
                continue
            elif n in model.columns or (n in B.COLUMNS and n not in B.VARIABLES):
                cols.add(n)
    if any(r.event == B.PURCHASE and r.scope == "line" for r in model.rules) and "quantity" in cols:
        pass
    return cols, cust


def prepare(transactions: pd.DataFrame, model: Model, customers: pd.DataFrame | None = None, until=None) -> Batch:
    """Validate `transactions` (and `customers`) against the data contract for `model`."""
    if not isinstance(transactions, pd.DataFrame):
        raise DataError(f"transactions must be a pandas DataFrame, not {type(transactions).__name__}")
    df = transactions.reset_index(drop=True)
    n = len(df)
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        avail = ", ".join(map(str, df.columns)) or "none"
        hints = "".join(_suggest(c, df.columns) for c in missing)
        raise DataError(f"transactions lack the column(s) {', '.join(missing)}; available: {avail}{hints}")
    needed, needed_cust = needed_columns(model)
    for col in sorted(needed):
        if col not in df.columns:
            users = [r.name for r in model.rules if col in r.names]
            raise DataError(
                f"column `{col}` is used by rule(s) {', '.join(users) or '(assert)'} but the transactions do not have it; "
                f"available: {', '.join(map(str, df.columns))}{_suggest(col, df.columns)}"
            )

    ids = df["customer_id"]
    bad = ids.isna().to_numpy() | (ids.astype("string").str.strip() == "").fillna(True).to_numpy()
    if bad.any():
        raise DataError(f"column customer_id: empty customer ids at {_rows(bad)}")

    ts = parse_datetimes(df["timestamp"])
    bad = ts.isna().to_numpy()
    if bad.any():
        raise DataError(f"column timestamp: values that are not date-times at {_rows(bad)}; write them like 2026-03-01 14:30:00")
    ts = ts.astype("datetime64[ns]")

    if "event" in df.columns:
        event = df["event"].astype("string").fillna(B.PURCHASE).str.strip().str.lower().replace("", B.PURCHASE)
    else:
        event = pd.Series(B.PURCHASE, index=df.index, dtype="string")
    event = event.astype(object).to_numpy()
    amount = pd.to_numeric(df["amount"], errors="coerce")
    blank = df["amount"].isna().to_numpy() | (df["amount"].astype("string").str.strip() == "").fillna(True).to_numpy()
    # Redeem, enroll and other event rows carry no money: a blank amount there is 0.
    moneyless = ~np.isin(event, [B.PURCHASE, B.REFUND])
    bad = amount.isna().to_numpy() & ~(blank & moneyless)
    if bad.any():
        raise DataError(f"column amount: values that are not numbers at {_rows(bad)}; purchases and refunds need an amount like 12.50")
    amount = amount.fillna(0)
    scale = 10**model.decimals
    minor = np.round(amount.to_numpy(dtype="float64") * scale)
    if np.abs(minor).max(initial=0) > 2**53:
        raise DataError("column amount: amounts too large to hold exactly")
    minor = minor.astype("int64")

    kind = np.full(n, EVENT, dtype=np.int8)
    is_purchase_event = event == B.PURCHASE
    kind[is_purchase_event & (minor >= 0)] = PURCHASE
    kind[(is_purchase_event & (minor < 0)) | (event == B.REFUND)] = REFUND
    kind[event == B.REDEEM] = REDEEM
    if (kind == REFUND).any():
        # Refund amounts are carried as negative numbers whichever way they were written.
        minor = np.where(kind == REFUND, -np.abs(minor), minor)

    txid = df["transaction_id"].astype("string").fillna("").to_numpy(dtype=object) if "transaction_id" in df.columns else np.full(n, "", dtype=object)
    reward = df["reward"].astype("string").fillna("").to_numpy(dtype=object) if "reward" in df.columns else np.full(n, "", dtype=object)
    is_redeem = kind == REDEEM
    if is_redeem.any():
        known = {r.name for r in model.rewards}
        unknown = is_redeem & ~np.isin(reward, list(known))
        if unknown.any():
            first = reward[np.flatnonzero(unknown)[0]]
            raise DataError(
                f"column reward: redeem rows name rewards the program does not have at {_rows(unknown)} "
                f"({f'e.g. `{first}`{_suggest(first, known)}' if first else 'a redeem row needs the reward it redeems'}); "
                f"rewards: {', '.join(sorted(known)) or 'none'}"
            )

    member_codes, member_ids = pd.factorize(ids, sort=True)
    order = np.lexsort((np.arange(n), member_codes))
    tsv = ts.to_numpy()
    m_sorted = member_codes[order]
    t_sorted = tsv[order]
    same_member = np.r_[False, m_sorted[1:] == m_sorted[:-1]]
    backwards = same_member & np.r_[False, t_sorted[1:] < t_sorted[:-1]]
    if backwards.any():
        raise DataError(
            f"column timestamp: rows are not in time order within a customer at {_rows(backwards, order)}; "
            "sort the transactions by customer_id and timestamp (a stable sort keeps basket lines together)"
        )

    k_sorted = kind[order]
    tx_sorted = txid[order]
    purchase = k_sorted == PURCHASE
    prev_same_basket = (
        same_member & purchase & np.r_[False, purchase[:-1]] & (tx_sorted != "") & np.r_[False, tx_sorted[1:] == tx_sorted[:-1]]
    )
    if (prev_same_basket & np.r_[False, t_sorted[1:] != t_sorted[:-1]]).any():
        bad = prev_same_basket & np.r_[False, t_sorted[1:] != t_sorted[:-1]]
        raise DataError(f"column timestamp: lines of one basket (same transaction_id) have different timestamps at {_rows(bad, order)}")
    unit = np.cumsum(~prev_same_basket) - 1

    frame = df.iloc[order].reset_index(drop=True)
    frame = frame.assign(
        row=order.astype("int64"),
        member=m_sorted.astype("int64"),
        timestamp=t_sorted,
        amount=minor[order],
        event=event[order],
        kind=k_sorted,
        transaction_id=tx_sorted,
        reward=reward[order],
        unit=unit.astype("int64"),
    )
    # A transaction_id must not name two separate baskets of one member.
    pk = pd.DataFrame({"member": m_sorted[purchase & (tx_sorted != "")], "tx": tx_sorted[purchase & (tx_sorted != "")], "unit": unit[purchase & (tx_sorted != "")]})
    per_tx = pk.drop_duplicates(["member", "tx", "unit"])
    dup = per_tx.duplicated(["member", "tx"], keep=False)
    if dup.any():
        tx = per_tx.loc[dup, "tx"].iloc[0]
        raise DataError(
            f"column transaction_id: `{tx}` names lines that are not together; the lines of a basket must be consecutive rows "
            "of one customer with one timestamp"
        )
    refund_of = np.full(n, -1, dtype=np.int64)
    is_refund = (k_sorted == REFUND) & (tx_sorted != "")
    if is_refund.any():
        firsts = per_tx.drop_duplicates(["member", "tx"])
        key = pd.DataFrame({"member": m_sorted[is_refund], "tx": tx_sorted[is_refund], "pos": np.flatnonzero(is_refund)})
        matched = key.merge(firsts, on=["member", "tx"], how="inner")
        # Only an earlier basket can be refunded.
        first_pos = np.searchsorted(unit, matched["unit"].to_numpy())
        earlier = first_pos < matched["pos"].to_numpy()
        refund_of[matched["pos"].to_numpy()[earlier]] = matched["unit"].to_numpy()[earlier]
    frame["refund_of"] = refund_of

    members = len(member_ids)
    cust = _prepare_customers(customers, member_ids, needed_cust)
    if until is None:
        until_ts = pd.Timestamp(t_sorted.max()) if n else pd.Timestamp("1970-01-01")
    else:
        until_ts = pd.Timestamp(until)
        if n and until_ts < pd.Timestamp(t_sorted.max()):
            raise DataError(f"until ({until_ts}) is before the last transaction ({pd.Timestamp(t_sorted.max())})")
    return Batch(frame, cust, model.decimals, until_ts, members)


def parse_datetimes(values: pd.Series) -> pd.Series:
    """Date-times from ISO 8601 text (or already datetimes); what cannot be parsed becomes NaT."""
    if pd.api.types.is_datetime64_any_dtype(values):
        out = values
    else:
        out = pd.to_datetime(values, errors="coerce", format="ISO8601")
        retry = out.isna() & values.notna()
        if retry.any():
            out = out.where(~retry, pd.to_datetime(values[retry].astype(str), errors="coerce", format="mixed"))
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_localize(None)
    return out


def _prepare_customers(customers: pd.DataFrame | None, member_ids, needed: set[str]) -> pd.DataFrame:
    base = pd.DataFrame({"customer_id": member_ids})
    if customers is None:
        if needed:
            raise DataError(
                f"the program reads customer.{sorted(needed)[0]} but no customers table was given; "
                "pass customers=DataFrame with customer_id and " + ", ".join(sorted(needed))
            )
        return base
    if "customer_id" not in customers.columns:
        raise DataError(f"customers lack the column customer_id; available: {', '.join(map(str, customers.columns))}")
    for col in sorted(needed):
        if col not in customers.columns:
            raise DataError(
                f"the program reads customer.{col} but the customers table has no `{col}` column; "
                f"available: {', '.join(map(str, customers.columns))}{_suggest(col, customers.columns)}"
            )
    c = customers.drop_duplicates("customer_id", keep="first")
    if len(c) and pd.api.types.is_numeric_dtype(c["customer_id"]) != pd.api.types.is_numeric_dtype(base["customer_id"]):
        c = c.assign(customer_id=c["customer_id"].astype(str))
        base = base.assign(customer_id=base["customer_id"].astype(str))
    out = base.merge(c, on="customer_id", how="left")
    for col in ("birthday", "enrolled"):
        if col in out.columns:
            parsed = parse_datetimes(out[col])
            bad = parsed.isna().to_numpy() & out[col].notna().to_numpy()
            if bad.any():
                raise DataError(f"customers column {col}: values that are not dates at {_rows(bad)}")
            out[col] = parsed.astype("datetime64[ns]")
    out["customer_id"] = member_ids
    return out
