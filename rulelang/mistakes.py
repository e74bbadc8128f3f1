"""The catalogue of common syntax mistakes and their curated messages.

Each entry's examples are whole program texts that make the mistake. A syntax error matches an
entry when the parser stops in the same state, on the same kind of token, as one of its examples
(Lark's `match_examples` idea, made strict about the token so that one parser state can carry
several mistakes). Every entry is also a golden test (tests/rulelang/golden/mistakes).
"""

from __future__ import annotations

import difflib
import unicodedata
from dataclasses import dataclass, replace
from functools import lru_cache

STATEMENT_WORDS = ("program", "currency", "point_cost", "column", "tiers", "earn", "limit", "expire", "round", "reward", "assert", "discount",
                   "benefit", "label", "best of", "pay with points")
CLAUSE_WORDS = ("when", "on", "during", "once", "at most", "funded")
_UNCLOSED_HINT = "close each `(` with `)` and each `[` with `]`"


@dataclass(frozen=True)
class Mistake:
    """A known mistake: its code, the message and hint a planner sees, and examples that make it.

    `message` may use `{found}` (the offending text) and `{suggestion}` (did-you-mean over
    `suggest`); `token` limits the entry to one offending text, such as the `x` of `2 x base`.
    """

    code: str
    message: str
    hint: str
    examples: tuple
    suggest: tuple = ()
    token: str | None = None


MISTAKES: list[Mistake] = [
    Mistake("E110", "missing `:` after the rule name",
            "write the name, a colon, then what it earns: `earn base: 1 point per 1 CNY`",
            ("earn base 1 point per 1 CNY\n", "earn base 2x other\n", "earn base points\n", "reward coffee 300 points cost 8 CNY\n",
             "discount member_price 5%\n")),
    Mistake("E111", "the amount after `per` is missing",
            "say how much spend earns the points: `1 point per 1 CNY` (or `10 points per unit` for each unit bought)",
            ("earn base: 1 point per CNY\n",)),
    Mistake("E112", "two values in a row: a comparison needs an operator between them",
            "compare with `==`, `!=`, `<`, `<=`, `>` or `>=`: `tier == Gold` (not `tier is Gold`)",
            ("earn g: 10 points when tier is Gold\n", "earn g: 10 points when customer.segment is vip\n",
             'earn g: 10 points when category "x"\n')),
    Mistake("E113", "`=` is not a comparison; equality is written `==`",
            'write `category == "pastry"`',
            ('earn g: 10 points when category = "x"\n', "earn g: 10 points when month(date) = 12\n",
             'earn g: 10 points when customer.segment = "vip"\n', "earn g: 10 points when amount >= 5 and quantity = 2\n")),
    Mistake("E114", "a multiplier is written without a space: `2x`", "write `earn gold: 2x base`",
            ("earn g: 2 x base\n",), token="x"),
    Mistake("E115", "the word `points` is missing after the number",
            "write `100 points`, `1 point per 1 CNY`, or for a reward `300 points cost 8 CNY`",
            ("earn x: 100\n", "earn x: 100 when amount > 5\n", "earn x: 1 per 1 CNY\n", "earn x: 100 bonus\n",
             "earn x: 100 once\n", "earn x: 100 on enroll\n", "earn x: 100 during 2026-01-01 to 2026-01-02\n",
             "earn x: 100 at most 2 times\n", "earn x: 100 funded 50% by acme\n",
             "reward x: 300 cost 8 CNY\n", "reward x: 300\n", "reward x: 300 pts cost 8 CNY\n")),
    Mistake("E116", "the `%` sign is missing in `funded`", "write the share as a percentage: `funded 50% by acme`",
            ("earn x: 100 points funded 50 by acme\n", "earn x: 100 points funded 50\n")),
    Mistake("E117", "a campaign window is written `during START to END`",
            "write `during 2026-01-01 to 2026-02-01`, or `during from 2026-01-01` (no end), `during to 2026-02-01` (no start)",
            ("earn x: 100 points during 2026-01-01 - 2026-02-01\n", "earn x: 100 points during 2026-01-01 until 2026-02-01\n",
             "earn x: 100 points during 2026-01-01 2026-02-01\n", "earn x: 100 points during 2026-01-01\n")),
    Mistake("E180", "an open campaign window is written `during from START` or `during to END`; a closed one `during START to END`",
            "write `during 2026-01-01 to 2026-02-01`, `during from 2026-01-01` or `during to 2026-02-01`",
            ("earn x: 100 points during from 2026-01-01 to 2026-02-01\n", "earn x: 100 points during until 2026-01-01\n",
             "earn x: 100 points during since 2026-01-01\n", "earn x: 100 points during after 2026-01-01\n",
             "earn x: 100 points during before 2026-01-01\n", "earn x: 100 points during to 2026-01-01 to 2026-02-01\n")),
    Mistake("E118", "the word `times` is missing after `at most N`", "write `at most 2 times per week`",
            ("earn x: 100 points at most 2 per week\n", "earn x: 100 points at most 2 time per week\n", "earn x: 100 points at most 2\n")),
    Mistake("E119", "the word `points` is missing in `limit`", "write `limit 500 points per day`",
            ("limit 500 per day\n", "limit 500 pts per day\n", "limit 500\n")),
    Mistake("E120", "the unit of the expiry is missing", "write `expire after 12 months` (or `days`, `years`)",
            ("expire after 12\n",)),
    Mistake("E121", "the reward's cost is missing; write `cost` before the amount", "write `reward coffee: 300 points cost 8 CNY`",
            ("reward x: 300 points 8 CNY\n", "reward x: 300 points for 8 CNY\n", "reward x: 300 points\n")),
    Mistake("E134", "the benefit's cost is missing; write `cost` before the amount",
            "write `benefit free_alteration: cost 20 CNY when category == \"suits\"`",
            ("benefit x: 20 CNY\n", "benefit x: 20\n", "benefit x: when amount > 5\n", "benefit x:\n", "benefit x: 20 CNY when amount > 5\n")),
    Mistake("E135", "a cost cannot be negative: it is what the business pays each time",
            "write the cost as a positive amount: `cost 20 CNY`",
            ("benefit x: cost -5 CNY\n", "reward x: 300 points cost -8 CNY\n")),
    Mistake("E136", "a label is a language and a quoted text: `label base en \"Points on spend\"`",
            "write each language's text in quotes after its code: `label gold_boost en \"Gold bonus\" zh \"金卡加赠\"`",
            ("label x en Gold\n", "label x en\n", 'label x "Gold"\n', "label x\n", 'label x en "a" zh\n', "label x en Gold Card\n")),
    Mistake("E122", "a bracket is still open at the end of the file", _UNCLOSED_HINT,
            ("earn x: 10 points when weekday in [sat, sun\n", 'earn x: 10 points when category in ["a", "b"\n',
             "earn x: 10 points when quantity in [1, 2\n", "earn x: 10 points when weekday in [sat,\n", "earn x: 10 points when weekday in [\n",
             "earn x: 10 points when (amount > 5\n", "earn x: 10 points when (tier >= Gold\n", "earn x: 10 points when month(date\n",
             'earn x: 10 points when (category == "x"\n', "earn x: 10 points when (\n", "earn x: 10 points when (amount > 5 and\n")),
    Mistake("E123", "the currency is missing after the amount", "write the currency code after the number: `8 CNY`",
            ("reward x: 300 points cost 8\n", "earn x: 1 point per 1\n", "point_cost 0.01\n")),
    Mistake("E124", "a quoted text is not closed on its line", 'end the text with a matching quote: `"pastry"`',
            ('earn x: 10 points when category == "pastry\n', 'earn x: 10 points when category in ["a", "b\n',
             'program "Bean Club\n', "earn x: 10 points when category == 'pastry\n")),
    Mistake("E125", "the condition stops after `and`, `or` or `not`; a part is missing",
            "finish the condition or delete the last `and` / `or`: `when amount > 5 and weekday == sat`",
            ("earn x: 10 points when amount > 5 and\n", "earn x: 10 points when amount > 5 or\n", "earn x: 10 points when not\n",
             "assert balance >= 0 and\n", "assert balance >= 0 or\n")),
    Mistake("E126", "`when` needs a condition after it", "write the condition: `when amount >= 50`",
            ("earn x: 10 points when\n", "assert\n")),
    Mistake("E127", "amounts are written as a number and a currency code, not with a currency sign",
            "write `8 CNY`, `5 USD`, `5 GBP` instead of `¥8`, `$5`, `£5`",
            ("earn x: 1 point per ¥8\n", "reward x: 300 points cost $5\n", "point_cost $0.01\n", "earn x: 10 points when amount > $5\n",
             "earn x: 10 points when amount > 5$\n")),
    Mistake("E128", "the tiers are listed inside braces `{ ... }`",
            "write `tiers by spend over 365 days {`, one tier per line, then `}`",
            ("tiers by spend over 365 days\n  Green from 0\n", "tiers by spend over calendar year\n  Green from 0\n",
             "tiers by spend over 365 days {\n  Green from 0\n", "tiers by spend over 365 days { Green from 0 }\n")),
    Mistake("E129", "a frequency is written with `per`: `once per year`, `at most 2 times per week`", "write `once per year`",
            ("earn x: 10 points once a year\n", "earn x: 10 points at most 2 times a week\n", "earn x: 10 points once every year\n")),
    Mistake("E137", "the rules of `best of` are separated by commas",
            "write `best of pastry_promo, tuesday_promo`",
            ("best of a and b\n", "best of a b\n", "best of a or b\n", "currency CNY\nbest of a, b and c\n")),
    Mistake("E138", "`best` is followed by `of`", "write `best of pastry_promo, tuesday_promo`",
            ("best a, b\n", "best a\n", "best: a, b\n", "best in a, b\n")),
    Mistake("E140", "pending points are written `points available after N days`",
            "write `points available after 14 days` (points become available 14 days after the day they are earned)",
            ("points available in 14 days\n", "points available 14 days\n", "points pending 14 days\n", "points pending for 14 days\n",
             "points available after days\n")),
    Mistake("E141", "the unit of the pending window is missing", "write `points available after 14 days`",
            ("points available after 14\n",)),
    Mistake("E142", "automatic vouchers are written `issued every month`, `issued every quarter` or `issued every year`",
            "write `reward clubcard_voucher: 150 points cost 1.50 GBP issued every quarter`",
            ("reward v: 150 points cost 1.50 GBP issued each quarter\n", "reward v: 150 points cost 1.50 GBP issued quarterly\n",
             "reward v: 150 points cost 1.50 GBP issued every\n")),
    Mistake("E150", "the cap of paying with points is a share of the basket: `up to 50% of basket`",
            "write `pay with points: 100 points = 1 CNY, up to 50% of basket`",
            ("pay with points: 100 points = 1 CNY, up to 50%\n", "pay with points: 100 points = 1 CNY, up to 50%, from 500 points\n",
             "pay with points: 100 points = 1 CNY, up to 50% of bill\n",
             "pay with points: 100 points = 1 CNY, up to 50% of the basket\n", "pay with points: 100 points = 1 CNY, up to 5 CNY\n")),
    Mistake("E151", "a step of paying with points is written `100 points = 1 CNY`: points, `=`, then the money they pay",
            "write `pay with points: 100 points = 1 CNY`",
            ("pay with points: 100 points for 1 CNY\n", "pay with points: 100 points 1 CNY\n", "pay with points: 100 = 1 CNY\n",
             "pay with points: 100 points == 1 CNY\n", "pay with points: 100 points per 1 CNY\n")),
    Mistake("E130", "`{found}` is not a statement{suggestion}",
            "statements start with " + ", ".join(f"`{w}`" for w in STATEMENT_WORDS),
            ("ern x: 1 point per 1 CNY\n", "currency CNY\nern x: 1 point per 1 CNY\n", "\nern x: 1 point per 1 CNY\n",
             'program "x"\ncurrency CNY\nern x: 1 point per 1 CNY\n', "currency CNY\n# note\nern x: 1 point per 1 CNY\n",
             'program "x"\ncurrency CNY\n# note\nern x: 1 point per 1 CNY\n'),
            suggest=STATEMENT_WORDS),
    Mistake("E131", "`{found}` is not a clause{suggestion}",
            "after what a rule earns come clauses: " + ", ".join(f"`{w}`" for w in CLAUSE_WORDS),
            ("earn x: 10 points wen amount > 5\n", "earn x: 1 point per 1 CNY wen amount > 5\n", "earn x: 2x base wen tier >= Gold\n",
             "earn x: 10 points once per year wen amount > 5\n", "earn x: 10 points on enroll wen amount > 5\n",
             "earn x: 10 points at most 2 times per week wen amount > 5\n",
             "earn x: 10 points during 2026-01-01 to 2026-01-02 wen amount > 5\n"),
            suggest=CLAUSE_WORDS),
    Mistake("E132", "conditions are joined with the words `and` / `or`, not `&&` / `||`", "write `when amount > 5 and weekday == sat`",
            ("earn x: 10 points when amount > 5 && weekday == sat\n", "earn x: 10 points when tier >= Gold && amount > 5\n",
             'earn x: 10 points when category == "x" && amount > 5\n', "earn x: 10 points when month(date) == 12 && amount > 5\n",
             "earn x: 10 points when amount > 5 || weekday == sat\n", "earn x: 10 points when tier >= Gold || amount > 5\n",
             'earn x: 10 points when category == "x" || amount > 5\n')),
    Mistake("E133", "expiry is written `expire after N months`, `expire at end of year` or `expire never`",
            "write `expire after 12 months`",
            ("expire in 12 months\n", "expire 12 months\n", "expire after months\n")),
]


def _char_class(ch: str) -> str:
    # Every currency sign is one mistake, whatever the currency.
    return "currency-sign" if ch and unicodedata.category(ch) == "Sc" else ch


def signature(exc) -> tuple:
    """Where and on what the parser stopped: (state, token type or character)."""
    # The contextual lexer reports a ParserState; its `position` is the LALR state number.
    state = getattr(exc.state, "position", exc.state)
    char = getattr(exc, "char", None)
    if char is not None:
        return state, "char", _char_class(char)
    token = getattr(exc, "token", None)
    return state, getattr(token, "type", "$END"), None


@lru_cache(maxsize=4)
def _table(parse, error_type) -> dict:
    table: dict[tuple, list[Mistake]] = {}
    for m in MISTAKES:
        for example in m.examples:
            try:
                parse(example)
            except error_type as exc:
                entries = table.setdefault(signature(exc), [])
                if m not in entries:
                    entries.append(m)
    return table


def match(exc, parse, error_type, text: str = "") -> Mistake | None:
    """The catalogue entry for a syntax error, with its message filled in; None if none fits."""
    found = str(getattr(exc, "token", "") or getattr(exc, "char", ""))
    token = getattr(exc, "token", None)
    if getattr(token, "line", None) and getattr(token, "start_pos", None) is not None:
        # Inside brackets line ends do not end statements, so an unclosed bracket surfaces lines
        # later, in whatever state the next statement meets; find it from the text instead.
        opened = open_bracket(text, token.start_pos)
        if opened is not None and opened[1] < token.line:
            ch, line, col = opened
            return Mistake("E122", f"the `{ch}` on line {line}, column {col} is not closed", _UNCLOSED_HINT, ())
    for m in _table(parse, error_type).get(signature(exc), ()):
        if m.token is None or m.token == found:
            return _fill(m, found)
    return None


def _fill(m: Mistake, found: str) -> Mistake:
    if "{found}" not in m.message:
        return m
    suggestion = ""
    if m.suggest:
        close = difflib.get_close_matches(found, m.suggest, n=1, cutoff=0.6)
        suggestion = f"; did you mean `{close[0]}`?" if close else ""
    return replace(m, message=m.message.replace("{found}", found).replace("{suggestion}", suggestion))


def open_bracket(text: str, stop: int) -> tuple[str, int, int] | None:
    """The innermost bracket still open at offset `stop` (skipping texts and comments): (char, line, col)."""
    stack: list[tuple[str, int, int]] = []
    line, line_start, i = 1, 0, 0
    closing = {")": "(", "]": "["}
    while i < min(stop, len(text)):
        ch = text[i]
        if ch == "\n":
            line, line_start = line + 1, i + 1
        elif ch in "\"'":
            end = text.find(ch, i + 1)
            newline = text.find("\n", i + 1)
            if end == -1 or (newline != -1 and newline < end):
                return None  # an unclosed quote is its own mistake
            i = end
        elif ch == "#":
            newline = text.find("\n", i)
            i = (newline if newline != -1 else len(text)) - 1
        elif ch in "([":
            stack.append((ch, line, i - line_start + 1))
        elif ch in ")]" and stack and stack[-1][0] == closing[ch]:
            stack.pop()
        i += 1
    return stack[-1] if stack else None
