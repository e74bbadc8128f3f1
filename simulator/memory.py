"""Memory settings for a simulation: ordinary pages for NumPy and Arrow while it runs.

On Linux, NumPy asks for transparent huge pages (`madvise`) on every array of 4 MB or more, and
Arrow's default memory pool (mimalloc, in the Linux wheels) maps its arenas with huge pages too.
Where the kernel answers such a fault by compacting memory first (`defrag` set to `madvise`, as on
the machine of docs/performance.md), the first write to each large block stalls: a 1M-row
simulation spent about half its first run in page faults with NumPy's advice (2.1 s against
1.0 s without it), and reading its Parquet file into mimalloc's huge pages took 0.24-0.41 s
against 0.19-0.28 s from the system allocator. A simulation allocates and drops many large
blocks, so it runs with ordinary pages: NumPy's advice off (its `NUMPY_MADVISE_HUGEPAGE` switch)
and Arrow allocating from jemalloc's pool (ordinary pages; it keeps the blocks a Parquet read
frees for the next column's decoding, where the system allocator hands them back and faults them
in again: a fresh 1M-row simulation about 5k page faults and 3% faster), or the system pool in a
build without jemalloc. Both are restored when the simulation ends, and each is left alone when
its environment variable (`NUMPY_MADVISE_HUGEPAGE`, `ARROW_DEFAULT_MEMORY_POOL`) is set, so a
user's explicit choice stands.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pyarrow as pa

try:  # the runtime form of NUMPY_MADVISE_HUGEPAGE (NumPy >= 1.19); absent elsewhere
    from numpy._core.multiarray import _set_madvise_hugepage
except ImportError:  # pragma: no cover - older or other NumPy builds
    _set_madvise_hugepage = None


def ordinary_pool() -> pa.MemoryPool:
    """Arrow's pool of ordinary pages: jemalloc's where this pyarrow has it, else the system's."""
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow built without jemalloc
        return pa.system_memory_pool()


@contextmanager
def ordinary_pages() -> Iterator[None]:
    """NumPy without huge-page advice and Arrow on `ordinary_pool` inside the block (each unless
    its environment variable is set)."""
    with ExitStack() as stack:
        if _set_madvise_hugepage is not None and "NUMPY_MADVISE_HUGEPAGE" not in os.environ:
            before = _set_madvise_hugepage(False)
            stack.callback(_set_madvise_hugepage, before)
        if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
            pool = pa.default_memory_pool()
            # Buffers remember the pool they came from: switching back frees each to its own.
            pa.set_memory_pool(ordinary_pool())
            stack.callback(pa.set_memory_pool, pool)
        yield
