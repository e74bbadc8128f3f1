"""simulator.history: helpers that replace pandas calls give what those calls give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator.history import _drop_unused


@pytest.mark.parametrize(
    ("categories", "codes"),
    [
        (list("abcde"), [0, 2, 2, -1, 4]),  # few categories, one missing value
        ([f"c{i}" for i in range(40)], [39, 0, -1, 5, 5]),  # many categories: counted
        (list("ab"), [-1, -1]),  # nothing used
        (list("ab"), [0, 1]),  # everything used
    ],
)
def test_drop_unused_is_remove_unused_categories(categories, codes):
    values = pd.Categorical.from_codes(codes, categories=categories)
    got, want = _drop_unused(values), values.remove_unused_categories()
    assert list(got.categories) == list(want.categories)
    assert got.codes.tolist() == want.codes.tolist() and got.codes.dtype == want.codes.dtype


def test_grouped_in_time_is_the_sort_check():
    from simulator.history import grouped_in_time

    rng = np.random.default_rng(2)
    for n in (0, 1, 2, 50):
        for _ in range(200):
            keys = np.sort(rng.integers(0, 4, n)) if rng.random() < 0.7 else rng.integers(0, 4, n)
            ts = rng.integers(0, 3, n).astype("datetime64[ns]")
            want = n < 2 or bool(np.all((keys[1:] > keys[:-1]) | ((keys[1:] == keys[:-1]) & (ts[1:] >= ts[:-1]))))
            assert grouped_in_time(keys, ts) == want
