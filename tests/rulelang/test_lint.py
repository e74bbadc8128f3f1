"""The loyalty-specific lints (W6xx): one test per code, and the ignore comments."""

from __future__ import annotations

import pytest

from rulelang.errors import Source
from rulelang.lint import non_monotone_rules
from rulelang.program import analyse, loads
from tests.conftest import PROGRAMS, TARGET_PROGRAMS

HEAD = 'program "T"\ncurrency CNY\npoint_cost 0.01 CNY\nexpire after 12 months\nreward r: 100 points cost 1 CNY\n'


def codes(text: str) -> list[tuple[str, int]]:
    tree, found = analyse(Source(text, "t.loyalty"))
    assert tree is not None and not any(d.is_error for d in found), [d.render() for d in found]
    return [(d.code, d.span.line) for d in found if d.code.startswith("W6")]


def only(text: str, code: str) -> list[int]:
    return [line for c, line in codes(text) if c == code]


def test_contradictory_amounts_never_fire():
    text = HEAD + "earn base: 1 point per 1 CNY\nearn odd: 10 points when amount >= 50 and amount < 20\n"
    assert only(text, "W601") == [7]


def test_tier_above_the_last_never_fires():
    text = HEAD + "tiers by spend over 365 days {\n  Green from 0\n  Black from 500\n}\nearn base: 1 point per 1 CNY\nearn vip: 2x base when tier > Black\n"
    tree, found = analyse(Source(text, "t.loyalty"))
    w = [d for d in found if d.code == "W601"]
    assert len(w) == 1 and "Green to Black" in w[0].message


def test_campaign_window_that_misses_its_month_never_fires():
    text = HEAD + "earn base: 1 point per 1 CNY\nearn june: 2x base when month(date) == 6 during 2026-01-01 to 2026-01-31\n"
    assert only(text, "W601") == [7]


def test_multiplier_that_excludes_its_target_never_fires():
    text = HEAD + "earn big: 1 point per 1 CNY when amount >= 100\nearn small: 2x big when amount < 10\n"
    assert only(text, "W601") == [7]


def test_satisfiable_conditions_are_not_flagged():
    text = HEAD + 'earn base: 1 point per 1 CNY when amount >= 20 and amount < 50 or category == "x"\n'
    assert only(text, "W601") == []


def test_stacked_multipliers_beyond_three():
    text = HEAD + "earn base: 1 point per 1 CNY\nearn a: 2x base when amount >= 10\nearn b: 3x base when weekday == sat\n"
    assert only(text, "W602") == [8]


def test_exclusive_multipliers_do_not_stack():
    text = HEAD + "earn base: 1 point per 1 CNY\nearn a: 2x base when amount >= 100\nearn b: 3x base when amount < 100\n"
    assert "W602" not in [c for c, _ in codes(text)]


def test_an_assert_bounding_the_rule_silences_stacking():
    text = HEAD + "earn base: 1 point per 1 CNY\nearn a: 2x base\nearn b: 3x base\nassert base + a + b <= 6 * amount\n"
    assert only(text, "W602") == []


def test_no_expiry():
    text = HEAD.replace("expire after 12 months\n", "") + "earn base: 1 point per 1 CNY\n"
    assert only(text, "W603") == [1]
    assert only(text.replace('program "T"', 'program "T"\nexpire never'), "W603") == [2]


def test_giveaway_not_tied_to_a_purchase():
    text = HEAD + "earn base: 1 point per 1 CNY\nearn app: 100 points on app_download\nearn hi: 50 points on enroll\n"
    assert only(text, "W604") == [7]


def test_reward_nobody_can_afford_in_a_year():
    text = HEAD + "earn base: 1 point per 1 CNY\nlimit 100 points per month\nreward car: 5000 points cost 100 CNY\n"
    assert only(text, "W605") == [8]
    assert only(text.replace("5000 points", "1000 points"), "W605") == []


def test_reward_bound_from_frequency_limited_bonuses():
    text = HEAD + "earn bday: 300 points once per year\nreward car: 1000 points cost 10 CNY\n"
    assert only(text, "W605") == [7]


def test_earn_rate_is_reported_once():
    text = HEAD + 'earn base: 1 point per 1 CNY\nearn pastry: 2 points per 1 CNY when category == "pastry"\n'
    tree, found = analyse(Source(text, "t.loyalty"))
    notes = [d for d in found if d.code == "W606"]
    assert len(notes) == 1 and "1 to 3 points per 1 CNY" in notes[0].message and "1% to 3%" in notes[0].message


def test_non_monotone_condition():
    text = HEAD + "earn small: 5 points when amount < 100\n"
    assert only(text, "W607") == [6]
    assert non_monotone_rules(loads(text).model) == ["small"]
    assert only(HEAD + "earn big: 5 points when not (amount < 100)\n", "W607") == []


@pytest.mark.parametrize(
    ("comment", "silenced"),
    [("  # loyalty: ignore[W607]", True), ("  # loyalty: ignore", True), ("  # loyalty: ignore[W601, W607]", True), ("  # loyalty: ignore[W601]", False)],
)
def test_ignore_comment_on_the_same_line(comment, silenced):
    text = HEAD + "earn small: 5 points when amount < 100" + comment + "\n"
    assert (only(text, "W607") == []) == silenced


def test_ignore_comment_on_the_line_before():
    text = "# loyalty: ignore[W603]\n" + HEAD.replace("expire after 12 months\n", "") + "earn base: 1 point per 1 CNY\n"
    assert only(text, "W603") == []


@pytest.mark.parametrize("path", TARGET_PROGRAMS, ids=lambda p: p.name)
def test_shared_examples_only_get_the_rate_note(path):
    tree, found = analyse(Source(path.read_text(encoding="utf-8"), str(path)))
    assert [d.code for d in found if d.code.startswith("W6")] == ["W606"]


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.name)
def test_bundled_programs_have_no_dead_rules(path):
    tree, found = analyse(Source(path.read_text(encoding="utf-8"), str(path)))
    assert [d.code for d in found if d.code == "W606"] == ["W606"]
    assert not [d for d in found if d.code == "W601"]


def test_deep_discount_with_a_multiplier_on_the_same_purchases():
    base = HEAD + "earn base: 1 point per 1 CNY\nearn dbl: 2x base when category == \"shirts\"\n"
    assert only(base + 'discount half: 50% when category == "shirts"\n', "W640") == [8]
    assert only(base + 'discount bogof: buy 1 get 1 free when category == "shirts"\n', "W640") == [8]  # 1 of 2 free: 50%


def test_a_discount_the_multiplier_cannot_meet_or_below_half_is_not_flagged():
    base = HEAD + "earn base: 1 point per 1 CNY\nearn dbl: 2x base when category == \"shirts\"\n"
    assert only(base + 'discount half: 60% when category == "pants"\n', "W640") == []
    assert only(base + 'discount most: 49% when category == "shirts"\n', "W640") == []
    assert only(base + 'discount bogof: buy 2 get 1 free when category == "shirts"\n', "W640") == []


def test_multipliers_of_one_best_of_do_not_stack():
    stacked = HEAD + "earn base: 1 point per 1 CNY\nearn a: 3x base\nearn b: 2.5x base\n"
    assert only(stacked, "W602") == [8]  # 1 + 2 + 1.5 = 4.5x
    assert only(stacked + "best of a, b\n", "W602") == []  # at most 3x: one of them


def test_a_best_of_rule_on_another_event_never_competes():
    text = HEAD + "earn base: 1 point per 1 CNY\nearn a: 2x base\nearn b: 20 points\nearn welcome: 100 points on enroll\n"
    assert only(text + "best of a, b\n", "W609") == []
    assert only(text + "best of a, b, welcome\n", "W609") == [9]
    assert only(text + "best of a, welcome\n", "W609") == [7, 9]


def test_benefit_without_a_frequency_limit():
    text = HEAD + ("earn base: 1 point per 1 CNY\n"
                   'benefit free_alteration: cost 20 CNY when category == "suits"\n'
                   "benefit birthday_gift: cost 50 CNY when month(date) == month(customer.birthday) once per year\n"
                   "benefit delivery: cost 8 CNY at most 2 times per month\n")
    assert only(text, "W608") == [7]
    tree, found = analyse(Source(text, "t.loyalty"))
    (d,) = [d for d in found if d.code == "W608"]
    assert "costs 20 CNY) on every matching line of a purchase" in d.message
    basket = HEAD + "earn base: 1 point per 1 CNY\nbenefit wrap: cost 2.5 CNY when basket.total >= 100\n"
    (d,) = [d for d in analyse(Source(basket, "t.loyalty"))[1] if d.code == "W608"]
    assert "costs 2.5 CNY) on every matching purchase" in d.message
    assert only(basket.replace("basket.total >= 100\n", "basket.total >= 100  # loyalty: ignore[W608]\n"), "W608") == []


def test_a_keep_calendar_year_status_already_gives_is_redundant():
    tiers = "tiers by spend over {window} {{\n  Green from 0\n  Gold from 500 keep {months} months\n  Black from 900 keep 13 months\n}}\n"
    earn = "earn base: 1 point per 1 CNY\n"
    assert only(HEAD + tiers.format(window="calendar year", months=12) + earn, "W680") == [8]
    assert only(HEAD + tiers.format(window="calendar year", months=3) + earn, "W680") == [8]
    # a 30-day window lets the level go within days, so any keep holds it longer
    assert only(HEAD + tiers.format(window="30 days", months=12) + earn, "W680") == []
def test_a_pending_window_as_long_as_the_expiry_is_flagged():
    body = "earn base: 1 point per 1 CNY\npoints available after 30 days\n"
    assert only(HEAD.replace("expire after 12 months", "expire after 30 days") + body, "W650") == [7]
    assert only(HEAD.replace("expire after 12 months", "expire after 1 months") + body, "W650") == [7]  # February: 28 days
    assert only(HEAD.replace("expire after 12 months", "expire after 30 days without purchase") + body, "W650") == [7]
    assert only(HEAD.replace("expire after 12 months", "expire after 31 days") + body, "W650") == []
    assert only(HEAD + body, "W650") == [] and only(HEAD.replace("expire after 12 months", "expire never") + body, "W650") == []


def test_a_pending_window_with_a_year_end_expiry_is_flagged():
    body = "earn base: 1 point per 1 CNY\npoints available after 14 days\n"
    found = [d for d in analyse(Source(HEAD.replace("expire after 12 months", "expire at end of year") + body, "t.loyalty"))[1] if d.code == "W651"]
    assert len(found) == 1 and "last 14 days of a year" in found[0].message
    assert only(HEAD.replace("expire after 12 months", "expire at end of next year") + body, "W651") == []


def test_a_voucher_worth_less_a_point_than_the_catalog_is_flagged():
    base = 'program "T"\ncurrency GBP\nexpire after 12 months\nearn base: 1 point per 1 GBP\n'
    voucher = "reward v: 150 points cost 1.50 GBP issued every quarter\n"
    assert only(base + voucher + "reward mug: 100 points cost 3 GBP\n", "W652") == [5]
    assert only(base + voucher + "reward mug: 300 points cost 3 GBP\n", "W652") == []  # the same 0.01 GBP a point
    assert only(base + voucher, "W652") == []


@pytest.mark.parametrize(
    "condition, flagged",
    [
        ("days_since_last_purchase >= 90 and visits_in(60 days) >= 1", True),
        ("days_since_last_purchase >= 90 and visits_in(90 days) > 0", True),  # the 90 days end today: the last purchase is before them
        ("days_since_last_purchase >= 90 and visits_in(91 days) >= 1", False),  # a purchase 90 days ago is inside
        ("(visits_in(2 months) > 0) and 62 <= days_since_last_purchase", True),  # two months are at most 62 days
        ("visits_in(2 months) >= 1 and days_since_last_purchase >= 61", False),  # 31 May to 31 July: a purchase 61 days back is inside
        ("days_since_last_purchase > 89 and visits_in(90 days) >= 1", True),
        ("days_since_last_purchase >= 90 and visits_in(365 days) >= 3", False),
        ("days_since_last_purchase >= 90 or visits_in(30 days) >= 1", False),  # either one: nothing contradicts
        ("days_since_last_purchase >= 90 and visits_in(30 days) >= 0", False),  # zero visits is what a lapse has
    ],
)
def test_a_lapse_with_a_visit_inside_it_never_applies(condition, flagged):
    text = HEAD + f"earn base: 1 point per 1 CNY\nearn winback: 300 points when {condition}\n"
    assert only(text, "W690") == ([7] if flagged else [])


def test_a_lapse_with_visits_inside_it_is_flagged_on_discounts_and_benefits_too():
    text = HEAD + ("earn base: 1 point per 1 CNY\ndiscount d: 10% when days_since_last_purchase >= 30 and visits_in(7 days) >= 1\n"
                   "benefit b: cost 5 CNY when days_since_last_purchase >= 31 and visits_in(1 month) >= 1 once per year\n"
                   "benefit c: cost 5 CNY when days_since_last_purchase >= 30 and visits_in(1 month) >= 1 once per year\n")
    assert only(text, "W690") == [7, 8]


def test_an_open_campaign_window_that_misses_the_condition_never_fires():
    text = HEAD + ("earn base: 1 point per 1 CNY\nearn old: 5 points when date < 2026-01-01 during from 2026-03-01\n"
                   "earn new: 5 points when date > 2026-06-01 during to 2026-05-31\nearn fine: 5 points when date > 2026-06-01 during from 2026-03-01\n")
    assert only(text, "W601") == [7, 8]
def test_a_minimum_below_one_step_of_paying_with_points():
    text = HEAD + "earn base: 1 point per 1 CNY\npay with points: 100 points = 1 CNY, from 50 points\n"
    assert only(text, "W660") == [7]
    assert only(HEAD + "earn base: 1 point per 1 CNY\npay with points: 100 points = 1 CNY, from 100 points\n", "W660") == []
    assert only(HEAD + "earn base: 1 point per 1 CNY\npay with points: 100 points = 1 CNY\n", "W660") == []


def test_a_point_worth_more_at_the_till_than_its_point_cost():
    # HEAD's point_cost is 0.01 CNY: 100 points = 1 CNY is exactly that; 100 points = 2 CNY is twice it.
    assert only(HEAD + "earn base: 1 point per 1 CNY\npay with points: 100 points = 2 CNY\n", "W661") == [7]
    assert only(HEAD + "earn base: 1 point per 1 CNY\npay with points: 100 points = 1 CNY\n", "W661") == []
    assert only(HEAD + "earn base: 1 point per 1 CNY\npay with points: 100 points = 2 CNY  # loyalty: ignore[W661]\n", "W661") == []
