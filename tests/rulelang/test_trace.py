"""`rulelang.trace`: row-by-row reasons, comparisons with their values, a closing summary, only
the member's own rows, and no raw control characters. (The command is tested in
tests/simulator/test_inspection.py.)"""

from __future__ import annotations

import re

import pandas as pd
import pytest

import rulelang
from rulelang.errors import LoyaltyError, visible
from rulelang.trace import NOT_SIMULATED, trace

PROGRAM = """program "Cafe"
currency CNY
tiers by spend over 365 days {
  Green from 0
  Gold  from 30
}
earn base:   1 point per 1 CNY
earn pastry: 2 points per 1 CNY when category == "pastry"
earn gold:   1.5x base when tier >= Gold
limit 60 points per day
expire after 1 month
reward coffee: 40 points cost 8 CNY
"""

ROWS = pd.DataFrame(
    {
        "customer_id": ["m2", "m1", "m1", "m1", "m1"],
        "timestamp": ["2026-03-01 09:00", "2026-03-01 10:00", "2026-03-02 10:00", "2026-03-03 10:00", "2026-05-01 10:00"],
        "amount": [5, 30, 12.5, 0, 1],
        "category": ["tea", "coffee", "pastry", "", "tea"],
        "event": ["purchase", "purchase", "purchase", "redeem", "purchase"],
        "reward": ["", "", "", "coffee", ""],
    }
)


def _program(text=PROGRAM):
    return rulelang.loads(text, "cafe.loyalty")


def test_trace_shows_rules_values_rounding_caps_and_balance():
    out = trace(_program(), ROWS, "m1")
    assert 'category == "pastry"  ->  "coffee" == "pastry"  false' in out
    assert "tier >= Gold  ->  Gold >= Gold  true" in out
    assert "tier Green -> Gold" in out
    # Gold on 2 March: 12.5 + 25 + 6.25 = 43.75, rounded down to 43, within the day's cap of 60.
    assert "exact 43.75" in out and "round down -> 43" in out
    assert "redeem coffee: -30 (lot 2026-03-01), cost 8 CNY" in out
    assert "expire: -33 (lot 2026-03-02)" in out
    # Without a `source_row` column, rows are numbered by their position from 1.
    assert "(row 2)" in out and "(row 5)" in out


def test_trace_says_at_the_top_and_ends_with_a_summary():
    lines = trace(_program(), ROWS, "m1").splitlines()
    assert lines[0] == "Cafe: customer m1"
    assert lines[1] == f"  ({NOT_SIMULATED})"
    assert "redemption policy (simulated redemptions) is not applied" in NOT_SIMULATED
    assert lines[-2].startswith("summary: 4 row(s) traced; points earned ")
    assert lines[-1] == f"  ({NOT_SIMULATED})"


def test_summary_adds_up_the_postings_the_trace_shows():
    out = trace(_program(), ROWS, "m1")
    posted = {"earn": 0, "redeem": 0, "expire": 0}
    for kind, points in re.findall(r"\b(earn|redeem|expire)\b[^:]*: [+-](\d+)", out):
        posted[kind] += int(points)
    assert posted["expire"] > 0 and posted["redeem"] == 40  # the reward costs 40, taken from two lots
    last_balance = [line for line in out.splitlines() if line.strip().startswith("balance ")][-1].split()[-1]
    assert posted["earn"] - posted["redeem"] - posted["expire"] == int(last_balance)
    summary = out.splitlines()[-2]
    assert (
        f"points earned {posted['earn']}, clawed back 0, redeemed {posted['redeem']}, expired {posted['expire']}; "
        f"balance at the end {last_balance}; tier at the end Gold"
    ) in summary


def test_row_numbers_come_from_the_loaders_source_row():
    rows = ROWS.assign(source_row=[11, 12, 13, 14, 15])
    out = trace(_program(), rows, "m1")
    assert "(row 12)" in out and "(row 15)" in out and "(row 2)" not in out


def test_other_customers_bad_rows_do_not_stop_a_trace():
    rows = pd.concat(
        [
            ROWS,
            pd.DataFrame({"customer_id": ["m3"], "timestamp": ["not a date"], "amount": ["x"], "event": ["redeem"], "reward": ["nothing"]}),
        ]
    )
    out = trace(_program(), rows, "m1")
    assert out.splitlines()[-2].startswith("summary: 4 row(s) traced")


def test_the_last_expiries_run_to_the_last_date_of_all_rows():
    # m2 bought last on 1 March; the history runs to 1 May (m1's last row): m2's 5 points expire.
    out = trace(_program(), ROWS, "m2")
    assert "expire: -5 (lot 2026-03-01)" in out
    assert "balance at the end 0" in out


def test_unknown_customer_suggests_close_ids():
    with pytest.raises(
        LoyaltyError, match=r"customer `m3` has no rows in the transactions; did you mean `m[12]`, `m[12]`\? \(customers: m1, m2\)"
    ):
        trace(_program(), ROWS, "m3")


def test_control_characters_in_names_ids_and_cells_are_escaped():
    rows = ROWS.assign(
        customer_id=ROWS["customer_id"].replace("m1", "m\x1b[31m1"), category=ROWS["category"].replace("coffee", "cof\x07fee\r")
    )
    out = trace(_program(), rows, "m\x1b[31m1")
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert "customer m\\x1b[31m1" in out
    assert '"cof\\x07fee\\x0d" == "pastry"' in out


def test_visible_escapes_control_and_bidi_characters_only():
    assert visible("a\tb\x1b[0m\x9b\u202ec 中文 [/]") == "a\tb\\x1b[0m\\x9b\\u202ec 中文 [/]"
    assert visible("one\x1b\ntwo") == "one\\x1b\ntwo"


def test_per_unit_points_show_their_units_and_basket_sums_their_value():
    program = rulelang.loads('program "Market"\ncurrency EUR\n'
                             'earn cereal_units: 10 points per unit when sku == "CEREAL-500G"\n'
                             'earn big_order:    100 points when basket.total(category != "delivery") >= 100 EUR\n')
    rows = pd.DataFrame({
        "customer_id": "a", "timestamp": "2026-03-01 10:00", "transaction_id": "T1",
        "amount": [90, 20, 5], "sku": ["CEREAL-500G", "DELIVERY", "CEREAL-500G"],
        "category": ["food", "delivery", "food"], "quantity": [2.5, 1, None],
    })
    text = trace(program, rows, "a")
    assert "cereal_units line 1: fired: 20 points (2 units x 10)" in text
    assert "cereal_units line 3: no whole unit in the quantity" in text
    assert 'basket.total(category != "delivery") >= 100 EUR  ->  95 >= 100  false' in text


def test_discounts_say_which_applied_and_why_the_others_did_not():
    program = rulelang.loads('program "Shop"\ncurrency CNY\n'
                             "tiers by spend over 365 days {\n  Member from 0\n  Gold from 1000\n}\n"
                             "earn base: 1 point per 1 CNY\n"
                             "discount member_price: 5% when tier >= Gold\n"
                             "discount launch_week:  20% during 2026-03-01 to 2026-03-07\n"
                             'discount cereal_deal:  10% when sku == "CEREAL-500G"\n'
                             "discount coupon:       10 CNY when basket.total >= 100 CNY once per month\n")
    rows = pd.DataFrame({
        "customer_id": "a", "timestamp": ["2026-02-27 10:00"] * 2 + ["2026-02-28 10:00"], "transaction_id": ["T1", "T1", "T2"],
        "amount": [33.33, 80, 120], "sku": ["CEREAL-500G", "MILK", "MILK"],
    })
    text = trace(program, rows, "a")
    assert "discount member_price line 1: condition false" in text
    assert "tier >= Gold  ->  Member >= Gold  false" in text
    assert "discount launch_week line 1: outside campaign" in text
    assert "discount cereal_deal line 1: applied: 3.33 CNY off" in text
    assert "discount coupon (basket): applied: 10 CNY off" in text
    assert text.count("basket.total >= 100 CNY  ->  113.33 >= 100  true") == 1  # shown once for the basket
    assert "paid 100 CNY (per-spend points and tier spend count this)" in text
    assert "discount coupon: limit reached" in text  # T2: once per month
    assert "discount cereal_deal, cost 3.33 CNY" in text


def test_the_larger_discount_and_the_cap_are_named():
    program = rulelang.loads('program "Shop"\ncurrency CNY\nearn base: 1 point per 1 CNY\n'
                             "discount small: 5%\ndiscount big: 20% up to 10 CNY\n")
    rows = pd.DataFrame({"customer_id": "a", "timestamp": "2026-03-01 10:00", "transaction_id": "T1", "amount": [40, 30]})
    text = trace(program, rows, "a")
    assert "discount small line 1: a larger discount applied" in text
    assert "discount big line 1: applied, up to 10 CNY reached: 5.71 CNY off" in text  # 8 and 6 capped at 10: 5.71 + 4.29
    assert "discount big line 2: applied, up to 10 CNY reached: 4.29 CNY off" in text


def test_best_of_says_which_rule_kept_the_unit_and_which_lost():
    program = rulelang.loads('program "Bakery"\ncurrency CNY\ncolumn category: text\n'
                             "earn base:          1 point per 1 CNY\n"
                             'earn pastry_promo:  2x base when category == "pastry"\n'
                             "earn tuesday_promo: 3x base when weekday == tue\n"
                             "best of pastry_promo, tuesday_promo\n")
    rows = pd.DataFrame({  # 2026-03-03 is a Tuesday, 2026-03-04 a Wednesday
        "customer_id": "a", "timestamp": ["2026-03-03 10:00", "2026-03-03 10:00", "2026-03-04 10:00"],
        "transaction_id": ["T1", "T1", "T2"], "amount": [30, 10, 8], "category": ["pastry", "coffee", "pastry"],
    })
    text = trace(program, rows, "a")
    # Tuesday: 2 x 40 against 1 x 30 on the pastry line.
    assert "pastry_promo line 1: lost to `tuesday_promo` (best of): 30 points" in text
    assert "best of: tuesday_promo keeps the unit with 80 points; lost: pastry_promo 30" in text
    assert "earn pastry_promo" not in text.split("2026-03-04")[0]
    # Wednesday: the pastry promotion alone.
    assert "best of: pastry_promo keeps the unit with 8 points" in text
    assert "earn pastry_promo: +8" in text


def test_trace_shows_benefits_given_and_their_cost():
    program = rulelang.loads('program "Tailor"\ncurrency CNY\nearn base: 1 point per 1 CNY\n'
                             'benefit alteration: cost 20 CNY when category == "suits" at most 1 times per day funded 25% by mill\n')
    rows = pd.DataFrame({"customer_id": ["m1"] * 3, "timestamp": ["2026-03-01 10:00"] * 3, "amount": [300, 200, 50],
                         "category": ["suits", "suits", "tie"], "transaction_id": ["t1"] * 3})
    text = trace(program, rows, "m1")
    assert "  alteration line 1: fired\n" in text
    assert "  alteration line 2: limit reached\n" in text
    assert "  alteration line 3: condition false\n" in text
    assert "  benefits given: alteration x1\n" in text
    assert "  benefit alteration, cost 20 CNY, partner pays 5 CNY\n" in text
    assert "benefits given 1" in text.splitlines()[-2]


def test_trace_shows_the_tier_windows_values_for_every_metric_counted():
    """Each metric the tiers count (the block's and its alternatives'), over the window after the row."""
    text = PROGRAM.replace("over 365 days", "over 30 days").replace("Gold  from 30", "Gold  from 30 or 2 visits")
    out = trace(_program(text), ROWS, "m1")
    lines = [line for line in out.splitlines() if "tier window" in line]
    assert lines[0] == "  tier window (the last 30 days): spend 30 CNY, visits 1"
    assert lines[1] == "  tier window (the last 30 days): spend 42.5 CNY, visits 2"
    # two months later the first rows have left the window: only the new purchase counts
    assert lines[-1] == "  tier window (the last 30 days): spend 1 CNY, visits 1"
def test_trace_shows_what_was_pending_and_why_a_redemption_waited():
    program = rulelang.loads(PROGRAM.replace("reward coffee", "points available after 14 days\nreward coffee").replace("expire after 1 month", "expire after 2 months"))
    rows = pd.DataFrame({"customer_id": ["m1"] * 3, "timestamp": ["2026-03-01 10:00", "2026-03-02 10:00", "2026-03-20 10:00"],
                         "amount": [45, 0, 0], "category": ["coffee", "", ""], "event": ["purchase", "redeem", "redeem"],
                         "reward": ["", "coffee", "coffee"]})
    out = trace(program, rows, "m1")
    assert "balance 0 available, 45 pending (available 14 days after the day earned)" in out
    assert "redemption of coffee declined: the available balance cannot afford it" in out
    assert "balance 5 available, 0 pending" in out  # on 20 March the 1 March lot paid for the coffee


def test_trace_shows_the_vouchers_issued_at_a_quarter_end_between_rows():
    program = rulelang.loads("currency GBP\nearn base: 1 point per 1 GBP\npoints available after 14 days\n"
                             "reward clubcard_voucher: 150 points cost 1.50 GBP issued every quarter\n")
    rows = pd.DataFrame({"customer_id": ["a"] * 3, "timestamp": ["2026-02-10 10:00", "2026-03-25 10:00", "2026-07-02 10:00"],
                         "amount": [320, 100, 40], "event": ["purchase"] * 3})
    out = trace(program, rows, "a")
    assert out.count("2026-03-31 23:59:59.999999999  redeem clubcard_voucher: -300 (lot 2026-02-10), cost 3 GBP") == 1  # two vouchers
    assert "2026-06-30" not in out  # 120 points available then: no voucher
    assert "balance at the end 120 available, 40 pending" in out


def test_recency_shows_each_windows_value_and_the_days_it_counted():
    program = rulelang.loads('program "Cafe"\ncurrency CNY\nearn base: 1 point per 1 CNY\n'
                             "earn regulars: 1.5x base when visits_in(30 days) >= 2\n"
                             "earn big:      50 points when spend_in(1 months) >= 100\n"
                             "earn winback:  100 points when days_since_last_purchase >= 50\n")
    rows = pd.DataFrame({
        "customer_id": "a", "timestamp": ["2026-01-10 10:00", "2026-01-31 09:00", "2026-03-31 10:00"],
        "transaction_id": ["T1", "T2", "T3"], "amount": [40, 80, 20],
    })
    text = trace(program, rows, "a")
    assert "days_since_last_purchase >= 50  ->  missing >= 50  false" in text  # the first purchase
    assert "visits_in(30 days) >= 2  ->  1 >= 2  false" in text
    assert "visits_in(30 days): 2026-01-02 to 2026-01-31, before this row" in text
    # On 31 March one month back is 28 February: the span is March.
    assert "spend_in(1 months): 2026-03-01 to 2026-03-31, before this row" in text
    assert "days_since_last_purchase >= 50  ->  59 >= 50  true" in text


BUDGET_PROGRAM = "currency CNY\nearn launch: 40 points budget 100 points\ndiscount launch_week: 10% budget 15 CNY\n"
BUDGET_ROWS = pd.DataFrame({"customer_id": ["a", "a", "b", "c"], "timestamp": ["2026-03-01 10:00", "2026-03-02 10:00", "2026-03-01 10:00", "2026-03-01 10:00"],
                            "amount": [90, 10, 80, 50]})


def test_a_trace_shows_each_budget_s_state_over_every_member_and_where_it_stopped_this_one():
    # docs/semantics.md's example: a, b, c buy at one moment; launch closes at c, the discount at b.
    text = trace(rulelang.loads(BUDGET_PROGRAM), BUDGET_ROWS, "a")
    assert "budget launch: 100 points for every member together; 80 points given; ran out at 2026-03-01 10:00, at customer c" in text
    assert "budget launch_week: 15 CNY for every member together; 9 CNY given; ran out at 2026-03-01 10:00, at customer b" in text
    first, second = text.split("2026-03-02 10:00")
    assert "launch: fired: 40 points" in first and "discount launch_week: applied: 9 CNY off" in first
    assert "launch: budget spent" in second and "discount launch_week: budget spent" in second
    # The member at whom a budget ran out: closed at their own row.
    own = trace(rulelang.loads(BUDGET_PROGRAM), BUDGET_ROWS, "b")
    assert "discount launch_week: budget spent" in own and "launch: fired: 40 points" in own


def test_a_budget_not_reached_says_so():
    text = trace(rulelang.loads("currency CNY\nearn launch: 40 points budget 1000 points\n"), BUDGET_ROWS, "c")
    assert "budget launch: 1000 points for every member together; 160 points given; not reached in this history" in text
