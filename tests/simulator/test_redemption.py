"""simulator.redemption: the policy handed to the engine and the paying-with-points draws."""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulator import redemption, rng


def _rows() -> pd.DataFrame:
    # Three customers' rows, visits flagged; one enrol row and one extra visit (spawned by row 1).
    return pd.DataFrame({
        "_m": [0, 0, 0, 1, 1, 2],
        "_row": [0, 1, 2, 3, 4, 5],
        "_visit": [True, True, False, True, True, True],
        "_enroll": [True, False, False, False, False, False],
        "_extra": [False, False, False, False, True, False],
        "_spawn": [-1, -1, -1, -1, 1, -1],
    })


def test_the_policy_carries_the_chance_to_pay_with_points():
    p = redemption.policy(0.3, "dearest", 0.25)
    assert (p.probability, p.choice, p.pay_probability) == (0.3, "dearest", 0.25)
    assert redemption.policy(0.3, "cheapest").pay_probability == 0.0


def test_pay_draws_are_keyed_by_customer_and_row_on_their_own_stream():
    rows = _rows()
    keys = rng.customer_keys(pd.Series(["a", "b", "c"]))
    got = redemption.pay_draws(rows, keys, seed=7, run=2)
    # The oracle: each visit row's counter as docs/semantics.md and the redemption draws key it.
    counters = [0 + redemption.ENROLL_OFFSET, 1, None, 3, 1 + redemption.EXTRA_OFFSET, 5]
    for i, c in enumerate(counters):
        want = 1.0 if c is None else float(rng.uniform(7, 2, keys[rows["_m"][i]], np.uint64(c), redemption.STREAM_PAY))
        assert got[i] == want
    # Another stream than the redemption's own draws, and the same whatever rows come with them.
    u_redeem, _ = redemption.draws(rows, keys, 7, 2)
    assert not np.array_equal(got, u_redeem)
    alone = redemption.pay_draws(rows.iloc[3:].reset_index(drop=True), keys, seed=7, run=2)
    assert alone.tolist() == got[3:].tolist()
