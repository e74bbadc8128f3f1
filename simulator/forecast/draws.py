"""Gamma, Beta and normal draws from the counter-based uniforms of `simulator.rng`, for numba passes.

Each draw reads the uniforms of one customer's key at counters from `counter` on, and returns the
next unused counter: a customer's draws depend only on its key, the stream and the counters, never
on the other customers in the batch. Gamma variates use Marsaglia & Tsang's method (2000, "A simple
method for generating gamma variables"), three uniforms per attempt; a shape below 1 is boosted
(Gamma(k) = Gamma(k + 1) * U^(1/k)), as that paper describes.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from scipy.special import ndtri

from simulator import rng


@njit(cache=True, nogil=True, inline="always")
def open_uniform(key, count, prefix):
    """A uniform in (0, 1]: 1 - U, so that its logarithm is finite."""
    return 1.0 - rng.draw(key, np.uint64(count), prefix)


@njit(cache=True, nogil=True)
def standard_normal(key, counter, prefix):
    """One standard normal (Box-Muller's cosine half) from the uniforms at `counter`, `counter + 1`."""
    u1 = open_uniform(key, counter, prefix)
    u2 = rng.draw(key, np.uint64(counter + 1), prefix)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2), counter + 2


@njit(cache=True, nogil=True)
def gamma(shape, key, counter, prefix):
    """A Gamma(shape, rate 1) variate and the next free counter (Marsaglia & Tsang)."""
    boost = 1.0
    if shape < 1.0:
        # U^(1/k) underflows to 0 for a tiny shape: the variate is then 0, as its law all but says.
        boost = math.exp(math.log(open_uniform(key, counter, prefix)) / shape)
        counter += 1
        shape += 1.0
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        z, counter = standard_normal(key, counter, prefix)
        v = 1.0 + c * z
        if v <= 0.0:
            counter += 1  # the attempt's acceptance uniform is skipped, so each attempt uses three
            continue
        v = v * v * v
        u = open_uniform(key, counter, prefix)
        counter += 1
        if math.log(u) < 0.5 * z * z + d - d * v + d * math.log(v):
            return d * v * boost, counter


@njit(cache=True, nogil=True)
def beta(a, b, key, counter_a, counter_b, prefix_a, prefix_b):
    """A Beta(a, b) variate as X / (X + Y), X ~ Gamma(a) and Y ~ Gamma(b) on their own streams."""
    x, _ = gamma(a, key, counter_a, prefix_a)
    y, _ = gamma(b, key, counter_b, prefix_b)
    total = x + y
    if total == 0.0:  # both underflowed (two tiny shapes): the Beta's mass sits at 0 and 1 alike
        return 0.5
    return x / total


def standard_normals(seed: int, run: int, keys: np.ndarray, columns: int, stream: int) -> np.ndarray:
    """A (len(keys), columns) array of standard normals by inversion of the counter-based uniforms."""
    counters = np.arange(columns, dtype=np.uint64)[None, :]
    u = rng.uniform(seed, run, np.asarray(keys, dtype=np.uint64)[:, None], counters, stream)
    # The uniforms are k / 2^53; the cell's midpoint keeps the inverse finite at k = 0.
    return ndtri(u + 2.0**-54)
