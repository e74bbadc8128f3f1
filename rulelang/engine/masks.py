"""A rule's masks: the rows where it applies and its condition holds, at each tier level.

Conditions are evaluated column-at-a-time by `rulelang.engine.columns`. A batch whose rows are copies of
another's (`Batch.origin`: a simulated path's rows from the replayed history) evaluates only what
its copies may change: the `and`-parts of a condition that read nothing but what a copy shares
with its source row are evaluated once on the source batch and gathered.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from rulelang import ast
from rulelang import builtins as B
from rulelang.engine.columns import CompileError, Env, condition_mask
from rulelang.engine.data import EVENT as K_EVENT
from rulelang.engine.data import PURCHASE as K_PURCHASE
from rulelang.engine.data import reads_column
from rulelang.errors import LoyaltyError
from rulelang.model import names_in

_EPOCH = dt.date(1970, 1, 1)


def reads_tier(rule) -> bool:
    """Whether the rule's condition depends on the member's tier."""
    return "tier" in rule.names


def applies(rule, env: Env) -> np.ndarray:
    """Rows where the rule's event and campaign window match (its condition aside); shared by rules
    with the same event and window, so callers must not write into it."""

    def make():
        kind = env.kind()
        if rule.event == B.PURCHASE:
            mask = kind == K_PURCHASE
        else:
            mask = (kind == K_EVENT) & env.event_is(rule.event)
        if rule.during is not None:
            lo, hi = ((d - _EPOCH).days for d in rule.during)
            day = env.day()
            mask = mask & (day >= lo) & (day <= hi)
        return mask

    return env.memo(("applies", rule.event, rule.during), make)


# What a name's value at a row depends on, for a batch whose rows are copies (`Batch.origin`):
# SAME where the copy equals its source row, TIME where only its timestamp may differ (moved
# rows), ROW for anything else (amount, basket, event, transaction id, enrolment): evaluated on
# the batch itself.
SAME, TIME, ROW = 0, 1, 2
_VARIABLE_DEPENDS = {"tier": SAME, "point_cost": SAME, "date": TIME, "weekday": TIME}
_CUSTOMER_ROW = frozenset({"enrolled", "days_enrolled"})


def _depends(name: str, model) -> int:
    if name in B.VARIABLES:
        return _VARIABLE_DEPENDS.get(name, ROW)
    obj, dot, attr = name.partition(".")
    if dot:
        return SAME if obj == "customer" and attr not in _CUSTOMER_ROW else ROW
    if name in model.columns or name in B.COLUMNS:
        return ROW if name == "transaction_id" else SAME
    return SAME if name in (model.tiers.names if model.tiers else ()) or name in B.WEEKDAYS else ROW


def _conjunct_depends(part, model) -> int:
    return max((_depends(n, model) for n in _names(part)), default=SAME)


def copied_columns(model) -> frozenset[str]:
    """The transaction columns read on a copied batch's own rows: those named by the conjuncts
    evaluated there (ROW) or again at moved rows (TIME). The rest come from the base's masks, so a
    copy need not carry them."""
    out: set[str] = set()
    for rule in (*model.firing, *model.discounts):  # a benefit's and a discount's condition are read as a rule's
        for part in _conjuncts(rule.condition) if rule.condition is not None else ():
            if _conjunct_depends(part, model) != SAME:
                names = _names(part)
                out |= {n for n in names if reads_column(n, model)}
                # basket.<attribute> other than total and lines sums the quantity column.
                if any(n.startswith("basket.") and n not in ("basket.total", "basket.lines") for n in names):
                    out.add("quantity")
        if rule.kind in ("per_unit", "buy_get"):  # the kernel reads each row's units
            out.add("quantity")
    if getattr(model, "pay_with_points", None) is not None:  # the kernel reads each row's recorded payment, if any
        out.add("points_paid")
    return frozenset(out)


def _conjuncts(node) -> list:
    """The operands of a top-level `and` (through parentheses), or the condition itself."""
    while isinstance(node, ast.Group):
        node = node.expr
    if isinstance(node, ast.BoolOp) and node.op == "and":
        return [c for o in node.operands for c in _conjuncts(o)]
    return [node]


def _span(origin) -> tuple[int, int]:
    return origin.span if origin.span is not None else (0, len(origin.base.frame))


def _base_env(env: Env) -> Env:
    """An Env over the origin's base rows in its span, for this batch's conditions. The masks it
    makes are kept on the base (`_gathered`); the Env itself is not, so the base holds no
    reference to itself and is freed as soon as it is dropped (a slice's base, say), not at the
    next garbage collection."""

    def make():
        origin = env.batch.origin
        b = origin.base
        a, z = _span(origin)
        rows = b if (a, z) == (0, len(b.frame)) else type(b)(b.frame.iloc[a:z], b.customers, b.decimals, b.until, b.members)
        return Env(env.model, rows)

    return env.memo("base_env", make)


def _moved_env(env: Env) -> Env:
    """An Env over just the moved rows of a copied batch (their conditions are row-local)."""

    def make():
        b = env.batch
        at = np.flatnonzero(b.origin.moved)
        sub = type(b)(b.frame.iloc[at].reset_index(drop=True), b.customers, b.decimals, b.until, b.members)
        return at, Env(env.model, sub)

    return env.memo("moved", make)


class _Held:
    """A conjunct's mask over the base's rows, filled a span at a time (each thread its own)."""

    def __init__(self, model, part, n: int):
        # The model and node ride along so their ids cannot be reused while the mask is kept.
        self.model, self.part = model, part
        self.mask = np.zeros(n, dtype=bool)
        self.spans: dict = {}  # span -> its one value where the mask is constant over it, else None

    def has(self, span: tuple[int, int]) -> bool:
        return span in self.spans or (0, len(self.mask)) in self.spans

    def fill(self, span: tuple[int, int], mask: np.ndarray) -> None:
        self.mask[span[0] : span[1]] = mask
        # A constant mask (`tier >= Gold` at one level, say) is then made, not gathered, per path.
        self.spans[span] = bool(mask[0]) if len(mask) and (mask.all() or not mask.any()) else None

    def constant(self, span: tuple[int, int]) -> bool | None:
        whole = (0, len(self.mask))
        return self.spans.get(span) if span in self.spans else self.spans.get(whole)


def _gathered(part, env: Env, depends: int) -> np.ndarray:
    """A SAME or TIME conjunct of a copied batch: the base's mask at the source rows, recomputed
    where a TIME conjunct's row has moved."""
    origin = env.batch.origin
    held = origin.base.encodings
    key = ("columns.mask", id(env.model), id(part), env.tier if "tier" in _names(part) else 0)
    # setdefault: threads sharing the base get one entry, and fill their own spans of it.
    entry = held.get(key) or held.setdefault(key, _Held(env.model, part, len(origin.base.frame)))
    span = _span(origin)
    if not entry.has(span):
        benv = _base_env(env)
        benv.tier = env.tier
        entry.fill(span, condition_mask(part, benv))
        benv.tier = 0
    value = entry.constant(span)
    out = entry.mask[origin.src] if value is None else np.full(len(origin.src), value)
    if depends == TIME and origin.moved.any():
        at, menv = _moved_env(env)
        menv.tier = env.tier
        out[at] = condition_mask(part, menv)
    return out


def _names(part) -> frozenset:
    return frozenset(names_in(part))


def condition(rule, env: Env) -> np.ndarray:
    """The rule's condition as a mask; on a copied batch, the conjuncts that read only what the
    copies share with their source rows come from the base, evaluated there once."""
    if env.batch.origin is None:
        return condition_mask(rule.condition, env)
    out = None
    for part in _conjuncts(rule.condition):
        depends = _conjunct_depends(part, env.model)
        m = condition_mask(part, env) if depends == ROW else _gathered(part, env, depends)
        out = m if out is None else out & m
    return out


def rule_masks(rule, env: Env, levels: int) -> np.ndarray:
    """(levels, rows) mask of where the rule applies and its condition holds, per tier level."""
    base = applies(rule, env)
    if rule.condition is None:
        return base[None, :]
    where = f"{env.model.path}:{rule.span.line}:{rule.span.col}: rule `{rule.name}`"
    try:
        if reads_tier(rule):
            out = np.empty((levels, env.n), dtype=bool)
            for level in range(levels):
                env.tier = level
                out[level] = base & condition(rule, env)
            env.tier = 0
            return out
        return (base & condition(rule, env))[None, :]
    except CompileError as exc:
        raise CompileError(f"{where}: {exc}") from None
    except LoyaltyError as exc:
        raise LoyaltyError(f"{where}: {exc}") from None
