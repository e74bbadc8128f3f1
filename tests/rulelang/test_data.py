"""Bad data reaching `evaluate` gets a DataError naming the rows and columns; good data a Batch."""

from __future__ import annotations

import pandas as pd
import pytest

import rulelang
from rulelang.data import EVENT, PURCHASE, REDEEM, REFUND, prepare

PROGRAM = """currency CNY
earn base: 1 point per 1 CNY
earn pastry: 2 points per 1 CNY when category == "pastry"
earn bday: 300 points when month(date) == month(customer.birthday) once per year
reward coffee: 300 points cost 8 CNY
"""
CUSTOMERS = pd.DataFrame({"customer_id": ["a", "b"], "birthday": ["1990-01-01", "1991-02-02"]})


def _tx(**over) -> pd.DataFrame:
    base = {
        "customer_id": ["a", "a", "b"],
        "timestamp": ["2026-01-01 10:00", "2026-01-02 10:00", "2026-01-01 09:00"],
        "amount": [10, 20, 5],
        "category": ["tea", "pastry", "tea"],
    }
    base.update(over)
    return pd.DataFrame(base)


def _error(df, customers=CUSTOMERS) -> str:
    with pytest.raises(rulelang.DataError) as info:
        rulelang.loads(PROGRAM).evaluate(df, customers, engine="reference")
    return str(info.value)


def test_missing_required_column_with_suggestion():
    msg = _error(_tx().rename(columns={"amount": "amt"}))
    assert "amount" in msg and "did you mean `amt`" in msg


def test_missing_column_a_rule_reads():
    msg = _error(_tx().drop(columns="category"))
    assert "`category`" in msg and "pastry" in msg


def test_non_numeric_amount_names_the_row():
    msg = _error(_tx(amount=[10, "twelve", 5]))
    assert "column amount" in msg and "rows 2 " in msg


def test_blank_amount_on_a_purchase_is_an_error_but_not_on_a_redeem_row():
    assert "rows 3 " in _error(_tx(amount=[10, 20, None]))
    df = _tx(amount=[400, None, 5], event=["purchase", "redeem", "purchase"], reward=[None, "coffee", None])
    ledger = rulelang.loads(PROGRAM).evaluate(df, CUSTOMERS, engine="reference")
    assert (ledger["kind"] == "redeem").sum() == 1


def test_unknown_reward_in_redeem_row_with_suggestion():
    msg = _error(_tx(event=["purchase", "redeem", "purchase"], reward=[None, "cofee", None]))
    assert "column reward" in msg and "rows 2 " in msg and "did you mean `coffee`" in msg


def test_redeem_row_without_reward():
    msg = _error(_tx(event=["purchase", "redeem", "purchase"]))
    assert "column reward" in msg and "needs the reward" in msg


def test_unsorted_input_names_the_row():
    msg = _error(_tx(timestamp=["2026-01-02 10:00", "2026-01-01 10:00", "2026-01-01 09:00"]))
    assert "time order" in msg and "rows 2 " in msg and "sort" in msg


def test_bad_timestamp_names_the_row():
    msg = _error(_tx(timestamp=["2026-01-01", "yesterday", "2026-01-01"]))
    assert "column timestamp" in msg and "rows 2 " in msg


def test_basket_lines_with_different_timestamps():
    msg = _error(_tx(transaction_id=["T1", "T1", "T2"]))
    assert "transaction_id" in msg or "basket" in msg


def test_customers_table_missing_an_attribute_the_program_reads():
    msg = _error(_tx(), CUSTOMERS.drop(columns="birthday"))
    assert "customer.birthday" in msg
    assert "no customers table" in _error(_tx(), None)


def test_batch_contract():
    df = _tx(
        customer_id=["b", "a", "a", "a", "a"],
        timestamp=["2026-01-01 09:00", "2026-01-01 10:00", "2026-01-01 10:00", "2026-01-02 10:00", "2026-01-03 10:00"],
        amount=[5, 10, 20, 10, 0],
        category=["tea"] * 5,
        transaction_id=["X", "T1", "T1", "T1", None],
        event=["purchase", "purchase", "purchase", "refund", "enroll"],
    )
    batch = prepare(df, rulelang.loads(PROGRAM).model, CUSTOMERS)
    f = batch.frame
    assert f["customer_id"].tolist() == ["a", "a", "a", "a", "b"]
    assert f["row"].tolist() == [1, 2, 3, 4, 0]
    assert f["kind"].tolist() == [PURCHASE, PURCHASE, REFUND, EVENT, PURCHASE]
    assert f["amount"].tolist() == [1000, 2000, -1000, 0, 500]
    assert f["unit"].iloc[0] == f["unit"].iloc[1] and f["unit"].nunique() == 4
    assert f["refund_of"].iloc[2] == f["unit"].iloc[0]
    assert batch.members == 2 and batch.customers["customer_id"].tolist() == ["a", "b"]
    assert REDEEM not in f["kind"].tolist()
