"""Memory settings for a simulation: NumPy's huge-page advice off while it runs.

On Linux, NumPy asks for transparent huge pages (`madvise`) on every array of 4 MB or more. Where
the kernel answers such a fault by compacting memory first (`defrag` set to `madvise`, as on the
machine of docs/performance.md), the first write to each large array stalls: a 1M-row simulation
spent about half its first run in page faults (2.1 s against 1.0 s without the advice). A
simulation allocates and drops many large arrays, so it runs with ordinary pages. The setting is
NumPy's own (its `NUMPY_MADVISE_HUGEPAGE` switch); it is restored when the simulation ends, and
left alone when that variable is set, so a user's explicit choice stands.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

try:  # the runtime form of NUMPY_MADVISE_HUGEPAGE (NumPy >= 1.19); absent elsewhere
    from numpy._core.multiarray import _set_madvise_hugepage
except ImportError:  # pragma: no cover - older or other NumPy builds
    _set_madvise_hugepage = None


@contextmanager
def ordinary_pages() -> Iterator[None]:
    """NumPy without huge-page advice inside the block (unless NUMPY_MADVISE_HUGEPAGE is set)."""
    if _set_madvise_hugepage is None or "NUMPY_MADVISE_HUGEPAGE" in os.environ:
        yield
        return
    before = _set_madvise_hugepage(False)
    try:
        yield
    finally:
        _set_madvise_hugepage(before)
