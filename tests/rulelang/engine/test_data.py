"""Bad data reaching `evaluate` gets a DataError naming the rows and columns; good data a Batch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import rulelang
from rulelang.engine.data import EVENT, PURCHASE, REDEEM, REFUND, prepare

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


RICH = """currency CNY
earn base: 1 point per 1 CNY
earn pastry: 2 points per 1 CNY when category == "pastry"
earn app: 20 points when channel == "app" and basket.total >= 30 once per day
earn welcome: 200 points on enroll
reward coffee: 30 points cost 8 CNY
"""


def _history() -> pd.DataFrame:
    """Three members (ids not in input order), baskets, a refund, an enroll and a redeem row."""
    return pd.DataFrame(
        {
            "customer_id": ["b", "b", "b", "a", "a", "a", "c", "c"],
            "timestamp": pd.to_datetime(
                ["2026-01-01 09:00", "2026-01-02 10:00", "2026-01-02 10:00", "2026-01-01 08:00", "2026-01-03 10:00",
                 "2026-01-04 10:00", "2026-01-05 10:00", "2026-01-06 10:00"]
            ),
            "amount": [0.0, 25.0, 12.5, 40.0, 40.0, None, 3.0, 3.0],
            "event": ["Enroll", "purchase", "purchase", "purchase", "refund", "redeem", None, " PURCHASE "],
            "transaction_id": [None, "T1", "T1", "T2", "T2", None, "T3", "T4"],
            "reward": [None, None, None, None, None, "coffee", None, None],
            "category": ["", "pastry", "tea", "pastry", "pastry", "", "tea", "pastry"],
            "channel": ["app", "app", "app", "store", "store", "app", "app", "app"],
        }
    )


def _ledger(df: pd.DataFrame) -> pd.DataFrame:
    return rulelang.loads(RICH).evaluate(df, engine="compiled")


def test_categorical_input_columns_give_the_same_batch_and_ledger():
    plain = _history()
    cats = plain.astype({c: "category" for c in ("customer_id", "event", "transaction_id", "reward", "category", "channel")})
    # An unused category is not a member.
    cats["customer_id"] = cats["customer_id"].cat.add_categories(["zz"])
    model = rulelang.loads(RICH).model
    a, b = prepare(plain, model), prepare(cats, model)
    assert b.members == a.members == 3 and b.customers["customer_id"].tolist() == ["a", "b", "c"]
    for col in ("row", "member", "kind", "amount", "unit", "refund_of"):
        assert a.frame[col].tolist() == b.frame[col].tolist(), col
    for col in ("event", "transaction_id", "reward"):
        assert a.frame[col].astype(str).tolist() == b.frame[col].astype(str).tolist(), col
    pd.testing.assert_frame_equal(_ledger(plain), _ledger(cats))


def test_rows_not_grouped_by_member_are_grouped_keeping_their_order():
    df = _history()
    batch = prepare(df, rulelang.loads(RICH).model)
    assert batch.frame["row"].tolist() == [3, 4, 5, 0, 1, 2, 6, 7]
    assert batch.frame["event"].astype(str).tolist() == ["purchase", "refund", "redeem", "enroll", "purchase", "purchase", "purchase", "purchase"]
    assert batch.frame["refund_of"].tolist()[1] == batch.frame["unit"].tolist()[0]
    grouped = df.iloc[[3, 4, 5, 0, 1, 2, 6, 7]].reset_index(drop=True)
    led, again = _ledger(df), _ledger(grouped)
    pd.testing.assert_frame_equal(led.drop(columns="row"), again.drop(columns="row"))
    assert led["row"].tolist() == [[3, 4, 5, 0, 1, 2, 6, 7][r] if r >= 0 else -1 for r in again["row"]]


def test_a_transaction_id_naming_two_baskets_of_one_member_is_an_error():
    df = _history()
    # Member a: a basket T2, its refund, then another basket that reuses T2.
    df.loc[5, ["event", "amount", "reward", "transaction_id"]] = ["purchase", 5.0, None, "T2"]
    with pytest.raises(rulelang.DataError, match="`T2` names lines that are not together"):
        _ledger(df)


def test_lines_of_one_basket_at_different_times_are_an_error_naming_every_row():
    df = _history()
    df.loc[2, "timestamp"] = pd.Timestamp("2026-01-02 10:05")  # b's second T1 line, five minutes on
    with pytest.raises(rulelang.DataError, match=r"lines of one basket \(same transaction_id\) have different timestamps at rows? 3\b"):
        _ledger(df)


def test_refunds_match_only_their_own_members_earlier_basket():
    df = _history()
    # Member c's rows reuse T2 (a's basket id): c refunds "T2" before its own T2 basket, so the
    # refund matches nothing (not a's basket, not c's later one); c's T2 basket is not a duplicate.
    df.loc[6, ["event", "amount", "transaction_id"]] = ["refund", -3.0, "T2"]
    df.loc[7, ["event", "amount", "transaction_id"]] = ["purchase", 3.0, "T2"]
    f = prepare(df, rulelang.loads(RICH).model).frame
    refunds = f.index[f["kind"] == REFUND].tolist()
    assert [int(f["refund_of"].iloc[r]) for r in refunds] == [int(f["unit"].iloc[0]), -1]


def test_amounts_in_minor_units_give_the_batch_of_currency_amounts():
    model = rulelang.loads(PROGRAM).model
    tx = _tx(amount=[10.5, -20.25, 5], event=["purchase", "refund", "purchase"])
    want = prepare(tx, model, CUSTOMERS)
    got = prepare(tx.assign(amount=[1050, -2025, 500]), model, CUSTOMERS, minor_units=True)
    pd.testing.assert_frame_equal(got.frame, want.frame)
    with pytest.raises(rulelang.DataError, match="minor units must be integers"):
        prepare(tx, model, CUSTOMERS, minor_units=True)


@pytest.mark.parametrize("engine", ["reference", "compiled"])
def test_blank_reward_and_transaction_id_columns_read_as_empty(engine):
    # pandas.read_csv gives a column with no value at all as NaN floats (a file with no redemptions).
    import io

    text = "customer_id,timestamp,amount,category,reward,transaction_id\na,2026-01-01 10:00,10,tea,,\na,2026-01-02 10:00,20,pastry,,\nb,2026-01-01 09:00,5,tea,,\n"
    blank = pd.read_csv(io.StringIO(text))
    assert blank["reward"].dtype == "float64" and blank["transaction_id"].isna().all()
    got = rulelang.loads(PROGRAM).evaluate(blank, CUSTOMERS, engine=engine)
    want = rulelang.loads(PROGRAM).evaluate(_tx(), CUSTOMERS, engine=engine)
    assert len(got) > 0
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))


# --- the contract's rules (events, refunds, baskets, minor units), against oracles written here ---


def test_event_names_are_stripped_lower_case_and_blank_is_purchase():
    from rulelang.engine import event_names

    given = [" Purchase", "REFUND ", "", None, "  ", "Redeem", "enroll", "Stamp Card", "\tPURCHASE\n"]
    want = [(v or "").strip().lower() or "purchase" for v in given]
    for dtype in (object, "string", pd.StringDtype("pyarrow")):
        assert event_names(pd.Series(given, dtype=dtype)).tolist() == want


@pytest.mark.parametrize("dtype", [object, "category", pd.StringDtype("pyarrow")])
def test_event_codes_index_the_sorted_distinct_event_names(dtype):
    from rulelang.engine import event_codes

    given = ["Purchase", " refund", None, "redeem", "", "purchase", "ENROLL"]
    codes, names = event_codes(pd.Series(given, dtype=dtype), len(given))
    assert list(names) == sorted(set(names)) and "purchase" in names
    assert [names[c] for c in codes] == [(v or "").strip().lower() or "purchase" for v in given]
    codes, names = event_codes(None, 3)
    assert [names[c] for c in codes] == ["purchase"] * 3


def test_refunds_are_refund_rows_and_negative_purchases_and_carry_negative_amounts():
    from rulelang.engine import money_kinds

    event = np.array(["purchase", "purchase", "refund", "refund", "purchase", "redeem", "enroll"])
    minor = np.array([500, -300, 200, -200, 0, -5, 7], dtype=np.int64)
    purchase, refund = money_kinds(event == "purchase", event == "refund", minor)
    assert purchase.tolist() == [True, False, False, False, True, False, False]
    assert refund.tolist() == [False, True, True, True, False, False, False]
    assert minor.tolist() == [500, -300, -200, -200, 0, -5, 7]  # only refunds change, and in place


def test_minor_units_round_half_to_even_as_numpy_does():
    from rulelang.engine import to_minor_units

    rng = np.random.default_rng(8)
    amount = np.concatenate([rng.integers(-(10**7), 10**7, 5000) / 100, [0.005, 0.015, 0.025, -0.005, -0.015, 2.675, 1.005, 0.0, -0.0]])
    for decimals in (0, 2, 3):
        minor, missing, largest = to_minor_units(amount, decimals)
        want = np.round(amount * 10**decimals)
        assert np.array_equal(minor, want.astype(np.int64)) and not missing and largest == np.abs(want).max()
    minor, missing, _ = to_minor_units(np.array([1.5, np.nan, 2.0]), 2)
    assert missing and minor.tolist() == [150, 0, 200]
    assert to_minor_units(np.array([1e300]), 2)[2] > 2**53  # too large to hold exactly: the caller refuses it


def _basket_starts_oracle(member, ts, purchase, ids) -> list[bool]:
    """A basket's first line, read row by row from the definition."""
    out = []
    for i in range(len(member)):
        blank = ids[i] is None or ids[i] == ""
        joins = (
            i > 0 and purchase[i] and purchase[i - 1] and member[i] == member[i - 1] and ts[i] == ts[i - 1]
            and not blank and ids[i] == ids[i - 1]
        )  # fmt: skip
        out.append(bool(purchase[i]) and not joins)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_basket_starts_follow_the_definition_whatever_the_ids_type(seed):
    from rulelang.engine import basket_starts

    rng = np.random.default_rng(seed)
    n = 2000
    member = np.sort(rng.integers(0, 150, n))
    ts = np.sort((rng.integers(0, 30, n) // 3).astype("datetime64[ns]") + (member * 100).astype("timedelta64[ns]"))
    purchase = rng.random(n) < 0.85
    ids = rng.choice(np.array(["a", "b", "bb", "", None], dtype=object), n, p=[0.35, 0.3, 0.15, 0.1, 0.1])
    want = _basket_starts_oracle(member, ts, purchase, ids)
    assert 0 < sum(want) < purchase.sum()  # some lines continue a basket
    for dtype in (object, "category", pd.StringDtype("pyarrow")):
        assert basket_starts(member, ts, purchase, pd.Series(ids, dtype=dtype)).tolist() == want
    assert basket_starts(member, ts, purchase, None).tolist() == purchase.tolist()


def test_a_basket_split_by_its_timestamps_is_refused():
    tx = _tx(
        customer_id=["a", "a", "b"], timestamp=["2026-01-01 10:00", "2026-01-01 10:05", "2026-01-01 09:00"], transaction_id=["T1", "T1", "T2"]
    )
    with pytest.raises(rulelang.DataError, match="lines of one basket .same transaction_id. have different timestamps at rows 2"):
        prepare(tx, rulelang.loads(PROGRAM).model, CUSTOMERS)


def test_read_datetimes_with_a_format_never_reads_the_time_of_the_run():
    from rulelang.engine.data import read_datetimes

    got = read_datetimes(pd.Series(["now", "today", "03/04/2026"]), "%d/%m/%Y").values
    assert got.isna().tolist() == [True, True, False]


def test_a_derived_batch_shares_the_customers_and_takes_the_id_dtype_it_is_given():
    model = rulelang.loads('program "p"\ncurrency CNY\npoint_cost 0.01 CNY\nearn base: 1 point per 1 CNY\n').model
    tx = pd.DataFrame({"customer_id": ["b", "a", "b"], "timestamp": ["2026-01-01", "2026-01-02", "2026-01-03"], "amount": [1.0, 2.0, 3.0]})
    base = prepare(tx, model)
    rows = base.frame.iloc[[0, 2]].reset_index(drop=True)
    derived = base.derive(rows)
    assert derived.customers is base.customers and (derived.decimals, derived.until, derived.members) == (base.decimals, base.until, base.members)
    assert list(derived.id_dtype.categories) == ["a", "b"]  # built from the customers: ids in member order
    given = pd.CategoricalDtype(pd.Index(["a", "b"]))
    assert base.derive(rows, id_dtype=given).id_dtype is given
    with pytest.raises(ValueError, match="1 categories for 2 members"):
        base.derive(rows, id_dtype=pd.CategoricalDtype(pd.Index(["a"])))


def test_cached_computes_once_per_batch():
    model = rulelang.loads('program "p"\ncurrency CNY\npoint_cost 0.01 CNY\nearn base: 1 point per 1 CNY\n').model
    base = prepare(pd.DataFrame({"customer_id": ["a"], "timestamp": ["2026-01-01"], "amount": [1.0]}), model)
    calls = []
    assert base.cached(("t", "k"), lambda: calls.append(1) or 42) == 42
    assert base.cached(("t", "k"), lambda: calls.append(1) or 43) == 42 and calls == [1]


@pytest.mark.parametrize("engine", ["reference", "compiled"])
def test_a_policy_paying_with_points_needs_its_draws_or_the_records(engine):
    from rulelang.engine.data import RedemptionPolicy
    from rulelang.errors import DataError

    prog = rulelang.loads("currency CNY\nearn base: 1 point per 1 CNY\npay with points: 100 points = 1 CNY\n")
    tx = pd.DataFrame({"customer_id": ["a", "a"], "timestamp": ["2026-01-01", "2026-01-02"], "amount": [500.0, 10.0],
                       "_u_redeem": 1.0, "_u_choice": 0.0})
    policy = RedemptionPolicy(0.0, "cheapest", pay_probability=0.5)
    with pytest.raises(DataError, match="no `_u_pay` column of draws"):
        prog.evaluate(tx, engine=engine, redemption=policy)
    # Recorded payments need no draws; nor does a policy that never pays with points.
    paid = prog.evaluate(tx.assign(points_paid=[None, 100]), engine=engine, redemption=policy)
    assert paid.loc[paid["reward"] == "pay_with_points", "points"].sum() == 100
    assert len(prog.evaluate(tx, engine=engine, redemption=RedemptionPolicy(0.0, "cheapest"))) == 2
