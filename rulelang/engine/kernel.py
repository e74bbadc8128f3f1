"""The per-member state machine of the compiled engine (numba): one pass over the units.

Inputs are plain arrays prepared by `rulelang.engine.compile`; the output is one int64 row per posting
(columns OUT_*), which `compile.run` turns into the ledger (`unpack`, `ledger.frame`). State per member:
tier window (two-pointer sums over a contribution log, or calendar-year sums), frequency counters
and cap totals keyed by precomputed period numbers, FIFO lots, and per-basket issued/clawed points
for refunds. Every rule follows docs/semantics.md and mirrors `rulelang.interpret` step by step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numba import njit

from rulelang.engine.calendar import NAT, NS_PER_DAY, add_months, civil_from_days, days_from_civil

# Posting columns (rows of `new_postings`). OUT_WHO packs the member, the kind, and the rule or
# the reward (a posting names one or neither: a reward only when it is a redemption) into one
# int64 (`who`); `unpack` splits it into the narrow code columns the ledger keeps. Seven columns
# of 8 bytes, not ten: run 0's ledger, which a simulation keeps, touches 30% less fresh memory.
OUT_TS, OUT_POINTS, OUT_EARNED, OUT_COST, OUT_SHARE, OUT_ROW, OUT_WHO = range(7)
WHO_MEMBER_SHIFT, WHO_CODE_SHIFT = 24, 8
# Ledger kinds (ledger.KINDS order) and batch row kinds (data.PURCHASE ...).
EARN, CAPPED, CLAWBACK, SHORTFALL, REDEEM, EXPIRE = range(6)
K_PURCHASE, K_REFUND, K_REDEEM, K_EVENT = 0, 1, 2, 3
# Rule kinds, rounding modes, expiry kinds, tier windows, policy choices.
PER_SPEND, FIXED, MULTIPLIER = 0, 1, 2
DOWN, UP, NEAREST = 0, 1, 2
X_NEVER, X_AFTER_DAYS, X_AFTER_MONTHS, X_INACTIVE_DAYS, X_INACTIVE_MONTHS, X_END_OF_YEAR, X_END_OF_NEXT_YEAR = range(7)
W_ROLLING, W_CALENDAR = 0, 1
CHEAPEST, DEAREST, RANDOM = 0, 1, 2


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
def _post(out, cnt, member, ts, kind, rule, points, earned, reward, cost, share, row):
    """Write posting `cnt` if it fits (the caller grows the columns and reruns the member if not)."""
    if cnt < out.shape[1]:
        code = reward if kind == REDEEM else rule
        out[OUT_TS, cnt] = ts
        out[OUT_POINTS, cnt] = points
        out[OUT_EARNED, cnt] = earned
        out[OUT_COST, cnt] = cost
        out[OUT_SHARE, cnt] = share
        out[OUT_ROW, cnt] = row
        out[OUT_WHO, cnt] = (np.int64(member) << WHO_MEMBER_SHIFT) | ((np.int64(code) & 0xFFFF) << WHO_CODE_SHIFT) | kind
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


@njit(cache=True, nogil=True)
def unpack(who, member, kind, rule, reward):
    """Split the packed `who` column into the ledger's code columns, in whatever integer types
    the caller gives them (the ones pandas keeps Categorical codes in): member and kind codes,
    and the rule and reward codes shifted by one (0 for none), as `ledger.frame` takes them."""
    for i in range(who.shape[0]):
        w = who[i]
        k = w & 0xFF
        code = (w >> WHO_CODE_SHIFT) & 0xFFFF
        code = code - 0x10000 if code >= 0x8000 else code
        member[i] = w >> WHO_MEMBER_SHIFT
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
def _level(thresholds, metric):
    level = 0
    for q in range(thresholds.shape[0]):
        if metric >= thresholds[q]:
            level = q
    return level


@njit(cache=True, nogil=True)
def _redeem(out, cnt, mem, t, row, reward, points, cost, share, lot_day, lot_pts, xh, nl):
    """Spend `points` from the lots, oldest first; one posting per lot touched."""
    left = points
    first = True
    for q in range(xh, nl):
        if left == 0:
            break
        n = min(lot_pts[q], left)
        if n > 0:
            lot_pts[q] -= n
            left -= n
            cnt = _post(out, cnt, mem, t, REDEEM, -1, n, lot_day[q] * NS_PER_DAY, reward,
                        cost if first else 0, share if first else 0, row)
            first = False
    return cnt


@njit(cache=True, nogil=True)
def _clawback(out, cnt, mem, t, rule, points, day, row, lot_day, lot_pts, xh, nl):
    """Take back `points` of `rule` from the lots: first the lot earned on `day` (the refunded
    basket's), then the others oldest first; what no lot holds any more is a shortfall.
    Returns (cnt, points taken from lots)."""
    left = points
    for q in range(nl - 1, xh - 1, -1):
        if lot_day[q] < day:
            break
        if lot_day[q] == day:
            cnt, left = _take(out, cnt, mem, t, rule, q, left, row, lot_day, lot_pts)
            break
    for q in range(xh, nl):
        if left == 0:
            break
        if lot_day[q] != day:
            cnt, left = _take(out, cnt, mem, t, rule, q, left, row, lot_day, lot_pts)
    if left > 0:
        cnt = _post(out, cnt, mem, t, SHORTFALL, rule, left, NAT, -1, 0, 0, row)
    return cnt, points - left


@njit(cache=True, nogil=True)
def _take(out, cnt, mem, t, rule, q, left, row, lot_day, lot_pts):
    """Claw back up to `left` points from lot q: (cnt, points still to take)."""
    n = min(lot_pts[q], left)
    if n > 0:
        lot_pts[q] -= n
        cnt = _post(out, cnt, mem, t, CLAWBACK, rule, n, lot_day[q] * NS_PER_DAY, -1, 0, 0, row)
    return cnt, left - n


@njit(cache=True, nogil=True, inline="always")
def _first_due(lot_pts, lot_mom, xh, nl, inactive, inactive_moment, now):
    """(the first lot with points, whether a lot is due by `now`): `_expire_due` is called only
    then, as a call would count references to every array it is handed. Inlined, so this one
    costs none."""
    while xh < nl and lot_pts[xh] == 0:
        xh += 1
    return xh, xh < nl and (inactive_moment <= now if inactive else lot_mom[xh] <= now)


@njit(cache=True, nogil=True)
def _expire_due(out, cnt, mem, now, inactive, inactive_moment, lot_day, lot_pts, lot_mom, xh, nl):
    """Post the expiry of every lot (from `xh` on) due by `now`: for inactivity expiry, the lots
    earned before the day of `inactive_moment` once it has come; otherwise each lot at its own
    moment (lots expire in the order earned). Returns (cnt, points expired). The kernel calls it
    only when a lot is due: a call per unit would count references to every array it is handed."""
    gone = 0
    if inactive:
        if inactive_moment <= now:
            mday = inactive_moment // NS_PER_DAY
            for q in range(xh, nl):
                if lot_pts[q] > 0 and lot_day[q] < mday:
                    cnt = _post(out, cnt, mem, inactive_moment, EXPIRE, -1, lot_pts[q], lot_day[q] * NS_PER_DAY, -1, 0, 0, -1)
                    gone += lot_pts[q]
                    lot_pts[q] = 0
    else:
        for q in range(xh, nl):
            if lot_pts[q] > 0:
                if lot_mom[q] > now:
                    break
                cnt = _post(out, cnt, mem, lot_mom[q], EXPIRE, -1, lot_pts[q], lot_day[q] * NS_PER_DAY, -1, 0, 0, -1)
                gone += lot_pts[q]
                lot_pts[q] = 0
    return cnt, gone


@njit(cache=True, nogil=True)
def run_kernel(
    member, ts, kind, amount, unit, refund_of, reward_of, draw, choice_draw, row_id,
    rkind, rtarget, fnum, fden, rate_mul, fixed_num, times, per, ok, level_bits, later_bits, bit_rule, ps_num, ps_den,
    rmode, den, lim_pts, lim_per,
    has_tiers, metric, window, wdays, wmonths, thresholds,
    xkind, xn,
    slot, unit_total, n_slots,
    rw_pts, rw_cost, rw_share,
    policy, probability, choice,
    until, max_rows, days, first_day,
    out, start, stop, cnt, declined, unmatched,
):
    """Every posting of the members in rows `start` .. `stop` (a member boundary), in ledger order, into the columns `out`
    (`new_postings`) after `cnt` postings. Returns (count, declined, unmatched, resume, need): when
    the columns fill up, `resume` is the first row of the member that did not fit, the counts are
    as before it and `need` is the room that member needs; otherwise resume is -1. `days` is the
    `day_table` of the days from `first_day` on, covering every row's day."""
    n_levels = thresholds.shape[0]
    k = rkind.shape[0]
    c = lim_pts.shape[0]
    nrw = rw_pts.shape[0]
    pkey = np.zeros(5, dtype=np.int64)  # the unit's period numbers: none, day, week, month, year
    words = ok.shape[1]
    inactive = xkind == X_INACTIVE_DAYS or xkind == X_INACTIVE_MONTHS
    lot_day = np.empty(max_rows + 1, dtype=np.int64)
    lot_pts = np.empty(max_rows + 1, dtype=np.int64)
    lot_mom = np.empty(max_rows + 1, dtype=np.int64)  # each lot's expiry moment (fixed-moment expiry)
    ctime = np.empty(max_rows + 1, dtype=np.int64)
    cval = np.empty(max_rows + 1, dtype=np.int64)
    fkey = np.empty(k, dtype=np.int64)
    fcnt = np.empty(k, dtype=np.int64)
    lkey = np.empty(c, dtype=np.int64)
    lused = np.empty(c, dtype=np.int64)
    lp = np.zeros(k, dtype=np.int64)
    exact = np.zeros(k, dtype=np.int64)
    share = np.zeros(k, dtype=np.int64)
    frac = np.zeros(k, dtype=np.int64)
    got = np.zeros(k, dtype=np.int64)
    b_issued = np.zeros((max(n_slots, 1), k), dtype=np.int64)
    b_clawed = np.zeros((max(n_slots, 1), k), dtype=np.int64)
    b_refunded = np.zeros(max(n_slots, 1), dtype=np.int64)
    b_day = np.zeros(max(n_slots, 1), dtype=np.int64)
    i = start
    while i < stop:
        mem = member[i]
        cnt0, declined0, unmatched0 = cnt, declined, unmatched
        nl = 0
        nc = 0
        chead = 0
        wsum = 0
        cy_year = NAT
        cy_sum = 0
        prev_sum = 0
        for r in range(k):
            fkey[r] = NAT
            fcnt[r] = 0
        for q in range(c):
            lkey[q] = NAT
            lused[q] = 0
        last_purchase = ts[i] // NS_PER_DAY
        xh = 0  # lots before xh are empty
        bal = 0  # the points in the lots
        j = i
        while j < stop and member[j] == mem:
            e = j + 1
            while e < stop and unit[e] == unit[j]:
                e += 1
            t = ts[j]
            dj = t // NS_PER_DAY
            od = dj - first_day
            mnum = days[DAY_MONTH, od]
            cy = mnum // 12
            pkey[1] = dj
            pkey[2] = (dj + 3) // 7
            pkey[3] = mnum
            pkey[4] = cy
            # Expiries due before this unit.
            if xkind != X_NEVER:
                inactive_moment = days[DAY_MOMENT, last_purchase - first_day] if inactive else NAT
                xh, due = _first_due(lot_pts, lot_mom, xh, nl, inactive, inactive_moment, t)
                if due:
                    cnt, gone = _expire_due(out, cnt, mem, t, inactive, inactive_moment, lot_day, lot_pts, lot_mom, xh, nl)
                    bal -= gone
            # The tier held before this unit.
            tier = 0
            if has_tiers:
                if window == W_ROLLING:
                    if wmonths > 0:
                        cutoff = days[DAY_BACK, od] * NS_PER_DAY + (t - dj * NS_PER_DAY)
                    else:
                        cutoff = t - wdays * NS_PER_DAY
                    while chead < nc and ctime[chead] <= cutoff:
                        wsum -= cval[chead]
                        chead += 1
                    for q in range(1, n_levels):  # inline: a call with an array costs refcounting
                        if wsum >= thresholds[q]:
                            tier = q
                else:
                    y = cy
                    if y != cy_year:
                        prev_sum = cy_sum if y == cy_year + 1 else 0
                        cy_year = y
                        cy_sum = 0
                    tier = max(_level(thresholds, cy_sum), _level(thresholds, prev_sum))
            K = kind[j]
            v_spend = 0
            v_points = 0
            v_visit = 0
            if K == K_PURCHASE or K == K_EVENT:
                # Exact points per rule over the unit, in units of 1/den.
                for r in range(k):
                    exact[r] = 0
                for ln in range(j, e):
                    for r in range(k):
                        lp[r] = 0
                    # Only the rules whose mask holds on this line at this tier (bits in processing
                    # order: a multiplier's target comes first); basket rules only on the first line.
                    for w in range(words):
                        x = ok[ln, w] & (level_bits[tier, w] if ln == j else later_bits[tier, w])
                        b = w * 64
                        while x != 0:
                            if x & np.uint64(1):
                                r = bit_rule[b]
                                p = 0
                                if rkind[r] == PER_SPEND:
                                    p = amount[ln] * rate_mul[r]
                                    if p < 0:
                                        p = 0
                                elif rkind[r] == FIXED:
                                    p = fixed_num[r]
                                else:
                                    tp = lp[rtarget[r]]
                                    if tp > 0:
                                        p = tp * fnum[r] // fden[r]
                                if p > 0 and times[r] >= 0:
                                    key = pkey[per[r]]
                                    if key != fkey[r]:
                                        fkey[r] = key
                                        fcnt[r] = 0
                                    if fcnt[r] >= times[r]:
                                        p = 0
                                    else:
                                        fcnt[r] += 1
                                lp[r] = p
                                exact[r] += p
                            x = x >> np.uint64(1)
                            b += 1
                total = 0
                floors = 0
                for r in range(k):
                    xr = exact[r]
                    total += xr
                    if xr == 0:  # most rules earn nothing on a line: no division
                        share[r] = 0
                        frac[r] = 0
                    else:
                        share[r] = xr // den
                        frac[r] = xr - share[r] * den
                        floors += share[r]
                rounded = _round(total, den, rmode)
                rest = rounded - floors
                while rest > 0:
                    best = -1
                    for r in range(k):
                        if frac[r] > 0 and (best < 0 or frac[r] > frac[best]):
                            best = r
                    if best < 0:
                        break
                    share[best] += 1
                    frac[best] = 0
                    rest -= 1
                available = rounded
                for q in range(c):
                    key = pkey[lim_per[q]]
                    if key != lkey[q]:
                        lkey[q] = key
                        lused[q] = 0
                    left = lim_pts[q] - lused[q]
                    if left < 0:
                        left = 0
                    if left < available:
                        available = left
                issued = 0
                for r in range(k):
                    g = share[r] if share[r] < available else available
                    got[r] = g
                    available -= g
                    issued += g
                for r in range(k):
                    if got[r] > 0:
                        ps = 0
                        if ps_num[r] > 0:
                            ps = (2 * got[r] * ps_num[r] + ps_den[r]) // (2 * ps_den[r])
                        cnt = _post(out, cnt, mem, t, EARN, r, got[r], dj * NS_PER_DAY, -1, 0, ps, row_id[j])
                for r in range(k):
                    if share[r] - got[r] > 0:
                        cnt = _post(out, cnt, mem, t, CAPPED, r, share[r] - got[r], NAT, -1, 0, 0, row_id[j])
                if issued > 0:
                    bal += issued
                    if nl > 0 and lot_day[nl - 1] == dj:
                        lot_pts[nl - 1] += issued
                        if xh > nl - 1:
                            xh = nl - 1
                    else:
                        lot_day[nl] = dj
                        lot_pts[nl] = issued
                        if xkind != X_NEVER and not inactive:
                            lot_mom[nl] = days[DAY_MOMENT, od]
                        nl += 1
                    for q in range(c):
                        lused[q] += issued
                s = slot[unit[j]]
                if s >= 0:
                    b_day[s] = dj
                    b_refunded[s] = 0
                    for r in range(k):
                        b_issued[s, r] = got[r]
                        b_clawed[s, r] = 0
                v_points = issued
                if K == K_PURCHASE:
                    last_purchase = dj
                    for ln in range(j, e):
                        v_spend += amount[ln]
                    v_visit = 1
                    if policy and draw[j] < probability:
                        pick = -1
                        count = 0
                        for w in range(nrw):
                            if rw_pts[w] <= bal:
                                count += 1
                                if pick < 0:
                                    pick = w
                                elif choice == CHEAPEST and rw_pts[w] < rw_pts[pick]:
                                    pick = w
                                elif choice == DEAREST and rw_pts[w] > rw_pts[pick]:
                                    pick = w
                        if count > 0:
                            if choice == RANDOM:
                                idx = int(np.floor(choice_draw[j] * count))
                                if idx > count - 1:
                                    idx = count - 1
                                for w in range(nrw):
                                    if rw_pts[w] <= bal:
                                        if idx == 0:
                                            pick = w
                                            break
                                        idx -= 1
                            cnt = _redeem(out, cnt, mem, t, row_id[j], pick, rw_pts[pick], rw_cost[pick], rw_share[pick],
                                               lot_day, lot_pts, xh, nl)
                            bal -= rw_pts[pick]  # the balance covers it: all of it is spent
            elif K == K_REFUND:
                v_spend = amount[j]
                u = refund_of[j]
                s = slot[u] if u >= 0 else -1
                if s < 0:
                    unmatched += 1
                else:
                    b_refunded[s] += -amount[j]
                    tot = unit_total[u]
                    num = b_refunded[s] if b_refunded[s] < tot else tot
                    dd = tot
                    if tot <= 0:
                        num = 1
                        dd = 1
                    for r in range(k):
                        due = _round(b_issued[s, r] * num, dd, rmode) - b_clawed[s, r]
                        if due <= 0:
                            continue
                        b_clawed[s, r] += due
                        cnt, taken = _clawback(out, cnt, mem, t, r, due, b_day[s], row_id[j], lot_day, lot_pts, xh, nl)
                        v_points -= taken
                        bal -= taken
            elif K == K_REDEEM:
                w = reward_of[j]
                if w < 0 or bal < rw_pts[w]:
                    declined += 1
                else:
                    cnt = _redeem(out, cnt, mem, t, row_id[j], w, rw_pts[w], rw_cost[w], rw_share[w], lot_day, lot_pts, xh, nl)
                    bal -= rw_pts[w]
            # This unit counts toward the tier metric at its timestamp.
            if has_tiers and K != K_REDEEM:
                v = v_spend if metric == 0 else (v_points if metric == 1 else v_visit)
                if window == W_ROLLING:
                    ctime[nc] = t
                    cval[nc] = v
                    nc += 1
                    wsum += v
                else:
                    cy_sum += v
            j = e
        # Expiries due by `until`.
        if xkind != X_NEVER:
            inactive_moment = days[DAY_MOMENT, last_purchase - first_day] if inactive else NAT
            xh, due = _first_due(lot_pts, lot_mom, xh, nl, inactive, inactive_moment, until)
            if due:
                cnt, _ = _expire_due(out, cnt, mem, until, inactive, inactive_moment, lot_day, lot_pts, lot_mom, xh, nl)
        if cnt > out.shape[1]:
            return cnt0, declined0, unmatched0, i, cnt
        i = j
    return cnt, declined, unmatched, -1, cnt


def compiled_on_disk() -> bool:
    """Whether numba's on-disk cache holds the kernel for this machine; when not, the first run
    compiles it. Looks only at the cache's index file (numba has no public call for this);
    anything unexpected counts as compiled, so a caller at worst says nothing."""
    try:
        return Path(run_kernel._cache._cache_file._index_path).exists()
    except Exception:  # noqa: BLE001 - numba's internals moved
        return True
