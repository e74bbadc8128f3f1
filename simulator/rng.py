"""Counter-based random draws: a pure hash of (seed, run, customer, counter, stream) -> [0, 1).

A draw depends only on its own coordinates, never on how many draws came before or how the
arrays were chunked, so any slice of a simulation can be recomputed on its own and results are
identical across processes, platforms and NumPy versions (the arithmetic is plain uint64).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from numba import njit

from rulelang.engine import arrowtext, fnv1a

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15  # splitmix64's increment (2**64 / golden ratio)
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_TO_UNIT = 2.0**-53


def _mix_int(z: int) -> int:
    """splitmix64's finaliser on a Python int (for the scalar coordinates)."""
    z &= _MASK
    z = ((z ^ (z >> 30)) * _M1) & _MASK
    z = ((z ^ (z >> 27)) * _M2) & _MASK
    return z ^ (z >> 31)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, element-wise on uint64 (wrapping multiplication is intended)."""
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(_M1)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(_M2)
    return z ^ (z >> np.uint64(31))


def _prefix(seed: int, run: int, stream: int) -> int:
    # Each scalar coordinate goes through the finaliser before the next is added, so that
    # (seed, run, stream) triples that differ in any one place give unrelated prefixes.
    h = _mix_int(int(seed) * _GOLDEN + 1)
    h = _mix_int(h + (int(run) + 1) * _GOLDEN)
    return _mix_int(h + (int(stream) + 1) * _GOLDEN)


def uniform(seed: int, run: int, customer_key: np.ndarray, counter: np.ndarray, stream: int) -> np.ndarray:
    """Uniform float64 draws in [0, 1), one per element of `customer_key` and `counter` (broadcast)."""
    keys, counts = np.broadcast_arrays(_bits(customer_key), _bits(counter))
    out = _draws(np.ascontiguousarray(keys).ravel(), np.ascontiguousarray(counts).ravel(), np.uint64(_prefix(seed, run, stream)))
    return out.reshape(keys.shape)[()]


def _bits(values) -> np.ndarray:
    """As uint64: int64 values by their bits (what the conversion gives, without a copy)."""
    a = np.asarray(values)
    return a.view(np.uint64) if a.dtype == np.int64 else np.asarray(a, dtype=np.uint64)


@njit(cache=True, nogil=True)
def _mix1(z):
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(_M1)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(_M2)
    return z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True, inline="always")
def draw(key, count, prefix):
    """One draw of the stream `prefix` (`stream_prefix`) for a customer key and a counter (uint64):
    what `uniform` gives, for numba passes that draw as they go."""
    # The same arithmetic as `_mix` (uint64 wraps, as intended).
    h = _mix1(key ^ prefix)
    h = _mix1(h + (count + np.uint64(1)) * np.uint64(_GOLDEN))
    # The top 53 bits make an exactly representable double in [0, 1).
    return np.float64(h >> np.uint64(11)) * _TO_UNIT


def stream_prefix(seed: int, run: int, stream: int) -> np.uint64:
    """The draws' coordinates other than the customer and the counter, for `draw`."""
    return np.uint64(_prefix(seed, run, stream))


@njit(cache=True, nogil=True)
def _draws(keys, counts, prefix):
    out = np.empty(keys.shape[0], dtype=np.float64)
    for i in range(keys.shape[0]):
        out[i] = draw(keys[i], counts[i], prefix)
    return out


def customer_keys(ids) -> np.ndarray:
    """A stable uint64 key per customer id: FNV-1a over the id's UTF-8 bytes, then mixed."""
    if arrowtext.is_arrow_text(ids) and not ids.hasnans:
        # Arrow text already (the ids of a Parquet file): hashed from its buffers, no Python strings.
        offsets, raw, _ = arrowtext.buffers(ids)
        return _mix(_fnv(raw, offsets))
    values = np.asarray(ids, dtype=object) if not isinstance(ids, np.ndarray) else ids
    try:
        # Text ids (the usual case) go to Arrow as they are; anything else is written as text first.
        text = pa.array(values, type=pa.large_string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        text = None
    if text is None or text.null_count:
        text = pa.array([str(v) for v in values.tolist()], type=pa.large_string())
    offsets, raw, _ = arrowtext.buffers(text)
    return _mix(_fnv(raw, offsets))


@njit(cache=True, nogil=True)
def _fnv(raw, offsets):
    # FNV-1a, one id at a time over its bytes.
    out = np.empty(offsets.shape[0] - 1, dtype=np.uint64)
    for i in range(out.shape[0]):
        out[i] = fnv1a(raw, offsets[i], offsets[i + 1])
    return out
