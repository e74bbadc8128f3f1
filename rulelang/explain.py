"""A program as member-facing terms in plain language (`en` or `zh`), read from its tree and model.

Every phrase comes from the `TEXT` tables (one dict per language, keyed by construct and
operator); the code only picks keys and fills slots. Partner funding and asserts are not
member-facing and are left out. A condition the tables cannot put in words is shown as written.
"""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from fractions import Fraction

from rulelang import ast
from rulelang import builtins as B
from rulelang.conditions import Analyser
from rulelang.fmt import format_expr, width
from rulelang.model import Model, Rule, lower

_EN_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_EN_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]

TEXT: dict[str, dict] = {
    "en": {
        "title": "{name}: member terms",
        "sections": {"earn": "How you earn points", "tiers": "Membership levels", "limits": "Limits",
                     "expiry": "When points expire", "rewards": "Rewards"},
        "bullet": "- ",
        "capitalise": True,
        "points": {"one": "{n} point", "many": "{n} points"},
        "money": "{n} {unit}",
        "currency_units": {},
        "currency_fallback": "{code}",
        "date": lambda d: f"{d.day} {_EN_MONTHS[d.month - 1][:3]} {d.year}",
        "weekday": [f"{w}s" for w in _EN_WEEKDAYS],
        "month": _EN_MONTHS,
        "join": {"and": (", ", " and "), "or": (", ", " or ")},
        "who": {"all": "You", "tiers": "{tiers} members"},
        "they": {"all": "you", "tiers": "they"},
        "award": {
            "per_spend": "{who} earn {points} for every {money} {they} spend{conds}{freq}.",
            "fixed_basket": "{who} earn {points} per purchase{conds}{freq}.",
            "fixed_line": "{who} earn {points} for each qualifying item{conds}{freq}.",
            "fixed_event": "{who} earn {points}{conds}{freq}.",
            "per_unit": "{who} earn {points} for each item{conds}{freq}.",
            "per_unit_item": "{who} earn {points} for each {item}{conds}{freq}.",
            "multiplier_all": "You earn {factor} times {target}{conds}{freq}.",
            "multiplier_tiers": "{who}: {factor} times {target}{conds}{freq}.",
        },
        # What a multiplier multiplies, in words: its target's label, else what the target earns.
        "target": {"label": "the points of '{label}'", "per_spend": "the points for spend", "per_unit": "the points per item",
                   "fixed": "the {points} bonus", "multiplier": "the extra points of the {factor}x bonus"},
        "labelled": "{label} — {text}",
        "stack_part": {"label": "'{label}' ({f}x)", "plain": "{f}x"},
        "conds": (" ", ", "),  # before the first condition, between conditions
        "events": {B.ENROLL: "when you join", "referral": "when you refer a friend who joins", "review": "when you write a review",
                   "_other": "on a '{event}' event"},
        "during": "between {start} and {end}",
        "during_open": {"from": "from {start}", "to": "up to and including {end}"},  # `during from D`, `during to D`
        "freq": {"once": ", once only", "once_per": ", once per {period}", "times": ", at most {n} times in all",
                 "times_per": ", at most {n} times per {period}"},
        # A budget shared by every member (docs/semantics.md, "Budgets").
        "budget": {"points": ", until {amount} have been given (to all members together, first come, first served)",
                   "money": ", until {amount} of discount has been given (to all members together, first come, first served)"},
        "period": {"day": "day", "week": "week", "month": "month", "year": "year"},
        "stacking": "When several bonuses apply to the same points, their extras add up: {parts} give {total}x.",
        "best_of": "Only the best of these applies on one purchase (the one that gives the most points):",
        "factor": "{f}x",
        "rounding": {"down": "Points are rounded down to whole points once per purchase.",
                     "up": "Points are rounded up to whole points once per purchase.",
                     "nearest": "Points are rounded to the nearest whole point (halves up) once per purchase."},
        "refund": "If you return a purchase, the points it earned are taken back.",
        "tiers_rolling": "Your level depends on {metric} over the last {n} {unit}, counted at every purchase. "
                         "Older activity stops counting, so a level can also go down.",
        "tiers_calendar": "Your level depends on {metric} in a calendar year. A level reached in a year is kept "
                          "for the rest of that year and all of the next year.",
        "metric": {"spend": "how much you spend", "points": "the points you earn", "visits": "how many visits you make"},
        "tiers_lifetime": "Your level depends on {metric} since you joined. Nothing stops counting, so a level once reached is never lost.",
        "tiers_alternatives": "A level with several thresholds is reached by any one of them, each counted over the same period.",
        "keep": "{name} is kept for {n} months once reached (reaching it again starts the {n} months anew).",
        "review": "Levels are reviewed at the start of every {period}: a level you no longer reach is lowered then; a higher level is yours at once.",
        "review_period": {1: "month", 3: "quarter", 12: "year"},
        "one_level": "A level is lowered by at most one step at a time.",
        "counting": "The purchase that reaches a level already earns at that level.",
        "window_unit": {"days": "days", "months": "months"},
        "level": "{name}: from {threshold}",
        "level_start": "{name}: where every member starts",
        "threshold": {"points": "{n} points", "visits": "{n} visits"},
        "cap": "You can earn at most {points} per {period}; points above it are not given.",
        "cap_period": {"day": "day", "week": "week (Monday to Sunday)", "month": "calendar month", "year": "calendar year"},
        "expiry": {"after": "Points expire {n} {unit} after the day they were earned.",
                   "inactive": "If you make no purchase for {n} {unit}, your whole balance expires.",
                   "end_of_year": "Points expire at the end of the calendar year in which they were earned.",
                   "end_of_next_year": "Points expire at the end of the calendar year after the one in which they were earned.",
                   "never": "Points do not expire."},
        "oldest_first": "When you redeem, your oldest points are used first.",
        "pending_section": "When points can be used",
        "pending": "Points become available {n} days after the day you earn them; until then they are pending and cannot be spent. "
                   "If you return a purchase within that time, its points are taken back from the pending ones.",
        "time_unit": {"days": "days", "months": "months", "years": "years"},
        "rewards_intro": "Exchange your points for:",
        "voucher": "Every {period}, each {points} you can spend become a {money} voucher ({name}).",
        "voucher_period": {1: "month", 3: "quarter", 12: "year"},
        "reward": "{name}: {points}",
        "benefit_section": "Benefits",
        "benefit": {"all": "{name}{conds} (worth {money}){freq}.", "tiers": "{who}: {name}{conds} (worth {money}){freq}."},
        "benefit_refund": "A benefit already given is not taken back if you return the purchase.",
        # A benefit reads "free alteration on suits" rather than "... on suits purchases".
        "benefit_special": {("category", "in"): "on {values}", ("category", "not in"): "except on {values}"},
        # Paying with points at the till (`pay with points`): the step, the cap, the minimum balance.
        "pay_section": "Paying with points",
        "pay": "{points} pay {money}{cap}{minimum}.",
        "pay_cap": {"share": ", for up to {share} of the bill", "percent": ", for up to {pct}% of the bill"},
        "pay_share": {Fraction(1, 2): "half", Fraction(1, 3): "a third", Fraction(1, 4): "a quarter"},
        "pay_minimum": ", from {points}",
        "pay_earns": {"plain": "The part you pay with points earns no points.",
                      "tiers": "The part you pay with points earns no points and does not count toward your membership level."},
        # conditions
        "birthday": "in your birthday month",
        "tier_cond": "for {tiers} members",
        "not": "except {p}",
        "and": " and ",
        "or": " or ",
        "fallback": "when {expr}",
        "generic": "when {subject} {op} {value}",
        "ops": {"==": "is", "!=": "is not", ">=": "is at least", ">": "is more than", "<=": "is at most", "<": "is less than",
                "in": "is", "not in": "is not"},
        "special": {
            ("category", "in"): "on {values} purchases",
            ("category", "not in"): "except on {values} purchases",
            ("amount", ">="): "on purchases of at least {value}",
            ("amount", ">"): "on purchases of more than {value}",
            ("weekday", "in"): "on {values_and}",
            ("weekday", "not in"): "except on {values_and}",
            ("month(date)", "in"): "in {values}",
            ("day(date)", "in"): "on day {values} of the month",
            ("customer.segment", "in"): "for members in the {values} segment",
            ("customer.days_enrolled", "<="): "within {value} days of joining",
            ("customer.days_enrolled", "<"): "within your first {value} days of membership",
        },
        "subjects": {"amount": "the purchase amount", "category": "the product category", "sku": "the product code",
                     "product": "the product", "brand": "the brand", "quantity": "the quantity", "store": "the store",
                     "channel": "the channel", "payment": "the payment method", "region": "the region", "date": "the date",
                     "basket.total": "your basket total", "basket.lines": "the number of lines in your basket",
                     "basket.quantity": "the number of items in your basket", "customer.days_enrolled": "the days since you joined",
                     "customer.enrolled": "the day you joined", "customer.segment": "your segment", "customer.city": "your city",
                     "_column": "the {name}", "_customer": "your {name}"},
        "basket_sum": {"total": "your basket total ({cond})", "quantity": "the number of items in your basket ({cond})"},
        # The member's history before the purchase (docs/semantics.md, "Recency").
        "window": {"visits_in": "the number of your visits in the last {span}", "spend_in": "your spend in the last {span}"},
        "span": {"days": "{n} days", "months": "{n} months", "1 days": "day", "1 months": "month"},
        "recency": {">=": "when you come back after {value} days or more without a purchase",
                    ">": "when you come back after more than {value} days without a purchase",
                    "<=": "within {value} days of your last purchase", "<": "less than {value} days after your last purchase",
                    "_subject": "the days since your last purchase"},
        "discount_section": "Member prices",
        "discount": {"percent": "{who} pay {pct}% less{where}{cap}{conds}{freq}.", "fixed": "{who} get {money} off a purchase{conds}{freq}.",
                     "buy_get": "{Buy} {buy}, get {get} free{conds}{freq} (of every {group} items, the cheapest {get} free)."},
        "discount_cheapest": " on the cheapest item",
        "discount_cap": " (at most {money} off a purchase)",
        "discount_buy": {"all": "Buy", "tiers": "{tiers} members: buy"},
        "discount_largest": "If several discounts apply to one item, you get the largest of them.",
    },
    "zh": {
        "title": "{name} 会员积分规则",
        "sections": {"earn": "如何获得积分", "tiers": "会员等级", "limits": "积分上限", "expiry": "积分有效期", "rewards": "积分兑换"},
        "bullet": "- ",
        "capitalise": False,
        "points": {"one": "{n}积分", "many": "{n}积分"},
        "money": "{n}{unit}",
        "currency_fallback": " {code}",
        "currency_units": {"CNY": "元", "RMB": "元", "HKD": "港元", "USD": "美元", "EUR": "欧元", "GBP": "英镑", "JPY": "日元",
                           "TWD": "新台币", "SGD": "新加坡元", "KRW": "韩元"},
        "date": lambda d: f"{d.year}年{d.month}月{d.day}日",
        "weekday": ["周一", "周二", "周三", "周四", "周五", "周六", "周日"],
        "month": [f"{m}月" for m in range(1, 13)],
        "join": {"and": ("、", "和"), "or": ("、", "或")},
        "who": {"all": "", "tiers": "{tiers}会员"},
        "they": {"all": "", "tiers": ""},
        "award": {
            "per_spend": "{conds}{who}每消费{money}积{n}分{freq}。",
            "fixed_basket": "{conds}{who}每笔消费可获得{points}{freq}。",
            "fixed_line": "{conds}{who}每件符合条件的商品可获得{points}{freq}。",
            "fixed_event": "{conds}{who}可获得{points}{freq}。",
            "per_unit": "{conds}{who}每件商品得{points}{freq}。",
            "per_unit_item": "{conds}{who}每件{item}得{points}{freq}。",
            "multiplier_all": "{conds}可获得{target}的{factor}倍积分{freq}。",
            "multiplier_tiers": "{conds}{who}可获得{target}的{factor}倍积分{freq}。",
        },
        "target": {"label": "“{label}”", "per_spend": "消费积分", "per_unit": "按件积分", "fixed": "{points}奖励",
                   "multiplier": "{factor}倍加倍的额外积分"},
        "labelled": "{label}：{text}",
        "stack_part": {"label": "“{label}”（{f}倍）", "plain": "{f}倍"},
        "conds": ("", "，"),
        "conds_end": "，",
        # Conditions that each end in 时 read as one: "渠道为app且单笔订单总额不低于30元时".
        "cond_suffix": "时",
        "events": {B.ENROLL: "注册入会时", "referral": "推荐新会员入会时", "review": "发表评价时", "_other": "发生“{event}”时"},
        "during": "{start}至{end}期间",
        "during_open": {"from": "{start}起", "to": "截至{end}"},
        "freq": {"once": "，仅限一次", "once_per": "，每{period}限一次", "times": "，最多{n}次", "times_per": "，每{period}最多{n}次"},
        "budget": {"points": "，共送出{amount}即止（全体会员先到先得）", "money": "，优惠总额达{amount}即止（全体会员先到先得）"},
        "period": {"day": "天", "week": "周", "month": "月", "year": "年"},
        "stacking": "多项加倍同时适用于同一积分时，额外部分相加：{parts}合计为{total}倍。",
        "best_of": "以下优惠不叠加，取最优（积分最多的一项）：",
        "factor": "{f}倍",
        "rounding": {"down": "每笔消费的积分合计后向下取整。", "up": "每笔消费的积分合计后向上取整。", "nearest": "每笔消费的积分合计后四舍五入取整。"},
        "refund": "退货时，该笔消费所得积分将被扣回。",
        "tiers_rolling": "会员等级按最近{n}{unit}内的{metric}计算，每次消费时更新；超出期限的部分不再计入，等级也可能下调。",
        "tiers_calendar": "会员等级按自然年内的{metric}计算；当年达到的等级保留至次年年底。",
        "metric": {"spend": "累计消费金额", "points": "累计所得积分", "visits": "消费次数"},
        "tiers_lifetime": "会员等级按入会以来的{metric}计算；累计不清零，达到的等级永久保留。",
        "tiers_alternatives": "设有多个门槛的等级，任一门槛达标即可获得，各项按同一期间计算。",
        "keep": "{name}达标后保留{n}个月（再次达标重新计算）。",
        "review": "会员等级于每{period}初评定：未再达标的等级在评定时下调；达到更高等级即时升级。",
        "review_period": {1: "月", 3: "季度", 12: "年"},
        "one_level": "每次最多下调一级。",
        "counting": "达到新等级的那笔消费即按新等级计算。",
                "window_unit": {"days": "天", "months": "个月"},
        "level": "{name}：满{threshold}",
        "level_start": "{name}：入会即享",
        "threshold": {"points": "{n}积分", "visits": "{n}次"},
        "cap": "{period}最多可获得{points}，超出部分不予发放。",
        "cap_period": {"day": "每天", "week": "每周（周一至周日）", "month": "每个自然月", "year": "每个自然年"},
        "expiry": {"after": "积分自获得之日起{n}{unit}后过期。",
                   "inactive": "连续{n}{unit}没有消费，账户全部积分将过期。",
                   "end_of_year": "积分在获得当年的12月31日到期。",
                   "end_of_next_year": "积分在获得次年的12月31日到期。",
                   "never": "积分永久有效。"},
        "oldest_first": "兑换时优先使用最早获得的积分。",
        "pending_section": "积分何时可用",
        "pending": "积分自获得之日起{n}天后可用，此前为待生效积分，不能使用。在此期间退货，将从待生效积分中扣回该笔积分。",
        "time_unit": {"days": "天", "months": "个月", "years": "年"},
        "rewards_intro": "可用积分兑换：",
        "voucher": "每{period}末，可用积分每{points}自动转换为一张{money}代金券（{name}）。",
        "voucher_period": {1: "月", 3: "季度", 12: "年"},
        "reward": "{name}：{points}",
        "benefit_section": "会员权益",
        "benefit": {"all": "{conds}可享{name}（价值{money}）{freq}。", "tiers": "{conds}{who}可享{name}（价值{money}）{freq}。"},
        "benefit_refund": "已享受的权益在退货时不予收回。",
        "benefit_special": {},
        "pay_section": "积分抵现",
        "pay": "积分抵现：{points}抵{money}{cap}{minimum}。",
        "pay_cap": {"share": "，最多抵{pct}%", "percent": "，最多抵{pct}%"},
        "pay_share": {},
        "pay_minimum": "，满{points}可用",
        "pay_earns": {"plain": "积分抵扣的部分不再积分。", "tiers": "积分抵扣的部分不再积分，也不计入会员等级的消费。"},
        "birthday": "生日当月",
        "tier_cond": "{tiers}会员",
        "not": "{p}除外",
        "and": "且",
        "or": "或",
        "fallback": "满足“{expr}”时",
        "generic": "{subject}{op}{value}时",
        "ops": {"==": "为", "!=": "不为", ">=": "不低于", ">": "高于", "<=": "不超过", "<": "低于", "in": "为", "not in": "不为"},
        "special": {
            ("category", "in"): "购买{values}类商品时",
            ("category", "not in"): "{values}类商品除外",
            ("amount", ">="): "单笔消费满{value}时",
            ("amount", ">"): "单笔消费超过{value}时",
            ("weekday", "in"): "逢{values_and}",
            ("weekday", "not in"): "{values_and}除外",
            ("month(date)", "in"): "{values}",
            ("day(date)", "in"): "每月{values}日",
            ("customer.segment", "in"): "{values}会员",
            ("customer.days_enrolled", "<="): "入会{value}天内",
            ("customer.days_enrolled", "<"): "入会{value}天内",
        },
        "subjects": {"amount": "消费金额", "category": "商品品类", "sku": "商品编码", "product": "商品", "brand": "品牌",
                     "quantity": "购买数量", "store": "门店", "channel": "渠道", "payment": "支付方式", "region": "地区",
                     "date": "日期", "basket.total": "单笔订单总额", "basket.lines": "订单商品行数", "basket.quantity": "订单商品件数",
                     "customer.days_enrolled": "入会天数", "customer.enrolled": "入会日期", "customer.segment": "会员分组",
                     "customer.city": "所在城市", "_column": "{name}", "_customer": "会员{name}"},
        "basket_sum": {"total": "单笔订单总额（{cond}）", "quantity": "订单商品件数（{cond}）"},
        "window": {"visits_in": "近{span}消费次数", "spend_in": "近{span}累计消费"},
        "span": {"days": "{n}天", "months": "{n}个月", "1 days": "1天", "1 months": "1个月"},
        "recency": {">=": "距上次消费满{value}天后再次消费时", ">": "距上次消费超过{value}天后再次消费时",
                    "<=": "距上次消费{value}天内", "<": "距上次消费不到{value}天时", "_subject": "距上次消费天数"},
        "discount_section": "会员折扣",
        # 折: the share of the price paid, in tenths (5% off is 9.5折).
        "discount": {"percent": "{conds}{who}{where}享{zhe}折{cap}{freq}。", "fixed": "{conds}{who}每笔立减{money}{freq}。",
                     "buy_get": "{conds}{Buy}买{buy}送{get}{freq}（每{group}件中最便宜的{get}件免费）。"},
        "discount_cheapest": "最便宜的一件",
        "discount_cap": "，每笔最多优惠{money}",
        "discount_buy": {"all": "", "tiers": "{tiers}会员"},
        "discount_largest": "同一商品适用多项折扣时，只享受其中最大的一项。",
    },
}

# `x == v` reads like `x in [v]`; `!=` like `not in`. Comparisons written backwards are flipped.
_AS_IN = {"==": "in", "!=": "not in"}
_FLIP = {"==": "==", "!=": "!=", "<": ">", ">": "<", "<=": ">=", ">=": "<="}
_MONEY_SUBJECTS = {name for name, v in {**B.VARIABLES, **{f"basket.{k}": v for k, v in B.BASKET.items()}}.items() if v.type == B.MONEY}
_BIRTHDAY = {"month(date)", "month(customer.birthday)"}


def num(x) -> str:
    """A number for people: integers without decimals, others in plain decimal notation."""
    if isinstance(x, Fraction):
        if x.denominator == 1:
            return str(x.numerator)
        x = Decimal(x.numerator) / Decimal(x.denominator)
    x = Decimal(x)
    text = format(x.normalize(), "f") if x == x.to_integral_value() else format(x, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


class _Terms:
    """One program's wording in one language."""

    def __init__(self, tree: ast.Program, model: Model, lang: str):
        self.tree, self.model, self.t, self.lang = tree, model, TEXT[lang], lang
        self.special = self.t["special"]  # the condition phrases in use (a benefit's own while it is worded)

    # --- words ---

    def label(self, name: str) -> str | None:
        """The program's label for a name in this language, or None."""
        return self.model.labels.get(name, {}).get(self.lang)

    def tier_name(self, name: str) -> str:
        return self.label(name) or name

    def join(self, items: list[str], word: str) -> str:
        sep, last = self.t["join"][word]
        return items[0] if len(items) == 1 else sep.join(items[:-1]) + last + items[-1]

    def points(self, n) -> str:
        return self.t["points"]["one" if n == 1 else "many"].format(n=num(n))

    def money(self, n, code: str | None = None) -> str:
        code = code or self.model.currency
        unit = self.t["currency_units"].get(code) or self.t["currency_fallback"].format(code=code)
        return self.t["money"].format(n=num(n), unit=unit)

    def cash(self, n: Fraction) -> str:
        """An amount as printed on a voucher: whole, or with all of the currency's decimals (1.50 GBP)."""
        if n.denominator == 1:
            return self.money(n)
        unit = self.t["currency_units"].get(self.model.currency) or self.t["currency_fallback"].format(code=self.model.currency)
        return self.t["money"].format(n=f"{Decimal(n.numerator) / Decimal(n.denominator):.{self.model.decimals}f}", unit=unit)

    def date(self, d: dt.date) -> str:
        return self.t["date"](d)

    # --- conditions ---

    def condition(self, expr) -> tuple[list[str], list[str]]:
        """A rule's condition as (tier names it is limited to, or [], and the other phrases)."""
        parts = expr.operands if isinstance(expr, ast.BoolOp) and expr.op == "and" else (expr,)
        tiers: list[str] = []
        phrases: list[str] = []
        for p in parts:
            levels = self.tier_levels(_ungroup(p))
            if levels is not None and not tiers:
                tiers = levels
            else:
                phrases.append(self.phrase(p))
        return tiers, phrases

    def phrase(self, e) -> str:
        e = _ungroup(e)
        if isinstance(e, ast.BoolOp):
            return self.t[e.op].join(self.phrase(x) for x in e.operands)
        if isinstance(e, ast.Not):
            return self.t["not"].format(p=self.phrase(e.operand))
        levels = self.tier_levels(e)
        if levels is not None:
            return self.t["tier_cond"].format(tiers=self.join(levels, "and"))
        text = None
        if isinstance(e, ast.Compare):
            text = self.compare(e)
        elif isinstance(e, ast.In):
            text = self.membership(format_expr(e.item), "not in" if e.negated else "in", list(e.options.items))
        return text or self.t["fallback"].format(expr=format_expr(e))

    def tier_levels(self, e) -> list[str] | None:
        """The tiers a condition on `tier` admits, or None if it is not one."""
        spec = self.model.tiers
        if spec is None:
            return None
        names = list(spec.names)
        if isinstance(e, ast.In) and _is_name(e.item, "tier") and all(isinstance(o, ast.Name) and o.name in names for o in e.options.items):
            chosen = {o.name for o in e.options.items}
            return [self.tier_name(n) for n in names if (n in chosen) != e.negated] or None
        if not isinstance(e, ast.Compare):
            return None
        op, left, right = e.op, e.left, e.right
        if _is_name(right, "tier"):
            op, left, right = _FLIP[op], right, left
        if not (_is_name(left, "tier") and isinstance(right, ast.Name) and right.name in names):
            return None
        i = names.index(right.name)
        pick = {"==": lambda j: j == i, "!=": lambda j: j != i, ">=": lambda j: j >= i, ">": lambda j: j > i,
                "<=": lambda j: j <= i, "<": lambda j: j < i}[op]
        return [self.tier_name(n) for j, n in enumerate(names) if pick(j)] or None

    def compare(self, e: ast.Compare) -> str | None:
        left, right = format_expr(e.left), format_expr(e.right)
        if {left, right} == _BIRTHDAY and e.op == "==":
            return self.t["birthday"]
        op, subject, value = e.op, e.left, e.right
        if _is_literal(subject) and not _is_literal(value):
            op, subject, value = _FLIP[op], value, subject
        if op in _AS_IN and not (isinstance(subject, ast.Call) and subject.func.name in B.WINDOWS):
            return self.membership(format_expr(subject), _AS_IN[op], [value])
        key = format_expr(subject)
        shown = self.value(key, value)
        if shown is None:
            return None
        template = self.special.get((key, op)) or (self.t["recency"].get(op) if key == "days_since_last_purchase" else None)
        if template:
            return template.format(value=shown)
        return self.generic(key, subject, op, shown)

    def membership(self, key: str, op: str, options: list) -> str | None:
        shown = [self.value(key, o) for o in options]
        if not shown or None in shown:
            return None
        template = self.special.get((key, op))
        if template:
            return template.format(values=self.join(shown, "or"), values_and=self.join(shown, "and"), value=shown[0])
        subject = self.subject(key)
        return None if subject is None else self.t["generic"].format(subject=subject, op=self.t["ops"][op], value=self.join(shown, "or"))

    def generic(self, key: str, subject, op: str, shown: str) -> str | None:
        subject = _ungroup(subject)
        if isinstance(subject, ast.BasketSum):
            label = self.sum_subject(subject)
        elif isinstance(subject, ast.Call) and subject.func.name in B.WINDOWS:
            label = self.window_subject(subject)
        else:
            label = self.subject(key)
        return None if label is None else self.t["generic"].format(subject=label, op=self.t["ops"][op], value=shown)

    def sum_subject(self, e: ast.BasketSum) -> str:
        """`basket.total(CONDITION)` as a member reads it: the figure, and which lines count."""
        cond = self.phrase(e.condition)
        if self.t.get("cond_suffix"):
            cond = cond.removesuffix(self.t["cond_suffix"])
        return self.t["basket_sum"][e.attr.name].format(cond=cond)

    def campaign(self, during: tuple[dt.date, dt.date]) -> str:
        """A `during` window; an open end is the calendar's first or last day (rulelang.model)."""
        start, end = during
        if end == dt.date.max:
            return self.t["during_open"]["from"].format(start=self.date(start))
        if start == dt.date.min:
            return self.t["during_open"]["to"].format(end=self.date(end))
        return self.t["during"].format(start=self.date(start), end=self.date(end))

    def window_subject(self, e: ast.Call) -> str:
        """`visits_in(90 days)` as a member reads it: the figure over the last N days or months."""
        n, unit = B.window_span(e)
        span = self.t["span"].get(f"{n} {unit}") or self.t["span"][unit].format(n=n)
        return self.t["window"][e.func.name].format(span=span)

    def subject(self, key: str) -> str | None:
        subjects = self.t["subjects"]
        if key in subjects:
            return subjects[key]
        if key == "days_since_last_purchase":
            return self.t["recency"]["_subject"]
        obj, _, attr = key.rpartition(".")
        if obj == "customer" and attr.isidentifier():
            return subjects["_customer"].format(name=attr.replace("_", " "))
        if not obj and key.isidentifier():
            return subjects["_column"].format(name=key.replace("_", " "))
        return None

    def value(self, key: str, v) -> str | None:
        """A literal as a member reads it, in the light of what it is compared with."""
        v = _ungroup(v)
        if isinstance(v, ast.String):
            return v.value
        if isinstance(v, ast.Money):
            return self.money(v.amount, v.currency.name)
        if isinstance(v, ast.Number):
            if key == "month(date)" and v.value == v.value.to_integral_value() and 1 <= v.value <= 12:
                return self.t["month"][int(v.value) - 1]
            money_subject = key in _MONEY_SUBJECTS or self.model.columns.get(key) == B.MONEY or key.startswith(("basket.total(", "spend_in("))
            return self.money(v.value) if money_subject else num(v.value)
        if isinstance(v, ast.Percent):
            return f"{num(v.value)}%"
        if isinstance(v, ast.DateLit):
            try:
                return self.date(dt.date(*(int(p) for p in v.text.split("-"))))
            except ValueError:
                return v.text
        if isinstance(v, ast.Name) and v.name in B.WEEKDAYS and v.name not in self.model.columns:
            return self.t["weekday"][B.WEEKDAYS[v.name]]
        if isinstance(v, ast.Name) and self.model.tiers and v.name in self.model.tiers.names:
            return self.tier_name(v.name)
        return None

    # --- sections ---

    def rule(self, earn: ast.Earn, rule: Rule) -> str:
        condition, item = rule.condition, None
        if rule.kind == "per_unit" and condition is not None:
            condition, item = _named_item(condition)
        tiers, phrases = self.condition(condition) if condition is not None else ([], [])
        if rule.event != B.PURCHASE:
            events = self.t["events"]
            phrases.insert(0, events.get(rule.event, events["_other"]).format(event=rule.event))
        if rule.during:
            phrases.append(self.campaign(rule.during))
        who = "tiers" if tiers else "all"
        slots = {
            "who": self.t["who"][who].format(tiers=self.join(tiers, "and")) if tiers else self.t["who"]["all"],
            "they": self.t["they"][who],
            "conds": self.conds(phrases),
            "freq": self.frequency(rule),
        }
        award = earn.award
        if rule.kind == "per_spend":
            key = "per_spend"
            slots.update(points=self.points(award.points.value), n=num(award.points.value), money=self.money(award.per.amount, award.per.currency.name))
        elif rule.kind == "fixed":
            key = "fixed_event" if rule.event != B.PURCHASE else f"fixed_{rule.scope}"
            slots.update(points=self.points(award.points.value))
        elif rule.kind == "per_unit":
            key = "per_unit_item" if item else "per_unit"
            slots.update(points=self.points(award.points.value), item=item)
        else:
            key = "multiplier_tiers" if tiers else "multiplier_all"
            slots.update(factor=num(award.factor.value), target=self.target(rule))
        text = self.t["award"][key].format(**slots)
        text = text[:1].upper() + text[1:] if self.t["capitalise"] else text
        label = self.label(rule.name)
        return self.t["labelled"].format(label=label, text=text) if label else text

    def target(self, rule: Rule) -> str:
        """What a multiplier multiplies, as members read it: the target's label, else what the
        target earns in words (never its identifier)."""
        target = self.model.rule(rule.target)
        label = self.label(target.name)
        words = self.t["target"]
        if label:
            return words["label"].format(label=label)
        return words[target.kind].format(points=self.points(target.points), factor=num(target.factor))

    def conds(self, phrases: list[str]) -> str:
        if not phrases:
            return ""
        first, between = self.t["conds"]
        suffix = self.t.get("cond_suffix")
        if suffix:
            merged: list[str] = []
            for p in phrases:
                if merged and merged[-1].endswith(suffix) and p.endswith(suffix):
                    merged[-1] = merged[-1][: -len(suffix)] + self.t["and"] + p
                else:
                    merged.append(p)
            phrases = merged
        return first + between.join(phrases) + self.t.get("conds_end", "")

    def frequency(self, rule: Rule) -> str:
        return self.times(rule) + self.budget(rule)

    def budget(self, rule) -> str:
        """A budget shared by every member, if the rule or discount has one."""
        if getattr(rule, "budget", None) is None:
            return ""
        # Thousands grouped: budgets are large round numbers (1,000,000 points).
        grouped = f"{int(rule.budget):,}" if rule.budget == int(rule.budget) else num(rule.budget)
        if isinstance(rule, Rule):
            return self.t["budget"]["points"].format(amount=self.t["points"]["many"].format(n=grouped))
        unit = self.t["currency_units"].get(self.model.currency) or self.t["currency_fallback"].format(code=self.model.currency)
        return self.t["budget"]["money"].format(amount=self.t["money"].format(n=grouped, unit=unit))

    def times(self, rule: Rule) -> str:
        if rule.times is None:
            return ""
        once = rule.times == 1
        key = ("once" if once else "times") + ("_per" if rule.per else "")
        period = self.t["period"][rule.per] if rule.per else ""
        return self.t["freq"][key].format(n=rule.times, period=period)

    def discount(self, d) -> str:
        """One discount as a member reads it: who pays how much less, when, how often."""
        tiers, phrases = self.condition(d.condition) if d.condition is not None else ([], [])
        if d.during:
            phrases.append(self.campaign(d.during))
        who = "tiers" if tiers else "all"
        slots = {
            "who": self.t["who"][who].format(tiers=self.join(tiers, "and")) if tiers else self.t["who"]["all"],
            "conds": self.conds(phrases),
            "freq": self.frequency(d),
            "pct": num(d.percent * 100),
            "zhe": num((1 - d.percent) * 10),
            "money": self.money(d.amount),
            "where": self.t["discount_cheapest"] if d.cheapest else "",
            "cap": self.t["discount_cap"].format(money=self.money(d.cap)) if d.cap is not None else "",
            "buy": d.buy, "get": d.get, "group": d.buy + d.get,
            "Buy": self.t["discount_buy"][who].format(tiers=self.join(tiers, "and") if tiers else ""),
        }
        text = self.t["discount"][d.kind].format(**slots)
        text = text[:1].upper() + text[1:] if self.t["capitalise"] else text
        label = self.label(d.name)
        return self.t["labelled"].format(label=label, text=text) if label else text

    def discounts(self) -> list[str]:
        out = [self.t["bullet"] + self.discount(d) for d in self.model.discounts]
        # "Only the largest applies" only where two percentages can meet on one purchase (one
        # for Gold and one for Black members never do).
        an = Analyser(self.model)
        percents = [an.rule_terms(d) for d in self.model.discounts if d.kind == "percent"]
        if any(an.jointly([a, b]) for a, b in itertools.combinations(percents, 2)):
            out.append(self.t["discount_largest"])
        return out

    def stacking(self) -> list[str]:
        """How multipliers on one rule add up: one sentence per largest group of them that can
        apply together (a 1.2x for one tier and a 2x for another are never added)."""
        out = []
        an = Analyser(self.model)
        for target in dict.fromkeys(r.target for r in self.model.rules if r.kind == "multiplier"):
            multipliers = [r for r in self.model.rules if r.kind == "multiplier" and r.target == target]
            for group in _together(an, self.model.rule(target), multipliers, self.model.groups):
                parts = self.join([self.stack_part(r) for r in group], "and")
                out.append(self.t["stacking"].format(parts=parts, total=num(1 + sum(r.factor - 1 for r in group))))
        return out

    def stack_part(self, rule: Rule) -> str:
        label = self.label(rule.name)
        part = self.t["stack_part"]
        return part["label"].format(label=label, f=num(rule.factor)) if label else part["plain"].format(f=num(rule.factor))

    def earning(self) -> list[str]:
        earns = self.tree.of(ast.Earn)
        lines = [self.rule(e, r) for e, r in zip(earns, self.model.rules, strict=True)]
        # A `best of` group's rules are listed under one sentence of their own (they do not add
        # up; the best applies), so a member reads them without the program's rule names.
        grouped = {i for group in self.model.groups for i in group}
        out = [self.t["bullet"] + line for i, line in enumerate(lines) if i not in grouped]
        for group in self.model.groups:
            out += [self.t["best_of"]] + [self.t["bullet"] + lines[i] for i in group]
        out += self.stacking()
        kinds = {r.kind for r in self.model.rules}
        if kinds & {"per_spend", "per_unit", "multiplier"}:
            out.append(self.t["rounding"][self.model.rounding])
        if any(r.event == B.PURCHASE for r in self.model.rules):
            out.append(self.t["refund"])
        return out

    def tiers(self) -> list[str]:
        spec = self.model.tiers
        if spec is None:
            return []
        metric = self.t["metric"][spec.metric]
        if spec.window == "calendar_year":
            head = self.t["tiers_calendar"].format(metric=metric)
        elif spec.window == "lifetime":
            head = self.t["tiers_lifetime"].format(metric=metric)
        else:
            head = self.t["tiers_rolling"].format(metric=metric, n=spec.n, unit=self.t["window_unit"][spec.window])
        out = [head]
        if spec.alternatives:
            out.append(self.t["tiers_alternatives"])
        for i, (tier, threshold) in enumerate(zip(spec.names, spec.thresholds, strict=True)):
            name = self.tier_name(tier)
            if threshold == 0:
                out.append(self.t["bullet"] + self.t["level_start"].format(name=name))
                continue
            ways = [(spec.metric, threshold), *(spec.alternatives[i] if spec.alternatives else ())]
            shown = self.join([self.money(t) if m == "spend" else self.t["threshold"][m].format(n=num(t)) for m, t in ways], "or")
            out.append(self.t["bullet"] + self.t["level"].format(name=name, threshold=shown))
        for tier, months in zip(spec.names, spec.keep_months or (0,) * len(spec.names), strict=True):
            if months:
                out.append(self.t["keep"].format(name=self.tier_name(tier), n=months))
        if spec.review_months:
            out.append(self.t["review"].format(period=self.t["review_period"][spec.review_months]))
        if spec.one_level:
            out.append(self.t["one_level"])
        if spec.counting:
            out.append(self.t["counting"])
        return out

    def limits(self) -> list[str]:
        return [self.t["cap"].format(points=self.points(n), period=self.t["cap_period"][p]) for n, p in self.model.limits]

    def expiry(self) -> list[str]:
        ex = self.model.expiry
        unit = self.t["time_unit"].get(ex.unit or "", "")
        out = [self.t["expiry"][ex.kind].format(n=ex.n, unit=unit)]
        if ex.kind in ("after", "end_of_year", "end_of_next_year") or self.model.rewards:
            out.append(self.t["oldest_first"])
        return out

    def pending(self) -> list[str]:
        """`points available after N days` (docs/semantics.md, "Pending points")."""
        return [self.t["pending"].format(n=self.model.pending_days)] if self.model.pending_days else []

    def rewards(self) -> list[str]:
        out = [self.t["voucher"].format(period=self.t["voucher_period"][v.issued_months], points=self.points(v.points), money=self.cash(v.cost),
                                        name=self.given_name(v.name)) for v in self.model.vouchers]
        catalog = [r for r in self.model.rewards if not r.issued_months]
        if not catalog:
            return out
        return out + [self.t["rewards_intro"]] + [self.t["bullet"] + self.t["reward"].format(name=self.given_name(r.name), points=self.points(r.points))
                                                 for r in catalog]

    def benefit(self, rule: Rule) -> str:
        """A benefit as a member reads it: who gets what, when, and what it is worth."""
        self.special = {**self.t["special"], **self.t["benefit_special"]}
        try:
            tiers, phrases = self.condition(rule.condition) if rule.condition is not None else ([], [])
        finally:
            self.special = self.t["special"]
        if rule.event != B.PURCHASE:
            events = self.t["events"]
            phrases.insert(0, events.get(rule.event, events["_other"]).format(event=rule.event))
        if rule.during:
            phrases.append(self.campaign(rule.during))
        text = self.t["benefit"]["tiers" if tiers else "all"].format(
            who=self.t["who"]["tiers"].format(tiers=self.join(tiers, "and")) if tiers else "",
            name=self.benefit_name(rule), conds=self.conds(phrases), money=self.money(rule.cost), freq=self.frequency(rule))
        return text[:1].upper() + text[1:] if self.t["capitalise"] else text

    def benefit_name(self, rule: Rule) -> str:
        return self.given_name(rule.name)

    def given_name(self, name: str) -> str:
        """A reward or benefit as members read it: its label, else its name with `_` as spaces
        (`free_alteration`: "free alteration"). Rules are never shown by name (`target`, `rule`)."""
        return self.label(name) or name.replace("_", " ")

    def benefits(self) -> list[str]:
        if not self.model.benefits:
            return []
        out = [self.t["bullet"] + self.benefit(b) for b in self.model.benefits]
        if any(b.event == B.PURCHASE for b in self.model.benefits):
            out.append(self.t["benefit_refund"])
        return out

    def paying(self) -> list[str]:
        """`pay with points` as members read it: what a step of points pays, up to what share of
        the bill, from what balance; and that the part paid with points earns nothing."""
        pay = self.model.pay_with_points
        if pay is None:
            return []
        cap = ""
        if pay.cap < 1:
            share = self.t["pay_share"].get(pay.cap)
            cap = self.t["pay_cap"]["share" if share else "percent"].format(share=share, pct=num(pay.cap * 100))
        minimum = self.t["pay_minimum"].format(points=self.points(pay.minimum)) if pay.minimum > pay.points else ""
        return [self.t["bullet"] + self.t["pay"].format(points=self.points(pay.points), money=self.money(pay.value), cap=cap, minimum=minimum),
                self.t["bullet"] + self.t["pay_earns"]["tiers" if self.model.tiers and self.model.tiers.metric == "spend" else "plain"]]

    def text(self) -> str:
        title = self.t["title"].format(name=self.model.name)
        blocks = [title, "=" * width(title)]
        for key, lines in (("earn", self.earning()), ("discount", self.discounts()), ("tiers", self.tiers()), ("limits", self.limits()),
                           ("pending", self.pending()), ("expiry", self.expiry()), ("rewards", self.rewards()), ("pay", self.paying()),
                           ("benefit", self.benefits())):
            if lines:
                blocks.append("\n" + self.t["sections"].get(key, self.t.get(f"{key}_section", key)))
                blocks.extend(lines)
        return "\n".join(blocks) + "\n"


# Past this many multipliers on one rule, their groups are not searched: they are taken to add up.
MAX_GROUPED = 10


def _together(an: Analyser, target: Rule, multipliers: list[Rule], exclusive: tuple = ()) -> list[list[Rule]]:
    """The largest groups (two or more, declaration order) of the multipliers on `target` whose
    conditions can hold together with the target's, and no two of one `best of` (`exclusive`:
    the model's groups of rule indices): each is a stack a member can reach."""
    group_of = {i: g for g, group in enumerate(exclusive) for i in group}
    if len(multipliers) < 2:
        return []
    if len(multipliers) > MAX_GROUPED:
        return [multipliers]
    base = an.rule_terms(target)
    own = {r.name: an.rule_terms(r, with_target=False) for r in multipliers}
    groups: list[set] = []
    for k in range(len(multipliers), 1, -1):
        for combo in itertools.combinations(multipliers, k):
            names = {r.name for r in combo}
            grouped = [group_of[r.index] for r in combo if r.index in group_of]
            if len(grouped) != len(set(grouped)):
                continue
            if not any(names <= g for g in groups) and an.jointly([base] + [own[n] for n in names]):
                groups.append(names)
    return [[r for r in multipliers if r.name in g] for g in groups]


def _ungroup(e):
    while isinstance(e, ast.Group):
        e = e.expr
    return e


def _named_item(condition):
    """(the rest of the condition or None, the item) when an `and`-part of a per-unit rule's
    condition names one product (`sku == "CEREAL-500G"`, `product == "..."`): "for each CEREAL-500G"."""
    condition = _ungroup(condition)
    parts = list(condition.operands) if isinstance(condition, ast.BoolOp) and condition.op == "and" else [condition]
    for i, p in enumerate(parts):
        p = _ungroup(p)
        if isinstance(p, ast.Compare) and p.op == "==":
            name, text = (p.left, p.right) if isinstance(p.right, ast.String) else (p.right, p.left)
            if isinstance(text, ast.String) and isinstance(name, ast.Name) and name.name in ("sku", "product") and text.value:
                rest = parts[:i] + parts[i + 1:]
                if not rest:
                    return None, text.value
                return (rest[0] if len(rest) == 1 else ast.BoolOp("and", tuple(rest), condition.span)), text.value
    return condition, None


def _is_name(e, name: str) -> bool:
    e = _ungroup(e)
    return isinstance(e, ast.Name) and e.name == name


def _is_literal(e) -> bool:
    return isinstance(_ungroup(e), (ast.Number, ast.Money, ast.Percent, ast.String, ast.DateLit))


def explain(program, lang: str = "en") -> str:
    """The member-facing terms of a checked program (`ast.Program` or loaded `Program`)."""
    if lang not in TEXT:
        raise ValueError(f"unknown language {lang!r}; choose one of {', '.join(TEXT)}")
    tree = getattr(program, "tree", program)
    model = getattr(program, "model", None) or lower(tree)
    return _Terms(tree, model, lang).text()
