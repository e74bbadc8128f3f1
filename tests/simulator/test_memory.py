"""simulator.memory: huge pages off (NumPy's advice, Arrow's pool) inside a simulation, restored after, a user's setting kept."""

from __future__ import annotations

import pyarrow as pa
import pytest

from simulator import memory


def _advice() -> bool:
    now = memory._set_madvise_hugepage(True)
    memory._set_madvise_hugepage(now)
    return now


no_switch = pytest.mark.skipif(memory._set_madvise_hugepage is None, reason="this NumPy has no runtime huge-page switch")


@no_switch
@pytest.mark.parametrize("before", [True, False])
def test_advice_is_off_inside_and_restored_after(monkeypatch, before):
    monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE", raising=False)
    was = memory._set_madvise_hugepage(before)
    try:
        with memory.ordinary_pages():
            assert _advice() is False
        assert _advice() is before
        with pytest.raises(RuntimeError), memory.ordinary_pages():
            raise RuntimeError
        assert _advice() is before
    finally:
        memory._set_madvise_hugepage(was)


@no_switch
def test_an_explicit_numpy_setting_is_left_alone(monkeypatch):
    monkeypatch.setenv("NUMPY_MADVISE_HUGEPAGE", "1")
    was = memory._set_madvise_hugepage(True)
    try:
        with memory.ordinary_pages():
            assert _advice() is True
    finally:
        memory._set_madvise_hugepage(was)


def test_arrow_allocates_from_the_ordinary_pool_inside_and_its_own_after(monkeypatch):
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    before = pa.default_memory_pool().backend_name
    with memory.ordinary_pages():
        assert pa.default_memory_pool().backend_name == memory.ordinary_pool().backend_name in ("jemalloc", "system")
        kept = pa.array(range(100_000))  # allocated inside, freed after the switch back
    assert pa.default_memory_pool().backend_name == before
    assert kept.sum().as_py() == sum(range(100_000))
    with pytest.raises(RuntimeError), memory.ordinary_pages():
        raise RuntimeError
    assert pa.default_memory_pool().backend_name == before


def test_an_explicit_arrow_pool_is_left_alone(monkeypatch):
    monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
    before = pa.default_memory_pool().backend_name
    with memory.ordinary_pages():
        assert pa.default_memory_pool().backend_name == before
