"""simulator.history: helpers that replace pandas calls give what those calls give."""

from __future__ import annotations

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
