"""Member-facing terms: each construct in words, in English and Chinese; internal details left out."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from rulelang.cli import explain_cmd
from rulelang.explain import TEXT, explain
from rulelang.program import load, loads
from tests.conftest import PROGRAMS
from tests.rulelang.golden_util import updating

BEAN = """\
program "Bean Club"
currency CNY
point_cost 0.02 CNY
tiers by spend over 365 days {
  Green from 0
  Gold  from 1000
  Black from 5000
}
earn base:       1 point per 1 CNY
earn gold_boost: 1.5x base when tier >= Gold
earn happy_hour: 2x base when weekday in [sat, sun]
earn pastry:     2 points per 1 CNY when category == "pastry"
earn new_year:   100 points when amount >= 50 during 2026-12-26 to 2027-01-03
earn birthday:   300 points when month(date) == month(customer.birthday) once per year
earn welcome:    200 points on enroll
earn partnered:  10 points when sku == "SOAP" funded 100% by acme
limit 3000 points per month
expire after 12 months
round down
reward coffee: 300 points cost 8 CNY funded 50% by roaster
assert balance >= 0
assert base <= 99 * amount
"""


def terms(text: str, lang: str = "en") -> str:
    return explain(loads(text), lang)


@pytest.fixture(scope="module")
def en() -> str:
    return terms(BEAN)


@pytest.fixture(scope="module")
def zh() -> str:
    return terms(BEAN, "zh")


@pytest.mark.parametrize(
    "phrase",
    [
        "Bean Club",
        "You earn 1 point for every 1 CNY you spend.",
        "Gold and Black members: 1.5 times the points for spend.",
        "You earn 2 points for every 1 CNY you spend on pastry purchases.",
        "on Saturdays and Sundays",
        "on purchases of at least 50 CNY",
        "between 26 Dec 2026 and 3 Jan 2027",
        "in your birthday month, once per year",
        "You earn 200 points when you join.",
        "1.5x and 2x give 2.5x",
        "Points are rounded down to whole points once per purchase.",
        "at most 3000 points per calendar month; points above it are not given",
        "Points expire 12 months after the day they were earned.",
        "over the last 365 days",
        "Gold: from 1000 CNY",
        "coffee: 300 points",
    ],
)
def test_english_phrases(en, phrase):
    assert phrase in en


@pytest.mark.parametrize(
    "phrase",
    ["每消费1元积1分。", "Gold和Black会员可获得消费积分的1.5倍积分", "购买pastry类商品时", "逢周六和周日", "单笔消费满50元时",
     "2026年12月26日至2027年1月3日期间", "生日当月", "每年限一次", "注册入会时，可获得200积分。", "向下取整",
     "每个自然月最多可获得3000积分", "积分自获得之日起12个月后过期", "会员等级按最近365天内的累计消费金额计算", "Gold：满1000元",
     "coffee：300积分", "积分兑换"],
)
def test_chinese_phrases(zh, phrase):
    assert phrase in zh


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_funding_costs_and_asserts_are_not_member_facing(lang):
    out = terms(BEAN, lang)
    for internal in ("acme", "roaster", "funded", "50%", "8 CNY", "8元", "0.02", "balance", "99"):
        assert internal not in out


@pytest.mark.parametrize(
    "stmt, en, zh",
    [
        ("expire after 90 days", "Points expire 90 days after the day they were earned.", "积分自获得之日起90天后过期。"),
        ("expire after 6 months without purchase", "If you make no purchase for 6 months, your whole balance expires.", "连续6个月没有消费"),
        ("expire at end of year", "at the end of the calendar year in which they were earned", "积分在获得当年的12月31日到期。"),
        ("expire at end of next year", "the calendar year after the one in which they were earned", "积分在获得次年的12月31日到期。"),
        ("expire never", "Points do not expire.", "积分永久有效。"),
        ("round up", "rounded up to whole points", "向上取整"),
        ("round nearest", "rounded to the nearest whole point", "四舍五入"),
        ("limit 100 points per week", "at most 100 points per week (Monday to Sunday)", "每周（周一至周日）最多可获得100积分"),
        ("limit 50 points per day", "at most 50 points per day", "每天最多可获得50积分"),
    ],
)
def test_each_expiry_rounding_and_cap_form(stmt, en, zh):
    text = f"currency CNY\nearn base: 1 point per 1 CNY\n{stmt}\n"
    assert en in terms(text)
    assert zh in terms(text, "zh")


def test_calendar_year_tiers_are_held_through_the_next_year():
    text = "currency CNY\ntiers by spend over calendar year {\n  普通 from 0\n  金卡 from 8000\n}\nearn a: 1 point per 1 CNY\nearn b: 2x a when tier == 金卡\n"
    en, zh = terms(text), terms(text, "zh")
    assert "kept for the rest of that year and all of the next year" in en and "金卡: from 8000 CNY" in en
    assert "金卡 members: 2 times the points for spend" in en
    assert "当年达到的等级保留至次年年底" in zh and "金卡会员可获得消费积分的2倍积分" in zh


@pytest.mark.parametrize(
    "cond, en, zh",
    [
        ('channel in ["app", "web"]', "when the channel is app or web", "渠道为app或web时"),
        ('customer.segment == "student"', "for members in the student segment", "student会员"),
        ("basket.total >= 80", "when your basket total is at least 80 CNY", "单笔订单总额不低于80元时"),
        ('not (category == "fuel")', "except on fuel purchases", "购买fuel类商品时除外"),
        ("weekday not in [mon, tue]", "except on Mondays and Tuesdays", "周一和周二除外"),
        ("month(date) in [12, 1]", "in December or January", "12月或1月"),
        ("customer.days_enrolled <= 30", "within 30 days of joining", "入会30天内"),
        ('category == "tea" or amount > 100', "on tea purchases or on purchases of more than 100 CNY", "购买tea类商品时或单笔消费超过100元时"),
        ("abs(amount) * 2 > 3", "when abs(amount) * 2 > 3", "满足“abs(amount) * 2 > 3”时"),
    ],
)
def test_conditions_in_words_with_a_readable_fallback(cond, en, zh):
    text = f"currency CNY\nearn bonus: 5 points when {cond}\n"
    assert en in terms(text)
    assert zh in terms(text, "zh")


def test_frequency_scope_and_events():
    text = "currency CNY\nearn a: 5 points when sku == \"X\" at most 2 times per week\nearn r: 50 points on review once\nearn s: 9 points on shared\n"
    en = terms(text)
    assert "You earn 5 points for each qualifying item when the product code is X, at most 2 times per week." in en
    assert "You earn 50 points when you write a review, once only." in en
    assert "You earn 9 points on a 'shared' event." in en
    zh = terms(text, "zh")
    assert "每周最多2次" in zh and "发表评价时，可获得50积分，仅限一次。" in zh


def test_other_currencies_and_unknown_codes():
    assert "每消费2英镑积1分" in terms("currency GBP\nearn a: 1 point per 2 GBP\n", "zh")
    assert "每消费2 CHF积1分" in terms("currency CHF\nearn a: 1 point per 2 CHF\n", "zh")
    assert "for every 2 CHF you spend" in terms("currency CHF\nearn a: 1 point per 2 CHF\n")


def test_languages_share_one_table_shape():
    assert TEXT["en"].keys() - {"currency_units"} <= TEXT["zh"].keys()
    for key in ("award", "expiry", "rounding", "freq", "special", "ops", "sections", "cap_period"):
        assert TEXT["en"][key].keys() == TEXT["zh"][key].keys(), key


def test_unknown_language_is_refused():
    with pytest.raises(ValueError, match="en, zh"):
        terms(BEAN, "fr")


def test_cli_explain(tmp_path):
    good = tmp_path / "good.loyalty"
    good.write_text(BEAN, encoding="utf-8")
    result = CliRunner().invoke(explain_cmd, [str(good), "--lang", "zh"])
    assert result.exit_code == 0 and "每消费1元积1分" in result.output

    bad = tmp_path / "bad.loyalty"
    bad.write_text("earn base: 1 point per 1 CNY\nearn boost: 2x bsae\n", encoding="utf-8")
    result = CliRunner().invoke(explain_cmd, [str(bad)])
    assert result.exit_code == 1 and "bad.loyalty:2:" in result.output and isinstance(result.exception, SystemExit)

    missing = CliRunner().invoke(explain_cmd, [str(tmp_path / "none.loyalty")])
    assert missing.exit_code == 2 and isinstance(missing.exception, SystemExit)


def test_chinese_conditions_that_each_end_in_shi_read_as_one():
    text = 'currency CNY\nearn a: 5 points when channel == "app" and basket.total >= 30 and weekday in [sat, sun]\n'
    zh = terms(text, "zh")
    assert "渠道为app且单笔订单总额不低于30元时，逢周六和周日，" in zh
    assert "时，单笔" not in zh  # not "渠道为app时，单笔订单总额不低于30元时"


def test_cli_explain_missing_file_has_no_position(tmp_path):
    missing = CliRunner().invoke(explain_cmd, [str(tmp_path / "none.loyalty")])
    assert missing.exit_code == 2
    assert missing.output.strip() == f"{tmp_path / 'none.loyalty'}: error[E002]: no such file"


def test_cli_explain_shows_control_characters_as_escapes(tmp_path):
    path = tmp_path / "p.loyalty"
    path.write_text('program "Bean\x1b[2J Club"\ncurrency CNY\nearn base: 1 point per 1 CNY\n', encoding="utf-8")
    shown = CliRunner().invoke(explain_cmd, [str(path)])
    assert shown.exit_code == 0 and "Bean\\x1b[2J Club" in shown.output and "\x1b" not in shown.output


SHAPES = """program "Market"
currency EUR
tiers by spend over 365 days {
  Green from 0
  Gold  from 100
}
earn cereal_units: 10 points per unit when sku == "CEREAL-500G"
earn yogurt_units: 2 points per unit when category == "yogurt" and tier >= Gold
earn big_order:    100 points when basket.total(category != "delivery") >= 100 EUR
earn yogurts:      5 points when basket.quantity(category == "yogurt") >= 3
reward bag: 100 points cost 1 EUR
"""


@pytest.mark.parametrize(
    "lang, phrase",
    [
        ("en", "You earn 10 points for each CEREAL-500G."),
        ("en", "Gold members earn 2 points for each item on yogurt purchases."),
        ("en", "when your basket total (except on delivery purchases) is at least 100 EUR"),
        ("en", "when the number of items in your basket (on yogurt purchases) is at least 3"),
        ("zh", "每件CEREAL-500G得10积分。"),
        ("zh", "购买yogurt类商品时，Gold会员每件商品得2积分。"),
        ("zh", "单笔订单总额（delivery类商品除外）不低于100欧元时，每笔消费可获得100积分。"),
        ("zh", "订单商品件数（购买yogurt类商品）不低于3时"),
    ],
)
def test_per_unit_points_and_basket_sums_in_words(lang, phrase):
    assert phrase in terms(SHAPES, lang)


DISCOUNTS = """\
program "Shop"
currency CNY
tiers by spend over 365 days {
  普通会员 from 0
  金卡     from 8000
}
earn base: 1 point per 1 CNY
discount member_price: 5% when tier >= 金卡
discount launch_week:  20% during 2026-03-01 to 2026-03-07
discount coupon:       10 CNY when basket.total >= 100 CNY once per month
discount capped:       20% up to 30 CNY when tier >= 金卡 and category == "wine"
discount second_shirt: 50% on the cheapest line when category == "shirts"
discount yogurt_bogof: buy 3 get 1 free when category == "yogurt" funded 100% by supplier
"""


def test_discounts_read_as_member_prices_in_english():
    text = terms(DISCOUNTS)
    assert "Member prices\n- 金卡 members pay 5% less.\n" in text
    assert "- You pay 20% less between 1 Mar 2026 and 7 Mar 2026." in text
    assert "- You get 10 CNY off a purchase when your basket total is at least 100 CNY, once per month." in text
    assert "- 金卡 members pay 20% less (at most 30 CNY off a purchase) on wine purchases." in text
    assert "- You pay 50% less on the cheapest item on shirts purchases." in text
    assert "- Buy 3, get 1 free on yogurt purchases (of every 4 items, the cheapest 1 free)." in text
    assert "If several discounts apply to one item, you get the largest of them." in text
    assert "supplier" not in text  # who funds a discount is not member-facing


def test_discounts_read_as_zhe_and_mai_song_in_chinese():
    text = terms(DISCOUNTS, "zh")
    assert "会员折扣\n- 金卡会员享9.5折。\n" in text
    assert "- 2026年3月1日至2026年3月7日期间，享8折。" in text
    assert "- 单笔订单总额不低于100元时，每笔立减10元，每月限一次。" in text
    assert "- 购买wine类商品时，金卡会员享8折，每笔最多优惠30元。" in text
    assert "- 购买shirts类商品时，最便宜的一件享5折。" in text
    assert "- 购买yogurt类商品时，买3送1（每4件中最便宜的1件免费）。" in text


def test_a_program_without_discounts_has_no_member_prices_section():
    assert "Member prices" not in terms(BEAN) and "会员折扣" not in terms(BEAN, "zh")


BAKERY = """program "Bakery"
currency CNY
column category: text
earn base:          1 point per 1 CNY
earn pastry_promo:  2x base when category == "pastry"
earn tuesday_promo: 3x base when weekday == tue
best of pastry_promo, tuesday_promo
reward croissant: 300 points cost 8 CNY
"""


@pytest.mark.parametrize("lang, head, pastry, tuesday", [
    ("en", "Only the best of these applies on one purchase (the one that gives the most points):",
     "- You earn 2 times the points for spend on pastry purchases.", "- You earn 3 times the points for spend on Tuesdays."),
    ("zh", "以下优惠不叠加，取最优（积分最多的一项）：", "- 购买pastry类商品时，可获得消费积分的2倍积分。", "- 逢周二，可获得消费积分的3倍积分。"),
])
def test_best_of_lists_its_promotions_under_one_sentence_and_they_do_not_add_up(lang, head, pastry, tuesday):
    lines = explain(loads(BAKERY), lang).splitlines()
    at = lines.index(head)
    assert lines[at + 1 : at + 3] == [pastry, tuesday]
    assert lines.count(pastry) == 1 and lines.count(tuesday) == 1  # not also among the other rules
    # 2x and 3x of one base in one group never apply together: no sentence adds them up.
    assert not any(line.startswith(TEXT[lang]["stacking"].split("{")[0]) for line in lines)
    plain = explain(loads(BAKERY.replace("best of pastry_promo, tuesday_promo\n", "")), lang).splitlines()
    assert head not in plain and pastry in plain and tuesday in plain
    assert any(line.startswith(TEXT[lang]["stacking"].split("{")[0]) for line in plain)


BENEFITS = """program "Suits"
currency CNY
tiers by spend over calendar year {
  Green from 0
  Gold  from 8000
}
earn base: 1 point per 1 CNY
benefit free_alteration: cost 20 CNY when category == "suits" and tier >= Gold
benefit birthday_gift:   cost 50 CNY when month(date) == month(customer.birthday) once per year funded 50% by brand
benefit welcome_tote:    cost 15 CNY on enroll
reward bag: 100 points cost 1 CNY
"""


@pytest.mark.parametrize(
    "lang, phrase",
    [
        ("en", "Benefits\n- Gold members: free alteration on suits (worth 20 CNY).\n"),
        ("en", "- Birthday gift in your birthday month (worth 50 CNY), once per year.\n"),
        ("en", "- Welcome tote when you join (worth 15 CNY).\n"),
        ("en", "A benefit already given is not taken back if you return the purchase."),
        ("zh", "会员权益\n- 购买suits类商品时，Gold会员可享free alteration（价值20元）。\n"),
        ("zh", "- 生日当月，可享birthday gift（价值50元），每年限一次。\n"),
        ("zh", "已享受的权益在退货时不予收回。"),
    ],
)
def test_benefits_in_words(lang, phrase):
    text = terms(BENEFITS, lang)
    assert phrase in text
    assert "brand" not in text and "50%" not in text  # who funds a benefit is not member-facing


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: p.stem)
def test_golden_terms_of_the_bundled_programs(path, lang):
    """Each bundled program's member terms, as golden files (tests/rulelang/golden_explain/NAME.LANG.txt;
    `pytest --update-goldens` writes them, as it writes the diagnostics' goldens)."""
    golden = Path(__file__).resolve().parent / "golden_explain" / f"{path.stem}.{lang}.txt"
    text = explain(load(path), lang)
    if updating():
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"{golden}: golden file missing; write it with `pytest --update-goldens` and review it"
    assert text == golden.read_text(encoding="utf-8"), f"{path.name}: the {lang} terms differ from {golden.name}"


LABELLED = """program "Labels"
currency CNY
tiers by spend over 365 days {
  Green from 0
  Gold  from 1000
  Black from 5000
}
earn base:    1 point per 1 CNY
earn bonus:   10 points when amount >= 100
earn units:   2 points per unit when sku == "X"
earn gold:    1.5x base when tier == Gold
earn black:   2x base when tier == Black
earn weekend: 2x base when weekday in [sat, sun]
earn extra:   2x bonus
earn more:    1.5x extra
earn each:    3x units
reward coffee_cup: 300 points cost 8 CNY
benefit free_delivery: cost 8 CNY once per month
label base en "Points on spend" zh "消费积分"
label Gold en "Gold card" zh "金卡"
label gold en "Gold bonus"
label coffee_cup zh "咖啡杯"
label free_delivery zh "免费配送"
"""


@pytest.mark.parametrize(
    "lang, phrase",
    [
        ("en", "- Gold bonus — Gold card members: 1.5 times the points of 'Points on spend'.\n"),
        ("en", "- Black members: 2 times the points of 'Points on spend'.\n"),
        ("en", "- You earn 2 times the 10 points bonus.\n"),
        ("en", "- You earn 1.5 times the extra points of the 2x bonus.\n"),
        ("en", "- You earn 3 times the points per item.\n"),
        ("en", "- coffee cup: 300 points\n"),
        ("en", "- Free delivery (worth 8 CNY), once per month.\n"),
        ("en", "- Gold card: from 1000 CNY\n"),
        ("zh", "- 金卡会员可获得“消费积分”的1.5倍积分。\n"),
        ("zh", "- 可获得10积分奖励的2倍积分。\n"),
        ("zh", "- 咖啡杯：300积分\n"),
        ("zh", "- 可享免费配送（价值8元），每月限一次。\n"),
    ],
)
def test_labels_name_what_members_read(lang, phrase):
    assert phrase in terms(LABELLED, lang)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_no_rule_is_named_without_a_label(lang):
    text = terms(LABELLED, lang)
    for rule in ("bonus", "units", "black", "weekend", "extra", "more", "each"):
        assert f"'{rule}'" not in text and f"“{rule}”" not in text
    assert "base" not in text and "free_delivery" not in text


def test_multipliers_that_never_apply_together_are_not_added_up():
    en = terms(LABELLED)
    # Gold's 1.5x and Black's 2x are for different tiers: each adds up with the weekend's 2x only.
    assert "their extras add up: 'Gold bonus' (1.5x) and 2x give 2.5x." in en
    assert "their extras add up: 2x and 2x give 3x." in en
    assert "give 4.5x" not in en and "give 3.5x" not in en
    disjoint = "currency CNY\nearn base: 1 point per 1 CNY\nearn a: 2x base when amount < 10\nearn b: 3x base when amount >= 10\n"
    assert "add up" not in terms(disjoint) and "相加" not in terms(disjoint, "zh")
    together = "currency CNY\nearn base: 1 point per 1 CNY\nearn a: 2x base when amount >= 10\nearn b: 3x base when amount >= 20\n"
    assert "their extras add up: 2x and 3x give 4x." in terms(together)


def test_the_language_references_label_example_reads_as_it_says():
    """docs/language.md, "Labels": its program's `explain` says what the page says it does."""
    import re

    doc = (Path(__file__).resolve().parents[2] / "docs" / "language.md").read_text(encoding="utf-8")
    section = doc.split("### Labels", 1)[1]
    program = re.search(r"```loyalty\n(.*?)```", section, re.S).group(1)
    claimed = re.search(r'then reads "(.*?)" What `explain` shows', section, re.S).group(1)
    assert " ".join(claimed.split()) in terms(program).replace("\n", " ")


ALTERNATIVES = """\
currency CNY
tiers by spend over lifetime {
  Silver from 0
  Gold   from 5000 CNY or 24 visits
  Black  from 20000 CNY or 60 visits or 30000 points
}
earn base: 1 point per 1 CNY
"""


def test_tier_alternatives_and_lifetime_in_both_languages():
    en = explain(loads(ALTERNATIVES), "en")
    assert "since you joined" in en and "never lost" in en
    assert "reached by any one of them" in en
    assert "- Gold: from 5000 CNY or 24 visits" in en
    assert "- Black: from 20000 CNY, 60 visits or 30000 points" in en
    zh = explain(loads(ALTERNATIVES), "zh")
    assert "入会以来" in zh and "任一门槛达标" in zh
    assert "Gold：满5000元或24次" in zh
    assert "Black：满20000元、60次或30000积分" in zh


def test_retention_in_both_languages():
    text = ALTERNATIVES.replace("over lifetime", "over calendar year").replace("24 visits", "24 visits keep 24 months")
    assert "Gold is kept for 24 months once reached" in explain(loads(text), "en")
    assert "Gold达标后保留24个月" in explain(loads(text), "zh")


def test_reviews_and_one_level_falls_in_both_languages():
    text = ALTERNATIVES + "downgrade one level at a time\nreview tiers every quarter\n"
    en = explain(loads(text), "en")
    assert "Levels are reviewed at the start of every quarter" in en and "at most one step at a time" in en
    zh = explain(loads(text), "zh")
    assert "会员等级于每季度初评定" in zh and "每次最多下调一级" in zh
    assert "reviewed" not in explain(loads(ALTERNATIVES), "en")


def test_counting_the_current_purchase_in_both_languages():
    text = ALTERNATIVES.replace("over lifetime {", "over lifetime counting the current purchase {").replace(" or 30000 points", "")
    assert "The purchase that reaches a level already earns at that level." in explain(loads(text), "en")
    assert "达到新等级的那笔消费即按新等级计算。" in explain(loads(text), "zh")
def test_an_automatic_voucher_and_pending_points_in_both_languages():
    text = ("program \"C\"\ncurrency GBP\nearn base: 1 point per 1 GBP\npoints available after 14 days\n"
            "reward clubcard_voucher: 150 points cost 1.50 GBP issued every quarter\nreward mug: 500 points cost 8 GBP\n")
    en, zh = explain(loads(text), "en"), explain(loads(text), "zh")
    assert "Every quarter, each 150 points you can spend become a 1.50 GBP voucher (clubcard voucher)." in en
    assert "Points become available 14 days after the day you earn them" in en
    assert "- mug: 500 points" in en and "clubcard voucher: 150 points" not in en  # the voucher is not in the catalog
    assert "每季度末，可用积分每150积分自动转换为一张1.50英镑代金券（clubcard voucher）。" in zh
    assert "积分自获得之日起14天后可用" in zh


@pytest.mark.parametrize(
    "cond, en, zh",
    [
        ("visits_in(90 days) >= 6", "when the number of your visits in the last 90 days is at least 6", "近90天消费次数不低于6时"),
        ("visits_in(1 month) == 0", "when the number of your visits in the last month is 0", "近1个月消费次数为0时"),
        ("spend_in(12 months) >= 10000 CNY", "when your spend in the last 12 months is at least 10000 CNY", "近12个月累计消费不低于10000元时"),
        ("spend_in(365 days) > 500", "when your spend in the last 365 days is more than 500 CNY", "近365天累计消费高于500元时"),
        ("days_since_last_purchase >= 90", "when you come back after 90 days or more without a purchase", "距上次消费满90天后再次消费时"),
        ("days_since_last_purchase <= 7", "within 7 days of your last purchase", "距上次消费7天内"),
        ("days_since_last_purchase == 30", "when the days since your last purchase is 30", "距上次消费天数为30时"),
    ],
)
def test_recency_in_words(cond, en, zh):
    text = f"currency CNY\nearn bonus: 5 points when {cond}\n"
    assert en in terms(text)
    assert zh in terms(text, "zh")


def test_recency_words_exist_in_both_languages():
    for key in ("window", "span", "recency"):
        assert TEXT["en"][key].keys() == TEXT["zh"][key].keys(), key


@pytest.mark.parametrize(
    "clause, en, zh",
    [
        ("during from 2026-03-01", "from 1 Mar 2026", "2026年3月1日起"),
        ("during to 2026-02-28", "up to and including 28 Feb 2026", "截至2026年2月28日"),
        ("during 2026-03-01 to 2026-03-07", "between 1 Mar 2026 and 7 Mar 2026", "2026年3月1日至2026年3月7日期间"),
    ],
)
def test_open_campaign_windows_in_words(clause, en, zh):
    text = f"currency CNY\nearn base: 1 point per 1 CNY\nearn launch: 2x base {clause}\ndiscount d: 5% {clause}\n"
    assert en in terms(text) and zh in terms(text, "zh")
    assert terms(text).count(en) == 2  # the rule's and the discount's


def test_an_event_named_by_text_reads_as_the_data_names_it():
    text = 'currency CNY\nearn base: 1 point per 1 CNY\nearn news: 50 points on "Newsletter.Subscribed" once\n'
    assert "on a 'newsletter.subscribed' event" in terms(text)
    assert "发生“newsletter.subscribed”时" in terms(text, "zh")


def test_a_budget_is_explained_in_english_and_chinese():
    program = loads("currency CNY\nearn base: 1 point per 1 CNY\nearn launch_bonus: 500 points on enroll budget 1000000 points\n"
                    "discount launch_week: 20% during 2026-03-01 to 2026-03-07 budget 50000 CNY\nreward r: 100 points cost 1 CNY\n")
    en, zh = explain(program, "en"), explain(program, "zh")
    assert "You earn 500 points when you join, until 1,000,000 points have been given (to all members together, first come, first served)." in en
    assert "until 50,000 CNY of discount has been given" in en
    assert "注册入会时，可获得500积分，共送出1,000,000积分即止（全体会员先到先得）。" in zh
    assert "优惠总额达50,000元即止（全体会员先到先得）" in zh


TIER_PRICES = """currency CNY
tiers by spend over 365 days {
  Silver from 0
  Gold   from 8000
  Black  from 20000
}
earn base: 1 point per 1 CNY
discount silver_price: 5% when tier == Silver
discount gold_price:   10% when tier == Gold
discount black_price:  15% when tier == Black
label gold_price en "Gold price" zh "金卡价"
"""


@pytest.mark.parametrize("lang, largest, labelled", [
    ("en", "If several discounts apply to one item", "- Gold price — Gold members pay 10% less.\n"),
    ("zh", "同一商品适用多项折扣时", "- 金卡价：Gold会员享9折。\n"),
])
def test_discounts_of_exclusive_tiers_never_meet_and_a_label_names_its_discount(lang, largest, labelled):
    text = terms(TIER_PRICES, lang)
    # One per tier: no member ever has two, so "only the largest applies" would mislead.
    assert largest not in text
    assert labelled in text
    # A Black price that meets a launch week's discount: then the sentence is said.
    assert largest in terms(TIER_PRICES + "discount launch: 20% during 2026-03-01 to 2026-03-07\n", lang)
