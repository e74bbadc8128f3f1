"""Allocator tuning for a simulation: an explicit opt-in, never a side effect of importing or
calling the library with its defaults.

A simulation allocates and drops many large blocks. Where the kernel answers a huge-page fault by
compacting memory first (transparent huge pages with `defrag` set to `madvise`), the first write
to each such block stalls; docs/performance.md records what that costs and what the tuning buys.
The tuning has two parts:

- Arrow allocates from jemalloc's pool (ordinary pages; it keeps the blocks a Parquet read frees
  for the next column's decoding), or the system's in a build without jemalloc, instead of its
  default (mimalloc in the Linux wheels, whose arenas use huge pages). This can be switched while
  the process runs: `tuned` switches it for one simulation and switches back.
- The C allocator's free memory is handed back to the system once the loaded rows are freed,
  before the paths (`give_back_free`, glibc's `malloc_trim`). A simulation's paths run on threads
  of their own, each allocating from its own arena: what the loading thread freed would stay
  counted in the process's memory (its peak) without being used again.
- NumPy's huge-page advice (`madvise`) on arrays of 4 MB or more is off. NumPy reads its public
  switch, the `NUMPY_MADVISE_HUGEPAGE` environment variable, only when it is imported, so this
  part is for a process that has not loaded NumPy yet: the `loyalty` command sets it at start
  (`before_numpy`); a notebook sets it itself before importing NumPy, if it wants it.

Apart from that tuning, and always (it changes no result and holds no memory): the objects alive
when a simulation starts are kept out of the cyclic garbage collector's passes while it runs
(`existing_objects_frozen`). They are mostly the imported libraries' (some 200,000 with pandas,
Arrow and numba loaded); a simulation makes enough short-lived containers to set off a full pass
now and then, and a full pass over all of them costs about a fifth of a one-path simulation of a
million rows, for nothing: none of them is garbage made by the simulation.

Opting in: `simulate(..., tune_memory=True)`, or the environment variable `LOYALTY_TUNE_MEMORY=1`
(`=0` turns the command's tuning off too). A user's own `ARROW_DEFAULT_MEMORY_POOL` or
`NUMPY_MADVISE_HUGEPAGE` always stands.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

ENV = "LOYALTY_TUNE_MEMORY"
# How many simulations of this process are inside `existing_objects_frozen` (threads may overlap).
_frozen = {"depth": 0, "ours": False}
_frozen_lock = threading.Lock()


def wanted(tune_memory: bool | None) -> bool:
    """Whether to tune: as asked, or (None) as `LOYALTY_TUNE_MEMORY` says (off unless "1")."""
    return os.environ.get(ENV, "0") == "1" if tune_memory is None else bool(tune_memory)


def ordinary_pool():
    """Arrow's pool of ordinary pages: jemalloc's where this pyarrow has it, else the system's."""
    import pyarrow as pa

    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # a pyarrow built without jemalloc
        return pa.system_memory_pool()


@contextmanager
def tuned(enabled: bool) -> Iterator[None]:
    """Arrow on `ordinary_pool` inside the block when `enabled` (and the user has not chosen a pool
    with `ARROW_DEFAULT_MEMORY_POOL`); the pool it had afterwards, however the block ends."""
    if not enabled or "ARROW_DEFAULT_MEMORY_POOL" in os.environ:
        yield
        return
    import pyarrow as pa

    pool = pa.default_memory_pool()
    # Buffers remember the pool they came from: switching back frees each to its own.
    pa.set_memory_pool(ordinary_pool())
    try:
        yield
    finally:
        pa.set_memory_pool(pool)


def before_numpy() -> None:
    """For the `loyalty` command, before anything imports NumPy: NumPy's huge-page advice off
    (its `NUMPY_MADVISE_HUGEPAGE`), unless the user set that or `LOYALTY_TUNE_MEMORY=0`. Does
    nothing in a process that has NumPy already (where the variable would no longer be read)."""
    if "numpy" in sys.modules or os.environ.get(ENV) == "0":
        return
    os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")


def give_back_free() -> bool:
    """Hand the C allocator's free memory back to the system (glibc's `malloc_trim`); whether the
    C library offers that. `simulator.api` calls it, when tuning, once the loaded rows are freed."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


@functools.cache
def _malloc_trim():
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the process's own C library
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, musl, Windows): nothing to call
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


@contextmanager
def existing_objects_frozen() -> Iterator[None]:
    """The objects alive on entry left out of the garbage collector's passes inside the block
    (`gc.freeze`), and handed back to it on leaving (`gc.unfreeze`), however the block ends.
    Cycles made inside the block are collected as usual. Overlapping blocks (simulations on
    several threads) freeze on the first entry and unfreeze on the last exit; a process that
    froze objects itself keeps its own freezing, untouched."""
    with _frozen_lock:
        if _frozen["depth"] == 0:
            _frozen["ours"] = gc.get_freeze_count() == 0
            if _frozen["ours"]:
                gc.freeze()
        _frozen["depth"] += 1
    try:
        yield
    finally:
        with _frozen_lock:
            _frozen["depth"] -= 1
            if _frozen["depth"] == 0 and _frozen["ours"]:
                gc.unfreeze()
                _frozen["ours"] = False
