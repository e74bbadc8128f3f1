"""simulator.memory: allocator tuning only when asked for (simulate(tune_memory=True), the
LOYALTY_TUNE_MEMORY variable, the `loyalty` command), switched back after, a user's setting kept;
importing the simulator or simulating with the defaults changes nothing process-wide."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from simulator import memory
from simulator.api import simulate
from tests.simulator.simkit import ENGINE, program, sample, scenario

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, **env: str) -> dict:
    """Run `code` in a fresh interpreter (its environment without the variables this module is
    about, plus `env`); its last line of output, as JSON."""
    clean = {k: v for k, v in os.environ.items() if k not in ("LOYALTY_TUNE_MEMORY", "NUMPY_MADVISE_HUGEPAGE", "ARROW_DEFAULT_MEMORY_POOL")}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env={**clean, **env}, timeout=600)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_importing_and_simulating_with_the_defaults_change_nothing_process_wide():
    code = """
import json, os
import numpy as np, pyarrow as pa
before = (pa.default_memory_pool().backend_name, os.environ.get("NUMPY_MADVISE_HUGEPAGE"), np.geterr())
import simulator
from tests.simulator.simkit import program, sample, scenario
after_import = (pa.default_memory_pool().backend_name, os.environ.get("NUMPY_MADVISE_HUGEPAGE"), np.geterr())
tx, cu = sample()
during = []
simulator.simulate(program(), tx, cu, scenario(runs=1), workers=1, progress=lambda n: during.append(pa.default_memory_pool().backend_name))
after = (pa.default_memory_pool().backend_name, os.environ.get("NUMPY_MADVISE_HUGEPAGE"), np.geterr())
print(json.dumps({"before": before, "after_import": after_import, "during": during, "after": after}))
"""
    seen = _python(code)
    assert seen["before"] == seen["after_import"] == seen["after"]
    assert seen["during"] == [seen["before"][0]]


@pytest.fixture(scope="module")
def data():
    return sample()


def _pools_while_simulating(data, **options) -> tuple[list[str], str]:
    tx, cu = data
    during: list[str] = []
    simulate(program(), tx, cu, scenario(runs=1), workers=1, engine=ENGINE, progress=lambda n: during.append(pa.default_memory_pool().backend_name), **options)
    return during, pa.default_memory_pool().backend_name


def test_the_opt_in_switches_arrows_pool_for_the_simulation_and_back(data, monkeypatch):
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    monkeypatch.delenv(memory.ENV, raising=False)
    before = pa.default_memory_pool().backend_name
    tuned = memory.ordinary_pool().backend_name
    assert _pools_while_simulating(data, tune_memory=True) == ([tuned], before)
    monkeypatch.setenv(memory.ENV, "1")
    assert _pools_while_simulating(data) == ([tuned], before)
    assert _pools_while_simulating(data, tune_memory=False) == ([before], before)  # the argument wins over the variable


def test_the_pool_is_switched_back_when_the_block_fails(monkeypatch):
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    before = pa.default_memory_pool().backend_name
    with memory.tuned(True):
        assert pa.default_memory_pool().backend_name == memory.ordinary_pool().backend_name in ("jemalloc", "system")
        kept = pa.array(range(100_000))  # allocated inside, freed after the switch back
    assert pa.default_memory_pool().backend_name == before
    assert kept.sum().as_py() == sum(range(100_000))
    with pytest.raises(RuntimeError, match="inside"), memory.tuned(True):
        raise RuntimeError("inside")
    assert pa.default_memory_pool().backend_name == before


def test_an_explicit_arrow_pool_is_left_alone(monkeypatch):
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")
    before = pa.default_memory_pool().backend_name
    with memory.tuned(True):
        assert pa.default_memory_pool().backend_name == before


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, "0"), ({"LOYALTY_TUNE_MEMORY": "0"}, None), ({"NUMPY_MADVISE_HUGEPAGE": "1"}, "1")],
)
def test_the_command_turns_numpys_huge_page_advice_off_before_numpy_loads(env, expected):
    code = "import json, os, sys; import simulator.cli; print(json.dumps([os.environ.get('NUMPY_MADVISE_HUGEPAGE'), 'numpy' in sys.modules]))"
    assert _python(code, **env) == [expected, True]


def test_a_process_that_has_numpy_already_is_left_alone(monkeypatch):
    monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE", raising=False)
    monkeypatch.delenv(memory.ENV, raising=False)
    memory.before_numpy()  # NumPy is loaded here: the variable would not be read
    assert "NUMPY_MADVISE_HUGEPAGE" not in os.environ


def test_the_freed_memory_is_handed_back_once_per_simulation_only_when_tuning(data, monkeypatch):
    # After the loaded rows are freed (the base batch built), the opt-in hands the allocator's
    # free memory back once; with the defaults the allocator is left alone. Results alike.
    monkeypatch.delenv(memory.ENV, raising=False)
    calls: list[int] = []
    real = memory.give_back_free
    monkeypatch.setattr(memory, "give_back_free", lambda: calls.append(1) or real())
    tx, cu = data
    tuned = simulate(program(), tx, cu, scenario(runs=1), workers=2, engine=ENGINE, tune_memory=True)
    assert calls == [1]
    plain = simulate(program(), tx, cu, scenario(runs=1), workers=2, engine=ENGINE)
    assert calls == [1]
    assert tuned.summary_json() == plain.summary_json()


def test_handing_back_free_memory_calls_the_c_librarys_trim_where_it_has_one():
    import ctypes

    try:
        has_trim = hasattr(ctypes.CDLL(None), "malloc_trim")
    except (OSError, TypeError):
        has_trim = False
    assert memory.give_back_free() is has_trim


def test_the_objects_alive_before_a_simulation_are_frozen_during_it_and_handed_back_after(data):
    import gc

    tx, cu = data
    frozen_during: list[int] = []
    alive_before = len(gc.get_objects())
    simulate(program(), tx, cu, scenario(runs=1), workers=1, engine=ENGINE, progress=lambda n: frozen_during.append(gc.get_freeze_count()))
    # What was alive on entry (at least this test's own module and data) is frozen, then released.
    assert frozen_during and frozen_during[0] >= 0.9 * alive_before
    assert gc.get_freeze_count() == 0


def test_overlapping_blocks_unfreeze_on_the_last_exit_and_a_users_own_freezing_is_kept():
    import gc

    with memory.existing_objects_frozen():
        outer = gc.get_freeze_count()
        with memory.existing_objects_frozen():
            assert gc.get_freeze_count() == outer  # not frozen twice
        assert gc.get_freeze_count() == outer  # the inner exit leaves the outer block's freezing
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), memory.existing_objects_frozen():
        raise RuntimeError("the block fails")
    assert gc.get_freeze_count() == 0
    gc.freeze()  # the process's own freezing
    try:
        mine = gc.get_freeze_count()
        with memory.existing_objects_frozen():
            pass
        assert gc.get_freeze_count() == mine
    finally:
        gc.unfreeze()
