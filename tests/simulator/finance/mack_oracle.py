"""The casact `chainladder` package's MackChainladder as the oracle for triangles.chain_ladder:
the same triangle handed to the package in its long form, its figures read back as the NumPy
implementation returns them (a 0 is no value; fully developed origins carry no error)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from simulator.finance.triangles import OVERFLOWED, ChainLadder


def package_chain_ladder(cumulative: np.ndarray) -> ChainLadder:
    import chainladder as cl

    tri = np.asarray(cumulative, dtype=np.float64)
    n_origin, n_age = tri.shape
    known = ~np.isnan(tri)
    latest_age = known.sum(axis=1) - 1
    latest = tri[np.arange(n_origin), latest_age]
    # Equally spaced monthly labels: the package reads the grain from them.
    i, a = np.nonzero(known)
    origin = pd.period_range("2000-01", periods=n_origin, freq="M").to_timestamp()
    long = pd.DataFrame(
        {
            "origin": origin[i],
            "valuation": (pd.period_range("2000-01", periods=n_origin + n_age, freq="M")[i + a]).to_timestamp(),
            "value": tri[i, a],
        }
    )
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        triangle = cl.Triangle(long, origin="origin", development="valuation", columns=["value"], cumulative=True)
        mack = cl.MackChainladder().fit(triangle)
        ultimate = np.asarray(mack.ultimate_.values, dtype=np.float64)[0, 0, :, -1]
        std = np.asarray(mack.mack_std_err_.values, dtype=np.float64)[0, 0, :, -1]
        total_std = float(np.asarray(mack.total_mack_std_err_.values, dtype=np.float64).ravel()[0])
        factors = np.asarray(mack.ldf_.values, dtype=np.float64)[0, 0, 0, : n_age - 1]
    # Errors at the float ceiling's square root (a sigma extrapolated past the largest float) are
    # read as not estimable, as triangles.chain_ladder reports them.
    std = np.where(std < OVERFLOWED, std, np.nan)
    total_std = total_std if total_std < OVERFLOWED else float("nan")
    nothing = latest == 0
    ultimate = np.where(nothing, 0.0, np.where(np.isfinite(ultimate), ultimate, np.nan))
    std = np.where(nothing | (latest_age == n_age - 1), 0.0, np.where(np.isfinite(std), std, np.nan))
    total = float(ultimate.sum()) if np.isfinite(ultimate).all() else float("nan")
    estimable = total_std if np.isfinite(total_std) else float("nan")
    total_std = estimable if np.isfinite(total) and np.isfinite(std).all() else float("nan")
    return ChainLadder(latest, ultimate, std, factors, total, total_std, estimable)
