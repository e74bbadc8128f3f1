"""The worked examples of docs/semantics.md, read from the document and checked cell by cell."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pandas as pd
import pytest

import rulelang
from rulelang.engine.data import RedemptionPolicy

DOC = Path(__file__).resolve().parents[2] / "docs" / "semantics.md"
INT_COLUMNS = ("points", "cost", "partner_share", "row")
TIME_COLUMNS = ("timestamp", "earned_on")


def _table(lines: list[str], start: int) -> tuple[list[dict], int]:
    """The markdown table starting at or after `start`: rows as dicts of text cells."""
    i = start
    while not lines[i].startswith("|"):
        i += 1
    header = [c.strip() for c in lines[i].strip().strip("|").split("|")]
    rows = []
    i += 2
    while i < len(lines) and lines[i].startswith("|"):
        cells = [c.strip() for c in lines[i].strip()[1:-1].split("|")]
        rows.append(dict(zip(header, cells, strict=True)))
        i += 1
    return rows, i


def _options(head: str) -> dict:
    """`(until X; redemption: probability P, choice C; declined redemptions N)` as a dict."""
    found = re.search(r"\((.*)\)", head)
    out: dict = {}
    for item in (found.group(1).split(";") if found else []):
        item = item.strip()
        if m := re.fullmatch(r"until (\S+)", item):
            out["until"] = m.group(1)
        elif m := re.fullmatch(r"redemption: probability (\S+), choice (\w+)", item):
            out["redemption"] = RedemptionPolicy(float(m.group(1)), m.group(2))
        elif m := re.fullmatch(r"pay with points (\S+)", item):  # after `redemption:`: its pay_with_points probability
            out["redemption"] = dataclasses.replace(out["redemption"], pay_probability=float(m.group(1)))
        elif m := re.fullmatch(r"(declined redemptions|unmatched refunds) (\d+)", item):
            out[m.group(1).replace(" ", "_")] = int(m.group(2))
        else:
            raise AssertionError(f"unknown example option: {item}")
    return out


def examples() -> list:
    """(title, program text, transactions, options, ledger table) for each ledger in the document."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Worked examples", 1)[1]
    out = []
    for block in section.split("\n### ")[1:]:
        title = block.splitlines()[0].strip()
        program = re.search(r"```loyalty\n(.*?)```", block, re.S).group(1)
        lines = block.splitlines()
        tx_at = next(i for i, line in enumerate(lines) if line.startswith("**Transactions**"))
        tx_opts = _options(lines[tx_at])
        transactions, _ = _table(lines, tx_at)
        for i, line in enumerate(lines):
            if line.startswith("**Ledger**"):
                ledger, _ = _table(lines, i)
                out.append(pytest.param(program, transactions, {**tx_opts, **_options(line)}, ledger, id=f"{title} {line[10:].strip()}".strip()))
    return out


def _frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows).replace("", None)
    if "customer_id" not in df.columns:
        df.insert(0, "customer_id", "a")
    df["amount"] = pd.to_numeric(df["amount"])
    for col in ("_u_redeem", "_u_choice", "_u_pay"):
        if col in df.columns:
            df[col] = df[col].astype(float)
    if "points_paid" in df.columns:
        df["points_paid"] = pd.to_numeric(df["points_paid"])
    return df


def _expected(cell: str, column: str):
    if column in INT_COLUMNS:
        return int(cell)
    if column in TIME_COLUMNS:
        return pd.Timestamp(cell) if cell else pd.NaT
    return cell


@pytest.mark.parametrize("program, transactions, options, expected", examples())
def test_worked_example(program, transactions, options, expected):
    prog = rulelang.loads(program)
    frame = _frame(transactions)
    if options.get("redemption") is not None and "_u_redeem" not in frame.columns:  # a policy that only pays with points draws no reward
        frame = frame.assign(_u_redeem=1.0, _u_choice=0.0)
    ledger = prog.evaluate(frame, until=options.get("until"), engine="reference", redemption=options.get("redemption"))
    shown = list(expected[0])
    got = [{c: ledger[c].iloc[i] for c in shown} for i in range(len(ledger))]
    want = [{c: _expected(row[c], c) for c in shown} for row in expected]
    norm = [{c: (pd.NaT if pd.isna(v) else v) for c, v in row.items()} for row in got]
    assert norm == want
    assert ledger.attrs["declined_redemptions"] == options.get("declined_redemptions", 0)
    assert ledger.attrs["unmatched_refunds"] == options.get("unmatched_refunds", 0)


def test_every_example_is_collected():
    # A heading the parser skipped would silently drop its golden ledger.
    assert len(examples()) >= 20


@pytest.mark.parametrize("program, transactions, options, expected", examples())
def test_compiled_engine_gives_each_examples_ledger(program, transactions, options, expected):
    """The compiled engine posts the reference's ledger on every worked example (tiers with
    alternatives, a lifetime window and retention included)."""
    from pandas.testing import assert_frame_equal

    if set(options) - {"until", "redemption", "declined_redemptions", "unmatched_refunds"} or getattr(options.get("redemption"), "pay_probability", 0):
        pytest.skip("an example with options of its own (paying with points) has its own compiled test")
    prog = rulelang.loads(program)
    frame, until, policy = _frame(transactions), options.get("until"), options.get("redemption")
    assert_frame_equal(prog.evaluate(frame, until=until, engine="compiled", redemption=policy),
                       prog.evaluate(frame, until=until, engine="reference", redemption=policy))


@pytest.mark.parametrize("program, transactions, options, expected",
                         [p for p in examples() if any(w in p.id for w in ("Pending points", "Automatic vouchers"))])
def test_worked_example_in_the_compiled_engine(program, transactions, options, expected):
    """The pending-points and voucher examples: the compiled engine posts what the page shows too."""
    prog = rulelang.loads(program)
    frame = _frame(transactions)
    ref = prog.evaluate(frame, until=options.get("until"), engine="reference", redemption=options.get("redemption"))
    got = prog.evaluate(frame, until=options.get("until"), engine="compiled", redemption=options.get("redemption"))
    pd.testing.assert_frame_equal(got, ref)
    assert got.attrs == ref.attrs
