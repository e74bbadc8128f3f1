"""The per-member state machine of the compiled engine (numba): one pass over the units.

Inputs are three named structures of arrays (`Program`, `Rows`, `Redemptions`), built by
`rulelang.engine.compile` (`program_arrays`, `row_arrays`, `redemption_arrays`); the output is one int64 row per posting
(columns OUT_*), which `compile.run` turns into the ledger (`unpack`, `ledger.frame`). State per member:
tier window (two-pointer sums over a contribution log, or calendar-year sums), frequency counters
and cap totals keyed by precomputed period numbers, FIFO lots, and per-basket issued/clawed points
for refunds. Every rule follows docs/semantics.md and mirrors `rulelang.interpret` step by step.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
from numba import njit

from rulelang.engine.calendar import NAT, NS_PER_DAY, add_months, civil_from_days, days_from_civil

# Posting columns (rows of `new_postings`). OUT_WHO packs the member, the tier the posting was
# made at, the kind, and the rule or the reward (a posting names one or neither: a reward only
# when it is a redemption) into one int64 (`who`); `unpack` splits it into the narrow code columns
# the ledger keeps. Seven columns of 8 bytes, not eleven: run 0's ledger, which a simulation
# keeps, touches a third less fresh memory. Bits: kind 0-7, rule or reward 8-23, tier + 1 24-31
# (0: the program has no tiers), member 32 on.
OUT_TS, OUT_POINTS, OUT_EARNED, OUT_COST, OUT_SHARE, OUT_ROW, OUT_WHO = range(7)
WHO_MEMBER_SHIFT, WHO_TIER_SHIFT, WHO_CODE_SHIFT = 32, 24, 8
MAX_TIERS = 254  # tier + 1 in 8 bits
# Ledger kinds (ledger.KINDS order) and batch row kinds (data.PURCHASE ...).
EARN, CAPPED, CLAWBACK, SHORTFALL, REDEEM, EXPIRE, DISCOUNT, BENEFIT = range(8)
K_PURCHASE, K_REFUND, K_REDEEM, K_EVENT = 0, 1, 2, 3
# Rule kinds, rounding modes, expiry kinds, tier windows, policy choices.
PER_SPEND, FIXED, MULTIPLIER, PER_UNIT, BENEFIT_RULE = 0, 1, 2, 3, 4
DOWN, UP, NEAREST = 0, 1, 2
X_NEVER, X_AFTER_DAYS, X_AFTER_MONTHS, X_INACTIVE_DAYS, X_INACTIVE_MONTHS, X_END_OF_YEAR, X_END_OF_NEXT_YEAR = range(7)
W_ROLLING, W_CALENDAR = 0, 1
CHEAPEST, DEAREST, RANDOM = 0, 1, 2
D_PERCENT, D_FIXED, D_BUY_GET = 0, 1, 2  # discount kinds


@njit(cache=True, nogil=True)
def _moment(xkind, xn, day):
    """The expiry moment (ns) of a lot earned on `day`, or of the balance when `day` is the last purchase."""
    if xkind == X_AFTER_DAYS or xkind == X_INACTIVE_DAYS:
        return (day + xn) * NS_PER_DAY
    if xkind == X_AFTER_MONTHS or xkind == X_INACTIVE_MONTHS:
        return add_months(day, xn) * NS_PER_DAY
    y, _, _ = civil_from_days(day)
    if xkind == X_END_OF_NEXT_YEAR:
        y += 1
    return days_from_civil(y + 1, 1, 1) * NS_PER_DAY - 1


# Rows of the day table (`day_table`): per day of the batch's span, its month number (year * 12 +
# month - 1), the expiry moment of a lot earned that day (or of the balance when it is the last
# purchase), and the day `wmonths` months before it (the rolling tier window's start).
DAY_MONTH, DAY_MOMENT, DAY_BACK = range(3)


@njit(cache=True, nogil=True)
def day_table(first, last, xkind, xn, wmonths):
    """The calendar facts the kernel needs per day, days first .. last: a lookup per unit instead of
    civil-date arithmetic (a dozen divisions) for every unit and lot."""
    span = max(last - first + 1, 1)
    out = np.zeros((3, span), dtype=np.int64)
    for o in range(span):
        day = first + o
        y, m, _ = civil_from_days(day)
        out[DAY_MONTH, o] = y * 12 + m - 1
        if xkind != X_NEVER:
            out[DAY_MOMENT, o] = _moment(xkind, xn, day)
        out[DAY_BACK, o] = add_months(day, -wmonths) if wmonths > 0 else day
    return out


@njit(cache=True, nogil=True)
def unit_facts(member, starts, amount, refund_of, units):
    """What the kernel needs to know of a batch's units, in one pass over the rows: each unit's
    total (units are the runs that start at `starts`), each refunded unit's slot (its rank among
    the refunded units, -1 for the rest) and their count, and the bounds `check_bounds` and the
    kernel's per-member arrays are sized by: the most rows of one member, the most lines of one
    unit, the largest amount and unit total in absolute value. `ok` is false when a refund names
    a unit the batch does not have."""
    n = amount.shape[0]
    k = starts.shape[0]
    total = np.zeros(k, dtype=np.int64)
    max_lines, max_total, max_amount = 0, 0, 0
    for u in range(k):
        end = starts[u + 1] if u + 1 < k else n
        s = 0
        for i in range(starts[u], end):
            a = amount[i]
            s += a
            max_amount = max(max_amount, abs(a))
        total[u] = s
        max_lines = max(max_lines, end - starts[u])
        max_total = max(max_total, abs(s))
    max_rows, run = 0, 0
    for i in range(n):
        run = run + 1 if i > 0 and member[i] == member[i - 1] else 1
        max_rows = max(max_rows, run)
    size = max(units, 1)
    slot = np.full(size, -1, dtype=np.int32)
    ok = True
    for i in range(n):
        r = refund_of[i]
        if r >= size:
            ok = False
        elif r >= 0:
            slot[r] = 0
    refunded = 0
    for u in range(size):
        if slot[u] == 0:
            slot[u] = refunded
            refunded += 1
    return total, slot, refunded, max_rows, max_lines, max_amount, max_total, ok


def new_postings(capacity: int) -> np.ndarray:
    """Empty posting columns: a (7, capacity) int64 array, one row per OUT_* column, so a column
    is a contiguous view; np.empty only reserves memory, so a generous capacity costs nothing
    until used. (One array, not one per column: every array handed to a helper costs atomic reference
    counting per call, which dominated the kernel when postings were a tuple of arrays.)
    It is a view one column short of its block, so that it and the stretches of a shared block
    (`compile._postings`) have the same strided layout: numba compiles the kernel once, not per layout."""
    capacity = max(int(capacity), 16)
    return np.empty((7, capacity + 1), dtype=np.int64)[:, :capacity]


@njit(cache=True, nogil=True)
def _post(out, cnt, holder, ts, kind, rule, points, earned, reward, cost, share, row):
    """Write posting `cnt` if it fits (the caller grows the columns and reruns the member if not).
    `holder`: the member and the tier, already in their bits of OUT_WHO (`holder_bits`)."""
    if cnt < out.shape[1]:
        code = reward if kind == REDEEM else rule
        out[OUT_TS, cnt] = ts
        out[OUT_POINTS, cnt] = points
        out[OUT_EARNED, cnt] = earned
        out[OUT_COST, cnt] = cost
        out[OUT_SHARE, cnt] = share
        out[OUT_ROW, cnt] = row
        out[OUT_WHO, cnt] = holder | ((np.int64(code) & 0xFFFF) << WHO_CODE_SHIFT) | kind
    return cnt + 1


def grow(out: np.ndarray, cnt: int, need: int) -> np.ndarray:
    """Posting columns with room for at least `need` postings, the first `cnt` copied."""
    bigger = new_postings(max(need, 2 * out.shape[1]))
    bigger[:, :cnt] = out[:, :cnt]
    return bigger


@njit(cache=True, nogil=True)
def close_up(block, dst, src, count):
    """Move postings src .. src + count of every column down to dst (dst <= src), in place: a
    forward copy needs no temporary even where the two stretches overlap."""
    for c in range(block.shape[0]):
        for i in range(count):
            block[c, dst + i] = block[c, src + i]


@njit(cache=True, nogil=True, inline="always")
def holder_bits(member, tier_code):
    """The member and the tier code (tier + 1, or 0 without tiers) in their bits of OUT_WHO."""
    return (np.int64(member) << WHO_MEMBER_SHIFT) | (np.int64(tier_code) << WHO_TIER_SHIFT)


@njit(cache=True, nogil=True)
def unpack(who, member, kind, rule, reward, tier):
    """Split the packed `who` column into the ledger's code columns, in whatever integer types
    the caller gives them (the ones pandas keeps Categorical codes in): member and kind codes,
    the rule and reward codes shifted by one (0 for none), as `ledger.frame` takes them, and the
    tier codes (tier + 1; 0 for a program without tiers)."""
    for i in range(who.shape[0]):
        w = who[i]
        k = w & 0xFF
        code = (w >> WHO_CODE_SHIFT) & 0xFFFF
        code = code - 0x10000 if code >= 0x8000 else code
        member[i] = w >> WHO_MEMBER_SHIFT
        tier[i] = (w >> WHO_TIER_SHIFT) & 0xFF
        kind[i] = k
        if k == REDEEM:
            rule[i] = 0
            reward[i] = code + 1
        else:
            rule[i] = code + 1
            reward[i] = 0


@njit(cache=True, nogil=True)
def pack_rows(stack, words):
    """(blocks, rows) 0/1 bytes -> (rows, words) uint64 with block b at bit b % 64 of word b // 64."""
    nb, n = stack.shape
    out = np.zeros((n, words), dtype=np.uint64)
    for b in range(nb):
        w = b // 64
        bit = np.uint64(1) << np.uint64(b % 64)
        for i in range(n):
            if stack[b, i]:
                out[i, w] |= bit
    return out


@njit(cache=True, nogil=True)
def _round(num, den, mode):
    """num/den (den > 0) rounded down, up or half up."""
    if mode == DOWN:
        return num // den
    if mode == UP:
        return -((-num) // den)
    return (2 * num + den) // (2 * den)


@njit(cache=True, nogil=True)
def _redeem(out, posted, holder, t, row, reward, points, cost, share, lot_day, lot_points, first_lot, lot_count):
    """Spend `points` from the lots, oldest first; one posting per lot touched."""
    left = points
    first = True
    for q in range(first_lot, lot_count):
        if left == 0:
            break
        n = min(lot_points[q], left)
        if n > 0:
            lot_points[q] -= n
            left -= n
            posted = _post(out, posted, holder, t, REDEEM, -1, n, lot_day[q] * NS_PER_DAY, reward,
                        cost if first else 0, share if first else 0, row)
            first = False
    return posted


@njit(cache=True, nogil=True)
def _clawback(out, posted, holder, t, rule, points, day, row, lot_day, lot_points, first_lot, lot_count):
    """Take back `points` of `rule` from the lots: first the lot earned on `day` (the refunded
    basket's), then the others oldest first; what no lot holds any more is a shortfall.
    Returns (posted, points taken from lots)."""
    left = points
    for q in range(lot_count - 1, first_lot - 1, -1):
        if lot_day[q] < day:
            break
        if lot_day[q] == day:
            posted, left = _take(out, posted, holder, t, rule, q, left, row, lot_day, lot_points)
            break
    for q in range(first_lot, lot_count):
        if left == 0:
            break
        if lot_day[q] != day:
            posted, left = _take(out, posted, holder, t, rule, q, left, row, lot_day, lot_points)
    if left > 0:
        posted = _post(out, posted, holder, t, SHORTFALL, rule, left, NAT, -1, 0, 0, row)
    return posted, points - left


@njit(cache=True, nogil=True)
def _take(out, posted, holder, t, rule, q, left, row, lot_day, lot_points):
    """Claw back up to `left` points from lot q: (posted, points still to take)."""
    n = min(lot_points[q], left)
    if n > 0:
        lot_points[q] -= n
        posted = _post(out, posted, holder, t, CLAWBACK, rule, n, lot_day[q] * NS_PER_DAY, -1, 0, 0, row)
    return posted, left - n


@njit(cache=True, nogil=True)
def available_at(lot_day, lot_points, first_lot, lot_count, day, pending_days):
    """The available balance on `day` (docs/semantics.md, "Pending points"): the points of the lots
    earned on or before `day - pending_days`. Lots are in the order earned, so these are the first
    lots, and spending oldest first (`_redeem`) spends only them. Called only by programs with a
    pending window, and only when a member may spend."""
    last = day - pending_days
    total = 0
    for q in range(first_lot, lot_count):
        if lot_day[q] > last:
            break
        total += lot_points[q]
    return total


@njit(cache=True, nogil=True)
def voucher_moment(t, months):
    """The last moment (ns) of the period `months` long (calendar months from January) holding `t`."""
    y, m, _ = civil_from_days(t // NS_PER_DAY)
    after = ((y * 12 + m - 1) // months + 1) * months
    return days_from_civil(after // 12, after % 12 + 1, 1) * NS_PER_DAY - 1


@njit(cache=True, nogil=True)
def _issue_vouchers(out, posted, who, until, inclusive, moment, months, reward, reward_points, reward_cost, reward_share, pending_days,
                    expiry_kind, inactive, last_purchase, days, first_day, lot_day, lot_points, lot_moment, first_lot, lot_count, balance,
                    has_tiers, tier_code_shift, tier_window, window_days, window_months, thresholds, contribution_ts, contribution, window_head,
                    contributions, window_sum, year, year_sum, last_year_sum, has_alternatives, alt_contribution, alt_thresholds, has_keep, reached_log, keep_months, has_status, held, last_point, one_level, review_months):
    """Every period end from `moment` on before `until` (or at it, when `inclusive`): the expiries
    due by then, then the available balance turned into as many vouchers as it affords (one
    redemption of them all, at the tier held then). Returns (posted, balance, first_lot, the next period
    end). Called only when a period end has passed."""
    while moment < until or (inclusive and moment == until):
        if expiry_kind != X_NEVER:
            inactive_moment = days[DAY_MOMENT, last_purchase - first_day] if inactive else NAT
            first_lot, due = _first_due(lot_points, lot_moment, first_lot, lot_count, inactive, inactive_moment, moment)
            if due:
                posted, gone = _expire_at_tiers(out, posted, who, moment, inactive, inactive_moment, lot_day, lot_points, lot_moment, first_lot,
                                                lot_count, has_tiers, tier_window, window_days, window_months, thresholds, contribution_ts,
                                                contribution, window_head, contributions, window_sum, year, year_sum, last_year_sum, has_alternatives, alt_contribution, alt_thresholds, has_keep, reached_log, keep_months, has_status, held, last_point, one_level, review_months)
                balance -= gone
        tier = 0
        if has_tiers:
            tier = _tier_at(moment, tier_window, window_days, window_months, thresholds, contribution_ts, contribution, window_head, contributions,
                            window_sum, year, year_sum, last_year_sum)
            if has_alternatives:
                tier = _alternatives_at(moment, tier, tier_window, window_days, window_months, contribution_ts, alt_contribution, contributions,
                                        alt_thresholds)
            if has_keep:
                tier = _kept_at(moment, tier, contribution_ts, reached_log, contributions, keep_months)
            if has_status:
                tier = _status_at(moment, held, last_point, one_level, review_months, tier_window, window_days, window_months, thresholds,
                                  contribution_ts, contribution, contributions, has_alternatives, alt_contribution, alt_thresholds, has_keep,
                                  reached_log, keep_months)
        spendable = balance if pending_days == 0 else available_at(lot_day, lot_points, first_lot, lot_count, moment // NS_PER_DAY, pending_days)
        n = spendable // reward_points[reward]
        if n > 0:  # one redemption of n vouchers (docs/semantics.md, "Automatic vouchers")
            posted = _redeem(out, posted, holder_bits(who, tier + tier_code_shift), moment, -1, reward, n * reward_points[reward],
                             n * reward_cost[reward], n * reward_share[reward], lot_day, lot_points, first_lot, lot_count)
            balance -= n * reward_points[reward]
        moment = voucher_moment(moment + 1, months)
    return posted, balance, first_lot, moment


@njit(cache=True, nogil=True, inline="always")
def _first_due(lot_points, lot_moment, first_lot, lot_count, inactive, inactive_moment, now):
    """(the first lot with points, whether a lot is due by `now`): `_expire_due` is called only
    then, as a call would count references to every array it is handed. Inlined, so this one
    costs none."""
    while first_lot < lot_count and lot_points[first_lot] == 0:
        first_lot += 1
    return first_lot, first_lot < lot_count and (inactive_moment <= now if inactive else lot_moment[first_lot] <= now)


@njit(cache=True, nogil=True)
def _expire_due(out, posted, holder, now, inactive, inactive_moment, lot_day, lot_points, lot_moment, first_lot, lot_count):
    """Post the expiry of every lot (from `first_lot` on) due by `now`: for inactivity expiry, the lots
    earned before the day of `inactive_moment` once it has come; otherwise each lot at its own
    moment (lots expire in the order earned). Returns (posted, points expired). The kernel calls it
    only when a lot is due: a call per unit would count references to every array it is handed."""
    gone = 0
    if inactive:
        if inactive_moment <= now:
            mday = inactive_moment // NS_PER_DAY
            for q in range(first_lot, lot_count):
                if lot_points[q] > 0 and lot_day[q] < mday:
                    posted = _post(out, posted, holder, inactive_moment, EXPIRE, -1, lot_points[q], lot_day[q] * NS_PER_DAY, -1, 0, 0, -1)
                    gone += lot_points[q]
                    lot_points[q] = 0
    else:
        for q in range(first_lot, lot_count):
            if lot_points[q] > 0:
                if lot_moment[q] > now:
                    break
                posted = _post(out, posted, holder, lot_moment[q], EXPIRE, -1, lot_points[q], lot_day[q] * NS_PER_DAY, -1, 0, 0, -1)
                gone += lot_points[q]
                lot_points[q] = 0
    return posted, gone


@njit(cache=True, nogil=True)
def _keep_counters(times_key, times_used, times_key_before, times_used_before):
    """`best of`: the frequency counters before a unit, to restore those of the rules that lose."""
    for r in range(times_key.shape[0]):
        times_key_before[r] = times_key[r]
        times_used_before[r] = times_used[r]


@njit(cache=True, nogil=True)
def _best_of(group_rules, unit_exact, times_key, times_used, times_key_before, times_used_before):
    """`best of` on one unit: in each group only the largest exact award is kept (ties: the first
    listed); the others' awards become 0 and their frequency counters go back to before the unit.
    A function of its own, called only by programs with groups: the kernel's loop of a program
    without them holds no more than the test of the flag."""
    for g in range(group_rules.shape[0]):
        kept = -1
        for k in range(group_rules.shape[1]):
            r = group_rules[g, k]
            if r < 0:
                break
            if unit_exact[r] > 0 and (kept < 0 or unit_exact[r] > unit_exact[kept]):
                kept = r
        if kept < 0:
            continue
        for k in range(group_rules.shape[1]):
            r = group_rules[g, k]
            if r < 0:
                break
            if r != kept and unit_exact[r] > 0:
                unit_exact[r] = 0
                times_key[r] = times_key_before[r]
                times_used[r] = times_used_before[r]


@njit(cache=True, nogil=True)
def _largest_remainders(shares, remainders, n, extra):
    """Hand `extra` units left after the floors to the first `n` entries, one each, largest
    remainder first (ties: the first); a remainder handed a unit is spent."""
    while extra > 0:
        pick = -1
        for k in range(n):
            if remainders[k] > 0 and (pick < 0 or remainders[k] > remainders[pick]):
                pick = k
        if pick < 0:
            break
        shares[pick] += 1
        remainders[pick] = 0
        extra -= 1


@njit(cache=True, nogil=True)
def _pay_with_points(out, posted, holder, now, row, lines, points, balance, pay_points, pay_value, cap_num, cap_den, minimum, reward,
                     line_paid, line_share, line_rem, lot_day, lot_points, first_lot, lot_count):
    """`pay with points` on one basket of `lines` lines (what each still costs in `line_paid`,
    after the discounts): `points` recorded by the history (>= 0), or -1 for as many whole steps
    as the available `balance`, the cap and the minimum allow. The points are spent from the
    oldest lots (`redeem` of `reward`, the money paid as the first posting's cost); the money is
    shared across the lines by what they still cost (largest remainder) and taken off
    `line_paid`. Returns (posted, points paid, money paid, declined: 1 when a recorded payment is
    more than the balance or the basket). Called only when a payment is recorded or drawn."""
    basket = 0
    for k in range(lines):
        if line_paid[k] > 0:
            basket += line_paid[k]
    if points >= 0:
        money = (2 * points * pay_value + pay_points) // (2 * pay_points)
        if points > balance or money > basket:
            return posted, 0, 0, 1
    else:
        if balance < minimum:
            return posted, 0, 0, 0
        steps = min(balance // pay_points, basket * cap_num // cap_den // pay_value)
        if steps <= 0:
            return posted, 0, 0, 0
        points = steps * pay_points
        money = steps * pay_value
    floors = 0
    for k in range(lines):
        line_share[k] = 0
        line_rem[k] = 0
        if line_paid[k] > 0:
            share = money * line_paid[k] // basket
            line_share[k] = share
            line_rem[k] = money * line_paid[k] - share * basket
            floors += share
    _largest_remainders(line_share, line_rem, lines, money - floors)
    for k in range(lines):
        line_paid[k] -= line_share[k]
    posted = _redeem(out, posted, holder, now, row, reward, points, money, 0, lot_day, lot_points, first_lot, lot_count)
    return posted, points, money, 0


class Program(NamedTuple):
    """The program's arrays and codes, the same for every batch (`compile.program_arrays`).
    Per rule, in rule order: an exact award is a numerator over `den`. The earn rules come first
    (`point_rules` of them), then the benefits: they fire, and count against their frequency
    limits, like rules, but post a money cost instead of points."""

    rule_kind: np.ndarray  # PER_SPEND, FIXED, PER_UNIT, MULTIPLIER or BENEFIT_RULE
    multiplier_target: np.ndarray  # the rule a multiplier multiplies (-1 for the rest)
    multiplier_num: np.ndarray  # a multiplier's extra factor (factor - 1), num / den
    multiplier_den: np.ndarray
    rate_mul: np.ndarray  # per_spend: exact points per minor unit of amount
    fixed_num: np.ndarray  # fixed: exact points; per_unit: exact points a unit
    times: np.ndarray  # the most awards a period (-1: no frequency limit) ...
    times_period: np.ndarray  # ... per this period (a row of the unit's period numbers)
    share_num: np.ndarray  # the partner's share of each point issued, in minor units, num / den
    share_den: np.ndarray
    rounding: int  # DOWN, UP or NEAREST
    den: int
    cap_points: np.ndarray  # the program's `limit`s: points ...
    cap_period: np.ndarray  # ... per this period
    has_tiers: bool
    tier_metric: int  # 0 spend, 1 points, 2 visits
    tier_window: int  # W_ROLLING or W_CALENDAR
    window_days: int  # a rolling window in days, or ...
    window_months: int  # ... in months (one of the two is 0)
    thresholds: np.ndarray  # each tier's lowest metric
    expiry_kind: int  # X_* (the moments themselves are in the rows' day table)
    reward_points: np.ndarray  # per reward
    reward_cost: np.ndarray
    reward_share: np.ndarray
    # Per discount (docs/semantics.md, "Discounts"); a program without discounts has none.
    discount_kind: np.ndarray  # D_PERCENT or D_FIXED
    discount_value: np.ndarray  # D_FIXED: the money off the basket, minor units
    discount_column: np.ndarray  # D_PERCENT: its row of Rows.discount_amount
    discount_times: np.ndarray  # frequency limit (-1: none), baskets ...
    discount_period: np.ndarray  # ... per this period
    discount_share_num: np.ndarray  # the partner's share of the money off, num / den
    discount_share_den: np.ndarray
    discount_cap: np.ndarray  # the most a discount takes off one basket, minor units (-1: no cap)
    discount_cheapest: np.ndarray  # 1: a percentage of the cheapest matching line only
    discount_buy: np.ndarray  # D_BUY_GET: of each buy + get units ...
    discount_get: np.ndarray  # ... the cheapest get are free
    point_rules: int  # the earn rules (the rest of the rules are benefits)
    benefit_cost: np.ndarray  # per benefit: its cost a firing (minor units) ...
    benefit_share_num: np.ndarray  # ... and the partner's share of it, num / den
    benefit_share_den: np.ndarray
    # `best of` (docs/semantics.md, "Best of"): per group its rules in the order listed, padded
    # with -1 (groups, widest group). A program without groups has none and `has_groups` false, so
    # its units skip the step with one test.
    has_groups: bool
    group_rules: np.ndarray
    # Tier alternatives (`Gold from 5000 CNY or 24 visits`): the program's flag, and per metric
    # (spend, points, visits) each level's threshold by it (ALT_NEVER where the level has none).
    has_alternatives: bool
    alt_thresholds: np.ndarray
    # `keep N months`: the program's flag, and per level its months (0: none).
    has_keep: bool
    keep_months: np.ndarray
    # Status rules: the program's flag, `downgrade one level at a time`, and the months between
    # reviews (`review tiers every ...`; 0: falls at every row).
    has_status: bool
    one_level: bool
    review_months: int
    counting: bool  # `counting the current purchase`
    # Pending points (docs/semantics.md, "Pending points"): a lot earned on day d can be spent from
    # day d + pending_days on; 0: at once (the balance is then all available, and nothing is summed).
    pending_days: int
    # Automatic vouchers (docs/semantics.md, "Automatic vouchers"): the reward issued at the end of
    # every period `voucher_months` long (-1: none; the unit loop then skips the step with one test).
    voucher_reward: int
    voucher_months: int
    # `pay with points` (docs/semantics.md, "Paying with points"): whole steps of `pay_points`
    # points each pay `pay_value` minor units, at most cap_num / cap_den of the basket, from a
    # balance of `pay_minimum`; posted as `redeem` of reward `pay_reward`. A program without it
    # has `has_payment` false, and its units skip the step with one test.
    has_payment: bool = False
    pay_points: int = 1
    pay_value: int = 0
    pay_cap_num: int = 1
    pay_cap_den: int = 1
    pay_minimum: int = 0
    pay_reward: int = -1
    # Budgets (docs/semantics.md, "Budgets"): a program without them has `has_budgets` false, and
    # its units skip the closing check with one test.
    has_budgets: bool = False


class Rows(NamedTuple):
    """The batch as the kernel reads it (`compile.row_arrays`): rows sorted by member and time, a
    unit (basket) being a run of rows with one `unit` number."""

    member: np.ndarray
    ts: np.ndarray
    kind: np.ndarray  # K_PURCHASE, K_REFUND, K_REDEEM or K_EVENT
    amount: np.ndarray  # minor units
    units: np.ndarray  # whole units of each row's quantity, for PER_UNIT rules (empty when the program has none)
    unit: np.ndarray
    refund_of: np.ndarray  # the unit a refund row refunds (-1: none)
    reward_of: np.ndarray  # the reward a redeem row asks for (-1: unknown)
    row_id: np.ndarray  # the row's number in the caller's transactions (the ledger's `row`)
    rule_bits: np.ndarray  # (rows, words): bit b is set where the condition of bit b's block holds
    level_bits: np.ndarray  # (tiers, words): the bits of each rule's block at each tier ...
    later_bits: np.ndarray  # ... and the same without basket rules (a basket's later lines)
    bit_rule: np.ndarray  # the rule of each bit; bits are in processing order (a multiplier after its target)
    refund_slot: np.ndarray  # per unit: its rank among the refunded units (-1: never refunded)
    unit_total: np.ndarray  # per unit: its amount
    refunded_units: int
    max_rows: int  # the most rows of one member
    days: np.ndarray  # `day_table` from first_day on, covering every row's day
    first_day: int
    until: int  # expiries are posted up to this moment (ns)
    # Discounts: where each holds, as bits (rows, words), the bit of each discount at each tier
    # (discounts, tiers), and each percentage's money off each line, computed column-at-a-time
    # (percentages, rows). Empty when the program has no discounts.
    discount_bits: np.ndarray
    discount_bit: np.ndarray
    discount_amount: np.ndarray
    # The points each row paid with, as the history recorded them (a `points_paid` column of a
    # program with `pay with points`); empty: not recorded (the payments are drawn).
    points_paid: np.ndarray = np.zeros(0, dtype=np.int64)
    # Budgets: per rule and per discount where its budget closed it (`budgets.batch_closings`):
    # (moment, first member closed at it, that member's first row closed); never: the largest moment.
    rule_close: np.ndarray = np.zeros((0, 3), dtype=np.int64)
    discount_close: np.ndarray = np.zeros((0, 3), dtype=np.int64)


class Redemptions(NamedTuple):
    """The simulated redemption behaviour (`compile.redemption_arrays`): after a purchase, with
    `probability` (a row's `draw` below it), one affordable reward picked by `choice`."""

    active: bool
    probability: float
    choice: int  # CHEAPEST, DEAREST or RANDOM
    draw: np.ndarray
    choice_draw: np.ndarray  # for RANDOM: which of the affordable rewards
    # Paying with points: a member pays a basket partly with points where `pay_draw` is below
    # `pay_probability` (empty: never drawn).
    pay_probability: float = 0.0
    pay_draw: np.ndarray = np.zeros(0, dtype=np.float64)


class Report(NamedTuple):
    """What the caller asks to see besides the postings (`compile.report_arrays`), written by the
    kernel. Calls side by side each have their own `tier_counts`; a call writes the per-row
    outputs only at its own members' rows, so calls can share those."""

    moments: np.ndarray  # int64 ns, rising: when to count members by tier (empty: never)
    tier_counts: np.ndarray  # (moments, tiers): members at each tier at each moment, from their first row on; added to
    row_tier: np.ndarray  # per row: the tier held before its unit (empty: not wanted) ...
    row_metric: np.ndarray  # ... and the tier metric then (this calendar year's, for calendar-year tiers)


@njit(cache=True, nogil=True, inline="always")
def _budget_closed(close, k, now, who, row):
    """Whether the unit at (now, member `who`, `row`) is at or after closing `k` of `close`."""
    t = close[k, 0]
    if now != t:
        return now > t
    return who > close[k, 1] or (who == close[k, 1] and row >= close[k, 2])


@njit(cache=True, nogil=True, inline="always")
def _budget_closings(close, closed, now, who, row):
    """Each budgeted rule's (or discount's) `_budget_closed` for one unit, into `closed`."""
    for k in range(close.shape[0]):
        closed[k] = _budget_closed(close, k, now, who, row)


@njit(cache=True, nogil=True, inline="always")
def _tier_at(moment, tier_window, window_days, window_months, thresholds, contribution_ts, contribution, window_head, contributions, window_sum,
             year, year_sum, last_year_sum):
    """The tier held at `moment` (at or after the member's last unit so far), from the state the
    kernel keeps for the next unit, without moving it: the metric over the window that ends at
    the moment. Called only at a report's moments and at expiries, never per unit."""
    if tier_window == W_ROLLING:
        cutoff = _window_cutoff(moment, moment // NS_PER_DAY, window_days, window_months)  # (NAT `over lifetime`: nothing leaves)
        metric = window_sum
        head = window_head
        while head < contributions and contribution_ts[head] <= cutoff:
            metric -= contribution[head]
            head += 1
    else:
        moment_year, _, _ = civil_from_days(moment // NS_PER_DAY)
        if moment_year == year:
            metric = max(year_sum, last_year_sum)
        elif moment_year == year + 1:
            metric = year_sum  # last year's, now the year before
        else:
            metric = 0
    tier = 0
    for q in range(1, thresholds.shape[0]):
        if metric >= thresholds[q]:
            tier = q
    return tier


ALT_NEVER = np.iinfo(np.int64).max  # an alternative threshold a level does not have


@njit(cache=True, nogil=True)
def _alternatives_reach(tier, alt_thresholds, sums, other):
    """The highest of `tier` and the levels an alternative reaches: metric k's sum (the better of
    `sums` and `other`, this year's and last year's in calendar years) at its threshold."""
    for q in range(tier + 1, alt_thresholds.shape[1]):
        for k in range(3):
            if max(sums[k], other[k]) >= alt_thresholds[k, q]:
                tier = q
    return tier


@njit(cache=True, nogil=True, inline="always")
def _window_cutoff(moment, day, window_days, window_months):
    """The moment a rolling window ending at `moment` (on `day`) starts after: N months or N days
    back (NAT for a window without either: everything before counts)."""
    if window_months > 0:
        return add_months(day, -window_months) * NS_PER_DAY + (moment - day * NS_PER_DAY)
    if window_days > 0:
        return moment - window_days * NS_PER_DAY
    return NAT


@njit(cache=True, nogil=True)
def _alternatives_at(moment, tier, tier_window, window_days, window_months, contribution_ts, alt_contribution, contributions, alt_thresholds):
    """`_alternatives_reach` at `moment`, summing the log of contributions at or before it (a scan:
    called only at a report's moments and at expiries, and only for programs with alternatives)."""
    day = moment // NS_PER_DAY
    sums = np.zeros(3, dtype=np.int64)
    other = np.zeros(3, dtype=np.int64)
    if tier_window == W_ROLLING:
        cutoff = _window_cutoff(moment, day, window_days, window_months)
        for c in range(contributions):
            if cutoff < contribution_ts[c] <= moment:
                for k in range(3):
                    sums[k] += alt_contribution[k, c]
    else:
        moment_year, _, _ = civil_from_days(day)
        this_start = days_from_civil(moment_year, 1, 1) * NS_PER_DAY
        last_start = days_from_civil(moment_year - 1, 1, 1) * NS_PER_DAY
        for c in range(contributions):
            t = contribution_ts[c]
            if this_start <= t <= moment:
                for k in range(3):
                    sums[k] += alt_contribution[k, c]
            elif last_start <= t < this_start:
                for k in range(3):
                    other[k] += alt_contribution[k, c]
    return _alternatives_reach(tier, alt_thresholds, sums, other)


@njit(cache=True, nogil=True)
def _next_review(moment, review_months):
    """The first review after `moment`: 00:00 on the first day of a month whose number (January 0)
    is a multiple of `review_months`."""
    y, m, _ = civil_from_days(moment // NS_PER_DAY)
    index = y * 12 + m - 1 + 1
    while index % review_months != 0:
        index += 1
    return days_from_civil(index // 12, index % 12 + 1, 1) * NS_PER_DAY


@njit(cache=True, nogil=True)
def _qualified_at(moment, tier_window, window_days, window_months, thresholds, contribution_ts, contribution, contributions, has_alternatives,
                  alt_contribution, alt_thresholds, has_keep, reached_log, keep_months):
    """The level qualified for at `moment` (the metric, alternatives and retention), from the log
    of contributions at or before it (a scan: status rules only)."""
    day = moment // NS_PER_DAY
    this, last = 0, 0
    if tier_window == W_ROLLING:
        cutoff = _window_cutoff(moment, day, window_days, window_months)
        for c in range(contributions):
            if contribution_ts[c] > moment:
                break
            if contribution_ts[c] > cutoff:
                this += contribution[c]
    else:
        moment_year, _, _ = civil_from_days(day)
        this_start = days_from_civil(moment_year, 1, 1) * NS_PER_DAY
        last_start = days_from_civil(moment_year - 1, 1, 1) * NS_PER_DAY
        for c in range(contributions):
            t = contribution_ts[c]
            if t > moment:
                break
            if t >= this_start:
                this += contribution[c]
            elif t >= last_start:
                last += contribution[c]
        this = max(this, last)
    return _level_at(moment, this, thresholds, tier_window, window_days, window_months, contribution_ts, contributions, has_alternatives,
                     alt_contribution, alt_thresholds, has_keep, reached_log, keep_months)


@njit(cache=True, nogil=True, inline="always")
def _level_at(moment, metric, thresholds, tier_window, window_days, window_months, contribution_ts, contributions, has_alternatives,
              alt_contribution, alt_thresholds, has_keep, reached_log, keep_months):
    """The level the window's `metric` reaches at `moment`, raised by the alternatives and held
    by retention (each only for a program that has it)."""
    level = 0
    for q in range(1, thresholds.shape[0]):
        if metric >= thresholds[q]:
            level = q
    if has_alternatives:
        level = _alternatives_at(moment, level, tier_window, window_days, window_months, contribution_ts, alt_contribution, contributions,
                                 alt_thresholds)
    if has_keep:
        level = _kept_at(moment, level, contribution_ts, reached_log, contributions, keep_months)
    return level


@njit(cache=True, nogil=True)
def _status_at(moment, held, last_point, one_level, review_months, tier_window, window_days, window_months, thresholds, contribution_ts,
               contribution, contributions, has_alternatives, alt_contribution, alt_thresholds, has_keep, reached_log, keep_months):
    """The level held at `moment` from `held`, the level held after the unit at `last_point`: each
    review in between applies a fall (at most one level with `one_level`), then at `moment` a rise
    applies at once and, without reviews, a fall too (docs/semantics.md, "Tier status")."""
    if review_months > 0:
        r = _next_review(last_point, review_months)
        while r <= moment:
            q = _qualified_at(r, tier_window, window_days, window_months, thresholds, contribution_ts, contribution, contributions,
                              has_alternatives, alt_contribution, alt_thresholds, has_keep, reached_log, keep_months)
            if q > held:
                held = q
            elif q < held:
                held = max(q, held - 1) if one_level else q
            r = _next_review(r, review_months)
    q = _qualified_at(moment, tier_window, window_days, window_months, thresholds, contribution_ts, contribution, contributions,
                      has_alternatives, alt_contribution, alt_thresholds, has_keep, reached_log, keep_months)
    if q > held:
        return q
    if q < held and review_months == 0:
        return max(q, held - 1) if one_level else q
    return held


@njit(cache=True, nogil=True)
def _kept_at(moment, tier, contribution_ts, reached_log, contributions, keep_months):
    """The higher of `tier` and the levels `keep N months` holds at `moment`: a contribution at or
    before it, right after which the member qualified for the level, less than N months before (a scan:
    only at a report's moments and at expiries, only for programs with retention)."""
    for c in range(contributions):
        t = contribution_ts[c]
        if t > moment:
            break
        day = t // NS_PER_DAY
        for q in range(tier + 1, reached_log[c] + 1):
            if keep_months[q] > 0 and moment < add_months(day, keep_months[q]) * NS_PER_DAY + (t - day * NS_PER_DAY):
                tier = q
    return tier


@njit(cache=True, nogil=True)
def _expire_at_tiers(out, posted, who, now, inactive, inactive_moment, lot_day, lot_points, lot_moment, first_lot, lot_count, has_tiers,
                     tier_window, window_days, window_months, thresholds, contribution_ts, contribution, window_head, contributions, window_sum,
                     year, year_sum, last_year_sum, has_alternatives, alt_contribution, alt_thresholds, has_keep, reached_log, keep_months,
                     has_status, held, last_point, one_level, review_months):
    """`_expire_due` for member `who`, each expiry posting (of those that fit) at the tier held at
    its moment. Returns (posted, points expired). Called only when a lot is due."""
    expired_from = posted
    posted, gone = _expire_due(out, posted, holder_bits(who, 0), now, inactive, inactive_moment, lot_day, lot_points, lot_moment, first_lot, lot_count)
    if not has_tiers:
        return posted, gone
    for p in range(expired_from, min(posted, out.shape[1])):
        tier_then = _tier_at(out[OUT_TS, p], tier_window, window_days, window_months, thresholds, contribution_ts, contribution,
                             window_head, contributions, window_sum, year, year_sum, last_year_sum)
        if has_alternatives:
            tier_then = _alternatives_at(out[OUT_TS, p], tier_then, tier_window, window_days, window_months, contribution_ts,
                                         alt_contribution, contributions, alt_thresholds)
        if has_keep:
            tier_then = _kept_at(out[OUT_TS, p], tier_then, contribution_ts, reached_log, contributions, keep_months)
        if has_status:
            tier_then = _status_at(out[OUT_TS, p], held, last_point, one_level, review_months, tier_window, window_days, window_months,
                                   thresholds, contribution_ts, contribution, contributions, has_alternatives, alt_contribution, alt_thresholds,
                                   has_keep, reached_log, keep_months)
        out[OUT_WHO, p] |= np.int64(tier_then + 1) << WHO_TIER_SHIFT
    return posted, gone


@njit(cache=True, nogil=True)
def run_kernel(program, rows, redemptions, report, out, start, stop):
    """Every posting of the members in rows `start` .. `stop` (a member boundary), in ledger order,
    into the columns `out` (`new_postings`), and what `report` asks for. Returns (postings,
    declined, unmatched, resume, need):
    when the columns fill up, `resume` is the first row of the member that did not fit, the counts
    are those before it and `need` is the room that member needs; otherwise resume is -1.

    The structures' fields are read into locals once, here: the loop then indexes plain arrays.
    Each unit goes through named steps (`# --- Step:` below): expiry, tier, discounts, earn,
    benefits, best of, rounding, caps, simulated redemption, refund, redemption, tier metric; each
    member then expiry up to `until` and the report's moments. They are sections of this one
    function (but best of, which only programs with groups run: a call behind their flag costs the
    others nothing), not functions of their own: handed arrays, a step as a function (numba-inlined or not, taking
    the structures or their arrays) counts references to each of them on every unit, and measured
    markedly slower (as the expiry step did: docs/performance.md). The posting and lot helpers
    below are called only when a unit posts or a lot is due."""
    rule_kind, multiplier_target = program.rule_kind, program.multiplier_target
    multiplier_num, multiplier_den = program.multiplier_num, program.multiplier_den
    rate_mul, fixed_num, times, times_period = program.rate_mul, program.fixed_num, program.times, program.times_period
    share_num, share_den, rounding, den = program.share_num, program.share_den, program.rounding, program.den
    cap_points, cap_period = program.cap_points, program.cap_period
    has_tiers, tier_metric, tier_window = program.has_tiers, program.tier_metric, program.tier_window
    window_days, window_months, thresholds = program.window_days, program.window_months, program.thresholds
    expiry_kind = program.expiry_kind
    reward_points, reward_cost, reward_share = program.reward_points, program.reward_cost, program.reward_share
    n_points = program.point_rules
    benefit_cost, benefit_share_num, benefit_share_den = program.benefit_cost, program.benefit_share_num, program.benefit_share_den
    n_benefits = benefit_cost.shape[0]
    has_benefits = n_benefits > 0  # the program's flag: without benefits the unit loop skips their step
    member, ts, kind, amount, unit, units = rows.member, rows.ts, rows.kind, rows.amount, rows.unit, rows.units
    refund_of, reward_of, row_id = rows.refund_of, rows.reward_of, rows.row_id
    rule_bits, level_bits, later_bits, bit_rule = rows.rule_bits, rows.level_bits, rows.later_bits, rows.bit_rule
    refund_slot, unit_total, max_rows = rows.refund_slot, rows.unit_total, rows.max_rows
    days, first_day, until = rows.days, rows.first_day, rows.until
    redeeming, probability, choice = redemptions.active, redemptions.probability, redemptions.choice
    draw, choice_draw = redemptions.draw, redemptions.choice_draw
    moments, tier_counts, row_tier, row_metric = report.moments, report.tier_counts, report.row_tier, report.row_metric
    discount_kind, discount_value, discount_column = program.discount_kind, program.discount_value, program.discount_column
    discount_times, discount_period = program.discount_times, program.discount_period
    discount_share_num, discount_share_den = program.discount_share_num, program.discount_share_den
    discount_cap, discount_cheapest = program.discount_cap, program.discount_cheapest
    discount_buy, discount_get = program.discount_buy, program.discount_get
    discount_bits, discount_bit, discount_amount = rows.discount_bits, rows.discount_bit, rows.discount_amount
    has_groups, group_rules = program.has_groups, program.group_rules
    has_alternatives, alt_thresholds = program.has_alternatives, program.alt_thresholds
    has_keep, keep_months = program.has_keep, program.keep_months
    has_status, one_level, review_months = program.has_status, program.one_level, program.review_months
    counting = program.counting
    pending_days = program.pending_days
    voucher_reward, voucher_months = program.voucher_reward, program.voucher_months
    vouchering = voucher_reward >= 0
    paying = program.has_payment  # the program's flag: without `pay with points` the unit loop skips the step
    points_paid, pay_probability, pay_draw = rows.points_paid, redemptions.pay_probability, redemptions.pay_draw
    recorded_payments = points_paid.shape[0] > 0
    drawn_payments = pay_draw.shape[0] > 0
    has_budgets, rule_close, discount_close = program.has_budgets, rows.rule_close, rows.discount_close

    n_levels = thresholds.shape[0]
    n_rules = rule_kind.shape[0]
    n_discounts = discount_kind.shape[0]
    n_caps = cap_points.shape[0]
    n_rewards = reward_points.shape[0]
    n_moments = moments.shape[0]
    per_row = row_tier.shape[0] > 0
    tier_code_shift = 1 if has_tiers else 0  # a posting's tier code: tier + 1, or 0 without tiers
    words = rule_bits.shape[1]
    inactive = expiry_kind == X_INACTIVE_DAYS or expiry_kind == X_INACTIVE_MONTHS
    period_key = np.zeros(5, dtype=np.int64)  # the unit's period numbers: none, day, week, month, year
    # The member's lots (points earned on one day), oldest first.
    lot_day = np.empty(max_rows + 1, dtype=np.int64)
    lot_points = np.empty(max_rows + 1, dtype=np.int64)
    lot_moment = np.empty(max_rows + 1, dtype=np.int64)  # each lot's expiry moment (fixed-moment expiry)
    # The rolling tier window: each unit's contribution to the metric, at its time.
    contribution_ts = np.empty(max_rows + 1, dtype=np.int64)
    contribution = np.empty(max_rows + 1, dtype=np.int64)
    # Tier alternatives: every metric's contribution (spend, points, visits), and their sums over
    # the window (in calendar years: this year's, and `alt_last` the year before's).
    alt_contribution = np.zeros((3, max_rows + 1 if has_alternatives else 0), dtype=np.int64)
    alt_sum = np.zeros(3, dtype=np.int64)
    alt_last = np.zeros(3, dtype=np.int64)
    counted_sum = np.zeros(3, dtype=np.int64)  # `counting the current purchase`: alt_sum with the purchase
    # `keep N months`: per contribution, the level qualified for right after it; per level, until when it is kept.
    reached_log = np.zeros(max_rows + 1 if has_keep else 0, dtype=np.int64)
    keep_until = np.zeros(n_levels if has_keep else 0, dtype=np.int64)
    # Status rules: the level held after each of the member's units, and the unit's time.
    status_ts = np.zeros(max_rows + 1 if has_status else 0, dtype=np.int64)
    status_held = np.zeros(max_rows + 1 if has_status else 0, dtype=np.int64)
    # Frequency limits and caps: the period each counter is for, and its count.
    times_key = np.empty(n_rules, dtype=np.int64)
    times_used = np.empty(n_rules, dtype=np.int64)
    # `best of`: the frequency counters before the unit, to take back the firings of rules that lost.
    times_key_before = np.empty(n_rules if has_groups else 0, dtype=np.int64)
    # Budgets: which rules and discounts are closed at the unit (`_budget_closings`).
    rule_closed = np.zeros(n_rules if has_budgets else 0, dtype=np.bool_)
    discount_closed = np.zeros(n_discounts if has_budgets else 0, dtype=np.bool_)
    times_used_before = np.empty(n_rules if has_groups else 0, dtype=np.int64)
    cap_key = np.empty(n_caps, dtype=np.int64)
    cap_used = np.empty(n_caps, dtype=np.int64)
    # Per rule over the unit: exact points of the current line, of the unit; points after rounding, the
    # remainder that decides who gets the rounding's extra points, and what the caps let through.
    line_exact = np.zeros(n_rules, dtype=np.int64)
    unit_exact = np.zeros(n_rules, dtype=np.int64)
    rounded_points = np.zeros(n_rules, dtype=np.int64)
    remainder = np.zeros(n_rules, dtype=np.int64)
    issued_points = np.zeros(n_rules, dtype=np.int64)
    benefit_fired = np.zeros(n_benefits, dtype=np.int64)  # per benefit: its firings on the unit
    # Per refunded unit (by its slot): its day, points issued and clawed back per rule, amount refunded.
    slots = max(rows.refunded_units, 1)
    slot_issued = np.zeros((slots, n_rules), dtype=np.int64)
    slot_clawed = np.zeros((slots, n_rules), dtype=np.int64)
    slot_refunded = np.zeros(slots, dtype=np.int64)
    slot_day = np.zeros(slots, dtype=np.int64)
    # Discounts: frequency counters; per line of the unit, the money off and what is paid; per
    # discount, the money off the unit and whether its limit lets it apply; per refunded unit, what
    # was paid, each discount's cost and partner share and how much of them refunds reversed.
    discount_key = np.empty(n_discounts, dtype=np.int64)
    discount_used = np.empty(n_discounts, dtype=np.int64)
    discount_open = np.zeros(n_discounts, dtype=np.bool_)
    discount_given = np.zeros(n_discounts, dtype=np.int64)
    line_off = np.zeros(max_rows + 1 if n_discounts > 0 or paying else 0, dtype=np.int64)
    line_paid = np.zeros(max_rows + 1 if n_discounts > 0 or paying else 0, dtype=np.int64)
    line_rem = np.zeros(max_rows + 1 if n_discounts > 0 or paying else 0, dtype=np.int64)
    line_winner = np.zeros(max_rows + 1 if n_discounts > 0 or paying else 0, dtype=np.int64)  # the line discount that applies
    line_share = np.zeros(max_rows + 1 if paying else 0, dtype=np.int64)  # paying with points: the money each line paid in points
    line_order = np.zeros(max_rows + 1 if n_discounts > 0 else 0, dtype=np.int64)  # buy-get: lines by unit price
    offer = np.zeros((n_discounts, max_rows + 1 if n_discounts > 0 else 0), dtype=np.int64)  # each line discount's money off each line
    slot_paid = np.zeros(slots, dtype=np.int64)
    slot_discount = np.zeros((slots if n_discounts > 0 else 0, n_discounts, 4), dtype=np.int64)  # cost, partner, reversed cost, reversed partner
    posted, declined, unmatched = 0, 0, 0
    i = start
    while i < stop:
        who = member[i]
        posted_before, declined_before, unmatched_before = posted, declined, unmatched
        lot_count = 0
        first_lot = 0  # lots before it are empty
        balance = 0  # the points in the lots
        contributions = 0
        window_head = 0  # contributions before it have left the window
        window_sum = 0
        year = NAT  # calendar-year tiers: the year of the last unit, its metric and the year before's
        year_sum = 0
        last_year_sum = 0
        if has_alternatives:
            alt_sum[:] = 0
            alt_last[:] = 0
        if has_keep:
            keep_until[:] = NAT
        held, last_point, units_seen = 0, ts[i], 0  # status rules: the level held, since the last unit
        for r in range(n_rules):
            times_key[r] = NAT
            times_used[r] = 0
        for q in range(n_caps):
            cap_key[q] = NAT
            cap_used[q] = 0
        for d in range(n_discounts):
            discount_key[d] = NAT
            discount_used[d] = 0
        last_purchase = ts[i] // NS_PER_DAY
        next_voucher = voucher_moment(ts[i], voucher_months) if vouchering else NAT
        joined_moment = 0  # the member counts at the moments from their first row on
        while joined_moment < n_moments and moments[joined_moment] < ts[i]:
            joined_moment += 1
        first = i
        while first < stop and member[first] == who:
            end = first + 1
            while end < stop and unit[end] == unit[first]:
                end += 1
            now = ts[first]
            day = now // NS_PER_DAY
            day_offset = day - first_day
            month_number = days[DAY_MONTH, day_offset]
            period_key[1] = day
            period_key[2] = (day + 3) // 7
            period_key[3] = month_number
            period_key[4] = month_number // 12

            # --- Vouchers: at each period end passed since the last unit (a program without them skips this).
            if vouchering and next_voucher < now:
                posted, balance, first_lot, next_voucher = _issue_vouchers(
                    out, posted, who, now, False, next_voucher, voucher_months, voucher_reward, reward_points, reward_cost, reward_share,
                    pending_days, expiry_kind, inactive, last_purchase, days, first_day, lot_day, lot_points, lot_moment, first_lot, lot_count,
                    balance, has_tiers, tier_code_shift, tier_window, window_days, window_months, thresholds, contribution_ts, contribution,
                    window_head, contributions, window_sum, year, year_sum, last_year_sum, has_alternatives, alt_contribution, alt_thresholds, has_keep, reached_log, keep_months, has_status, held, last_point, one_level, review_months)

            # --- Expiry: the lots due before this unit, each at the tier held at its moment.
            if expiry_kind != X_NEVER:
                inactive_moment = days[DAY_MOMENT, last_purchase - first_day] if inactive else NAT
                first_lot, due = _first_due(lot_points, lot_moment, first_lot, lot_count, inactive, inactive_moment, now)
                if due:
                    posted, gone = _expire_at_tiers(out, posted, who, now, inactive, inactive_moment, lot_day, lot_points, lot_moment, first_lot,
                                                    lot_count, has_tiers, tier_window, window_days, window_months, thresholds, contribution_ts,
                                                    contribution, window_head, contributions, window_sum, year, year_sum, last_year_sum,
                                                    has_alternatives, alt_contribution, alt_thresholds, has_keep, reached_log, keep_months,
                                             has_status, held, last_point, one_level, review_months)
                    balance -= gone

            # --- Tier: the one held before this unit.
            tier = 0
            if has_tiers:
                if tier_window == W_ROLLING:
                    if window_months > 0:
                        cutoff = days[DAY_BACK, day_offset] * NS_PER_DAY + (now - day * NS_PER_DAY)
                    elif window_days > 0:
                        cutoff = now - window_days * NS_PER_DAY
                    else:
                        cutoff = NAT  # `over lifetime`: nothing leaves
                    while window_head < contributions and contribution_ts[window_head] <= cutoff:
                        window_sum -= contribution[window_head]
                        if has_alternatives:
                            for k in range(3):
                                alt_sum[k] -= alt_contribution[k, window_head]
                        window_head += 1
                    metric = window_sum
                else:
                    if month_number // 12 != year:
                        last_year_sum = year_sum if month_number // 12 == year + 1 else 0
                        if has_alternatives:
                            for k in range(3):
                                alt_last[k] = alt_sum[k] if month_number // 12 == year + 1 else 0
                                alt_sum[k] = 0
                        year = month_number // 12
                        year_sum = 0
                    metric = max(year_sum, last_year_sum)  # the tier of the better year: a tier rises with its metric
                for q in range(1, n_levels):  # inline: a call with an array counts references
                    if metric >= thresholds[q]:
                        tier = q
                if has_alternatives:
                    tier = _alternatives_reach(tier, alt_thresholds, alt_sum, alt_last)
                if has_keep:  # a level still kept (`keep N months`) holds
                    for q in range(n_levels - 1, tier, -1):
                        if now < keep_until[q]:
                            tier = q
                            break
                if has_status:  # the reviews since the last unit, then this row; the level it sees is held
                    held = _status_at(now, held, last_point, one_level, review_months, tier_window, window_days, window_months, thresholds,
                                      contribution_ts, contribution, contributions, has_alternatives, alt_contribution, alt_thresholds,
                                      has_keep, reached_log, keep_months)
                    tier = held
                    last_point = now
                if counting and kind[first] == K_PURCHASE:  # the level this purchase reaches with its own amount (before discounts) and visit
                    own = unit_total[unit[first]] if tier_metric == 0 else (0 if tier_metric == 1 else 1)
                    counted = window_sum + own if tier_window == W_ROLLING else max(year_sum + own, last_year_sum)
                    reach = 0
                    for q in range(1, n_levels):
                        if counted >= thresholds[q]:
                            reach = q
                    if has_alternatives:
                        counted_sum[0] = alt_sum[0] + unit_total[unit[first]]
                        counted_sum[1] = alt_sum[1]
                        counted_sum[2] = alt_sum[2] + 1
                        reach = _alternatives_reach(reach, alt_thresholds, counted_sum, alt_last)
                    tier = max(tier, reach)
                if per_row:
                    progress = window_sum if tier_window == W_ROLLING else year_sum
                    for line in range(first, end):
                        row_tier[line] = tier
                        row_metric[line] = progress
            holder = holder_bits(who, tier + tier_code_shift)  # the member and the tier, as every posting of the unit carries them

            if has_budgets:
                _budget_closings(rule_close, rule_closed, now, who, row_id[first])
                _budget_closings(discount_close, discount_closed, now, who, row_id[first])
            row_kind = kind[first]
            unit_spend = 0
            unit_points = 0
            unit_visit = 0
            discounting = (n_discounts > 0 or paying) and row_kind == K_PURCHASE  # (paying: `line_paid` is what points leave to pay)
            if discounting:
                # --- Discounts: per line the largest percentage that holds, then each fixed amount
                # shared across its lines by what they still cost (largest remainder); `line_paid`
                # is then what per-spend earning, tier spend and refunds count.
                for d in range(n_discounts):
                    discount_given[d] = 0
                    discount_open[d] = True
                    if discount_times[d] >= 0:
                        key = period_key[discount_period[d]]
                        if key != discount_key[d]:
                            discount_key[d] = key
                            discount_used[d] = 0
                        discount_open[d] = discount_used[d] < discount_times[d]
                    if has_budgets and discount_closed[d]:
                        discount_open[d] = False
                # Each line discount's offer on each line where it holds.
                for d in range(n_discounts):
                    if discount_kind[d] == D_FIXED:
                        continue
                    for k in range(end - first):
                        offer[d, k] = 0
                    if not discount_open[d]:
                        continue
                    b = discount_bit[d, tier]
                    if discount_kind[d] == D_PERCENT:
                        pick = -1
                        for line in range(first, end):
                            if amount[line] > 0 and (discount_bits[line, b >> 6] >> np.uint64(b & 63)) & np.uint64(1):
                                if discount_cheapest[d] == 0:
                                    offer[d, line - first] = discount_amount[discount_column[d], line]
                                elif pick < 0 or amount[line] < amount[pick]:
                                    pick = line
                        if pick >= 0:
                            offer[d, pick - first] = discount_amount[discount_column[d], pick]
                        continue
                    # Buy N get M free: matching units by unit price, dearest first (ties: line
                    # order), in groups of N + M; the last M of each full group free.
                    m = 0
                    total_units = 0
                    for line in range(first, end):
                        if amount[line] > 0 and units[line] > 0 and (discount_bits[line, b >> 6] >> np.uint64(b & 63)) & np.uint64(1):
                            x = m
                            while x > 0 and amount[line] * units[line_order[x - 1]] > amount[line_order[x - 1]] * units[line]:
                                line_order[x] = line_order[x - 1]
                                x -= 1
                            line_order[x] = line
                            m += 1
                            total_units += units[line]
                    group = discount_buy[d] + discount_get[d]
                    full = total_units // group * group
                    start_at = 0
                    for x in range(m):
                        line = line_order[x]
                        p0 = start_at if start_at < full else full
                        p1 = start_at + units[line] if start_at + units[line] < full else full
                        free = (p1 // group * discount_get[d] + max(p1 % group - discount_buy[d], 0)
                                - p0 // group * discount_get[d] - max(p0 % group - discount_buy[d], 0))
                        offer[d, line - first] = (2 * free * amount[line] + units[line]) // (2 * units[line])
                        start_at += units[line]
                # Per line the largest offer (ties: the first declared).
                for line in range(first, end):
                    best = -1
                    best_amount = 0
                    for d in range(n_discounts):
                        if discount_kind[d] != D_FIXED and discount_open[d]:
                            off = offer[d, line - first]
                            if off > 0 and (best < 0 or off > best_amount):
                                best = d
                                best_amount = off
                    line_off[line - first] = best_amount
                    line_winner[line - first] = best
                    if best >= 0:
                        discount_given[best] += best_amount
                # `up to`: a discount's money off the basket is at most its cap, shared back by largest remainder.
                for d in range(n_discounts):
                    cap = discount_cap[d]
                    if cap < 0 or discount_given[d] <= cap:
                        continue
                    whole = discount_given[d]
                    floors = 0
                    for k in range(end - first):
                        line_rem[k] = 0
                        if line_winner[k] == d:
                            share = cap * line_off[k] // whole
                            line_rem[k] = cap * line_off[k] - share * whole
                            line_off[k] = share
                            floors += share
                    _largest_remainders(line_off, line_rem, end - first, cap - floors)
                    discount_given[d] = cap
                for d in range(n_discounts):
                    if discount_kind[d] != D_FIXED or not discount_open[d]:
                        continue
                    b = discount_bit[d, tier]
                    whole = 0
                    for line in range(first, end):
                        if (discount_bits[line, b >> 6] >> np.uint64(b & 63)) & np.uint64(1):
                            left = amount[line] - line_off[line - first]
                            if left > 0:
                                whole += left
                    give = discount_value[d] if discount_value[d] < whole else whole
                    if give <= 0:
                        continue
                    floors = 0
                    for line in range(first, end):
                        line_rem[line - first] = 0
                        if (discount_bits[line, b >> 6] >> np.uint64(b & 63)) & np.uint64(1):
                            left = amount[line] - line_off[line - first]
                            if left > 0:
                                share = give * left // whole
                                line_off[line - first] += share
                                line_rem[line - first] = give * left - share * whole
                                floors += share
                    _largest_remainders(line_off, line_rem, end - first, give - floors)
                    discount_given[d] = give
                for line in range(first, end):
                    line_paid[line - first] = amount[line] - line_off[line - first]
                for d in range(n_discounts):
                    if discount_given[d] > 0:
                        if discount_times[d] >= 0:
                            discount_used[d] += 1
                        cost = discount_given[d]
                        partner = (2 * cost * discount_share_num[d] + discount_share_den[d]) // (2 * discount_share_den[d])
                        posted = _post(out, posted, holder, now, DISCOUNT, n_rules + d, 0, NAT, -1, cost, partner, row_id[first])
            # --- Paying with points: after the discounts, before earning (the part paid with
            # points earns nothing and is no tier spend); recorded by the history, or drawn.
            pay_money = 0
            if paying and row_kind == K_PURCHASE:
                want = 0
                if recorded_payments:
                    for line in range(first, end):
                        want += points_paid[line]
                elif drawn_payments and pay_draw[first] < pay_probability:
                    want = -1
                if want != 0:
                    posted, spent, pay_money, refused = _pay_with_points(
                        out, posted, holder, now, row_id[first], end - first, want, balance if pending_days == 0 else available_at(lot_day, lot_points, first_lot, lot_count, now // NS_PER_DAY, pending_days), program.pay_points,
                        program.pay_value, program.pay_cap_num, program.pay_cap_den, program.pay_minimum, program.pay_reward,
                        line_paid, line_share, line_rem, lot_day, lot_points, first_lot, lot_count)
                    balance -= spent
                    declined += refused
            if row_kind == K_PURCHASE or row_kind == K_EVENT:
                # --- Earn: exact points per rule over the unit, in units of 1/den.
                for r in range(n_rules):
                    unit_exact[r] = 0
                if has_groups:
                    _keep_counters(times_key, times_used, times_key_before, times_used_before)
                for line in range(first, end):
                    for r in range(n_rules):
                        line_exact[r] = 0
                    # Only the rules whose mask holds on this line at this tier (bits in processing
                    # order: a multiplier's target comes first); basket rules only on the first line.
                    for w in range(words):
                        bits = rule_bits[line, w] & (level_bits[tier, w] if line == first else later_bits[tier, w])
                        b = w * 64
                        while bits != 0:
                            if bits & np.uint64(1):
                                r = bit_rule[b]
                                exact = 0
                                if rule_kind[r] == PER_SPEND:
                                    exact = (line_paid[line - first] if discounting else amount[line]) * rate_mul[r]
                                    if exact < 0:
                                        exact = 0
                                elif rule_kind[r] == FIXED:
                                    exact = fixed_num[r]
                                elif rule_kind[r] == PER_UNIT:
                                    exact = fixed_num[r] * units[line]
                                elif rule_kind[r] == MULTIPLIER:
                                    target = line_exact[multiplier_target[r]]
                                    if target > 0:
                                        exact = target * multiplier_num[r] // multiplier_den[r]
                                else:  # BENEFIT_RULE: a firing; its cost is posted after the points
                                    exact = 1
                                if has_budgets and rule_closed[r]:
                                    exact = 0
                                if exact > 0 and times[r] >= 0:
                                    key = period_key[times_period[r]]
                                    if key != times_key[r]:
                                        times_key[r] = key
                                        times_used[r] = 0
                                    if times_used[r] >= times[r]:
                                        exact = 0
                                    else:
                                        times_used[r] += 1
                                line_exact[r] = exact
                                unit_exact[r] += exact
                            bits = bits >> np.uint64(1)
                            b += 1
                # --- Benefits fired: their firings move out of the points (the program's flag: a
                # program without benefits skips this; the loops below then run over exactly the
                # rules they ran over before benefits, and the benefits' entries are 0 in them).
                if has_benefits:
                    for q in range(n_benefits):
                        benefit_fired[q] = unit_exact[n_points + q]
                        unit_exact[n_points + q] = 0
                # --- Best of: in each group only the largest exact award over the unit is kept
                # (ties: the first listed); the others earn nothing and their firings are taken back.
                if has_groups:
                    _best_of(group_rules, unit_exact, times_key, times_used, times_key_before, times_used_before)
                # --- Rounding: the unit's total rounded once; its whole points shared among the
                # rules by largest remainder.
                total = 0
                floors = 0
                for r in range(n_rules):
                    exact = unit_exact[r]
                    total += exact
                    if exact == 0:  # most rules earn nothing on a line: no division
                        rounded_points[r] = 0
                        remainder[r] = 0
                    else:
                        rounded_points[r] = exact // den
                        remainder[r] = exact - rounded_points[r] * den
                        floors += rounded_points[r]
                rounded = _round(total, den, rounding)
                _largest_remainders(rounded_points, remainder, n_rules, rounded - floors)
                # --- Caps: the least room left under any limit, filled in rule order.
                room = rounded
                for q in range(n_caps):
                    key = period_key[cap_period[q]]
                    if key != cap_key[q]:
                        cap_key[q] = key
                        cap_used[q] = 0
                    left = cap_points[q] - cap_used[q]
                    if left < 0:
                        left = 0
                    if left < room:
                        room = left
                issued = 0
                for r in range(n_rules):
                    granted = rounded_points[r] if rounded_points[r] < room else room
                    issued_points[r] = granted
                    room -= granted
                    issued += granted
                for r in range(n_rules):
                    if issued_points[r] > 0:
                        partner = 0
                        if share_num[r] > 0:
                            partner = (2 * issued_points[r] * share_num[r] + share_den[r]) // (2 * share_den[r])
                        posted = _post(out, posted, holder, now, EARN, r, issued_points[r], day * NS_PER_DAY, -1, 0, partner, row_id[first])
                for r in range(n_rules):
                    if rounded_points[r] - issued_points[r] > 0:
                        posted = _post(out, posted, holder, now, CAPPED, r, rounded_points[r] - issued_points[r], NAT, -1, 0, 0, row_id[first])
                # --- Benefits: each one that fired costs its cost a firing (a program without
                # benefits skips this). A refund does not take a benefit back.
                if has_benefits:
                    for q in range(n_benefits):
                        fired = benefit_fired[q]
                        if fired > 0:
                            spent = fired * benefit_cost[q]
                            partner = 0
                            if benefit_share_num[q] > 0:
                                partner = (2 * spent * benefit_share_num[q] + benefit_share_den[q]) // (2 * benefit_share_den[q])
                            posted = _post(out, posted, holder, now, BENEFIT, n_points + q, 0, NAT, -1, spent, partner, row_id[first])
                if issued > 0:
                    balance += issued
                    if lot_count > 0 and lot_day[lot_count - 1] == day:
                        lot_points[lot_count - 1] += issued
                        if first_lot > lot_count - 1:
                            first_lot = lot_count - 1
                    else:
                        lot_day[lot_count] = day
                        lot_points[lot_count] = issued
                        if expiry_kind != X_NEVER and not inactive:
                            lot_moment[lot_count] = days[DAY_MOMENT, day_offset]
                        lot_count += 1
                    for q in range(n_caps):
                        cap_used[q] += issued
                slot = refund_slot[unit[first]]
                if slot >= 0:  # a later refund claws back from what this unit issued
                    slot_day[slot] = day
                    slot_refunded[slot] = 0
                    for r in range(n_rules):
                        slot_issued[slot, r] = issued_points[r]
                        slot_clawed[slot, r] = 0
                    if n_discounts > 0:
                        paid = 0
                        for line in range(first, end):
                            paid += line_paid[line - first] if discounting else amount[line]
                        slot_paid[slot] = paid + pay_money  # a refund's share is of what the basket cost, points and money together
                        for d in range(n_discounts):
                            cost = discount_given[d] if discounting else 0
                            slot_discount[slot, d, 0] = cost
                            slot_discount[slot, d, 1] = (2 * cost * discount_share_num[d] + discount_share_den[d]) // (2 * discount_share_den[d])
                            slot_discount[slot, d, 2] = 0
                            slot_discount[slot, d, 3] = 0
                unit_points = issued
                if row_kind == K_PURCHASE:
                    last_purchase = day
                    for line in range(first, end):
                        unit_spend += line_paid[line - first] if discounting else amount[line]
                    unit_visit = 1
                    # --- Simulated redemption: one affordable reward, by the policy's choice.
                    if redeeming and draw[first] < probability:
                        spendable = balance if pending_days == 0 else available_at(lot_day, lot_points, first_lot, lot_count, day, pending_days)
                        pick = -1
                        affordable = 0
                        for w in range(n_rewards):
                            if reward_points[w] <= spendable and w != voucher_reward:
                                affordable += 1
                                if pick < 0:
                                    pick = w
                                elif choice == CHEAPEST and reward_points[w] < reward_points[pick]:
                                    pick = w
                                elif choice == DEAREST and reward_points[w] > reward_points[pick]:
                                    pick = w
                        if affordable > 0:
                            if choice == RANDOM:
                                nth = int(np.floor(choice_draw[first] * affordable))
                                if nth > affordable - 1:
                                    nth = affordable - 1
                                for w in range(n_rewards):
                                    if reward_points[w] <= spendable and w != voucher_reward:
                                        if nth == 0:
                                            pick = w
                                            break
                                        nth -= 1
                            posted = _redeem(out, posted, holder, now, row_id[first], pick, reward_points[pick], reward_cost[pick], reward_share[pick],
                                             lot_day, lot_points, first_lot, lot_count)
                            balance -= reward_points[pick]  # the available balance covers it: all of it is spent
            elif row_kind == K_REFUND:
                # --- Refund: claw back the refunded share of what the unit issued, rule by rule.
                unit_spend = amount[first]
                refunded = refund_of[first]
                slot = refund_slot[refunded] if refunded >= 0 else -1
                if slot < 0:
                    unmatched += 1
                else:
                    slot_refunded[slot] += -amount[first]
                    whole = slot_paid[slot] if n_discounts > 0 else unit_total[refunded]  # what was paid for it
                    part = slot_refunded[slot] if slot_refunded[slot] < whole else whole
                    if whole <= 0:
                        part = 1
                        whole = 1
                    for d in range(n_discounts):  # the refunded share of each discount, reversed
                        if slot_discount[slot, d, 0] == 0:
                            continue
                        due_cost = _round(slot_discount[slot, d, 0] * part, whole, NEAREST) - slot_discount[slot, d, 2]
                        due_partner = _round(slot_discount[slot, d, 1] * part, whole, NEAREST) - slot_discount[slot, d, 3]
                        if due_cost <= 0 and due_partner <= 0:
                            continue
                        slot_discount[slot, d, 2] += due_cost
                        slot_discount[slot, d, 3] += due_partner
                        posted = _post(out, posted, holder, now, DISCOUNT, n_rules + d, 0, NAT, -1, -due_cost, -due_partner, row_id[first])
                    for r in range(n_rules):
                        owed = _round(slot_issued[slot, r] * part, whole, rounding) - slot_clawed[slot, r]
                        if owed <= 0:
                            continue
                        slot_clawed[slot, r] += owed
                        posted, taken = _clawback(out, posted, holder, now, r, owed, slot_day[slot], row_id[first], lot_day, lot_points, first_lot, lot_count)
                        unit_points -= taken
                        balance -= taken
            elif row_kind == K_REDEEM:
                # --- Redemption asked for in the data: declined when the balance does not cover it.
                w = reward_of[first]
                spendable = balance if pending_days == 0 else available_at(lot_day, lot_points, first_lot, lot_count, day, pending_days)
                if w < 0 or spendable < reward_points[w]:
                    declined += 1
                else:
                    posted = _redeem(out, posted, holder, now, row_id[first], w, reward_points[w], reward_cost[w], reward_share[w],
                                     lot_day, lot_points, first_lot, lot_count)
                    balance -= reward_points[w]
            # --- Tier metric: this unit counts toward it at its timestamp (and into the member's
            # log of contributions, which the rolling window and the report's moments read).
            if has_tiers and row_kind != K_REDEEM:
                value = unit_spend if tier_metric == 0 else (unit_points if tier_metric == 1 else unit_visit)
                contribution_ts[contributions] = now
                contribution[contributions] = value
                contributions += 1
                if tier_window == W_ROLLING:
                    window_sum += value
                else:
                    year_sum += value
                if has_alternatives:  # every metric, for the alternatives (in calendar years alt_sum is this year's)
                    alt_contribution[0, contributions - 1] = unit_spend
                    alt_contribution[1, contributions - 1] = unit_points
                    alt_contribution[2, contributions - 1] = unit_visit
                    for k in range(3):
                        alt_sum[k] += alt_contribution[k, contributions - 1]
                if has_keep or has_status:  # the level qualified for right after this unit
                    reached = 0
                    after = window_sum if tier_window == W_ROLLING else max(year_sum, last_year_sum)
                    for q in range(1, n_levels):
                        if after >= thresholds[q]:
                            reached = q
                    if has_alternatives:
                        reached = _alternatives_reach(reached, alt_thresholds, alt_sum, alt_last)
                    if has_keep:  # restarts its retention (and every one below)
                        reached_log[contributions - 1] = reached
                        for q in range(1, reached + 1):
                            if keep_months[q] > 0:
                                keep_until[q] = add_months(day, keep_months[q]) * NS_PER_DAY + (now - day * NS_PER_DAY)
                    if has_status:  # a rise takes effect at once, at the row that caused it
                        held = max(held, reached)
            if has_status:
                status_ts[units_seen] = now
                status_held[units_seen] = held
                units_seen += 1
            first = end
        # --- Vouchers at the period ends up to `until`, then expiry: the lots due by `until`.
        if vouchering and next_voucher <= until:
            posted, balance, first_lot, next_voucher = _issue_vouchers(
                out, posted, who, until, True, next_voucher, voucher_months, voucher_reward, reward_points, reward_cost, reward_share,
                pending_days, expiry_kind, inactive, last_purchase, days, first_day, lot_day, lot_points, lot_moment, first_lot, lot_count,
                balance, has_tiers, tier_code_shift, tier_window, window_days, window_months, thresholds, contribution_ts, contribution,
                window_head, contributions, window_sum, year, year_sum, last_year_sum, has_alternatives, alt_contribution, alt_thresholds, has_keep, reached_log, keep_months, has_status, held, last_point, one_level, review_months)
        if expiry_kind != X_NEVER:
            inactive_moment = days[DAY_MOMENT, last_purchase - first_day] if inactive else NAT
            first_lot, due = _first_due(lot_points, lot_moment, first_lot, lot_count, inactive, inactive_moment, until)
            if due:
                posted, _ = _expire_at_tiers(out, posted, who, until, inactive, inactive_moment, lot_day, lot_points, lot_moment, first_lot,
                                             lot_count, has_tiers, tier_window, window_days, window_months, thresholds, contribution_ts,
                                             contribution, window_head, contributions, window_sum, year, year_sum, last_year_sum,
                                             has_alternatives, alt_contribution, alt_thresholds, has_keep, reached_log, keep_months,
                                             has_status, held, last_point, one_level, review_months)
        if posted > out.shape[1]:
            return posted_before, declined_before, unmatched_before, i, posted
        # --- Moments: the member's tier at each of the report's moments from their first row on,
        # counted once the member fits. From the log of contributions, with pointers that only move
        # forward as the moments rise: `upto` past the contributions at or before the moment,
        # `left` past those that have left a rolling window (or, in calendar years, came before
        # last year), `this_year` past those before this year; `*_sum`: the log's sums before them.
        upto, upto_sum, left, left_sum, this_year, this_year_sum = 0, 0, 0, 0, 0, 0
        seen = 0
        for j in range(joined_moment, n_moments):
            at = moments[j]
            while upto < contributions and contribution_ts[upto] <= at:
                upto_sum += contribution[upto]
                upto += 1
            at_day = at // NS_PER_DAY
            if tier_window == W_ROLLING:
                cutoff = _window_cutoff(at, at_day, window_days, window_months)  # (NAT `over lifetime`: nothing leaves)
                while left < upto and contribution_ts[left] <= cutoff:
                    left_sum += contribution[left]
                    left += 1
                metric = upto_sum - left_sum
            else:
                at_year, _, _ = civil_from_days(at_day)
                last_year_start = days_from_civil(at_year - 1, 1, 1) * NS_PER_DAY
                this_year_start = days_from_civil(at_year, 1, 1) * NS_PER_DAY
                while left < upto and contribution_ts[left] < last_year_start:
                    left_sum += contribution[left]
                    left += 1
                if this_year < left:
                    this_year, this_year_sum = left, left_sum
                while this_year < upto and contribution_ts[this_year] < this_year_start:
                    this_year_sum += contribution[this_year]
                    this_year += 1
                metric = max(upto_sum - this_year_sum, this_year_sum - left_sum)  # the tier of the better year
            level = _level_at(at, metric, thresholds, tier_window, window_days, window_months, contribution_ts, contributions, has_alternatives,
                              alt_contribution, alt_thresholds, has_keep, reached_log, keep_months)
            if has_status:  # from the level held after the member's last unit at or before the moment
                while seen < units_seen and status_ts[seen] <= at:
                    seen += 1
                level = _status_at(at, status_held[seen - 1], status_ts[seen - 1], one_level, review_months, tier_window, window_days,
                                   window_months, thresholds, contribution_ts, contribution, contributions, has_alternatives, alt_contribution,
                                   alt_thresholds, has_keep, reached_log, keep_months)
            tier_counts[j, level] += 1
        i = first
    return posted, declined, unmatched, -1, posted


def compiled_on_disk() -> bool:
    """Whether numba's on-disk cache holds the kernel for this machine; when not, the first run
    compiles it. Looks only at the cache's index file (numba has no public call for this);
    anything unexpected counts as compiled, so a caller at worst says nothing."""
    try:
        return Path(run_kernel._cache._cache_file._index_path).exists()
    except Exception:  # noqa: BLE001 - numba's internals moved
        return True
