"""Counter-based draws: pure in their coordinates, chunk-independent, uniform, stable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from simulator import rng


def _coords(n: int):
    keys = rng.customer_keys([f"C{i % 97:05d}" for i in range(n)])
    counters = np.arange(n, dtype=np.uint64) // np.uint64(97)
    return keys, counters


def test_draws_do_not_depend_on_chunking():
    keys, counters = _coords(5000)
    whole = rng.uniform(7, 3, keys, counters, stream=2)
    parts = [rng.uniform(7, 3, keys[a:b], counters[a:b], stream=2) for a, b in [(0, 1), (1, 1234), (1234, 4999), (4999, 5000)]]
    assert np.array_equal(whole, np.concatenate(parts))
    # Reordering the inputs reorders the outputs and nothing else.
    perm = np.random.default_rng(0).permutation(5000)
    assert np.array_equal(rng.uniform(7, 3, keys[perm], counters[perm], stream=2), whole[perm])


def test_draws_are_uniform_on_unit_interval():
    n = 200_000
    keys = rng.customer_keys(np.arange(n) % 1000)
    u = rng.uniform(42, 0, keys, np.arange(n, dtype=np.uint64) // np.uint64(1000), stream=0)
    assert u.dtype == np.float64 and u.min() >= 0.0 and u.max() < 1.0
    x = np.sort(u)
    grid = np.arange(1, n + 1) / n
    ks = max(np.max(grid - x), np.max(x - (grid - 1 / n)))
    assert ks < 1.95 / np.sqrt(n)  # Kolmogorov-Smirnov critical value at alpha = 0.001
    # Neighbouring counters of one customer are not correlated.
    c = np.corrcoef(u[:-1000], u[1000:])[0, 1]
    assert abs(c) < 0.01


@pytest.mark.parametrize("change", ["seed", "run", "stream", "counter", "customer"])
def test_every_coordinate_changes_the_draw(change):
    keys, counters = _coords(2000)
    base = dict(seed=1, run=0, stream=0)
    a = rng.uniform(base["seed"], base["run"], keys, counters, base["stream"])
    if change in base:
        base[change] += 1
        b = rng.uniform(base["seed"], base["run"], keys, counters, base["stream"])
    elif change == "counter":
        b = rng.uniform(1, 0, keys, counters + np.uint64(1000), 0)
    else:
        b = rng.uniform(1, 0, rng.customer_keys([f"X{i}" for i in range(2000)]), counters, 0)
    assert np.mean(a == b) < 0.001
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.1


def test_customer_keys_are_stable_and_distinct():
    keys = rng.customer_keys(["C00001", "C00002", "", "会员-7", "C00001"])
    assert keys.dtype == np.uint64
    assert keys[0] == keys[4] and len(set(keys[:4].tolist())) == 4
    # Fixed values: the hash must never change between processes, platforms or versions.
    again = rng.customer_keys(np.array(["会员-7", "C00001"], dtype=object))
    assert again.tolist() == [keys[3], keys[0]]
    assert rng.customer_keys(["a"])[0] == rng._mix(np.array([(0xCBF29CE484222325 ^ 0x61) * 0x100000001B3 & (2**64 - 1)], dtype=np.uint64))[0]


def _reference(seed: int, run: int, key: int, counter: int, stream: int) -> float:
    """splitmix64 written out in Python integers, independently of the NumPy code."""
    m = 2**64 - 1

    def mix(z):
        z &= m
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
        return z ^ (z >> 31)

    g = 0x9E3779B97F4A7C15
    prefix = mix(mix(mix(seed * g + 1) + (run + 1) * g) + (stream + 1) * g)
    h = mix(mix(key ^ prefix) + (counter + 1) * g)
    return (h >> 11) / 2**53


def test_uniform_matches_a_plain_integer_reference():
    cases = [(0, 0, 0, 0, 0), (42, 199, 2**64 - 1, 2**40, 3), (7, 1, 123456789, 0, 1)]
    got = [rng.uniform(s, r, np.array([k], dtype=np.uint64), np.array([c], dtype=np.uint64), st)[0] for s, r, k, c, st in cases]
    assert got == [_reference(*case) for case in cases]


def test_customer_keys_of_arrow_text_equal_those_of_python_strings():
    ids = ["C00001", "", "会员-7", "x" * 300]
    for dtype in ("str", pd.StringDtype("pyarrow"), pd.ArrowDtype(pa.large_string())):
        arrow = pd.Index(ids, dtype=dtype)
        assert np.array_equal(rng.customer_keys(arrow), rng.customer_keys(np.array(ids, dtype=object)))


def test_int64_counters_draw_as_their_uint64_conversion_does():
    keys = np.array([1, 2**63 + 5, 7], dtype=np.uint64)
    counters = np.array([0, 2**40, -3], dtype=np.int64)  # -3: the conversion wraps, the bits agree
    assert np.array_equal(rng.uniform(4, 1, keys, counters, 9), rng.uniform(4, 1, keys, counters.astype(np.uint64), 9))
    assert rng.uniform(4, 1, keys[1], np.int64(12), 9) == rng.uniform(4, 1, keys[1], np.uint64(12), 9)
