"""simulator.memory: huge-page advice off inside a simulation, restored after, a user's setting kept."""

from __future__ import annotations

import pytest

from simulator import memory


def _advice() -> bool:
    now = memory._set_madvise_hugepage(True)
    memory._set_madvise_hugepage(now)
    return now


pytestmark = pytest.mark.skipif(memory._set_madvise_hugepage is None, reason="this NumPy has no runtime huge-page switch")


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


def test_an_explicit_numpy_setting_is_left_alone(monkeypatch):
    monkeypatch.setenv("NUMPY_MADVISE_HUGEPAGE", "1")
    was = memory._set_madvise_hugepage(True)
    try:
        with memory.ordinary_pages():
            assert _advice() is True
    finally:
        memory._set_madvise_hugepage(was)
