"""benchmarks/forecast.py at a tiny size: its figures are the models' (correctness only, never timing)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import forecast  # noqa: E402


def test_the_fit_figures_are_the_cdnow_fits():
    d = forecast.fit_figures("sample")
    assert d["customers"] == 2357
    assert d["bgnbd"] == [0.2426, 4.4136, 0.7929, 2.4259] and d["bgnbd_log_likelihood"] == -9582.43


def test_the_sampler_figures_count_what_was_sampled():
    d = forecast.sampler_figures(3000, 24)
    assert d["customers"] == 3000 and d["months"] == 24
    assert 0 < d["purchases_sampled"] < 3000 * 20
