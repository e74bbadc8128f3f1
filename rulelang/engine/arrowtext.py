"""Text columns of ids kept as Arrow text, compared straight from Arrow's buffers.

A `transaction_id` column has nearly one distinct value per basket: read from Parquet, building
a dictionary of it (hashing every id on one thread) took longer than reading every other column.
The engine needs no such dictionary: the lines of a basket are neighbours, and a refund names a
basket of its own member. So the ids stay Arrow text, and two numba passes over the bytes give
what the data contract needs: whether each row repeats the row before it, and per member a code
for each distinct id (the row where the member first used it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


def is_arrow_text(values) -> bool:
    """True for a pandas column of text held by Arrow (pandas' own `str`/`string` dtypes)."""
    dtype = getattr(values, "dtype", None)
    return isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"


def ascending(values) -> bool:
    """True when Arrow text `values` (none missing) strictly ascend, compared in Arrow: UTF-8
    byte order is the code point order Python sorts str by."""
    if not is_arrow_text(values) or values.hasnans:
        return False
    a = pa.array(values.array)
    return len(a) < 2 or bool(pc.all(pc.less(a[:-1], a[1:])).as_py())


def buffers(values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(offsets, bytes, valid) of Arrow text: row i is bytes[offsets[i]:offsets[i + 1]]; missing
    rows are not valid (and read as empty)."""
    a = pa.array(values.array if hasattr(values, "array") else values)
    a = a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a
    n = len(a)
    if n == 0:
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.uint8), np.ones(0, dtype=bool)
    bufs = a.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int32 if pa.types.is_string(a.type) else np.int64)[a.offset : a.offset + n + 1]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, dtype=np.uint8)
    valid = a.is_valid().to_numpy(zero_copy_only=False) if a.null_count else np.ones(n, dtype=bool)
    return offsets, data, valid


@njit(cache=True, nogil=True)
def fnv1a(data, a, b):
    """The 64-bit FNV-1a hash of the bytes data[a:b] (uint64 multiplication wraps, as intended)."""
    h = _FNV_OFFSET
    for k in range(a, b):
        h = (h ^ np.uint64(data[k])) * _FNV_PRIME
    return h


def one_chunk(values: pd.Series) -> pd.Series:
    """Arrow text `values` held in one chunk (a Parquet read gives several): `buffers` then reads
    the column's own bytes instead of joining its chunks on every call."""
    a = pa.array(values.array)
    if not isinstance(a, pa.ChunkedArray) or a.num_chunks == 1:
        return values
    joined = pd.array(pa.chunked_array([a.combine_chunks()]), dtype=values.dtype)
    return pd.Series(joined, index=values.index, name=values.name, copy=False)


@njit(cache=True, nogil=True)
def _same(data, a0, a1, b0, b1) -> bool:
    if a1 - a0 != b1 - b0:
        return False
    for k in range(a1 - a0):
        if data[a0 + k] != data[b0 + k]:
            return False
    return True


@njit(cache=True, nogil=True)
def _edges_clean(offsets, data) -> bool:
    for i in range(offsets.shape[0] - 1):
        a, b = offsets[i], offsets[i + 1]
        if a < b:
            first, last = data[a], data[b - 1]
            if first <= 0x20 or first >= 0x80 or last <= 0x20 or last >= 0x80:
                return False
    return True


def no_edge_space(values) -> bool:
    """True when no text (Arrow, none missing) can start or end with whitespace, judged by its
    first and last byte: every whitespace character is ASCII <= 0x20 or multi-byte (>= 0x80)."""
    if not is_arrow_text(values):
        return False
    offsets, data, valid = buffers(values)
    return bool(valid.all()) and _edges_clean(offsets, data)


def blank(values) -> np.ndarray:
    """Per row: no id (missing or empty)."""
    offsets, _, valid = buffers(values)
    return ~valid | (offsets[1:] == offsets[:-1])


@njit(cache=True, nogil=True)
def _member_codes(member, offsets, data, valid):
    n = member.shape[0]
    codes = np.full(n, -1, dtype=np.int64)
    longest, run = 0, 0
    for i in range(n):
        run = run + 1 if i > 0 and member[i] == member[i - 1] else 1
        longest = max(longest, run)
    size = 16
    while size < 2 * longest:
        size *= 2
    mask = size - 1
    # One table for every member: a slot counts only when stamped with the member's run number,
    # so nothing is cleared between members.
    first = np.empty(size, dtype=np.int64)
    stamp = np.full(size, -1, dtype=np.int64)
    group = -1
    prev = -1
    for i in range(n):
        if i == 0 or member[i] != member[i - 1]:
            group += 1
            prev = -1
        a, b = offsets[i], offsets[i + 1]
        if not valid[i] or a == b:
            continue  # no id: -1
        if prev >= 0 and _same(data, a, b, offsets[prev], offsets[prev + 1]):
            codes[i] = codes[prev]  # a basket's next line
            prev = i
            continue
        prev = i
        slot = np.int64(fnv1a(data, a, b) & np.uint64(mask))
        while True:
            if stamp[slot] != group:
                stamp[slot] = group
                first[slot] = i
                codes[i] = i
                break
            j = first[slot]
            if _same(data, a, b, offsets[j], offsets[j + 1]):
                codes[i] = j
                break
            slot = (slot + 1) & mask
    return codes


def member_codes(member: np.ndarray, values) -> np.ndarray:
    """Per row, with rows grouped by `member`: the position of the member's first row with the same
    id (so equal ids of one member share a code), or -1 where the row has no id."""
    offsets, data, valid = buffers(values)
    return _member_codes(np.ascontiguousarray(member), offsets, data, valid)
