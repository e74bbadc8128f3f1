"""The kernel's interface: a few named structures, built in one place, that the kernel and the
builders agree on field by field."""

from __future__ import annotations

import ast
import inspect
import textwrap

import numpy as np
import pandas as pd

import rulelang
from rulelang.engine import compile as engine
from rulelang.engine import kernel as Kn
from rulelang.engine.data import RedemptionPolicy, prepare

# The kernel's parameters that are structures, and the structure each one is; the kernel writes
# into none of them but the report (and `out`, its postings).
STRUCTURES = {"program": Kn.Program, "rows": Kn.Rows, "redemptions": Kn.Redemptions, "report": Kn.Report}
READ_ONLY = ("program", "rows", "redemptions")


def _kernel_source() -> ast.Module:
    """The kernel and every step of it that is handed one of its structures."""
    steps = [f for f in vars(Kn).values() if hasattr(f, "py_func") and STRUCTURES.keys() & set(inspect.signature(f.py_func).parameters)]
    assert Kn.run_kernel in steps
    return ast.Module([ast.parse(textwrap.dedent(inspect.getsource(f.py_func))).body[0] for f in steps], [])


def test_the_kernel_takes_at_most_eight_parameters():
    assert len(inspect.signature(Kn.run_kernel.py_func).parameters) <= 8


def test_the_kernel_takes_each_structure_by_its_name():
    names = list(inspect.signature(Kn.run_kernel.py_func).parameters)
    assert [n for n in names if n in STRUCTURES] == list(STRUCTURES)


def test_the_kernel_reads_every_field_of_its_structures_and_no_other():
    read = {name: set() for name in STRUCTURES}
    for node in ast.walk(_kernel_source()):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in STRUCTURES:
            read[node.value.id].add(node.attr)
    for name, structure in STRUCTURES.items():
        fields = set(structure._fields)
        assert read[name] - fields == set(), f"the kernel reads fields {name} does not have"
        assert fields - read[name] == set(), f"{structure.__name__} has fields the kernel never reads"


def test_the_kernel_never_writes_into_its_structures():
    # They are shared by the threads that run the kernel side by side: only `out` is written.
    for node in ast.walk(_kernel_source()):
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                while isinstance(target, (ast.Subscript, ast.Attribute)):
                    target = target.value
                assert not (isinstance(target, ast.Name) and target.id in READ_ONLY), ast.unparse(node)


HEAD = 'program "t"\ncurrency CNY\npoint_cost 0.01 CNY\n'
TEXT = """
tiers by spend over 12 months {
  Base from 0
  Gold from 100
}
earn a: 1 point per 1 CNY
earn b: 2x a when tier >= Gold
limit 500 points per month
expire after 6 months
reward r: 20 points cost 1 CNY
"""


def _batch():
    rows = pd.DataFrame(
        {
            "customer_id": ["m", "m", "m", "n"],
            "timestamp": pd.to_datetime(["2028-01-01 10:00", "2028-01-01 10:00", "2028-02-01 10:00", "2028-01-03 09:00"]),
            "amount": [60.0, 50.0, -10.0, 30.0],
            "event": ["purchase", "purchase", "refund", "purchase"],
            "transaction_id": ["t1", "t1", "t1", "t2"],
            "reward": ["", "", "", ""],
            "draw": [0.1, 0.9, 0.5, 0.2],
        }
    )
    program = rulelang.loads(HEAD + TEXT)
    return engine.compile_model(program.model), prepare(rows, program.model, until="2028-12-31")


def test_the_builders_describe_the_program_and_the_batch():
    cp, batch = _batch()
    program = engine.program_arrays(cp)
    assert isinstance(program, Kn.Program)
    assert program.has_tiers and program.window_months == 12 and program.window_days == 0
    assert program.thresholds.tolist() == [0, 100 * 100]  # spend thresholds in minor units
    assert program.expiry_kind == Kn.X_AFTER_MONTHS
    assert program.cap_points.tolist() == [500] and program.reward_points.tolist() == [20]
    assert program.rule_kind.tolist() == [Kn.PER_SPEND, Kn.MULTIPLIER] and program.multiplier_target.tolist() == [-1, 0]
    rows = engine.row_arrays(cp, batch, engine.C.Env(cp.model, batch))
    assert isinstance(rows, Kn.Rows)
    assert len(rows.member) == len(rows.ts) == len(rows.rule_bits) == 4
    assert rows.refunded_units == 1 and rows.max_rows == 3
    # One row of the day table per day from the first row's day to the last's.
    assert rows.days.shape[1] == (pd.Timestamp("2028-02-01") - pd.Timestamp("2028-01-01")).days + 1
    none = engine.redemption_arrays(batch.frame, None)
    assert not none.active and len(none.draw) == 4
    some = engine.redemption_arrays(batch.frame, RedemptionPolicy(0.5, "dearest", draw="draw", choice_draw="draw"))
    assert some.active and some.choice == Kn.DEAREST and some.probability == 0.5
    assert np.array_equal(some.draw, batch.frame["draw"].to_numpy())


def test_the_kernel_counts_declined_and_unmatched_per_call_and_resumes_at_a_member():
    cp, batch = _batch()
    args = (engine.program_arrays(cp), engine.row_arrays(cp, batch, engine.C.Env(cp.model, batch)), engine.redemption_arrays(batch.frame, None))
    report = engine.report_arrays(cp, args[1], None, False)
    whole = Kn.run_kernel(*args, report, Kn.new_postings(64), 0, 4)
    assert whole[3] == -1 and whole[0] == whole[4] > 0
    # Room for fewer postings than member m makes: the kernel stops before m, needing more room.
    small = Kn.new_postings(16)[:, :1]
    posted, declined, unmatched, resume, need = Kn.run_kernel(*args, report, small, 0, 4)
    assert (posted, declined, unmatched, resume) == (0, 0, 0, 0) and need > 1


def test_available_at_sums_the_lots_old_enough_by_brute_force():
    """`available_at`, the one function the kernel spends by: the points of the lots earned at
    least `pending_days` days before, from the first non-empty lot on (lots in the order earned)."""
    rng = np.random.default_rng(5)
    for _ in range(300):
        count = int(rng.integers(0, 8))
        days = np.sort(rng.choice(np.arange(20_000, 20_060), size=count, replace=False)).astype(np.int64)
        points = rng.integers(0, 50, size=count).astype(np.int64)
        first = int(rng.integers(0, count + 1))
        points[:first] = 0  # lots before first_lot are empty
        day, window = int(rng.integers(20_000, 20_080)), int(rng.integers(1, 30))
        want = sum(int(p) for d, p in zip(days, points, strict=True) if d + window <= day)
        assert Kn.available_at(days, points, first, count, day, window) == want
