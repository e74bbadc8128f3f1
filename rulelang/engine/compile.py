"""The compiled evaluator: conditions and awards as NumPy columns, the stateful rest in `kernel`.

`compile_model(model)` fixes everything that does not depend on data: the program-wide common
denominator DEN of exact points (every rule's exact points on a line are an integer number of
1/DEN), per-rule integer award factors, rule order, limits, tiers, expiry and rewards as arrays.
`CompiledProgram.run(batch, redemption)` evaluates the conditions column-at-a-time
(`rulelang.engine.columns`, per rule by `rulelang.engine.masks`), then runs the per-member kernel and builds the ledger with `ledger.frame`.
It produces the same ledger as `rulelang.interpret`, posting for posting.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pandas as pd

from rulelang.engine import budgets as global_step
from rulelang.engine import columns as C
from rulelang.engine import kernel as Kn
from rulelang.engine import ledger
from rulelang.engine.data import POINTS_PAID, REDEEM, Batch, RedemptionPolicy, check_pay_draws
from rulelang.engine.masks import rule_masks
from rulelang.errors import LoyaltyError
from rulelang.limits import award_steps
from rulelang.model import Model
from rulelang.values import half_up

LIMIT = 2**62  # int64 head-room: exact sums beyond this would wrap, so they are refused
PERIOD_ROW = {None: 0, "day": 1, "week": 2, "month": 3, "year": 4}
KIND_CODE = {"per_spend": Kn.PER_SPEND, "fixed": Kn.FIXED, "per_unit": Kn.PER_UNIT, "multiplier": Kn.MULTIPLIER, "benefit": Kn.BENEFIT_RULE}
ROUND_CODE = {"down": Kn.DOWN, "up": Kn.UP, "nearest": Kn.NEAREST}
CHOICE_CODE = {"cheapest": Kn.CHEAPEST, "dearest": Kn.DEAREST, "random": Kn.RANDOM}
METRIC_CODE = {"spend": 0, "points": 1, "visits": 2}


@dataclass(frozen=True)
class CompiledProgram:
    """A model with its awards as integer arrays over one common denominator `den`."""

    model: Model
    den: int
    kind: np.ndarray
    basket: np.ndarray
    target: np.ndarray
    fnum: np.ndarray
    fden: np.ndarray
    rate_mul: np.ndarray  # per_spend: exact points numerator per minor unit of amount
    fixed_num: np.ndarray
    times: np.ndarray
    per: np.ndarray
    order: np.ndarray
    ps_num: np.ndarray
    ps_den: np.ndarray
    lim_pts: np.ndarray
    lim_per: np.ndarray
    thresholds: np.ndarray
    rw_pts: np.ndarray
    rw_cost: np.ndarray
    rw_share: np.ndarray
    expiry: tuple[int, int]
    # Benefits (the rules after the earn rules): cost a firing in minor units, partner share num / den.
    bn_cost: np.ndarray
    bn_share_num: np.ndarray
    bn_share_den: np.ndarray

    @property
    def levels(self) -> int:
        return len(self.model.tiers.names) if self.model.tiers else 1

    def masks(self, batch: Batch, env: C.Env | None = None) -> tuple[list, np.ndarray]:
        """(blocks, index): blocks[index[r, level]] is the boolean mask of rows where rule r applies
        at that tier level (rules whose condition does not read the tier have one block); the
        benefits after the earn rules."""
        env = env or C.Env(self.model, batch)
        blocks, index = [], np.zeros((len(self.model.firing), self.levels), dtype=np.int64)
        for r, rule in enumerate(self.model.firing):
            m = rule_masks(rule, env, self.levels)
            index[r] = len(blocks) + (np.arange(self.levels) if m.shape[0] > 1 else 0)
            blocks.extend(m)
        return blocks, index

    def earn_columns(self, batch: Batch, tier: int = 0) -> np.ndarray:
        """Stateless exact points (numerators over `den`) per rule and row at one tier level: no
        frequency limits, rounding or caps; basket-scope rules on each basket's first row; for a
        benefit (after the rules), 1 where it fires."""
        env = C.Env(self.model, batch)
        ok, index = self.masks(batch, env)
        amount = env.amount().num
        first = env.is_first()
        out = np.zeros((len(self.model.firing), env.n), dtype=np.int64)
        for r in self.order:
            mask = ok[index[r, tier]].copy()
            if self.basket[r]:
                mask &= first
            if self.kind[r] == Kn.PER_SPEND:
                out[r] = np.where(mask, np.maximum(amount, 0) * self.rate_mul[r], 0)
            elif self.kind[r] == Kn.FIXED:
                out[r] = np.where(mask, self.fixed_num[r], 0)
            elif self.kind[r] == Kn.PER_UNIT:
                out[r] = np.where(mask, env.units() * self.fixed_num[r], 0)
            elif self.kind[r] == Kn.BENEFIT_RULE:
                out[r] = mask
            else:
                tp = out[self.target[r]]
                out[r] = np.where(mask & (tp > 0), tp * self.fnum[r] // self.fden[r], 0)
        return out

    def check_bounds(self, max_amount: int, max_lines: int, max_total: int, max_units: int = 0) -> None:
        """Refuse data whose exact sums could overflow int64 (rather than wrap silently)."""
        bound = np.zeros(len(self.kind), dtype=object)
        for r in self.order:
            if self.kind[r] == Kn.PER_SPEND:
                bound[r] = max_amount * int(self.rate_mul[r])
            elif self.kind[r] == Kn.FIXED:
                bound[r] = int(self.fixed_num[r])
            elif self.kind[r] == Kn.PER_UNIT:
                bound[r] = max_units * int(self.fixed_num[r])
            elif self.kind[r] == Kn.BENEFIT_RULE:
                bound[r] = 0  # no points; its cost a unit is bounded below
            else:
                bound[r] = bound[self.target[r]] * int(self.fnum[r])
        per_unit = int(sum(bound)) * max(max_lines, 1)
        points = per_unit // self.den + 1
        worst = max(per_unit * 2, points * max(max_total, 1) * 2, points * 2 * int(max(self.ps_num, default=0)),
                    # every benefit firing on every line of a unit, and twice that times its share's numerator
                    max(max_lines, 1) * int(self.bn_cost.sum()) * 2 * int(max(self.bn_share_num, default=1)))
        if worst >= LIMIT:
            raise LoyaltyError(
                f"{self.model.path}: amounts this large (up to {max_amount} minor units, {max_lines} lines a basket"
                f"{f', {max_units} units a line' if (self.kind == Kn.PER_UNIT).any() else ''}) could overflow "
                'exact 64-bit point arithmetic in the compiled engine; use engine="reference" or smaller amounts'
            )

    def run(self, batch: Batch, redemption: RedemptionPolicy | None = None, threads: int | None = None) -> pd.DataFrame:
        """The ledger for a validated batch; the members are shared among `threads` threads
        (default: one per core available to the process)."""
        return self.evaluate(batch, redemption, threads).ledger

    def evaluate(
        self, batch: Batch, redemption: RedemptionPolicy | None = None, threads: int | None = None, moments=None, row_tiers: bool = False,
        closed: dict | None = None,
    ) -> ledger.Evaluation:
        """The ledger for a validated batch, with the members per tier at each of `moments` and,
        when `row_tiers`, each row's tier and tier metric (`ledger.Evaluation`).

        `closed`: the budgeted rules' closings (`budgets.settle`) when the batch is a part of the
        members and the caller settled them over all; None: the batch is every member, and a
        program with budgets settles them over it here."""
        threads = threads if threads is not None else available_cores()
        if closed is None and global_step.budgeted(self.model):
            closed, done = global_step.settle(self.model, lambda c: [_run(self, batch, redemption, threads, moments, row_tiers, c)])
            return done[0]
        return _run(self, batch, redemption, threads, moments, row_tiers, closed)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one): the default
    number of threads, and of the simulator's workers."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def compile_model(model: Model) -> CompiledProgram:
    """Everything about the program that does not depend on the data, as arrays."""
    scale = 10**model.decimals
    rules = model.firing  # the earn rules, then the benefits (which earn nothing)
    # The kernel packs a posting's rule or reward code in 16 bits, its tier in 8 (kernel.OUT_WHO).
    tiers = len(model.tiers.names) if model.tiers else 0
    for what, count, most in (("rules", len(rules), 2**15 - 1), ("rewards", len(model.rewards), 2**15 - 1), ("tiers", tiers, Kn.MAX_TIERS)):
        if count > most:
            raise LoyaltyError(f"{model.path}: {count} {what}; the compiled engine numbers at most {most}")
    idx = {r.name: r.index for r in rules}
    # The checker has kept this denominator within limits.MAX_DENOMINATOR (and every number within limits.LIMITS).
    step = award_steps(model.rules, model.decimals)
    den = math.lcm(*(f.denominator for f in step.values()))
    order = [r.index for r in model.rules if r.kind != "multiplier"] + [r.index for r in model.multiplier_order()]
    order += [b.index for b in model.benefits]  # after every rule: nothing multiplies a benefit
    if len(order) != len(rules):
        raise C.CompileError(f"{model.path}: multipliers form a cycle; the compiled engine needs each chain to end at a rule")
    fac = [(r.factor - 1) if r.kind == "multiplier" else Fraction(0) for r in rules]
    pc = model.point_cost
    ps = [pc * r.funded_share * scale if r.kind != "benefit" else Fraction(0) for r in rules]  # a benefit's share is of its cost (bn_share_*)
    rate = [r.rate / scale * den if r.kind == "per_spend" else Fraction(0) for r in rules]
    fixed = [r.points * den if r.kind in ("fixed", "per_unit") else Fraction(0) for r in rules]
    for r, x in zip(rules, rate + fixed, strict=False):
        if x.denominator != 1:
            raise C.CompileError(f"{model.path}:{r.span.line}:{r.span.col}: rule `{r.name}`: its award is not a whole multiple of 1/{den}")
    tiers = model.tiers
    if tiers is not None:
        mult = scale if tiers.metric == "spend" else 1
        thresholds = np.array([math.ceil(t * mult) for t in tiers.thresholds], dtype=np.int64)
    else:
        thresholds = np.zeros(1, dtype=np.int64)
    ex = model.expiry
    months = {"days": 0, "months": 1, "years": 12}
    if ex.kind in ("after", "inactive"):
        in_days = ex.unit == "days"
        code = {
            ("after", True): Kn.X_AFTER_DAYS,
            ("after", False): Kn.X_AFTER_MONTHS,
            ("inactive", True): Kn.X_INACTIVE_DAYS,
            ("inactive", False): Kn.X_INACTIVE_MONTHS,
        }[(ex.kind, in_days)]
        expiry = (code, ex.n if in_days else ex.n * months[ex.unit])
    else:
        expiry = ({"never": Kn.X_NEVER, "end_of_year": Kn.X_END_OF_YEAR, "end_of_next_year": Kn.X_END_OF_NEXT_YEAR}[ex.kind], 0)
    i64 = lambda xs: np.array(list(xs), dtype=np.int64)  # noqa: E731
    return CompiledProgram(
        model=model,
        den=den,
        kind=i64(KIND_CODE[r.kind] for r in rules),
        basket=np.array([r.scope == "basket" for r in rules], dtype=np.bool_),
        target=i64(idx[r.target] if r.kind == "multiplier" else -1 for r in rules),
        fnum=i64(f.numerator for f in fac),
        fden=i64(f.denominator for f in fac),
        rate_mul=i64(int(x) for x in rate),
        fixed_num=i64(int(x) for x in fixed),
        times=i64(r.times if r.times is not None else -1 for r in rules),
        per=i64(PERIOD_ROW[r.per] for r in rules),
        order=i64(order),
        ps_num=i64(x.numerator for x in ps),
        ps_den=i64(x.denominator for x in ps),
        lim_pts=i64(p for p, _ in model.limits),
        lim_per=i64(PERIOD_ROW[per] for _, per in model.limits),
        thresholds=thresholds,
        rw_pts=i64(w.points for w in model.rewards),
        rw_cost=i64(half_up(w.cost * scale) for w in model.rewards),
        rw_share=i64(half_up(w.cost * w.funded_share * scale) for w in model.rewards),
        expiry=expiry,
        bn_cost=i64(half_up(b.cost * scale) for b in model.benefits),
        bn_share_num=i64(b.funded_share.numerator for b in model.benefits),
        bn_share_den=i64(b.funded_share.denominator for b in model.benefits),
    )


def pack_bits(blocks: list, n: int) -> np.ndarray:
    """Boolean masks -> (rows, words) uint64, block b at bit b % 64 of word b // 64, so the kernel
    reads one word per line instead of one byte from each of the blocks."""
    words = max(1, (len(blocks) + 63) // 64)
    stack = np.stack([np.asarray(b, dtype=bool) for b in blocks]) if blocks else np.zeros((0, n), dtype=bool)
    return Kn.pack_rows(stack.view(np.uint8), words)


def _rule_bits(cp: CompiledProgram, blocks: list, index: np.ndarray, n: int):
    """The masks as bits in processing order (a multiplier after its target), so the kernel visits
    only the rules that hold on a line: (bits, level_bits, later_bits, bit_rule), where
    level_bits[tier] selects each rule's block at that tier, later_bits the same without basket
    rules (for a basket's later lines), and bit_rule[b] is the rule of bit b."""
    position: dict[int, int] = {}
    ordered, bit_rule = [], []
    for r in cp.order:
        for b in dict.fromkeys(index[r].tolist()):
            position[b] = len(ordered)
            ordered.append(blocks[b])
            bit_rule.append(int(r))
    words = max(1, (len(ordered) + 63) // 64)
    level_bits = np.zeros((cp.levels, words), dtype=np.uint64)
    later_bits = np.zeros((cp.levels, words), dtype=np.uint64)
    for r in cp.order:
        for level in range(cp.levels):
            b = position[int(index[r, level])]
            level_bits[level, b // 64] |= np.uint64(1) << np.uint64(b % 64)
            if not cp.basket[r]:
                later_bits[level, b // 64] |= np.uint64(1) << np.uint64(b % 64)
    return pack_bits(ordered, n), level_bits, later_bits, np.array(bit_rule, dtype=np.int64)


# Postings are written into a scratch block of up to this many; when a run fits in one block
# (2 postings a row, up to 2M rows) its rows are the ledger's columns, with no copy. Longer runs
# reuse the block and copy each fill on.
SCRATCH = 1 << 22


class _Postings:
    """The posting columns (kernel.OUT_* rows of a 2-D view) and the kernel's counters."""

    def __init__(self, columns: np.ndarray, declined: int = 0, unmatched: int = 0):
        self.columns, self.declined, self.unmatched = columns, declined, unmatched


def _postings_of(args: tuple, report: Kn.Report, start: int, stop: int, scratch: np.ndarray) -> _Postings:
    """Run the kernel (`args`: its program, rows and redemptions) over the members in rows
    start .. stop into `scratch` and `report`; when they do not fit, a block at a time, each fill
    copied on."""
    rows = stop - start
    kept = None
    total, declined, unmatched = 0, 0, 0
    while True:
        cnt, declined_here, unmatched_here, resume, need = Kn.run_kernel(*args, report, scratch, start, stop)
        if resume >= 0 and cnt == 0:  # one member needs more than the whole block
            scratch = Kn.grow(scratch, 0, need)
            continue
        declined += declined_here
        unmatched += unmatched_here
        if kept is None:
            if resume < 0:  # everything fit in one block: its rows are the columns, no copy
                return _Postings(scratch[:, :cnt], declined, unmatched)
            # Room for 2 postings a row; np.empty reserves address space, only written pages cost memory.
            kept = Kn.new_postings(2 * rows + 64)
        if total + cnt > kept.shape[1]:
            kept = Kn.grow(kept, total, total + cnt)
        kept[:, total : total + cnt] = scratch[:, :cnt]
        total += cnt
        if resume < 0:
            break
        start = resume
    return _Postings(kept[:, :total], declined, unmatched)


# Below this many rows a second thread costs more than it saves.
THREAD_ROWS = 100_000


def member_parts(member: np.ndarray, threads: int) -> list[tuple[int, int]]:
    """Row ranges of about equal size that start and end on member boundaries."""
    n = len(member)
    cuts = [0]
    for k in range(1, max(1, threads)):
        at = int(np.searchsorted(member, member[min(n * k // threads, n - 1)], side="left")) if n else 0
        if at > cuts[-1]:
            cuts.append(at)
    return [(a, b) for a, b in zip(cuts, cuts[1:] + [n], strict=True) if b > a] or [(0, n)]


def _postings(args: tuple, report: Kn.Report, member: np.ndarray, threads: int) -> _Postings:
    """Every member's postings in ledger order; members split over `threads` threads (the kernel
    releases the GIL), each writing into its own stretch of one block, closed up afterwards, and
    counting members by tier into its own counts, added up into `report`'s afterwards."""
    n = len(member)
    parts = member_parts(member, threads if n >= THREAD_ROWS else 1)
    room = [min(2 * (b - a) + 64, SCRATCH) for a, b in parts]
    block = Kn.new_postings(sum(room))  # one allocation, cut into a stretch per part
    at = np.r_[0, np.cumsum(room)]
    views = [block[:, at[k] : at[k + 1]] for k in range(len(parts))]
    if len(parts) == 1:
        return _postings_of(args, report, 0, n, views[0])
    reports = [report] + [report._replace(tier_counts=np.zeros_like(report.tier_counts)) for _ in parts[1:]]
    with ThreadPoolExecutor(len(parts)) as pool:
        done = list(pool.map(lambda k: _postings_of(args, reports[k], *parts[k], views[k]), range(len(parts))))
    for other in reports[1:]:
        np.add(report.tier_counts, other.tier_counts, out=report.tier_counts)
    if all(np.shares_memory(d.columns, block) for d in done):
        # Each part's postings follow the previous part's: one move per part, no new columns.
        end = done[0].columns.shape[1]
        for k, d in enumerate(done[1:], start=1):
            c = d.columns.shape[1]
            Kn.close_up(block, end, int(at[k]), c)
            end += c
        columns = block[:, :end]
    else:  # a part outgrew its stretch and has columns of its own
        columns = np.concatenate([d.columns for d in done], axis=1)
    return _Postings(columns, sum(d.declined for d in done), sum(d.unmatched for d in done))


def _window(model: Model) -> tuple[int, int]:
    """The rolling tier window as (days, months); one of them is 0."""
    spec = model.tiers
    if spec is None or spec.window in ("calendar_year", "lifetime"):
        return 0, 0  # `over lifetime` is a rolling window nothing leaves
    if spec.window == "days":
        return spec.n, 0
    return 0, spec.n * (12 if spec.window == "years" else 1)


def _as(frame: pd.DataFrame, col: str, dtype) -> np.ndarray:
    return np.ascontiguousarray(frame[col].to_numpy(), dtype=dtype)


def _days(ts: np.ndarray, expiry: tuple[int, int], wmonths: int) -> tuple[np.ndarray, int]:
    """The kernel's day table over the rows' days, and its first day."""
    first = int(ts.min()) // Kn.NS_PER_DAY if len(ts) else 0
    last = int(ts.max()) // Kn.NS_PER_DAY if len(ts) else 0
    return Kn.day_table(first, last, expiry[0], expiry[1], wmonths), first


def alternative_program(model: Model, scale: int) -> dict:
    """The kernel's tier alternatives: per metric (METRIC_CODE), each level's threshold by it (spend
    in minor units, rounded up as the block's thresholds are), Kn.ALT_NEVER where it has none."""
    spec = model.tiers
    levels = len(spec.names) if spec else 1
    table = np.full((3, levels), Kn.ALT_NEVER, dtype=np.int64)
    for level, alternatives in enumerate(spec.alternatives if spec else ()):
        for metric, threshold in alternatives:
            table[METRIC_CODE[metric], level] = math.ceil(threshold * (scale if metric == "spend" else 1))
    keep = np.array(spec.keep_months if spec and spec.keep_months else [0] * levels, dtype=np.int64)
    return {"has_alternatives": bool(spec and spec.alternatives), "alt_thresholds": table, "has_keep": bool(spec and spec.keep_months),
            "keep_months": keep, "has_status": bool(spec and (spec.one_level or spec.review_months)), "one_level": bool(spec and spec.one_level),
            "review_months": spec.review_months if spec else 0, "counting": bool(spec and spec.counting)}


def program_arrays(cp: CompiledProgram) -> Kn.Program:
    """The kernel's view of the program."""
    model = cp.model
    spec = model.tiers
    wdays, wmonths = _window(model)
    return Kn.Program(
        rule_kind=cp.kind,
        multiplier_target=cp.target,
        multiplier_num=cp.fnum,
        multiplier_den=cp.fden,
        rate_mul=cp.rate_mul,
        fixed_num=cp.fixed_num,
        times=cp.times,
        times_period=cp.per,
        share_num=cp.ps_num,
        share_den=cp.ps_den,
        rounding=ROUND_CODE[model.rounding],
        den=cp.den,
        cap_points=cp.lim_pts,
        cap_period=cp.lim_per,
        has_tiers=spec is not None,
        tier_metric=METRIC_CODE[spec.metric] if spec else 0,
        tier_window=Kn.W_CALENDAR if spec and spec.window == "calendar_year" else Kn.W_ROLLING,
        window_days=wdays,
        window_months=wmonths,
        thresholds=cp.thresholds,
        expiry_kind=cp.expiry[0],
        reward_points=cp.rw_pts,
        reward_cost=cp.rw_cost,
        reward_share=cp.rw_share,
        **discount_program(model),
        **alternative_program(model, 10**model.decimals),
        point_rules=len(model.rules),
        benefit_cost=cp.bn_cost,
        benefit_share_num=cp.bn_share_num,
        benefit_share_den=cp.bn_share_den,
        **group_program(model),
        pending_days=model.pending_days,
        voucher_reward=model.voucher.index if model.voucher else -1,
        voucher_months=model.voucher.issued_months if model.voucher else 1,
        **payment_program(model),
        has_budgets=bool(global_step.budgeted(model)),
    )


def payment_program(model: Model) -> dict:
    """The kernel's view of `pay with points` (`kernel.Program`'s `has_payment` and `pay_*`): a
    step's points and money (minor units), the cap as a fraction, the minimum balance, and the
    ledger's reward code of a payment (after the catalog's rewards)."""
    spec = model.pay_with_points
    if spec is None:
        return dict(has_payment=False)
    return dict(has_payment=True, pay_points=spec.points, pay_value=half_up(spec.value * 10**model.decimals),
                pay_cap_num=spec.cap.numerator, pay_cap_den=spec.cap.denominator, pay_minimum=spec.minimum, pay_reward=len(model.rewards))


def group_program(model: Model) -> dict:
    """The kernel's view of the program's `best of` groups (`kernel.Program`'s `has_groups` and
    `group_rules`): each group's rule indices in the order listed, padded with -1."""
    width = max((len(g) for g in model.groups), default=0)
    rules = np.full((len(model.groups), width), -1, dtype=np.int64)
    for g, group in enumerate(model.groups):
        rules[g, : len(group)] = group
    return dict(has_groups=bool(model.groups), group_rules=rules)


DISCOUNT_KIND = {"percent": Kn.D_PERCENT, "fixed": Kn.D_FIXED, "buy_get": Kn.D_BUY_GET}


def discount_program(model: Model) -> dict:
    """The kernel's view of the program's discounts (`kernel.Program`'s `discount_*` fields)."""
    ds = model.discounts
    i64 = lambda xs: np.array(list(xs), dtype=np.int64)  # noqa: E731
    percents = [d.index for d in ds if d.kind == "percent"]
    return dict(
        discount_kind=i64(DISCOUNT_KIND[d.kind] for d in ds),
        discount_value=i64(half_up(d.amount * 10**model.decimals) for d in ds),
        discount_column=i64(percents.index(d.index) if d.kind == "percent" else -1 for d in ds),
        discount_times=i64(d.times if d.times is not None else -1 for d in ds),
        discount_period=i64(PERIOD_ROW[d.per] for d in ds),
        discount_share_num=i64(d.funded_share.numerator for d in ds),
        discount_share_den=i64(d.funded_share.denominator for d in ds),
        discount_cap=i64(half_up(d.cap * 10**model.decimals) if d.cap is not None else -1 for d in ds),
        discount_cheapest=i64(int(d.cheapest) for d in ds),
        discount_buy=i64(d.buy for d in ds),
        discount_get=i64(d.get for d in ds),
    )


def discount_rows(model: Model, env: C.Env, amount: np.ndarray, levels: int, max_total: int, max_units: int = 0) -> dict:
    """The kernel's view of where each discount holds and what each percentage takes off each
    line (`kernel.Rows`' `discount_*` fields), column-at-a-time: the masks as a rule's, the money
    off as half_up(max(amount, 0) * percent) over the whole column. Refuses amounts whose shares
    of a fixed discount could overflow int64."""
    ds = model.discounts
    n = env.n
    if not ds:
        return dict(discount_bits=np.zeros((0, 1), dtype=np.uint64), discount_bit=np.zeros((0, levels), dtype=np.int64),
                    discount_amount=np.zeros((0, 0), dtype=np.int64))
    if max(max_total * max_total, max_total * max_units) * 2 >= LIMIT:
        raise LoyaltyError(f"{model.path}: baskets this large (up to {max_total} minor units) could overflow the exact 64-bit "
                           'shares of a discount in the compiled engine; use engine="reference" or smaller amounts')
    blocks, bit = [], np.zeros((len(ds), levels), dtype=np.int64)
    for k, d in enumerate(ds):
        m = rule_masks(d, env, levels)
        bit[k] = len(blocks) + (np.arange(levels) if m.shape[0] > 1 else 0)
        blocks.extend(m)
    percents = [d for d in ds if d.kind == "percent"]
    positive = np.maximum(amount, 0)
    off = np.zeros((len(percents), n), dtype=np.int64)
    for k, d in enumerate(percents):
        num, den = d.percent.numerator, d.percent.denominator
        if int(positive.max(initial=0)) * num * 2 + den < LIMIT:
            off[k] = (2 * positive * num + den) // (2 * den)
        else:  # exact in Python integers where int64 could overflow
            off[k] = [(2 * int(a) * num + den) // (2 * den) for a in positive]
    return dict(discount_bits=pack_bits(blocks, n), discount_bit=bit, discount_amount=off)


def row_arrays(cp: CompiledProgram, batch: Batch, env: C.Env, closed: dict | None = None) -> Kn.Rows:
    """The kernel's view of a validated batch: its rows, the rules' conditions on them as bits, what
    the kernel needs of its units (`kernel.unit_facts`) and the calendar of its days. Refuses a
    refund of a unit the batch does not have, and amounts whose exact points could overflow."""
    model = cp.model
    frame = batch.frame
    n = env.n
    ts, unit = env.ts(), env.unit()
    amount = env.amount().num
    kind = _as(frame, "kind", np.int8)
    bits, level_bits, later_bits, bit_rule = _rule_bits(cp, *cp.masks(batch, env), n)
    units = int(unit[-1]) + 1 if n else 0
    refund_of = _as(frame, "refund_of", np.int32)
    member = env.member()
    facts = Kn.unit_facts(member, env.unit_starts(), np.ascontiguousarray(amount, dtype=np.int64), refund_of, units)
    unit_total, slot, refunded, max_rows, max_lines, max_amount, max_total, ok = facts
    if not ok:
        raise LoyaltyError("a refund names a basket that is not in the batch")
    # Per-unit rules read each row's units; a program without them passes an empty array.
    buy_get = any(d.kind == "buy_get" for d in model.discounts)
    units = env.units() if (cp.kind == Kn.PER_UNIT).any() or buy_get else np.zeros(0, dtype=np.int64)
    cp.check_bounds(max_amount, max(max_lines, 1), max_total, int(units.max()) if len(units) else 0)
    discounts = discount_rows(model, env, amount, cp.levels, max_total, int(units.max()) if buy_get and len(units) else 0)
    reward_of = np.full(n, -1, dtype=np.int16)
    redeem = kind == REDEEM
    if redeem.any():
        names = pd.Index([w.name for w in model.rewards], dtype=object)
        reward_of[redeem] = names.get_indexer(frame["reward"].to_numpy(dtype=object)[redeem])
    days, first_day = _days(ts, cp.expiry, _window(model)[1])
    paying = model.pay_with_points is not None
    if paying and max_total * max(max_total, 100) * 2 >= LIMIT:
        raise LoyaltyError(f"{model.path}: baskets this large (up to {max_total} minor units) could overflow the exact 64-bit "
                           'shares of a payment with points in the compiled engine; use engine="reference" or smaller amounts')
    points_paid = _as(frame, POINTS_PAID, np.int64) if paying and POINTS_PAID in frame.columns else np.zeros(0, dtype=np.int64)
    return Kn.Rows(
        member=member,
        ts=ts,
        kind=kind,
        amount=amount,
        units=np.ascontiguousarray(units, dtype=np.int64),
        unit=unit,
        refund_of=refund_of,
        reward_of=reward_of,
        row_id=_as(frame, "row", np.int64),
        rule_bits=bits,
        level_bits=level_bits,
        later_bits=later_bits,
        bit_rule=bit_rule,
        refund_slot=slot,
        unit_total=unit_total,
        refunded_units=refunded,
        max_rows=max_rows,
        days=days,
        first_day=first_day,
        until=batch.until.value,
        **discounts,
        points_paid=points_paid,
        **_closings(model, batch, closed),
    )


def _closings(model: Model, batch: Batch, closed: dict | None) -> dict:
    """The kernel's view of the budgets' closings for this batch (none for a program without budgets)."""
    if not global_step.budgeted(model):
        return {}
    ids = batch.customers["customer_id"]
    if not pd.Index(ids).is_monotonic_increasing:
        raise LoyaltyError("budgets need the members in customer id order")
    rule_close, discount_close = global_step.batch_closings(model, closed or {}, ids, len(model.firing), len(model.discounts))
    return dict(rule_close=rule_close, discount_close=discount_close)


def redemption_arrays(frame: pd.DataFrame, redemption: RedemptionPolicy | None) -> Kn.Redemptions:
    """The kernel's view of the simulated redemption behaviour (none: `active` is false)."""
    if redemption is None:
        none = np.zeros(len(frame), dtype=np.float64)
        return Kn.Redemptions(active=False, probability=0.0, choice=0, draw=none, choice_draw=none)
    if redemption.choice not in CHOICE_CODE:
        raise LoyaltyError(f"unknown redemption choice `{redemption.choice}`; choose one of: {', '.join(CHOICE_CODE)}")
    return Kn.Redemptions(
        active=True,
        probability=float(redemption.probability),
        choice=CHOICE_CODE[redemption.choice],
        draw=_as(frame, redemption.draw, np.float64),
        choice_draw=_as(frame, redemption.choice_draw, np.float64),
        pay_probability=float(redemption.pay_probability),
        pay_draw=_as(frame, redemption.pay_draw, np.float64) if redemption.pay_probability > 0 and redemption.pay_draw in frame.columns
        else np.zeros(0, dtype=np.float64),
    )


def report_arrays(cp: CompiledProgram, rows: Kn.Rows, moments, row_tiers: bool) -> Kn.Report:
    """What the kernel is to report besides the postings: members per tier at `moments` (datetime64
    or int64 ns, rising; None: none), and each row's tier and tier metric when `row_tiers`."""
    at = np.zeros(0, dtype=np.int64) if moments is None else np.ascontiguousarray(np.asarray(moments, dtype="datetime64[ns]").view(np.int64))
    if len(at) > 1 and not bool(np.all(at[1:] >= at[:-1])):
        raise LoyaltyError("the moments to count members by tier at must rise")
    n = len(rows.member) if row_tiers else 0
    return Kn.Report(
        moments=at,
        tier_counts=np.zeros((len(at), cp.levels), dtype=np.int64),
        row_tier=np.zeros(n, dtype=np.int8 if cp.levels < 2**7 else np.int16),
        row_metric=np.zeros(n, dtype=np.int64),
    )


def _run(cp: CompiledProgram, batch: Batch, redemption: RedemptionPolicy | None, threads: int, moments=None, row_tiers: bool = False,
         closed: dict | None = None) -> ledger.Evaluation:
    model = cp.model
    check_pay_draws(model, batch.frame, redemption)
    env = C.Env(model, batch)
    rows = row_arrays(cp, batch, env, closed)
    args = (program_arrays(cp), rows, redemption_arrays(batch.frame, redemption))
    report = report_arrays(cp, rows, moments, row_tiers)
    posted = _postings(args, report, rows.member, threads)
    cols = posted.columns
    # The codes in the types pandas keeps them in (no copy when the Categoricals are made).
    count = cols.shape[1]
    sizes = (len(batch.customers), len(ledger.KINDS), len(model.firing) + len(model.discounts) + 1, len(model.ledger_rewards) + 1, cp.levels + 1)
    codes = [np.empty(count, dtype=ledger.code_dtype(size)) for size in sizes]
    Kn.unpack(cols[Kn.OUT_WHO], *codes)
    member_codes, kind_codes, rule_codes, reward_codes, tier_codes = codes
    result = ledger.frame(
        batch.id_dtype,
        member_codes,
        cols[Kn.OUT_TS].view("datetime64[ns]"),
        kind_codes,
        rule_codes,
        cols[Kn.OUT_POINTS],
        cols[Kn.OUT_EARNED].view("datetime64[ns]"),
        reward_codes,
        cols[Kn.OUT_COST],
        cols[Kn.OUT_SHARE],
        cols[Kn.OUT_ROW],
        tuple(r.name for r in model.firing) + tuple(d.name for d in model.discounts),
        model.ledger_rewards,
        tier_codes,
        model.tiers.names if model.tiers else (),
        shifted=True,
    )
    result.attrs["declined_redemptions"] = int(posted.declined)
    result.attrs["unmatched_refunds"] = int(posted.unmatched)
    if not row_tiers:
        return ledger.Evaluation(result, report.tier_counts)
    return ledger.Evaluation(result, report.tier_counts, *ledger.by_row(rows.row_id, report.row_tier, report.row_metric))


def run(model: Model, batch: Batch, redemption: RedemptionPolicy | None = None) -> pd.DataFrame:
    """The ledger for a validated batch (the `compiled` engine of `rulelang.engine.evaluate`)."""
    return compile_model(model).run(batch, redemption)


def evaluate_batch(model: Model, batch: Batch, redemption: RedemptionPolicy | None = None, moments=None, row_tiers: bool = False) -> ledger.Evaluation:
    """The ledger for a validated batch and what else the engine reports (`ledger.Evaluation`)."""
    return compile_model(model).evaluate(batch, redemption, moments=moments, row_tiers=row_tiers)
